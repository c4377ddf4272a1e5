"""crash_ext.ports.dumpfiles on files the tests make: how crash is found, compressed dumps
decompressed once, lab dumps found in a cache, and the task-view check on recorded
``sys`` output."""

import gzip
import json
import os

import pytest

from crash_ext.ports import dumpfiles as D
from crash_ext.session import taskview
from crash_ext.core.errors import BadArgument, CrashCannotRead, CrashDied


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRASH_EXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CRASH", raising=False)
    return tmp_path / "cache"


def _exe(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho crash 9.9.9\n")
    path.chmod(0o755)
    return str(path)


def test_find_crash_order(cache, tmp_path, monkeypatch):
    opt = _exe(tmp_path / "opt" / "crash")
    env = _exe(tmp_path / "env" / "crash")
    onpath = _exe(tmp_path / "path" / "crash")
    lab = _exe(cache / "crash-8.0.6" / "crash")
    _exe(cache / "crash-8.0.10" / "crash")
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    monkeypatch.setenv("CRASH", env)
    assert D.find_crash(opt) == opt
    assert D.find_crash(None) == env
    monkeypatch.setenv("CRASH", "")
    assert D.find_crash(None, lab=True) == str(cache / "crash-8.0.10" / "crash")
    assert D.find_crash(None) == onpath
    assert lab in D.lab_crashes()


def test_find_crash_errors_name_both_ways(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for opt, env in ((str(tmp_path / "nope"), None), (None, str(tmp_path / "nope")),
                     (None, None)):
        if env:
            monkeypatch.setenv("CRASH", env)
        else:
            monkeypatch.delenv("CRASH", raising=False)
        with pytest.raises(CrashDied) as e:
            D.find_crash(opt)
        assert "--crash" in str(e.value) and "CRASH=" in str(e.value)


def test_gzip_dump_decompressed_once(cache, tmp_path):
    raw = b"\x7fELF" + os.urandom(1000)
    src = tmp_path / "vmcore.gz"
    with gzip.open(str(src), "wb") as f:
        f.write(raw)
    plain = tmp_path / "vmcore"
    plain.write_bytes(raw)
    assert D.readable_dump(str(plain)) == str(plain)
    out = D.readable_dump(str(src))
    assert out != str(src) and open(out, "rb").read() == raw
    assert D.readable_dump(str(src)) == out
    assert D.decompressed_copies(str(src)) == [out]
    os.utime(str(src), (1, 1))          # a changed file: a new copy, the old one removed
    out2 = D.readable_dump(str(src))
    assert out2 != out and not os.path.exists(out)


def test_truncated_gzip_is_one_error(cache, tmp_path):
    src = tmp_path / "vmcore.gz"
    data = gzip.compress(os.urandom(100000))
    src.write_bytes(data[:len(data) // 2])
    with pytest.raises(BadArgument) as e:
        D.readable_dump(str(src))
    assert "gunzip" in str(e.value)
    assert D.decompressed_copies(str(src)) == []


def _slow_zstd(bindir, pieces, pause):
    """A ``zstd`` on PATH that writes its output (``-o FILE``) in ``pieces`` chunks of
    1 MiB with ``pause`` seconds between them, as a large dump's decompression does."""
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / "zstd"
    exe.write_text("#!/bin/sh\nwhile [ \"$1\" != -o ]; do shift; done\n"
                   "for i in $(seq %d); do head -c 1048576 /dev/zero >> \"$2\"; "
                   "sleep %s; done\n" % (pieces, pause))
    exe.chmod(0o755)


def test_zstd_dump_says_how_far_it_has_come(cache, tmp_path, monkeypatch):
    """A zstd dump's decompression is announced, then reported every PROGRESS_EVERY
    seconds with the size written so far (growing), then its end with the copy's size
    and how to remove it; a second call reuses the copy and says so."""
    src = tmp_path / "vmcore.zst"
    src.write_bytes(D.ZSTD_MAGIC + b"\0" * 64)
    _slow_zstd(tmp_path / "bin", 6, 0.3)
    monkeypatch.setenv("PATH", "%s:%s" % (tmp_path / "bin", os.environ["PATH"]))
    monkeypatch.setattr(D, "PROGRESS_EVERY", 0.2)
    said = []
    out = D.readable_dump(str(src), say=said.append)
    assert os.path.getsize(out) == 6 << 20
    assert "zstd-compressed" in said[0] and out in said[0], said
    progress = [float(line.split()[1]) for line in said[1:-1]]
    assert len(progress) >= 3 and all(line.startswith("... ") and " MB written" in line
                                      for line in said[1:-1]), said
    assert progress == sorted(progress) and progress[-1] > progress[0], said
    assert said[-1] == "decompressed %s: 6.0 MB written; remove it with: rm %s" % (
        src, out), said
    again = []
    assert D.readable_dump(str(src), say=again.append) == out
    assert again == ["reading %s's decompressed copy %s (6.0 MB, made earlier; rm it to "
                     "free the space)" % (src, out)]


def test_real_zstd_round_trip(cache, tmp_path):
    """With Debian's zstd (a lab dependency): the copy is the original's bytes."""
    import shutil
    import subprocess
    if not shutil.which("zstd"):
        pytest.fail("zstd is missing: make lab installs it (tests/lab/deps.sh)")
    raw = b"\x7fELF" + os.urandom(200000)
    plain = tmp_path / "vmcore"
    plain.write_bytes(raw)
    subprocess.run(["zstd", "-q", str(plain), "-o", str(tmp_path / "vmcore.zst")],
                   check=True)
    out = D.readable_dump(str(tmp_path / "vmcore.zst"))
    assert open(out, "rb").read() == raw


def _lab(cache, abi, scenario, built):
    d = cache / "lab" / abi / ("%s-0123456789abcdef" % scenario)
    d.mkdir(parents=True)
    (d / "meta.json").write_text(json.dumps({
        "scenario": scenario, "kernel_abi": abi, "vmlinux": "/k/%s/vmlinux" % abi,
        "vmcore_zst": scenario + ".vmcore.zst", "built": built}))
    return d


def test_find_lab_dump(cache):
    a = _lab(cache, "6.1.0-57-amd64", "seed", "2026-12-01T00:00:00")
    b = _lab(cache, "6.12.95+deb12-amd64", "seed", "2026-12-02T00:00:00")
    got = D.find_lab_dump("seed")
    assert got.directory == str(a) and got.vmlinux == "/k/6.1.0-57-amd64/vmlinux"
    assert got.module_ko == str(a / "crashext_lab.ko")
    assert D.find_lab_dump("seed@6.12").directory == str(b)
    for bad in ("nosuch", "seed@5.10", "seed;rm", "", "s\u00b2"):
        with pytest.raises(BadArgument):
            D.find_lab_dump(bad)


SYS = """      KERNEL: /k/vmlinux
    DUMPFILE: /tmp/seed.vmcore
        CPUS: 2
       TASKS: %d
    NODENAME: lab
"""


class SysPort:
    def __init__(self, tasks, nr_threads, dumpfile="/tmp/seed.vmcore"):
        self.text = (SYS % tasks).replace("/tmp/seed.vmcore", dumpfile)
        self.nr = nr_threads

    def command(self, cmd):
        assert cmd == "sys"
        return self.text

    def symbol_address(self, name):
        return 0xffffffff82000000 if name == "nr_threads" and self.nr is not None else None

    def read_u32(self, addr):
        return self.nr

    def crash_version(self):
        return "8.0.2"


def test_task_view_refuses_a_crash_that_lists_too_few():
    with pytest.raises(CrashCannotRead) as e:
        taskview.require_task_view(SysPort(2, 61))
    assert "crash 8.0.2 lists 2 tasks but the kernel counts 61" in str(e.value)


def test_task_view_accepts_idle_tasks_and_live_slack():
    taskview.require_task_view(SysPort(63, 61))               # + 2 idle tasks
    taskview.require_task_view(SysPort(60, 61, "/proc/kcore"))  # live: moving
    taskview.require_task_view(SysPort(72, 77, "/proc/kcore"))  # live, churning tasks
    with pytest.raises(CrashCannotRead):                        # live, 8.0.2 on 6.1
        taskview.require_task_view(SysPort(2, 61, "/proc/kcore"))
    taskview.require_task_view(SysPort(2, None))              # cannot tell: no refusal
    with pytest.raises(CrashCannotRead):
        taskview.require_task_view(SysPort(60, 61))           # a dump must agree
