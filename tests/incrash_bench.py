#!/usr/bin/env python3
"""Benchmark inside crash: a verb (``deadlock``, or ``argrecover -u``) against ``foreach UN
bt -f`` with the real pykdump.

    python3 tests/incrash_bench.py [-r SESSIONS] [--verb "argrecover -u"] [N ...]
                                                              (default: deadlock, 2000)

(`make bench` runs it from tests/bench_deadlock.py and tests/bench_argrecover.py, beside
the CLI figures.)

For each of SESSIONS crash sessions on the lab's ``scale`` dump (the user's mpykdump.so,
``MPYKDUMP=/path/to/mpykdump.so make bench``, loaded by hand, then crash-ext's loader; without
``MPYKDUMP`` one line says the in-crash figures were skipped): this file runs
*inside* crash (``epython tests/incrash_bench.py --inside PAIRS VERB [ARG...]``) and
times, in that one session, ``foreach UN bt -f`` once (crash reads the stacks for the first
time), the verb once, then PAIRS pairs of the two (``exec_crash_command`` and
``run_verb``, output kept in memory).  The session's ratio is the median of its verb
times over the median of its ``foreach`` times; printed is the median of the sessions' ratios.  Run with the type
store on (as a user's second session on a kernel build) and off
(``CRASH_EXT_TYPE_CACHE=0``: types known only from earlier calls in the session).

A measurement, not a test: nothing is asserted.
"""

import os
import sys
import time


def inside(pairs, verb=("deadlock",)):
    """Inside crash: print one line ``INCRASH first_foreach first_verb f v f v ...`` and
    ``SUMMARY`` with the verb's last output line."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0]))))
    import contextlib
    import io
    import crash
    from crash_ext.verbs.incrash import run_verb

    def foreach():
        t = time.perf_counter()
        crash.exec_crash_command("foreach UN bt -f")
        return time.perf_counter() - t

    def ours():
        buf = io.StringIO()
        t = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            run_verb(verb[0], list(verb[1:]))
        text = buf.getvalue()       # deadlock's summary: last, from "deadlock: ", wrapped
        return time.perf_counter() - t, " ".join(text[text.rfind("\ndeadlock: ") + 1:]
                                                 .split()) if "\ndeadlock: " in text \
            else text.strip().splitlines()[-1]

    times = [foreach(), ours()[0]]
    summary = ""
    for _ in range(pairs):
        times.append(foreach())
        t, summary = ours()
        times.append(t)
    print("INCRASH " + " ".join("%.4f" % x for x in times))
    print("SUMMARY " + summary)
    sys.stdout.flush()


def session(d, mp, pairs, env=None, verb="deadlock"):
    """One crash session on dump ``d``; returns (first foreach, first ``verb``,
    [foreach...], [verb...], summary line).  Raises RuntimeError when crash did not
    print the timing line."""
    import subprocess
    import tempfile
    home = tempfile.mkdtemp(prefix="crash-ext-bench-")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = "\n".join([
        "extend %s" % mp,
        "mod -s crashext_lab %s" % d.module_ko,
        "epython %s --inside %d %s" % (os.path.abspath(__file__), pairs, verb), "q", ""])
    e = dict(os.environ, HOME=home)
    e.pop("PYKDUMPPATH", None)
    e.update(env or {})
    e["PYTHONPATH"] = root
    r = subprocess.run([d.crash, "-s", d.vmlinux, d.vmcore], input=script.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, cwd=home,
                       timeout=3600)
    out = r.stdout.decode(errors="replace")
    line = [l for l in out.splitlines() if l.startswith("INCRASH ")]
    if not line:
        raise RuntimeError("no timing from crash: %s %s" % (out[-2000:], r.stderr[-1000:]))
    t = [float(x) for x in line[0].split()[1:]]
    summary = [l for l in out.splitlines() if l.startswith("SUMMARY ")]
    return t[0], t[1], t[2::2], t[3::2], summary[0][8:] if summary else ""


def bench(n, sessions, pairs=5, env=None, label="type store on", verb="deadlock"):
    """Print and return the median in-crash ratio ``verb`` / foreach UN bt -f (and
    print the verb's median time)."""
    import statistics
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests import incrash
    from tests.lab.labdumps import get_dump
    mp = incrash.mpykdump()
    if not mp:
        print("N=%-5d IN CRASH (%s): skipped: the in-crash figures need your own pykdump "
              "build: MPYKDUMP=/path/to/mpykdump.so make bench" % (n, verb), flush=True)
        return None
    d = get_dump("scale", n=n)
    try:
        incrash.check_mpykdump(mp, d)
    except incrash.MpykdumpError as e:
        raise SystemExit("incrash_bench: %s" % e)
    med = statistics.median
    ratios, times = [], []
    for i in range(sessions):
        f0, d0, fs, ds, summary = session(d, mp, pairs, env, verb)
        ratios.append(med(ds) / med(fs))
        times.append(med(ds))
        print("  N=%-5d in crash (%s) session %d: foreach UN bt -f %s; %s %s: %.2fx; "
              "first of the session: foreach %.3fs, %s %.3fs; load %.1f" % (
                  n, label, i + 1, " ".join("%.3fs" % x for x in fs), verb,
                  " ".join("%.3fs" % x for x in ds), ratios[-1], f0, verb, d0,
                  os.getloadavg()[0]), flush=True)
    print("N=%-5d IN CRASH (pykdump, %s) %s / foreach UN bt -f, same session "
          "(median of %d sessions): %.2fx (sessions %.2f-%.2f); %s median %.3fs  %s" % (
              n, label, verb, sessions, med(ratios), min(ratios), max(ratios), verb,
              med(times), summary if verb == "deadlock" else ""),
          flush=True)
    return med(ratios)


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-r", "--sessions", type=int, default=3)
    p.add_argument("--verb", default="deadlock", help="verb and its arguments")
    p.add_argument("n", type=int, nargs="*")
    a = p.parse_args(argv)
    for n in a.n or [2000]:
        bench(n, a.sessions, verb=a.verb)
        bench(n, a.sessions, env={"CRASH_EXT_TYPE_CACHE": "0"}, label="type store off",
              verb=a.verb)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inside"]:
        inside(int(sys.argv[2]), tuple(sys.argv[3:]) or ("deadlock",))
    else:
        sys.exit(main(sys.argv[1:]))
