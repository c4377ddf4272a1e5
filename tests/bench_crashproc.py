"""Benchmark (not a timed test): the crash adapter's own costs on a lab dump.

    python3 tests/bench_crashproc.py [SCENARIO]

Start-up of a crash session, the round trip of one command, the same commands batched,
``bt -f`` of every task one by one and batched, and how long a session that timed out
takes to notice it.  tests/test_adapter.py checks that these paths answer rightly; the
figures live here (they were asserts there once, and a loaded machine failed them).
"""

import os
import sys
import time

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crash_ext.ports.crashproc import CrashProcess  # noqa: E402
from crash_ext.models.ps import parse_ps  # noqa: E402
from crash_ext.core.errors import CrashTimeout  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402


def bench_crashproc(scenario: str = "seed", n: int = 200) -> dict:
    """Return the figures (seconds) as a dict."""
    d = get_dump(scenario)
    p = CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=600)
    try:
        t0 = time.monotonic()
        p.start()
        startup = time.monotonic() - t0
        syms = ["sym %x" % (0xffffffff81000000 + i) for i in range(n)]
        t0 = time.monotonic()
        for c in syms:
            p.command(c, check=False)
        rt = (time.monotonic() - t0) / n
        t0 = time.monotonic()
        p.batch(syms, check=False)
        rt_b = (time.monotonic() - t0) / n
        pids = [r.pid for r in parse_ps(p.command("ps")) if r.pid]
        t0 = time.monotonic()
        for q in pids:
            p.command("bt -f %d" % q)
        bt = time.monotonic() - t0
        t0 = time.monotonic()
        p.batch(["bt -f %d" % q for q in pids])
        bt_b = time.monotonic() - t0
        t0 = time.monotonic()
        try:
            p.command("foreach bt -f", timeout=0.01)
        except CrashTimeout:
            pass
        timed_out = time.monotonic() - t0
    finally:
        p.close()
    return {"startup_s": startup, "round_trip_s": rt, "batched_s": rt_b,
            "tasks": len(pids), "bt_seq_s": bt, "bt_batch_s": bt_b, "timeout_s": timed_out}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    r = bench_crashproc(argv[0] if argv else "seed")
    print("crash adapter on the lab dump")
    print("  start-up                      %8.2f s" % r["startup_s"])
    print("  round trip, one command       %8.3f ms" % (r["round_trip_s"] * 1e3))
    print("  round trip, batched           %8.3f ms  (x%.1f)" % (
        r["batched_s"] * 1e3, r["round_trip_s"] / max(r["batched_s"], 1e-9)))
    print("  bt -f x%d sequential / batched %6.3f s / %.3f s" % (
        r["tasks"], r["bt_seq_s"], r["bt_batch_s"]))
    print("  a 0.01 s timeout noticed in   %8.3f s" % r["timeout_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
