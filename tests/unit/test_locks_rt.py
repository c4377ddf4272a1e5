"""PREEMPT_RT lock layouts: probed by member type, decoded from memory.

RECONSTRUCTED from Debian's 6.12.95+deb12-rt-amd64 headers (include/linux/mutex_types.h,
rwbase_rt.h, spinlock_types.h, rtmutex.h; no lockdep, so no dep_map): offsets as gdb
prints them for x86_64.  The real dumps of the lab's 6.12-rt kernel prove the same paths
end to end (tests/test_*_lab.py on the 6.12-rt target).
"""

from crash_ext.models import locks as L

from crash_ext.models import lockstate as LS

from crash_ext.models import lockwalk as LW
from tests.unit.test_locks_recorded import FakePort, T1, T2, T3, put

BASE = {"wait_lock": (0, "raw_spinlock_t"), "waiters": (8, "struct rb_root_cached"),
        "owner": (24, "struct task_struct *")}


def _under(prefix, members):
    return {prefix + "." + m: v for m, v in members.items()}


RT_TYPES = {
    "mutex": (32, dict({"rtmutex": (0, "struct rt_mutex_base")}, **_under("rtmutex", BASE))),
    "rw_semaphore": (40, dict({"rwbase": (0, "struct rwbase_rt"),
                               "rwbase.readers": (0, "atomic_t"),
                               "rwbase.rtmutex": (8, "struct rt_mutex_base")},
                              **{"rwbase.rtmutex." + m: (o + 8, t)
                                 for m, (o, t) in BASE.items()})),
    "spinlock": (32, dict({"lock": (0, "struct rt_mutex_base")}, **_under("lock", BASE))),
    "rt_mutex_waiter": (96, {"tree.entry": (0, "struct rb_node"),
                             "task": (64, "struct task_struct *"),
                             "lock": (72, "struct rt_mutex_base *")}),
    "rb_node": (24, {"rb_right": (8, "struct rb_node *"),
                     "rb_left": (16, "struct rb_node *")}),
}


def test_rt_layouts_are_detected_by_member_type():
    port = FakePort(RT_TYPES, {})
    m = L.probe_layout(port, "mutex")
    assert (m.owner_kind, m.wait_kind, m.owner_off, m.wait_off) == ("rt_owner", "rbtree",
                                                                   24, 8)
    assert L.rt_base_offset(m) == 0 and "PREEMPT_RT" in m.name
    r = L.probe_layout(port, "rw_semaphore")
    assert (r.count_kind, r.owner_off, r.wait_off, r.count_size) == ("rwbase_rt", 32, 16, 4)
    assert L.rt_base_offset(r) == 8
    s = L.probe_layout(port, "spinlock")
    assert (s.owner_kind, s.wait_kind) == ("rt_owner", "rbtree")
    assert L.rt_base_offset(s) == 0 and "sleeping" in s.name


def test_rt_mutex_owner_and_rbtree_waiters_in_order():
    lock = 0xffff888000100000
    n1, n2 = 0xffff888000200000, 0xffff888000300000
    w = {}
    put(w, lock, 0, n1, n1, T1 | 1)          # wait_lock, rb_root, leftmost, owner
    put(w, n1, 0, n2, 0)                     # parent_color, right, left
    put(w, n2, n1, 0, 0)
    for n, t in ((n1, T2), (n2, T3)):
        for i in range(3, 12):
            w.setdefault(n + 8 * i, 0)
        w[n + 64] = t
    port = FakePort(RT_TYPES, w)
    lay = L.probe_layout(port, "mutex")
    st = LS.decode_state(lay, port.read(lock, 32))
    assert st.owner_task == T1 and st.owner_source == "mutex.rtmutex.owner"
    assert st.flags == ["HAS_WAITERS"] and st.locked
    ww = LW.walk_waiters(port, lay, lock)
    assert [e.task for e in ww.entries] == [T2, T3] and ww.complete


def _rwsem(readers, owner):
    return (readers.to_bytes(4, "little") + bytes(4) + bytes(24) +
            owner.to_bytes(8, "little"))


def test_rwbase_readers_writer_and_writer_waiting():
    port = FakePort(RT_TYPES, {})
    lay = L.probe_layout(port, "rw_semaphore")
    st = LS.decode_state(lay, _rwsem(L.RWBASE_READER_BIAS + 3, 0))
    assert (st.mode, st.readers, st.owner_task, st.locked) == ("reader", 3, None, True)
    st = LS.decode_state(lay, _rwsem(L.RWBASE_READER_BIAS, 0))
    assert st.locked is False and st.mode is None
    st = LS.decode_state(lay, _rwsem(L.RWBASE_WRITER_BIAS, T1 | 1))
    assert (st.mode, st.owner_task) == ("writer", T1) and "HAS_WAITERS" in st.flags
    # a writer took the rtmutex and waits for 2 readers: a waiter, neither holder nor hint
    st = LS.decode_state(lay, _rwsem(2, T2))
    assert (st.mode, st.readers, st.owner_task, st.hint_task, st.pending_writer) == (
        "reader", 2, None, None, T2)
    assert "WRITER_WAITING" in st.flags and not st.problems
    st = LS.decode_state(lay, _rwsem(2, 0))
    assert st.pending_writer is None and st.problems


def test_rt_spinlock_owner():
    port = FakePort(RT_TYPES, {})
    lay = L.probe_layout(port, "spinlock")
    st = LS.decode_state(lay, bytes(24) + (T3 | 1).to_bytes(8, "little"))
    assert st.owner_task == T3 and st.locked and "PREEMPT_RT" in st.owner_source
