"""Lock layouts and decoding on recorded / reconstructed type descriptions.

RECORDED: the 2.6.32 (RHEL6) i_mutex test uses the values printed in the seed story's
real crash transcript (``struct inode.i_mutex``, ``list -s mutex_waiter.task``,
``struct thread_info.task``, ``ps``).  The other old layouts are RECONSTRUCTED from
the kernel headers of those versions (offsets as gdb would print them for x86_64), not
captured from a crash session; they pin down layout detection by member type and the
decoding rules of docs/locks.md.
"""

import io

import pytest

from crash_ext.models.waitframes import classify_function
from crash_ext.waits.lockreport import lock_report
from crash_ext.session.snapshot import Snapshot
from crash_ext.models import locks as L
from crash_ext.models import lockstate as LS
from crash_ext.models import lockwalk as LW
from crash_ext.core.errors import CrashCommandError, MemoryReadError
from crash_ext.core.port import Port
from crash_ext.verbs import whoholds
from tests.unit.fakecrash import ps_lookup


class FakePort(Port):
    """Types from a dict, memory from a dict of u64 words, commands from a dict."""

    def __init__(self, types, words, commands=None):
        self.types = types          # {type: (size, {member: (offset, ctype)})}
        self.words = dict(words)    # {addr: u64}
        self.commands = commands or {}

    def command(self, cmd):
        if cmd.startswith("ps ") and cmd.split()[1][0] not in "-" and "ps" in self.commands:
            return ps_lookup(self.commands["ps"], cmd)
        for k, v in self.commands.items():
            if cmd == k:
                if isinstance(v, Exception):
                    raise v
                return v
        raise CrashCommandError("%s: not recorded" % cmd.split()[0])

    def read(self, addr, size):
        out = b""
        a = addr & ~7
        while a < addr + size:
            if a not in self.words:
                raise MemoryReadError("cannot read %#x" % a)
            out += self.words[a].to_bytes(8, "little")
            a += 8
        off = addr & 7
        return out[off:off + size]

    def symbol_address(self, name):
        return None

    def address_symbol(self, addr):
        return None

    def _t(self, t):
        return self.types.get(t.replace("struct ", ""))

    def member_offset(self, t, m):
        d = self._t(t)
        return d[1][m][0] if d and m in d[1] else None

    def member_type(self, t, m):
        d = self._t(t)
        return d[1][m][1] if d and m in d[1] else None

    def type_size(self, t):
        d = self._t(t)
        return d[0] if d else None


def put(words, addr, *vals):
    for i, v in enumerate(vals):
        words[addr + 8 * i] = v & ((1 << 64) - 1)


# --------------------------------------------------------------- RHEL6 2.6.32

RHEL6_TYPES = {
    "mutex": (32, {"count": (0, "atomic_t"), "wait_lock": (4, "spinlock_t"),
                   "wait_list": (8, "struct list_head"),
                   "owner": (24, "struct thread_info *")}),
    "mutex_waiter": (24, {"list": (0, "struct list_head"),
                          "task": (16, "struct task_struct *")}),
    "thread_info": (104, {"task": (0, "struct task_struct *")}),
    "inode": (600, {"i_mutex": (0xb8, "struct mutex")}),
    "rw_semaphore": (32, {"count": (0, "long"), "wait_lock": (8, "spinlock_t"),
                          "wait_list": (16, "struct list_head")}),
    "rwsem_waiter": (32, {"list": (0, "struct list_head"),
                          "task": (16, "struct task_struct *"),
                          "flags": (24, "unsigned int")}),
    "semaphore": (24, {"lock": (0, "spinlock_t"), "count": (4, "unsigned int"),
                       "wait_list": (8, "struct list_head")}),
    "semaphore_waiter": (32, {"list": (0, "struct list_head"),
                              "task": (16, "struct task_struct *"), "up": (24, "int")}),
}

SEED_PS = """\
   PID  PPID  CPU       TASK        ST  %MEM     VSZ    RSS  COMM
  4723  4087   2  ffff8807ef98aae0  UN   0.3  641736 137204  ruby
  4724     1   6  ffff88076dfe2040  UN   0.3  468676 138156  ruby
  5109  5099  18  ffff8802d0e5a080  UN   0.0    4144    696  rm
"""


def seed_port():
    """The seed's i_mutex, as its transcript printed it (RHEL6 2.6.32-431)."""
    w = {}
    mutex = 0xffff8808a3dbf640          # inode ffff8808a3dbf588 + i_mutex
    # count = -1, wait_lock slock = 196611; wait_list {next, prev}; owner thread_info
    put(w, mutex, ((196611 << 32) | 0xffffffff), 0xffff880749a05c48, 0xffff88057f85bdc8,
        0xffff88076b78c000)
    # list -s mutex_waiter.task -H ffff8808a3dbf648 (waiters are on their stacks)
    put(w, 0xffff880749a05c48, 0xffff88057f85bdc8, mutex + 8, 0xffff88076dfe2040)
    put(w, 0xffff88057f85bdc8, mutex + 8, 0xffff880749a05c48, 0xffff8802d0e5a080)
    put(w, 0xffff88076b78c000, 0xffff8807ef98aae0)   # thread_info.task
    return FakePort(RHEL6_TYPES, w, {"ps": SEED_PS, "ps -m": ""})


def test_rhel6_i_mutex_from_seed_transcript():
    port = seed_port()
    lay = L.probe_layout(port, "mutex")
    assert lay.owner_kind == "thread_info_ptr" and lay.wait_kind == "list"
    rep = lock_report(port, 0xffff8808a3dbf640, "mutex", snapshot=Snapshot(port),
                      container=("inode", "i_mutex", 0xffff8808a3dbf588))
    assert rep.locked is True
    assert rep.owner.pid == 4723 and rep.owner.comm == "ruby"
    assert "thread_info" in rep.owner_source
    assert [w.task.pid for w in rep.waiters] == [4724, 5109]
    assert not rep.problems


def test_snapshot_and_its_cache_are_freed_after_a_report():
    # the per-snapshot cache must not keep its snapshot (and every stack read) alive
    import gc
    import weakref
    port = seed_port()
    snap = Snapshot(port)
    lock_report(port, 0xffff8808a3dbf640, "mutex", snapshot=snap)
    gone = weakref.ref(snap)
    was = gc.isenabled()
    gc.disable()        # freed by reference counting alone, not by a collection
    try:
        del snap
        assert gone() is None
    finally:
        if was:
            gc.enable()


def test_walk_takes_known_records_instead_of_reading_them():
    port = seed_port()
    lay = L.probe_layout(port, "mutex")
    w = lay.waiter
    plain = LW.walk_waiters(port, lay, 0xffff8808a3dbf640)
    assert [e.task for e in plain.entries] == [0xffff88076dfe2040, 0xffff8802d0e5a080]
    size = max(w.size, w.task_off + 8)
    known = {n: LW.decode_waiter(w, n - w.node_off, port.read(n - w.node_off, size))
             for n in plain.nodes[1:]}
    for n in plain.nodes[1:]:       # the records are no longer readable
        for a in range(n - w.node_off, n - w.node_off + size, 8):
            port.words.pop(a, None)
    assert LW.walk_waiters(port, lay, 0xffff8808a3dbf640, known=known) == plain
    assert not LW.walk_waiters(port, lay, 0xffff8808a3dbf640).complete


def test_whoholds_struct_member_on_recorded_rhel6():
    port = seed_port()
    buf = io.StringIO()
    rc = whoholds.main(["inode.i_mutex", "0xffff8808a3dbf588"], port, out=buf)
    out = buf.getvalue()
    assert rc == 1, out     # two wait behind ruby 4723, itself blocked (UN): exit 1
    assert "OWNER: PID: 4723" in out and "thread_info" in out
    assert "inode.i_mutex of inode ffff8808a3dbf588" in out


def test_rhel6_rwsem_without_owner_xadd_count():
    port = FakePort(RHEL6_TYPES, {})
    lay = L.probe_layout(port, "rw_semaphore")
    assert lay.count_kind == "rwsem_xadd" and lay.owner_off is None
    assert lay.waiter.mode_is_flags
    # writer alone: ACTIVE_WRITE_BIAS = -0x100000000 + 1
    raw = (-0xffffffff & ((1 << 64) - 1)).to_bytes(8, "little") + bytes(24)
    st = LS.decode_state(lay, raw)
    assert st.locked and st.mode == "writer" and st.owner_task is None
    # three readers
    st = LS.decode_state(lay, (3).to_bytes(8, "little") + bytes(24))
    assert st.locked and st.mode == "reader" and st.readers == 3
    # writer + waiters: negative, mode not claimed
    raw = ((-0x200000000 + 1) & ((1 << 64) - 1)).to_bytes(8, "little") + bytes(24)
    st = LS.decode_state(lay, raw)
    assert st.locked and st.mode is None and "NEGATIVE(writer or waiters)" in st.flags


def test_rhel6_headless_mutex_wait_list():
    """RHEL6 >= 2.6.32-642: ``struct list_head *wait_list`` -> first waiter's node."""
    types = dict(RHEL6_TYPES)
    types["mutex"] = (32, {"count": (0, "atomic_t"), "wait_lock": (4, "spinlock_t"),
                           "wait_list": (8, "struct list_head *"),
                           "owner": (16, "struct task_struct *")})
    w = {}
    m = 0xffff880000100000
    a, b = 0xffff880000200000, 0xffff880000300000
    put(w, m, 0xffffffff, a, 0xffff8807ef98aae0, 0)
    put(w, a, b, b, 0xffff88076dfe2040)
    put(w, b, a, a, 0xffff8802d0e5a080)
    port = FakePort(types, w, {"ps": SEED_PS, "ps -m": ""})
    lay = L.probe_layout(port, "mutex")
    assert lay.wait_kind == "headless" and lay.owner_kind == "task_ptr"
    ww = LW.walk_waiters(port, lay, m)
    assert [e.task for e in ww.entries] == [0xffff88076dfe2040, 0xffff8802d0e5a080]
    assert ww.complete


# --------------------------------------------------------------- RHEL7 / 4.x

RHEL7_TYPES = {
    "rw_semaphore": (32, {"count": (0, "long"), "wait_lock": (8, "raw_spinlock_t"),
                          "osq": (12, "struct optimistic_spin_queue"),
                          "wait_list": (16, "struct slist_head"),
                          "owner": (24, "struct task_struct *")}),
    "rwsem_waiter": (32, {"list": (0, "struct list_head"),
                          "task": (16, "struct task_struct *"),
                          "type": (24, "enum rwsem_waiter_type")}),
}


def test_rhel7_slist_head_rwsem():
    w = {}
    s = 0xffff880000100000
    a, b = 0xffff880000200000, 0xffff880000300000
    t1, t2 = 0xffff880000a00000, 0xffff880000b00000
    put(w, s, (-0xffffffff) & ((1 << 64) - 1), 0, a, t1 | 0)
    put(w, a, b, b, t2, 0)          # writer (enum 0)
    put(w, b, a, a, t1, 1)          # reader (enum 1)
    port = FakePort(RHEL7_TYPES, w, {"p/d RWSEM_WAITING_FOR_READ": "$1 = 1\n",
                                     "p/d RWSEM_WAITING_FOR_WRITE": "$2 = 0\n"})
    lay = L.probe_layout(port, "rw_semaphore")
    assert lay.wait_kind == "headless" and lay.owner_kind == "task_ptr"
    st = LS.decode_state(lay, port.read(s, 32))
    assert st.owner_task == t1 and st.mode == "writer"
    ww = LW.walk_waiters(port, lay, s)
    assert [(e.task, e.mode) for e in ww.entries] == [(t2, "writer"), (t1, "reader")]
    # reader-owned: bit0 -> hint only
    put(w, s + 24, t1 | 1)
    port.words.update(w)
    st = LS.decode_state(lay, port.read(s, 32))
    assert st.owner_task is None and st.hint_task == t1 and "READER_OWNED" in st.flags


def test_task_struct_owner_mutex_3x():
    types = {"mutex": (40, {"count": (0, "atomic_t"), "wait_lock": (4, "spinlock_t"),
                            "wait_list": (8, "struct list_head"),
                            "owner": (24, "struct task_struct *")}),
             "mutex_waiter": (24, {"list": (0, "struct list_head"),
                                   "task": (16, "struct task_struct *")})}
    port = FakePort(types, {})
    lay = L.probe_layout(port, "mutex")
    raw = (0).to_bytes(8, "little") + bytes(16) + (0xffff880000a00000).to_bytes(
        8, "little") + bytes(8)
    st = LS.decode_state(lay, raw)
    assert st.locked and st.owner_task == 0xffff880000a00000


# --------------------------------------------------------------- 5.x / 6.x

V6_TYPES = {
    "mutex": (32, {"owner": (0, "atomic_long_t"), "wait_lock": (8, "raw_spinlock_t"),
                   "osq": (12, "struct optimistic_spin_queue"),
                   "wait_list": (16, "struct list_head")}),
    "mutex_waiter": (32, {"list": (0, "struct list_head"),
                          "task": (16, "struct task_struct *")}),
    "rw_semaphore": (40, {"count": (0, "atomic_long_t"), "owner": (8, "atomic_long_t"),
                          "osq": (16, "struct optimistic_spin_queue"),
                          "wait_lock": (20, "raw_spinlock_t"),
                          "wait_list": (24, "struct list_head")}),
    "rwsem_waiter": (48, {"list": (0, "struct list_head"),
                          "task": (16, "struct task_struct *"),
                          "type": (24, "enum rwsem_waiter_type")}),
    "semaphore": (32, {"lock": (0, "raw_spinlock_t"), "count": (4, "unsigned int"),
                       "wait_list": (8, "struct list_head"),
                       "last_holder": (24, "unsigned long")}),
    "semaphore_waiter": (32, {"list": (0, "struct list_head"),
                              "task": (16, "struct task_struct *"), "up": (24, "bool")}),
    "rt_mutex": (32, {"rtmutex": (0, "struct rt_mutex_base"),
                      "rtmutex.owner": (24, "struct task_struct *"),
                      "rtmutex.waiters": (8, "struct rb_root_cached")}),
    "rt_mutex_waiter": (112, {"tree.entry": (0, "struct rb_node"),
                              "task": (80, "struct task_struct *")}),
    "rb_node": (24, {"rb_right": (8, "struct rb_node *"),
                     "rb_left": (16, "struct rb_node *")}),
}
T1, T2, T3 = 0xffff888000a00000, 0xffff888000b00000, 0xffff888000c00000


def test_mutex_atomic_owner_flags():
    port = FakePort(V6_TYPES, {})
    lay = L.probe_layout(port, "mutex")
    st = LS.decode_state(lay, (T1 | 0x3).to_bytes(8, "little") + bytes(24))
    assert st.owner_task == T1 and st.flags == ["WAITERS", "HANDOFF"]
    st = LS.decode_state(lay, (0x4).to_bytes(8, "little") + bytes(24))
    assert st.locked is False and st.owner_task is None and st.flags == ["PICKUP"]


def test_rwsem_atomic_count_and_owner_bits():
    port = FakePort(V6_TYPES, {})
    lay = L.probe_layout(port, "rw_semaphore")
    assert lay.count_kind == "rwsem_atomic"
    # 3 readers + WAITERS, reader-owned, NONSPINNABLE (>= 5.11 bit1)
    raw = (0x302).to_bytes(8, "little") + (T2 | 0x3).to_bytes(8, "little") + bytes(24)
    st = LS.decode_state(lay, raw)
    assert st.readers == 3 and st.mode == "reader" and st.owner_task is None
    assert st.hint_task == T2
    assert st.flags == ["WAITERS", "READER_OWNED", "NONSPINNABLE"]
    # writer + HANDOFF; 5.3-5.10 bits 1 and 2
    raw = (0x7).to_bytes(8, "little") + (T1 | 0x6).to_bytes(8, "little") + bytes(24)
    st = LS.decode_state(lay, raw)
    assert st.owner_task == T1 and st.mode == "writer"
    assert "HANDOFF" in st.flags and "RD_NONSPINNABLE" in st.flags
    assert "WR_NONSPINNABLE" in st.flags


def test_semaphore_last_holder_is_a_hint():
    port = FakePort(V6_TYPES, {})
    lay = L.probe_layout(port, "semaphore")
    raw = bytes(8) + bytes(16) + T3.to_bytes(8, "little")
    st = LS.decode_state(lay, raw)
    assert st.locked and st.owner_task is None and st.hint_task == T3


def test_rt_mutex_rbtree_in_order():
    w = {}
    lock = 0xffff888000100000
    n1, n2, n3 = 0xffff888000200000, 0xffff888000300000, 0xffff888000400000
    put(w, lock, 0, n2, n1, T1 | 1)          # wait_lock, rb_root, leftmost, owner
    put(w, n2, 0, n3, n1)                    # parent_color, right, left
    put(w, n1, n2, 0, 0)
    put(w, n3, n2, 0, 0)
    for n, t in ((n1, T1), (n2, T2), (n3, T3)):
        for i in range(3, 14):
            w.setdefault(n + 8 * i, 0)
        w[n + 80] = t
    port = FakePort(V6_TYPES, w)
    lay = L.probe_layout(port, "rt_mutex")
    st = LS.decode_state(lay, port.read(lock, 32))
    assert st.owner_task == T1 and "HAS_WAITERS" in st.flags
    ww = LW.walk_waiters(port, lay, lock)
    assert [e.task for e in ww.entries] == [T1, T2, T3]


def test_wait_list_loop_is_detected_and_bounded():
    w = {}
    m = 0xffff888000100000
    a, b = 0xffff888000200000, 0xffff888000300000
    put(w, m, T1, 0, a, b)
    put(w, a, b, m + 16, T2, 0)
    put(w, b, a, a, T3, 0)            # b -> a: loops without returning to the head
    port = FakePort(V6_TYPES, w)
    lay = L.probe_layout(port, "mutex")
    ww = LW.walk_waiters(port, lay, m)
    assert not ww.complete and [e.task for e in ww.entries] == [T2, T3]
    assert any("loops" in p for p in ww.problems)


def test_wait_list_bad_pointer_and_cap():
    w = {}
    m = 0xffff888000100000
    put(w, m, T1, 0, 0xffff888000200000, 0)
    port = FakePort(V6_TYPES, w)           # first waiter unreadable
    lay = L.probe_layout(port, "mutex")
    ww = LW.walk_waiters(port, lay, m)
    assert not ww.complete and any("cannot read" in p for p in ww.problems)
    put(w, m + 16, 0x1234)                 # user-space pointer
    port = FakePort(V6_TYPES, w)
    ww = LW.walk_waiters(port, lay, m)
    assert any("bad wait-list pointer" in p for p in ww.problems)
    # a long valid ring, capped
    w = {}
    nodes = [0xffff888001000000 + 0x100 * i for i in range(50)]
    put(w, m, T1, 0, nodes[0], nodes[-1])
    for i, n in enumerate(nodes):
        put(w, n, nodes[i + 1] if i + 1 < len(nodes) else m + 16,
            nodes[i - 1] if i else m + 16, T2, 0)
    port = FakePort(V6_TYPES, w)
    ww = LW.walk_waiters(port, lay, m, cap=10)
    assert len(ww.entries) == 10 and not ww.complete
    assert len(LW.walk_waiters(port, lay, m).entries) == 50


def test_unknown_type_is_refused():
    port = FakePort(V6_TYPES, {})
    from crash_ext.core.errors import CrashExtError
    with pytest.raises(CrashExtError):
        L.probe_layout(port, "spaghetti")


@pytest.mark.parametrize("func,want", [
    ("rwsem_down_write_slowpath", ("rw_semaphore", "writer", None)),
    ("rwsem_down_read_slowpath", ("rw_semaphore", "reader", None)),
    ("call_rwsem_down_write_failed", ("rw_semaphore", "writer", None)),
    ("down_write", ("rw_semaphore", "writer", None)),
    ("down_read_killable", ("rw_semaphore", "reader", None)),
    ("__mutex_lock.constprop.0", ("mutex", None, None)),
    ("__mutex_lock_slowpath", ("mutex", None, None)),
    ("mutex_lock", ("mutex", None, None)),
    ("__down_common", ("semaphore", None, None)),
    ("down", ("semaphore", None, None)),
    ("down_interruptible", ("semaphore", None, None)),
    ("rt_mutex_slowlock_block.constprop.0", ("rt_mutex", None, None)),
    ("wait_for_completion", (None, None, "completion")),
    ("__wait_for_common", (None, None, "completion")),
    ("io_schedule", (None, None, "io")),
    ("xfs_ilock", (None, None, None)),
])
def test_classify_function(func, want):
    assert classify_function(func) == want
