"""Benchmark (not a timed test): ``whoholds ADDR`` against a plain ``struct rw_semaphore
ADDR`` in the same crash session, on a lab dump.

    python3 tests/bench_whoholds.py [SCENARIO] [REPEAT]

``bench_whoholds()`` returns the figures as a dict (seconds); the script prints them.
"cold" is the first whoholds of the session (type probes, ps, ps -m, the
kmem/search commands); "warm" repeats it with the session's type cache filled but a
fresh Snapshot each time (what a user typing the verb again pays).
"""

import io
import os
import statistics
import sys
import time

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crash_ext.ports.crashproc import CrashProcess  # noqa: E402
from crash_ext.verbs import whoholds  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402


def _time(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_whoholds(scenario: str = "seed", repeat: int = 5) -> dict:
    """Return {'lock', 'struct_s', 'whoholds_cold_s', 'whoholds_warm_s' (median),
    'whoholds_p_s' (median of -p on the first blocked task), 'ratio_warm'} for the
    first rw_semaphore (else first lock) of ``scenario``."""
    d = get_dump(scenario)
    locks = d.truth["locks"]
    lk = next((l for l in locks if l["type"] == "rw_semaphore"), locks[0])
    addr = lk["address"]
    ctype = {"rw_semaphore": "rw_semaphore", "mutex": "mutex",
             "semaphore": "semaphore"}[lk["type"]]
    crash = CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=600)
    try:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        crash.command("struct %s %s" % (ctype, addr))      # warm crash's own caches

        def wh(argv):
            buf = io.StringIO()
            rc = whoholds.main(argv, crash, out=buf)
            assert rc in (0, 1), buf.getvalue()

        cold = _time(lambda: wh([addr]), 1)[0]
        warm = _time(lambda: wh([addr]), repeat)
        plain = _time(lambda: crash.command("struct %s %s" % (ctype, addr)), repeat)
        pid = str(d.truth["tasks"][0]["pid"])
        chain = _time(lambda: wh(["-p", pid]), repeat)
    finally:
        crash.close()
    res = {"scenario": scenario, "lock": "%s %s" % (lk["type"], addr),
           "struct_s": statistics.median(plain), "whoholds_cold_s": cold,
           "whoholds_warm_s": statistics.median(warm),
           "whoholds_p_s": statistics.median(chain)}
    res["ratio_warm"] = res["whoholds_warm_s"] / max(res["struct_s"], 1e-9)
    return res


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    scenario = argv[0] if argv else "seed"
    repeat = int(argv[1]) if len(argv) > 1 else 5
    r = bench_whoholds(scenario, repeat)
    print("whoholds benchmark on %s, lock %s" % (r["scenario"], r["lock"]))
    print("  struct %-28s %8.4f s (median)" % ("(plain crash)", r["struct_s"]))
    print("  whoholds ADDR (cold, first call)   %8.4f s" % r["whoholds_cold_s"])
    print("  whoholds ADDR (warm, median)       %8.4f s  (%.0fx struct)" % (
        r["whoholds_warm_s"], r["ratio_warm"]))
    print("  whoholds -p PID (warm, median)     %8.4f s" % r["whoholds_p_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
