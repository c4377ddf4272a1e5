"""Benchmark (not a timed test): the verbs on a scenario's kdump-made dump (filtered,
compressed by makedumpfile) against QEMU's full snapshot of the same scenario.

    python3 tests/bench_kdump.py [SCENARIO ...] [--kernel K] [--repeat N]

For each dump: its size and staging time (meta.json), crash's start-up (opening the
dump, ``mod -s``), then the median of N runs of ``deadlock``, ``argrecover -u`` and
``whoholds ADDR`` on the truth's first lock, each run on a fresh analysis in one crash
session.  Prints one row per dump.
"""

import argparse
import io
import os
import statistics
import sys
import time

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crash_ext.ports.crashproc import CrashProcess  # noqa: E402
from crash_ext.verbs import argrecover, deadlock, whoholds  # noqa: E402
from tests.bench_whoholds import _time  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402


def _median(fn, n):
    return statistics.median(_time(fn, n))


def bench_dump(scenario, kernel, made, repeat):
    """Return the figures of one dump as a dict."""
    d = get_dump(scenario, kernel=kernel, made=made)
    t = time.perf_counter()
    crash = CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=600)
    try:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        start = time.perf_counter() - t
        sink = io.StringIO()
        addr = d.truth["locks"][0]["address"]
        figures = {
            "deadlock": _median(lambda: deadlock.main([], crash, out=sink, err=sink),
                                repeat),
            "argrecover -u": _median(lambda: argrecover.main(["-u"], crash, out=sink),
                                     repeat),
            "whoholds": _median(lambda: whoholds.main([addr], crash, out=sink), repeat),
        }
    finally:
        crash.close()
    return dict(figures, scenario=scenario, kernel=d.meta["kernel_abi"], made=made,
                bytes=os.path.getsize(d.vmcore), staged=d.meta.get("seconds"),
                start=start, compression=d.meta.get("compression", "none"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", nargs="*", default=["seed"])
    p.add_argument("--kernel", default="6.1")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    cols = ["scenario", "kernel", "made", "compression", "bytes", "staged", "start",
            "deadlock", "argrecover -u", "whoholds"]
    print("\t".join(cols))
    for s in a.scenario:
        for made in ("kdump", "snapshot"):
            r = bench_dump(s, a.kernel, made, a.repeat)
            print("\t".join(("%.3f" % r[c]) if isinstance(r[c], float) else str(r[c])
                            for c in cols), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
