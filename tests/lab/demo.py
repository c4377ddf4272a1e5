#!/usr/bin/env python3
"""``make demo``: the product's main job on the lab's "seed" dump.

Builds (or finds in the cache) only what it shows: crash and the 6.1 seed dump.  Then
replays the seed article's investigation with crash-ext's verbs, outside crash, in one
crash session: ``deadlock``, ``whoholds -p`` of the stuck ``rm``, ``argrecover`` of the
rm's ``vfs_unlink`` frame; and prints the same commands to paste into a shell.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from crash_ext.ports.crashproc import CrashProcess  # noqa: E402
from crash_ext.verbs import registry  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402
from tests.lab.mklab import LabError, log  # noqa: E402


def main():
    log("demo: the seed dump (built once, then from the cache)")
    try:
        d = get_dump("seed")
    except LabError as e:
        print("demo: error: %s" % e, file=sys.stderr)
        return 1
    rm = next(t for t in d.truth["tasks"] if t["comm"] == "rm")["pid"]
    log("demo: crash-ext on %s (kernel %s)" % (d.vmcore, d.meta["kernel_abi"]))
    print("# lab dump: %s (kernel %s, crash %s)" % (d.vmcore, d.meta["kernel_abi"], d.crash))
    print("# the same in crash: crash -s %s %s; mod -s crashext_lab %s\n"
          % (d.vmlinux, d.vmcore, d.module_ko), flush=True)
    runs = (["deadlock"], ["whoholds", "-p", str(rm)], ["argrecover", str(rm), "vfs_unlink"])
    worst = 0
    with CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=600) as crash:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        for argv in runs:
            print("crash> %s" % " ".join(argv), flush=True)
            rc = registry.load(argv[0]).main(argv[1:], crash)
            print(flush=True)
            worst = max(worst, rc if rc not in (0, 1) else 0)
    print("# from a shell, on this dump (.venv/bin/crash-ext, or crash-ext after install.sh):")
    for argv in runs:
        print("#   crash-ext %s --lab seed" % " ".join(argv))
    return worst


if __name__ == "__main__":
    sys.exit(main())
