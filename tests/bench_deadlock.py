#!/usr/bin/env python3
"""Benchmark: ``deadlock`` against crash's own ``foreach UN bt -f``, in one crash session.

    python3 tests/bench_deadlock.py [-r SESSIONS] [N ...]      (default: 500 1000 2000)

For each N, on the lab's ``scale`` dump with N blocked tasks (built on demand), in each
of SESSIONS fresh crash sessions (default 3; crash's start-up is not timed): crash's
``foreach UN bt -f`` once (its first reading of the stacks), ``deadlock`` once (its
first run in the session), then five pairs of the two, side by side.  The session's
ratio is the median of its five ``deadlock`` times over the median of its five
``foreach`` times (this VM's bursts of slowness last a few runs: three pairs let one
burst decide a session); the HEADLINE is the median of the sessions' ratios (issue
29's target for a second call: at most 1.8, growing linearly in N).  The first run of each session is printed
beside it.  Then the same ratio inside crash with the real pykdump
(``tests/incrash_bench.py``), with the type store and without it.

Type facts are kept on disk per vmlinux (``crash_ext/ports/typestore.py``), and so are
the facts of the kernel image's code (disassembly, prototypes, holds summaries and call
sites: ``crash_ext/core/codestore.py``, in the store directory's ``code/``); this
benchmark starts from empty stores of its own, and first prints SESSIONS sessions that
each fill an empty one: ``deadlock`` on a vmlinux never seen before, when gdb answers about fifteen
type look-ups (tens of ms each) and disassembles every function the analyses read.  Every later session -- what a user gets from the second
session on that kernel build on -- finds them stored.  The last lines put the largest
N's medians beside issue 29's targets: the first call of a session with the stores
warm, on a vmlinux never seen, and a second call.

A measurement, not a test: nothing is asserted.
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

from crash_ext.ports.crashproc import CrashProcess  # noqa: E402
from crash_ext.verbs import deadlock  # noqa: E402
from tests import incrash_bench  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402

TARGET = 1.8          # a later call of the session (issue 29)
FIRST_TARGET = 2.5    # the first call of a session, stores warm
NEVER_TARGET = 8.0    # the first call on a vmlinux never seen (stores empty)
PAIRS = 5      # foreach / deadlock pairs timed per session


def _timed(fn):
    t = time.perf_counter()
    res = fn()
    return time.perf_counter() - t, res


def session(d, pairs=PAIRS):
    """One crash session: crash's ``foreach UN bt -f`` once (crash reads the stacks for
    the first time), ``deadlock`` once (its first run in the session), then ``pairs``
    times the two side by side.  Returns (first native, first deadlock, [native...],
    [deadlock...], KB, rc, summary line)."""
    crash = CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=1200)
    state = {}

    def ours():
        out = io.StringIO()
        state["rc"] = deadlock.main([], crash, out=out)
        text = out.getvalue()       # the summary: last, from "deadlock: ", wrapped
        state["summary"] = " ".join(text[text.rfind("\ndeadlock: ") + 1:].split())

    try:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        n0, text = _timed(lambda: crash.command("foreach UN bt -f"))
        d0, _ = _timed(ours)
        nat, dl = [], []
        for _ in range(pairs):
            nat.append(_timed(lambda: crash.command("foreach UN bt -f"))[0])
            dl.append(_timed(ours)[0])
        return n0, d0, nat, dl, len(text) // 1024, state["rc"], state["summary"]
    finally:
        crash.close()


def bench(n, sessions):
    d = get_dump("scale", n=n)
    med = statistics.median
    nat, dls, side, first = [], [], [], []
    rc, summary = None, ""
    # a session not counted: the stores hold this dump's code (a module's is kept per
    # dump) before the first session counted, as for a user's second session
    session(d, pairs=0)
    for i in range(sessions):
        n0, d0, ns, ds, kb, rc, summary = session(d)
        r = med(ds) / med(ns)
        nat.append(med(ns))
        dls.append(med(ds))
        side.append(r)
        first.append(d0 / med(ns))
        print("  N=%-5d session %d: foreach UN bt -f %s (%d KB); deadlock %s: %.2fx; "
              "first deadlock of the session %.3fs (%.2fx)" % (
                  n, i + 1, " ".join("%.3fs" % x for x in ns), kb,
                  " ".join("%.3fs" % x for x in ds), r, d0, d0 / med(ns)), flush=True)
    print("N=%-5d crash foreach UN bt -f: median %.3fs; deadlock: median %.3fs" % (
        n, med(nat), med(dls)))
    print("        HEADLINE deadlock / foreach, side by side in one session (median of "
          "%d sessions): %.2fx (sessions %.2f-%.2f)  target <= %.1fx: %s" % (
              sessions, med(side), min(side), max(side), TARGET,
              "met" if med(side) <= TARGET else "NOT met"))
    print("        first deadlock of each session / foreach: median %.2fx (%.2f-%.2f)" % (
        med(first), min(first), max(first)))
    print("        rc=%d  %s" % (rc, summary), flush=True)
    # the same inside crash, with the real pykdump (same store of type facts)
    incrash_bench.bench(n, sessions)
    incrash_bench.bench(n, sessions, env={"CRASH_EXT_TYPE_CACHE": "0"},
                        label="type store off")
    return med(nat), med(dls), first, side


def never_seen(n, sessions):
    """Sessions that each fill an empty type and code store: deadlock on a vmlinux
    never seen.  Returns their first calls' ratios to foreach."""
    d = get_dump("scale", n=n)
    ratios = []
    for i in range(sessions):
        os.environ["CRASH_EXT_TYPES"] = tempfile.mkdtemp(prefix="crash-ext-types-")
        try:
            n0, d0, ns, ds, kb, rc, summary = session(d, pairs=1)
        finally:
            shutil.rmtree(os.environ["CRASH_EXT_TYPES"], ignore_errors=True)
        ratios.append(d0 / ns[0])
        print("N=%-5d session %d, vmlinux never seen (empty stores): foreach UN bt -f "
              "%.3fs; first deadlock %.3fs (%.2fx), then %.3fs (%.2fx)" % (
                  n, i + 1, ns[0], d0, d0 / ns[0], ds[0], ds[0] / ns[0]), flush=True)
    return ratios


def _verdict(name, values, target):
    med = statistics.median(values)
    return "  %-46s median %.2fx (%s)  target <= %.1fx: %s" % (
        name, med, " ".join("%.2f" % v for v in values), target,
        "met" if med <= target else "NOT met")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-r", "--sessions", type=int, default=3,
                   help="fresh crash sessions per N (default 3)")
    p.add_argument("n", type=int, nargs="*", help="blocked tasks (default 500 1000 2000)")
    a = p.parse_args(argv)
    ns = a.n or [500, 1000, 2000]
    sessions = max(1, a.sessions)
    never = never_seen(ns[-1], sessions)
    store = tempfile.mkdtemp(prefix="crash-ext-types-")
    os.environ["CRASH_EXT_TYPES"] = store
    try:
        rows = [(n,) + bench(n, sessions) for n in ns]
        if len(rows) > 1:
            print("Growth (median seconds per 1000 tasks): " + ", ".join(
                "N=%d: foreach %.3f deadlock %.3f" % (n, 1000 * x / n, 1000 * y / n)
                for n, x, y, _f, _s in rows))
        n, _x, _y, first, side = rows[-1]
        print("Issue 29 at N=%d, deadlock / crash's foreach UN bt -f, per session:" % n)
        print(_verdict("first call of a session, stores warm", first, FIRST_TARGET))
        print(_verdict("first call, vmlinux never seen", never, NEVER_TARGET))
        print(_verdict("a later call of the session", side, TARGET), flush=True)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
