"""Benchmark (not a timed test): ``argrecover -u`` over the scale dump, time per task,
against crash's own ``foreach UN bt -f`` in the same crash session.

    python3 tests/bench_argrecover.py [N] [--warm]

"cold" is the first run in the session (disassembly and prototypes fetched once per
function); with --warm, "warm" is a second run with those caches filled.
"""

import io
import os
import sys
import time

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crash_ext.adapters.crashproc import CrashProcess  # noqa: E402
from crash_ext.verbs import argrecover  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402


def bench_argrecover(n: int = 2000, warm: bool = False) -> dict:
    """Return {'tasks', 'foreach_s', 'cold_s', 'warm_s', per-task ms, ratios}."""
    d = get_dump("scale", n=n)
    with CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=1800) as crash:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        crash.command("ps")                              # warm crash's own task table
        t = time.perf_counter()
        crash.command("foreach UN bt -f")
        foreach = time.perf_counter() - t
        times = []
        for _ in range(2 if warm else 1):
            out = io.StringIO()
            t = time.perf_counter()
            rc = argrecover.main(["-u"], crash, out=out)
            times.append(time.perf_counter() - t)
            assert rc == 0
        tasks = out.getvalue().count("PID: ")
    r = {"n": n, "tasks": tasks, "foreach_s": foreach}
    for name, secs in zip(("cold", "warm"), times):
        r.update({name + "_s": secs, name + "_ms_per_task": 1000 * secs / tasks,
                  "ratio_" + name: secs / foreach})
    return r


def main():
    args = [a for a in sys.argv[1:] if a != "--warm"]
    r = bench_argrecover(int(args[0]) if args else 2000, warm="--warm" in sys.argv)
    print("argrecover -u on scale (N=%d): %d tasks" % (r["n"], r["tasks"]))
    print("  crash foreach UN bt -f      %7.2f s" % r["foreach_s"])
    for name in ("cold", "warm"):
        if name + "_s" in r:
            print("  argrecover -u, %s         %7.2f s  (%.2f ms/task, %.1fx)"
                  % (name, r[name + "_s"], r[name + "_ms_per_task"], r["ratio_" + name]))


if __name__ == "__main__":
    main()
