"""Benchmark (not a timed test): ``argrecover -u`` over the scale dump, time per task,
against crash's own ``foreach UN bt -f`` in the same crash session.

    python3 tests/bench_argrecover.py [N]

"cold" is the first run in the session (disassembly and prototypes fetched once per
function); "warm" a second run with those caches filled.
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


def bench_argrecover(n: int = 2000) -> dict:
    """Return {'tasks', 'foreach_s', 'cold_s', 'warm_s', per-task ms, ratios}."""
    d = get_dump("scale", n=n)
    with CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=1800) as crash:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        crash.command("ps")                              # warm crash's own task table
        t = time.perf_counter()
        crash.command("foreach UN bt -f")
        foreach = time.perf_counter() - t
        times = []
        for _ in range(2):
            out = io.StringIO()
            t = time.perf_counter()
            rc = argrecover.main(["-u"], crash, out=out)
            times.append(time.perf_counter() - t)
            assert rc == 0
        tasks = out.getvalue().count("PID: ")
    return {"n": n, "tasks": tasks, "foreach_s": foreach, "cold_s": times[0],
            "warm_s": times[1], "cold_ms_per_task": 1000 * times[0] / tasks,
            "warm_ms_per_task": 1000 * times[1] / tasks, "ratio_cold": times[0] / foreach,
            "ratio_warm": times[1] / foreach}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    r = bench_argrecover(n)
    print("argrecover -u on scale (N=%d): %d tasks" % (r["n"], r["tasks"]))
    print("  crash foreach UN bt -f      %7.2f s" % r["foreach_s"])
    print("  argrecover -u, cold         %7.2f s  (%.2f ms/task, %.1fx)"
          % (r["cold_s"], r["cold_ms_per_task"], r["ratio_cold"]))
    print("  argrecover -u, warm         %7.2f s  (%.2f ms/task, %.1fx)"
          % (r["warm_s"], r["warm_ms_per_task"], r["ratio_warm"]))


if __name__ == "__main__":
    main()
