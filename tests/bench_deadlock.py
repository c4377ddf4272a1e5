#!/usr/bin/env python3
"""Benchmark: ``deadlock`` against crash's own ``foreach UN bt -f``, in ONE crash session.

    python3 tests/bench_deadlock.py [N ...]      (default: 500 1000 2000)

For each N, on the lab's ``scale`` dump with N blocked tasks (built on demand): crash's
``foreach UN bt -f`` (best of two), then our ``deadlock`` twice -- "cold" pays this
session's one-time type/layout probes, "warm" is a second run with a fresh snapshot
(every stack and lock read again; only type answers cached).  Prints both times and the
ratios; the target is warm <= 1.3x.  A measurement, not a test: nothing is asserted.
"""

import io
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crash_ext.adapters.crashproc import CrashProcess  # noqa: E402
from crash_ext.verbs import deadlock  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402

TARGET = 1.3


def bench(n):
    d = get_dump("scale", n=n)
    crash = CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=1200)
    try:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        native = []
        for _ in range(2):
            t = time.time()
            text = crash.command("foreach UN bt -f")
            native.append(time.time() - t)
        ours = []
        summary = ""
        for _ in range(2):
            out = io.StringIO()
            t = time.time()
            rc = deadlock.main([], crash, out=out)
            ours.append(time.time() - t)
            summary = out.getvalue().strip().splitlines()[-1]
        nat = min(native)
        print("N=%-5d crash foreach UN bt -f: %6.2fs (%d KB)   deadlock: cold %6.2fs "
              "(%.1fx)  warm %6.2fs (%.1fx)  target <= %.1fx: %s"
              % (n, nat, len(text) // 1024, ours[0], ours[0] / nat, ours[1],
                 ours[1] / nat, TARGET, "met" if ours[1] / nat <= TARGET else "NOT met"),
              flush=True)
        print("        rc=%d  %s" % (rc, summary), flush=True)
    finally:
        crash.close()


def main(argv):
    ns = [int(a) for a in argv] or [500, 1000, 2000]
    for n in ns:
        bench(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
