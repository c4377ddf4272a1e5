"""What keys the lab's cache is a function of the repository and the host, not of the date
or the network: two `make test` runs a day apart on the same cache find the same dumps.

- mklab's dump directories (``scenario_dir``: ``input_key`` over the kernel ABI pinned in
  tests/lab/lab.lock, the lab's files, the scenario and N, and for kdump dumps kdump.py's
  files and the host's kexec/makedumpfile versions) are the same with the clock a day or a
  year ahead and with every network connection refused;
- the scripts `make lab` runs read no package index: only `make lab-update`
  (lock-update.sh) calls papt_setup or apt-cache; deps.sh runs apt-get (update, install)
  only for a package that is not installed, build-crash.sh only when it builds.

tests/test_lab_offline.py runs `make lab` itself with no network and the clock a day ahead.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.lab import kdump, mklab

HERE = os.path.dirname(mklab.__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
DAY = 86400


def _pinned_abis():
    with open(os.path.join(HERE, "lab.lock")) as f:
        return [l.split()[2] for l in f if l.startswith("kernel ")]


def _all_dirs():
    """{(abi, scenario, made): scenario_dir} over every pinned kernel, scenario and way."""
    return {(abi, s, made): mklab.scenario_dir(abi, s, mklab.DEFAULT_N, made)
            for abi in _pinned_abis() for s in mklab.SCENARIOS for made in mklab.MADE
            if made == "snapshot" or s in kdump.PLAN}


@pytest.mark.parametrize("ahead", [DAY, 366 * DAY])
def test_dump_keys_do_not_follow_the_clock_or_the_network(monkeypatch, ahead):
    today = _all_dirs()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + ahead)
    monkeypatch.setattr(time, "localtime", lambda t=None: time.gmtime(
        (real_time() + ahead) if t is None else t))
    monkeypatch.setattr(time, "strftime", lambda fmt, t=None: "2099-01-01T00:00:00")

    def refuse(*a, **k):
        raise OSError("network refused by the test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    later = _all_dirs()
    assert later == today
    assert len(today) > 2 * len(mklab.SCENARIOS)


def test_dump_keys_a_day_later_under_faketime():
    """The same through libfaketime (every clock call of the process), when installed."""
    if shutil.which("faketime") is None:
        pytest.skip("faketime not installed (Debian package faketime)")
    code = ("import json, sys; sys.path.insert(0, %r); from tests.unit.test_lab_keys import "
            "_all_dirs; print(json.dumps(sorted(map(list, _all_dirs().items()))))" % ROOT)
    out = []
    for pre in ([], ["faketime", "-f", "+1d"], ["faketime", "-f", "+400d"]):
        r = subprocess.run(pre + [sys.executable, "-c", code], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True, check=True)
        out.append(json.loads(r.stdout))
    assert out[0] == out[1] == out[2] and out[0]


def _text(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


#: what `make lab` (and so `make test`) runs: the Makefile's recipes of deps, crashes,
#: venv, kernel, lab, and what they source or import
MAKE_LAB = ["tests/lab/deps.sh", "tests/lab/build-crash.sh", "tests/lab/fetch-crash-deb.sh",
            "tests/lab/fetch-kernel.sh", "tests/lab/lablock.sh", "tests/lab/log.sh",
            "tests/lab/mklab.py", "tests/lab/kdump.py"]
INDEX = re.compile(r"papt_setup|apt-cache|apt-get\s+(?:-\S+\s+)*(?:update|download|source)"
                   r"|lock-update\.sh|urlopen|requests\.get|\bcurl\b|\bwget\b")


def _code_lines(rel):
    """(number, line) of ``rel`` without its comments (# to the end of a line)."""
    out = []
    for i, line in enumerate(_text(rel).splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#!") else ""
        if code.strip():
            out.append((i, code))
    return out


def test_make_lab_reads_no_package_index():
    hits = ["%s: %s" % (rel, l.strip()) for rel in MAKE_LAB
            for _, l in _code_lines(rel) if INDEX.search(l)]
    # deps.sh: apt-get update only on the way to installing a package that is missing
    assert hits == ["tests/lab/deps.sh: if ! { apt-get update -q && "
                    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q \\"], hits
    deps = _text("tests/lab/deps.sh")
    assert deps.index('[ -n "$missing" ] || exit 0') < deps.index("apt-get update")
    # build-crash.sh installs build dependencies only past its "already built" exit
    bc = _text("tests/lab/build-crash.sh")
    assert bc.index('echo "$BIN"; exit 0') < bc.index("apt-get install")
    # papt.sh is sourced by lablock.sh for the mirror's name only
    assert "papt_setup" not in _text("tests/lab/lablock.sh")


def test_only_lab_update_moves_the_pins():
    mk = _text("Makefile")
    users = [t for t in re.findall(r"^([\w-]+):.*\n((?:\t.*\n)+)", mk, re.M)
             if "lock-update.sh" in t[1]]
    assert [t[0] for t in users] == ["lab-update"]
    assert "papt_setup" in _text("tests/lab/lock-update.sh")
    # fetch-kernel.sh resolves a series through the lock, never an index
    fk = _text("tests/lab/fetch-kernel.sh")
    assert 'ABI=$(lock_kernel "$series")' in fk
