"""Two `make test` runs a day apart on the same cache stage nothing and pass: `make lab` (what
`make test` runs before pytest) again, with no network (a new network namespace: no
package index, no mirror) and the clock a day ahead (libfaketime), finds every dump,
kernel and crash it needs in the cache and stages nothing.

The keys themselves are checked without the lab by tests/unit/test_lab_keys.py.
"""

import glob
import os
import shutil
import subprocess

import pytest

from tests.lab import labdumps, mklab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cache_entries():
    """Every dump, kernel and crash build directory in the cache."""
    c = mklab.CACHE
    return sorted(glob.glob(os.path.join(c, "lab", "*", "*")) +
                  glob.glob(os.path.join(c, "kernel", "*")) +
                  glob.glob(os.path.join(c, "crash-*")) +
                  glob.glob(os.path.join(c, "crash-deb", "*")))


def test_make_lab_a_day_later_offline_stages_nothing():
    if shutil.which("faketime") is None:
        pytest.skip("faketime not installed (tests/lab/deps.sh installs it)")
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    if subprocess.run(unshare + ["true"]).returncode != 0:
        pytest.skip("cannot make a network namespace here (%s)" % " ".join(unshare))
    kernels = ",".join(labdumps.selected_kernels())
    cmd = ["make", "--no-print-directory", "lab", "TEST_KERNELS=%s" % kernels]
    # the run this test is part of staged the lab already; when run alone, stage it first
    first = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    assert first.returncode == 0, first.stdout[-3000:]
    before = _cache_entries()
    r = subprocess.run(unshare + ["faketime", "-f", "+1d"] + cmd, cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=dict(os.environ, CRASH_EXT_T0=""))
    assert r.returncode == 0, r.stdout[-3000:]
    assert "staging" not in r.stdout and "download" not in r.stdout, r.stdout[-3000:]
    assert _cache_entries() == before
    assert any("/lab/" in e for e in before)
