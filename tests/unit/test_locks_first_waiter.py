"""7.x lock layouts: ``first_waiter`` (a pointer to the first waiter record of a ring
without head) in place of ``wait_list``.

RECONSTRUCTED from sid's 7.2.13+deb14 headers (include/linux/mutex_types.h, rwsem.h,
semaphore.h) and the lab module's walk of those rings; offsets as gdb prints them for
x86_64 without lock debugging.  The lab stages and verifies 7.2 dumps, but neither crash
8.0.6 nor 9.0.2 opens them (tests/lab/labdumps.py UNREADABLE), so this layout is proven
here only.
"""

from crash_ext.models import locks as L

from crash_ext.models import lockstate as LS

from crash_ext.models import lockwalk as LW
from tests.unit.test_locks_recorded import FakePort, T1, T2, T3, put

V7_TYPES = {
    "mutex": (32, {"owner": (0, "atomic_long_t"), "wait_lock": (8, "raw_spinlock_t"),
                   "osq": (12, "struct optimistic_spin_queue"),
                   "first_waiter": (16, "struct mutex_waiter *")}),
    "mutex_waiter": (32, {"list": (0, "struct list_head"),
                          "task": (16, "struct task_struct *")}),
    "semaphore": (24, {"lock": (0, "raw_spinlock_t"), "count": (4, "unsigned int"),
                       "first_waiter": (8, "struct semaphore_waiter *"),
                       "last_holder": (16, "unsigned long")}),
    "semaphore_waiter": (32, {"list": (0, "struct list_head"),
                              "task": (16, "struct task_struct *"), "up": (24, "bool")}),
}


def test_first_waiter_ring_is_walked_in_queue_order():
    m = 0xffff888000100000
    a, b, c = 0xffff888000200000, 0xffff888000300000, 0xffff888000400000
    put(w := {}, m, T1 | 1, 0, a, 0)              # owner | WAITERS, wait_lock, first
    put(w, a, b, c, T2, 0)                        # ring a -> b -> c -> a, no head
    put(w, b, c, a, T3, 0)
    put(w, c, a, b, T1, 0)
    port = FakePort(V7_TYPES, w)
    lay = L.probe_layout(port, "mutex")
    assert lay.wait_kind == "headless" and lay.first_is_record and "first_waiter" in lay.name
    ww = LW.walk_waiters(port, lay, m)
    assert [e.task for e in ww.entries] == [T2, T3, T1] and ww.complete and not ww.problems
    assert [e.waiter for e in ww.entries] == [a, b, c]


def test_first_waiter_empty_and_semaphore_last_holder():
    s = 0xffff888000500000
    put(w := {}, s, 0, 0, T3)                     # lock+count 0, first_waiter NULL, holder
    port = FakePort(V7_TYPES, w)
    lay = L.probe_layout(port, "semaphore")
    assert lay.first_is_record and lay.last_holder_off == 16
    assert LW.walk_waiters(port, lay, s).entries == []
    st = LS.decode_state(lay, port.read(s, 24))
    assert st.locked and st.hint_task == T3
