"""tests/lab/lab.lock pins every input the lab fetches: each kernel series of the matrix
with its image, headers and -dbg, each crash version's source, Debian 12's crash
package; every file with a URI under the mirror and a sha256 (fetch-kernel.sh,
build-crash.sh and fetch-crash-deb.sh read nothing else)."""

import os
import re
import subprocess

from tests.lab import labdumps

LOCK = os.path.join(os.path.dirname(labdumps.__file__), "lab.lock")


def _lines():
    with open(LOCK) as f:
        return [l.split() for l in f if l.strip() and not l.startswith("#")]


def test_every_kernel_crash_and_package_is_pinned():
    lines = _lines()
    kernels = {l[1]: l[2] for l in lines if l[0] == "kernel"}
    crashes = {l[1]: l[2] for l in lines if l[0] == "crash"}
    files = {}
    for l in lines:
        if l[0] == "file":
            assert len(l) == 6, l
            key, role, name, uri, sha = l[1:]
            assert re.fullmatch(r"[0-9a-f]{64}", sha), l
            assert uri.startswith(("@debian/pool/", "@security/pool/")), l
            files.setdefault(key, set()).add(role)
    assert set(kernels) == set(labdumps.KERNELS)
    for series, abi in kernels.items():
        assert abi.endswith("-rt-amd64" if series.endswith("-rt") else "-amd64"), abi
        assert {"image", "headers", "dbg"} <= files[abi], (series, abi)
    assert set(crashes) == set(labdumps.CRASH_VERSIONS)
    for v, srcver in crashes.items():
        assert srcver.startswith(v) and files["crash-" + v] == {"source"}
    assert any(l[0] == "crash-deb" and l[1] == "bookworm" for l in lines)
    assert files["crash-deb-bookworm"] == {"deb"}


def test_scripts_resolve_series_from_the_lock():
    """lablock.sh's lock_kernel gives the pinned ABI, with no package index."""
    lines = _lines()
    here = os.path.dirname(LOCK)
    for series, abi in ((l[1], l[2]) for l in lines if l[0] == "kernel"):
        r = subprocess.run(["bash", "-c", '. "$0/lablock.sh"; lock_kernel "$1"', here, series],
                           stdout=subprocess.PIPE, text=True, check=True)
        assert r.stdout.strip() == abi
