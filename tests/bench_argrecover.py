#!/usr/bin/env python3
"""Benchmark: ``argrecover -u`` against crash's own ``foreach UN bt -f``, in one crash
session.

    python3 tests/bench_argrecover.py [-r SESSIONS] [N ...]     (default: 500 1000 2000)

For each N, on the lab's ``scale`` dump with N blocked tasks (built on demand), in its
own Python process (so that its peak RSS is its own), SESSIONS fresh crash sessions
(default 3; crash's start-up is not timed).  In each: crash's ``foreach UN bt -f`` once
(its first reading of the stacks), ``argrecover -u`` once (its first run in the
session: every function's ``dis`` and ``whatis`` asked from gdb, one recovery made per
distinct stack shape), then five pairs of the two, side by side (later runs find the
session's recoveries and answer every task from them).  The session's ratio is the
median of its five ``argrecover -u`` times over the median of its five ``foreach``
times; the HEADLINE is the median of the sessions' ratios (issue 16's target: at most
3, growing linearly in N).  The first run of each session is printed beside it; the
first session of the first N starts from an empty type store (``CRASH_EXT_TYPES``): a
vmlinux never seen before.

Memory: the peak RSS of the Python process (``resource.getrusage``) at the end of the
N's sessions, and its RSS before the first ``argrecover -u`` (crash-ext, the session,
``foreach``'s text).  argrecover's text output is counted and dropped, not kept.

Through the Port (``crash_ext.ports.crashproc``, crash driven from outside); then,
for the largest N, the same inside crash with the real pykdump
(``tests/incrash_bench.py``: ``argrecover -u`` against ``foreach UN bt -f`` in each
session), printed beside the CLI's figures.  Each session's line gives the load average
(this machine is shared: compare ratios, not times).

A measurement, not a test: nothing is asserted.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TARGET = 3.0
PAIRS = 5      # foreach / argrecover -u pairs timed per session


class Sink:
    """A text output that counts task headers and characters, keeping nothing."""

    def __init__(self):
        self.tasks = 0
        self.chars = 0

    def write(self, s):
        self.tasks += s.count("PID: ")
        self.chars += len(s)
        return len(s)

    def flush(self):
        pass


def _rss_kb():
    """Return the current RSS of this process in KB (from /proc), None if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _timed(fn):
    t = time.perf_counter()
    res = fn()
    return time.perf_counter() - t, res


def session(d, pairs=PAIRS):
    """One crash session; returns a dict of its times (s), task count, output size and
    RSS before the first argrecover -u (KB)."""
    from crash_ext.ports.crashproc import CrashProcess
    from crash_ext.verbs import argrecover
    crash = CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=1800)
    state = {}

    def ours():
        out = Sink()
        state["rc"] = argrecover.main(["-u"], crash, out=out)
        state["tasks"], state["chars"] = out.tasks, out.chars

    try:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        n0, _ = _timed(lambda: crash.command("foreach UN bt -f"))
        rss0 = _rss_kb()
        a0, _ = _timed(ours)
        nat, ar = [], []
        for _ in range(pairs):
            nat.append(_timed(lambda: crash.command("foreach UN bt -f"))[0])
            ar.append(_timed(ours)[0])
        return {"foreach0": n0, "first": a0, "foreach": nat, "argrecover": ar,
                "load": os.getloadavg()[0],
                "rss_before_kb": rss0, "rc": state["rc"], "tasks": state["tasks"],
                "chars": state["chars"]}
    finally:
        crash.close()


def child(n, sessions):
    """Run ``sessions`` sessions on scale N and print one JSON line of results."""
    from tests.lab.labdumps import get_dump
    d = get_dump("scale", n=n)
    res = [session(d) for _ in range(sessions)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": n, "sessions": res, "peak_rss_kb": peak,
                      "kernel": d.meta["kernel_abi"]}))


def report(r, first_n):
    med = statistics.median
    n = r["n"]
    side, firsts = [], []
    for i, s in enumerate(r["sessions"]):
        mf, ma = med(s["foreach"]), med(s["argrecover"])
        side.append(ma / mf)
        firsts.append(s["first"] / mf)
        note = " (vmlinux never seen: empty type store)" if first_n and i == 0 else ""
        print("  N=%-5d session %d: %d tasks, rc=%d, %d KB of text; foreach UN bt -f %s; "
              "argrecover -u %s: %.2fx; first argrecover -u of the session %.3fs "
              "(%.2fx); load %.1f%s" % (
                  n, i + 1, s["tasks"], s["rc"], s["chars"] // 1024,
                  " ".join("%.3fs" % x for x in s["foreach"]),
                  " ".join("%.3fs" % x for x in s["argrecover"]), ma / mf, s["first"],
                  s["first"] / mf, s.get("load", 0.0), note), flush=True)
    fe = med([med(s["foreach"]) for s in r["sessions"]])
    ar = med([med(s["argrecover"]) for s in r["sessions"]])
    tasks = r["sessions"][0]["tasks"] or 1
    print("N=%-5d crash foreach UN bt -f: median %.3fs; argrecover -u: median %.3fs "
          "(%.3f ms/task)" % (n, fe, ar, 1000 * ar / tasks))
    print("        HEADLINE argrecover -u / foreach, side by side in one session (median "
          "of %d sessions): %.2fx (sessions %.2f-%.2f)  target <= %.1fx: %s" % (
              len(side), med(side), min(side), max(side), TARGET,
              "met" if med(side) <= TARGET else "NOT met"))
    print("        first argrecover -u of each session / foreach: median %.2fx (%.2f-%.2f); "
          "%s" % (med(firsts), min(firsts), max(firsts),
                  " ".join("%.2fs" % s["first"] for s in r["sessions"])))
    print("        peak RSS of the Python process %.1f MB (%.1f MB before the first "
          "argrecover -u)" % (r["peak_rss_kb"] / 1024.0,
                              max(s["rss_before_kb"] or 0 for s in r["sessions"]) / 1024.0),
          flush=True)
    return fe, ar, tasks


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-r", "--sessions", type=int, default=3,
                   help="fresh crash sessions per N (default 3)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("n", type=int, nargs="*", help="blocked tasks (default 500 1000 2000)")
    a = p.parse_args(argv)
    ns = a.n or [500, 1000, 2000]
    if a.child:
        child(ns[0], max(1, a.sessions))
        return 0
    store = tempfile.mkdtemp(prefix="crash-ext-types-")
    env = dict(os.environ, CRASH_EXT_TYPES=store, PYTHONPATH=ROOT)
    rows = []
    try:
        for i, n in enumerate(ns):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                                "-r", str(a.sessions), str(n)], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
            if r.returncode != 0:
                print("N=%d: the benchmark process failed (rc %d)" % (n, r.returncode))
                return 1
            res = json.loads(r.stdout.strip().splitlines()[-1])
            if i == 0:
                print("argrecover -u on scale, kernel %s" % res["kernel"])
            rows.append((n,) + report(res, i == 0))
        # inside crash (pykdump), the largest N, its own sessions side by side
        from tests import incrash_bench
        incrash_bench.bench(ns[-1], a.sessions, env={"CRASH_EXT_TYPES": store},
                            verb="argrecover -u")
        n, fe, ar, t = rows[-1]
        print("N=%-5d CLI (crash driven from outside) argrecover -u median %.3fs, %.2fx its "
              "sessions' foreach" % (n, ar, ar / fe))
        if len(rows) > 1:
            print("Growth (median seconds per 1000 tasks): " + ", ".join(
                "N=%d: foreach %.3f argrecover -u %.3f" % (n, 1000 * x / t, 1000 * y / t)
                for n, x, y, t in rows))
    finally:
        shutil.rmtree(store, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
