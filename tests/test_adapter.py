"""CrashProcess against a real lab dump (crash 8.0.6, Debian 6.1 kernel, QEMU ELF dump).

The dump comes from ``tests.lab.labdumps.get_dump``; if that module is missing or fails
the fixture errors (these tests must not silently skip).  Run from the repository root:
``python -m pytest -q tests/test_adapter.py`` (its speed: ``make bench``, bench_crashproc).
"""

import os
import signal
import time

import pytest

from crash_ext.ports import crashproc
from crash_ext.ports.crashproc import CrashProcess
from crash_ext.models.ps import parse_ps
from crash_ext.core.errors import (BadArgument, CrashCommandError, CrashDied, CrashTimeout,
                                   MemoryReadError)


@pytest.fixture(scope="module")
def dump():
    from tests.lab.labdumps import get_dump  # the lab provides it; ImportError = error
    return get_dump("seed")


def _new(dump, **kw):
    kw.setdefault("timeout", 120)
    return CrashProcess(dump.vmlinux, dump.vmcore, crash=dump.crash, **kw)


@pytest.fixture(scope="module")
def cp(dump):
    p = _new(dump)
    p.start()
    yield p
    p.close()


# ------------------------------------------------------------------ ordinary use

def test_normal_command(cp, dump):
    out = cp.command("sys")
    assert "RELEASE: %s" % dump.truth.get("kernel_release", "") in out
    out = cp.command("ps")
    rows = parse_ps(out)
    assert len(rows) == len([l for l in out.splitlines() if l.strip()]) - 1  # all but header
    assert sum(r.active for r in rows) == 2  # one per cpu of the 2-cpu guest
    assert any(r.pid == 1 for r in rows)
    assert all(r.task >= 0xffff800000000000 for r in rows)


def test_task_by_pid_matches_truth(cp, dump):
    rows = {r.pid: r for r in parse_ps(cp.command("ps"))}
    tasks = dump.truth.get("tasks") or []
    assert tasks, "truth lists no tasks"
    for t in tasks:
        addr = cp.task_by_pid(t["pid"])
        assert addr == rows[t["pid"]].task
        assert rows[t["pid"]].comm == t["comm"]
        assert rows[t["pid"]].state == "UN"
    assert cp.task_by_pid(99999) is None


def test_crash_errors_raise(cp):
    with pytest.raises(CrashCommandError) as ei:
        cp.command("struct no_such_struct_xyz")
    assert "invalid data structure reference" in str(ei.value)
    with pytest.raises(CrashCommandError) as ei:
        cp.command("rd ffffffffffff0000")
    assert str(ei.value).startswith("rd: ")
    with pytest.raises(CrashCommandError):
        cp.command("sym no_such_symbol_xyz")
    with pytest.raises(CrashCommandError):
        cp.command("p no_such_symbol_xyz")
    # check=False hands back crash's text instead
    out = cp.command("struct no_such_struct_xyz", check=False)
    assert "invalid data structure reference" in out
    # the session is still in step
    assert "init_task" in cp.command("sym init_task")


def test_read(cp):
    it = cp.symbol_address("init_task")
    comm = cp.member_offset("task_struct", "comm")
    assert cp.read(it + comm, 16).rstrip(b"\0") == b"swapper/0"
    assert cp.read(it + comm + 3, 3) == b"ppe"       # unaligned, inside one word
    assert cp.read(it + comm + 6, 5) == b"r/0\0\0"   # unaligned, across words
    assert cp.read_u32(it + cp.member_offset("task_struct", "pid")) == 0
    assert cp.read(it, 0) == b""


def test_read_unmapped(cp):
    with pytest.raises(MemoryReadError):
        cp.read(0, 8)
    with pytest.raises(MemoryReadError):
        cp.read_u64(0xffffffffffff0000)


def test_read_partly_mapped(cp):
    # the lab module's vmalloc'd image ends at BASE+SIZE; the guard page after it is unmapped
    line = [l for l in cp.command("mod").splitlines() if " crashext_lab " in l][0].split()
    end = int(line[2], 16) + int(line[3])
    assert len(cp.read(end - 16, 16)) == 16
    with pytest.raises(MemoryReadError) as ei:
        cp.read(end - 16, 32)
    assert "%x" % end in str(ei.value)


def test_read_many_is_read_of_each_range(cp):
    # one exchange; None for what cannot be read (the guard page after the module)
    line = [l for l in cp.command("mod").splitlines() if " crashext_lab " in l][0].split()
    end = int(line[2], 16) + int(line[3])
    it = cp.symbol_address("init_task")
    ranges = [(end - 64, 16), (it, 8), (end - 40, 8), (end - 8, 16), (it + 20, 5),
              (end - 24, 8), (0, 8), (it, 0)]
    got = cp.read_many(ranges)
    for (a, n), g in zip(ranges, got):
        if a == end - 8 or a == 0 or n == 0:
            assert g is None
        else:
            assert g == cp.read(a, n)
    assert got[4] == cp.read(it + 20, 5) and len(got[4]) == 5


def test_symbols_round_trip(cp):
    a = cp.symbol_address("init_task")
    assert a is not None and a >= 0xffffffff80000000
    assert cp.address_symbol(a) == "init_task"
    assert cp.address_symbol(a + 8) == "init_task+0x8"
    s = cp.symbol_address("schedule")
    assert cp.address_symbol(s + 0x10) == "schedule+0x10"
    assert cp.symbol_address("no_such_symbol_xyz") is None
    assert cp.address_symbol(0) is None


def test_types(cp):
    out = cp.command("struct task_struct.pid -o")
    assert "[%d] pid_t pid;" % cp.member_offset("task_struct", "pid") in out
    assert cp.member_type("task_struct", "pid") == "pid_t"
    assert cp.member_type("task_struct", "comm") == "char [16]"
    assert cp.member_type("mutex", "owner") == "atomic_long_t"
    assert cp.member_type("struct mutex", "wait_list.next") == "struct list_head *"
    assert cp.member_offset("mutex", "owner.counter") == cp.member_offset("mutex", "owner")
    assert cp.member_offset("mutex", "wait_list.next") == cp.member_offset("mutex", "wait_list")
    assert cp.has_member("rw_semaphore", "owner")
    assert cp.member_offset("task_struct", "no_such_member") is None
    assert cp.member_type("task_struct", "no_such_member") is None
    assert cp.member_offset("no_such_type_xyz", "x") is None
    assert cp.type_size("mutex") == 32
    assert cp.type_size("atomic_long_t") == 8
    assert cp.type_size("struct semaphore") == cp.type_size("semaphore")
    assert cp.type_size("no_such_type_xyz") is None
    sz = int(cp.command("struct task_struct -o").rsplit("SIZE:", 1)[1].split()[0])
    assert cp.type_size("task_struct") == sz


def test_cache_avoids_crash(cp):
    cp.member_offset("task_struct", "pid")
    seq = cp._seq
    for _ in range(3):
        cp.member_offset("task_struct", "pid")
        cp.symbol_address("init_task")
        cp.type_size("task_struct")
    assert cp._seq == seq


def test_batch(cp, dump):
    pids = [t["pid"] for t in dump.truth["tasks"]]
    cmds = ["bt -f %d" % p for p in pids] + ["struct no_such_struct_xyz", "sym init_task"]
    outs = cp.batch(cmds)
    assert len(outs) == len(cmds)
    for p, o in zip(pids, outs):
        assert o == cp.command("bt -f %d" % p)
        assert "PID: %d " % p in o
    assert isinstance(outs[-2], CrashCommandError)
    assert "init_task" in outs[-1]
    assert cp.batch([]) == []


@pytest.mark.parametrize("bad", ["ffff; !sh", "a|b", "x > /tmp/f", "wr"])
def test_hostile_arguments_never_reach_crash(cp, bad):
    seq = cp._seq
    with pytest.raises(BadArgument):
        cp.command(bad if bad != "a|b" else "sym a|b")
    with pytest.raises(BadArgument):
        cp.batch(["sym init_task", bad if bad != "a|b" else "sym a|b"])
    if bad != "wr":  # "wr" is a fine symbol or member name; only the command is refused
        with pytest.raises(BadArgument):
            cp.symbol_address(bad)
        with pytest.raises(BadArgument):
            cp.command("rd " + bad)
        with pytest.raises(BadArgument):
            cp.member_offset("task_struct", bad)
        with pytest.raises(BadArgument):
            cp.type_size(bad)
    assert cp._seq == seq  # nothing was sent
    assert not os.path.exists("/tmp/f")


# --------------------------------------------------------- failures of crash itself

def test_timeout_then_usable(dump):
    with _new(dump) as p:
        p.start()
        old = p.pid
        with pytest.raises(CrashTimeout):
            p.command("foreach bt -f", timeout=0.01)
        assert p.pid is None
        assert not _alive(old)
        # a fresh crash answers, and nothing of the killed command leaks into it
        assert p.command("sym init_task").split()[2] == "init_task"
        assert p.command("eval 6*7").split()[:2] == ["hexadecimal:", "2a"]
        assert p.starts == 2


def test_batch_timeout_keeps_completed(dump):
    """The answers before the one that timed out are kept.  The timeout is made certain,
    not raced: the second command's answer is read through a callback that outlasts the
    timeout on its first piece (the deadline is checked after each piece)."""
    slow = 2.0

    def stall(_piece, slept=[]):
        if not slept:
            slept.append(1)
            time.sleep(slow + 0.5)

    with _new(dump) as p:
        p.start()
        want = p.command("sym init_task")
        with pytest.raises(CrashTimeout) as ei:
            p.batch(["sym init_task", "foreach bt -f", "sym schedule"], timeout=slow,
                    on_text={1: stall})
        assert ei.value.completed == [want]
        assert p.pid is None
        assert "schedule" in p.command("sym schedule")


def test_interrupted_exchange_restarts(dump, monkeypatch):
    from crash_ext.ports import crashproc
    with _new(dump) as p:
        p.start()
        real = crashproc.select.select
        calls = []

        def boom(*a):
            if not calls:
                calls.append(1)
                raise KeyboardInterrupt
            return real(*a)

        monkeypatch.setattr(crashproc.select, "select", boom)
        with pytest.raises(KeyboardInterrupt):
            p.command("bt -f 1")
        monkeypatch.setattr(crashproc.select, "select", real)
        assert p.pid is None  # the half-read session was ended ...
        assert p.command("sym init_task").split()[2] == "init_task"  # ... and replaced


def test_killed_crash_reports_died(dump):
    with _new(dump) as p:
        p.start()
        os.kill(p.pid, signal.SIGKILL)
        with pytest.raises(CrashDied) as ei:
            p.command("sym init_task")
        assert "SIGKILL" in str(ei.value)
        assert p.command("sym init_task").split()[2] == "init_task"  # restarted
    with pytest.raises(CrashDied):
        p.command("sym init_task")  # closed for good


def test_bad_dump_reports_died(dump, tmp_path):
    p = CrashProcess(dump.vmlinux, str(tmp_path / "missing.vmcore"), crash=dump.crash)
    with pytest.raises(CrashDied) as ei:
        p.command("sys")
    assert "No such file or directory" in str(ei.value)
    p.close()


def test_bad_dump_reports_died_when_crash_exits_before_we_write(dump, tmp_path, monkeypatch):
    """On a loaded machine crash can exit before our first write: the write meets a
    closed pipe, and crash's error, still unread in the pipe, must reach the message."""
    grow = crashproc._grow_pipe

    def slow_grow(fd):
        grow(fd)
        time.sleep(1.5)          # crash exits with its error meanwhile

    monkeypatch.setattr(crashproc, "_grow_pipe", slow_grow)
    p = CrashProcess(dump.vmlinux, str(tmp_path / "missing.vmcore"), crash=dump.crash)
    with pytest.raises(CrashDied) as ei:
        p.command("sys")
    assert "failed to start" in str(ei.value)
    assert "No such file or directory" in str(ei.value)
    p.close()


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


# ------------------------------------------------------------- batch = sequence

def test_batch_answers_as_sequential_commands(dump):
    """A batch gives each command the answer it gets alone (``bt -f`` of every task,
    ``sym`` of 200 addresses).  How much faster it is: ``make bench`` (bench_crashproc)."""
    with _new(dump) as p:
        p.start()
        syms = ["sym %x" % (0xffffffff81000000 + i) for i in range(200)]
        assert [p.command(c, check=False) for c in syms] == p.batch(syms, check=False)
        pids = [r.pid for r in parse_ps(p.command("ps")) if r.pid]
        assert len(pids) > 50
        assert [p.command("bt -f %d" % q) for q in pids] == p.batch(["bt -f %d" % q
                                                                     for q in pids])
