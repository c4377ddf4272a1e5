#!/usr/bin/env python3
"""``make compare``: argrecover against drgn over every frame of every UN task of every
lab dump; prints recovered-parameter counts and conflicts per dump."""

import sys

from tabulate import tabulate

from crash_ext.ports.crashproc import CrashProcess
from tests.drgn_oracle import compare
from tests.lab.labdumps import get_dump

DUMPS = [(s, "6.1") for s in ("seed", "abba-mutex", "cycle3", "convoy", "readers",
                               "semaphore", "scale")] + \
        [(s, "6.12") for s in ("seed", "abba-mutex", "cycle3", "convoy", "readers",
                                "semaphore")]


def main():
    rows, conflicts = [], []
    for scenario, kernel in DUMPS:
        d = get_dump(scenario, kernel=kernel, made="snapshot")  # labdumps.SNAPSHOT_ONLY
        with CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=1200) as crash:
            crash.command("mod -s crashext_lab %s" % d.module_ko)
            t = compare(d, crash)
        rows.append([scenario, d.meta["kernel_abi"], t.frames, t.params, t.ours, t.drgn,
                     t.both, t.agree, len(t.conflicts), t.skipped_clones])
        conflicts += [(scenario,) + c for c in t.conflicts]
        print(tabulate([rows[-1]], tablefmt="plain"), flush=True)
    total = ["total", ""] + [sum(r[i] for r in rows) for i in range(2, 10)]
    print()
    print(tabulate(rows + [total], headers=["dump", "kernel", "frames", "params", "ours",
                                            "drgn", "both", "agree", "conflicts",
                                            "clone frames"]))
    for c in conflicts:
        print("CONFLICT %s pid %d %s %s: ours %x, drgn %x" % c)
    return 1 if conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
