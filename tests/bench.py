#!/usr/bin/env python3
"""``make bench``: speed of each verb against crash's own commands, in the same session.

Runs every ``tests/bench_*.py`` in turn (each prints its own figures and ratios) and
exits non-zero if one of them fails.  These are measurements, not tests: nothing here
asserts a time.
"""

import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    failed = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "bench_*.py"))):
        name = os.path.basename(path)[len("bench_"):-len(".py")]
        print("== %s" % name, flush=True)
        r = subprocess.run([sys.executable, path], cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=ROOT))
        if r.returncode != 0:
            failed.append(name)
        print(flush=True)
    if failed:
        print("bench: failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
