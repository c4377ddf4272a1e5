#!/usr/bin/env python3
"""Benchmark: ``deadlock`` against crash's own ``foreach UN bt -f``, in one crash session.

    python3 tests/bench_deadlock.py [-r SESSIONS] [N ...]      (default: 500 1000 2000)

For each N, on the lab's ``scale`` dump with N blocked tasks (built on demand), in each
of SESSIONS fresh crash sessions (default 3; crash's start-up is not timed):

* crash's ``foreach UN bt -f`` twice (the best is the session's reference time);
* ``deadlock`` "cold": the first run in the session (nothing of this session cached);
* ``deadlock`` "warm" twice more: a fresh snapshot each time (every stack and lock read
  again); only type answers are kept.

Type facts are kept on disk per vmlinux (``crash_ext/adapters/typestore.py``); this
benchmark starts from an empty store of its own, and first prints the one session that
fills it: ``deadlock`` on a vmlinux never seen before, when gdb answers about ten type
look-ups (tens of ms each).  Every later session -- what a user gets from the second
session on that kernel build on -- finds them stored.

Prints each session's times and, per N, the best and the median over the sessions of
each time and of each ratio to crash's own.  The target (the issue's): the HEADLINE
ratio -- a fresh ``deadlock`` run in a session where crash has already started, i.e.
cold -- at most 1.3, growing linearly in N.  A measurement, not a test: nothing is
asserted.
"""

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crash_ext.adapters.crashproc import CrashProcess  # noqa: E402
from crash_ext.verbs import deadlock  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402

TARGET = 1.3


def session(d):
    """One crash session: (native best, cold, [warm...], KB, rc, summary)."""
    crash = CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=1200)
    try:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        native = []
        text = ""
        for _ in range(2):
            t = time.perf_counter()
            text = crash.command("foreach UN bt -f")
            native.append(time.perf_counter() - t)
        ours = []
        rc, summary = None, ""
        for _ in range(3):
            out = io.StringIO()
            t = time.perf_counter()
            rc = deadlock.main([], crash, out=out)
            ours.append(time.perf_counter() - t)
            summary = out.getvalue().strip().splitlines()[-1]
        return min(native), ours[0], ours[1:], len(text) // 1024, rc, summary
    finally:
        crash.close()


def bench(n, sessions):
    d = get_dump("scale", n=n)
    nat, cold, warm, rcold, rwarm = [], [], [], [], []
    for i in range(sessions):
        nb, c, ws, kb, rc, summary = session(d)
        wb = min(ws)
        nat.append(nb)
        cold.append(c)
        warm.append(wb)
        rcold.append(c / nb)
        rwarm.append(wb / nb)
        print("  N=%-5d session %d: foreach UN bt -f %.3fs (%d KB); deadlock cold %.3fs "
              "(%.2fx), warm %s (%.2fx)" % (n, i + 1, nb, kb, c, c / nb,
                                          " ".join("%.3fs" % w for w in ws), wb / nb),
              flush=True)
    med = statistics.median
    print("N=%-5d crash foreach UN bt -f: best %.3fs median %.3fs" % (n, min(nat), med(nat)))
    print("        deadlock cold (HEADLINE: first run in a started session): best %.3fs "
          "median %.3fs; ratio best %.2fx median %.2fx  target <= %.1fx: %s"
          % (min(cold), med(cold), min(rcold), med(rcold), TARGET,
             "met" if med(rcold) <= TARGET else "NOT met"))
    print("        deadlock warm (types cached):                         best %.3fs "
          "median %.3fs; ratio best %.2fx median %.2fx  target <= %.1fx: %s"
          % (min(warm), med(warm), min(rwarm), med(rwarm), TARGET,
             "met" if med(rwarm) <= TARGET else "NOT met"))
    print("        rc=%d  %s" % (rc, summary), flush=True)
    return med(nat), med(cold), med(warm)


def never_seen(n):
    """The session that fills the (empty) type store: deadlock on a new vmlinux."""
    d = get_dump("scale", n=n)
    nb, c, ws, kb, rc, summary = session(d)
    print("N=%-5d vmlinux never seen (empty type store): foreach UN bt -f %.3fs; deadlock "
          "first run %.3fs (%.2fx), then %s (%.2fx)" % (
              n, nb, c, c / nb, " ".join("%.3fs" % w for w in ws), min(ws) / nb),
          flush=True)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-r", "--sessions", type=int, default=3,
                   help="fresh crash sessions per N (default 3)")
    p.add_argument("n", type=int, nargs="*", help="blocked tasks (default 500 1000 2000)")
    a = p.parse_args(argv)
    ns = a.n or [500, 1000, 2000]
    store = tempfile.mkdtemp(prefix="crash-ext-types-")
    os.environ["CRASH_EXT_TYPES"] = store
    try:
        never_seen(ns[-1])
        rows = [(n,) + bench(n, max(1, a.sessions)) for n in ns]
        if len(rows) > 1:
            print("Growth (median seconds per 1000 tasks): " + ", ".join(
                "N=%d: foreach %.3f cold %.3f warm %.3f" % (n, 1000 * x / n, 1000 * c / n,
                                                           1000 * w / n)
                for n, x, c, w in rows))
    finally:
        shutil.rmtree(store, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
