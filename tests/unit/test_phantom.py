"""The phantom lock of issue 17 on a reconstructed 6.x mutex: a stack word next to a
real mutex (its address + 8, where ``wait_lock`` lives) reads the real list's ``prev``
as its own ``next``.  Its walk must not confirm the task (``sound`` is 0), while the
real mutex's walk does, also when the list is corrupt after the task -- and a corrupt
list says where it breaks."""

from crash_ext.waits.blockedon import _soundly_listed, corrupt_text
from crash_ext.models import locks as L
from crash_ext.models import lockwalk as LW
from tests.unit.test_locks_recorded import V6_TYPES, FakePort, put

M = 0xffff888000100000                  # the mutex; wait_list at M + 16
STACK = 0xffffc90000400000              # the waiters' stacks: one 16 KiB each
TASKS = [0xffff888000a00000 + 0x1000 * i for i in range(5)]


def _convoy(loop_back=None, garbage_at=None):
    """Five waiters whose mutex_waiter records live on their own stacks."""
    w = {}
    recs = [STACK + 0x4000 * i + 0x3e00 for i in range(5)]
    head = M + 16
    put(w, M, TASKS[0] | 1, 0, recs[0], recs[-1])
    put(w, M + 32, 0x1111, 0x2222)               # whatever follows the mutex
    for i, r in enumerate(recs):
        nxt = recs[i + 1] if i + 1 < len(recs) else head
        prv = recs[i - 1] if i else head
        put(w, r, nxt, prv, TASKS[i], 0)
    if loop_back is not None:
        w[recs[-1]] = recs[loop_back]
    if garbage_at is not None:
        w[recs[garbage_at]] = 0x4141414141414141
    return FakePort(V6_TYPES, w), recs


def test_neighbour_of_a_healthy_mutex_confirms_nobody():
    port, recs = _convoy()
    lay = L.probe_layout(port, "mutex")
    real = LW.walk_waiters(port, lay, M)
    assert real.complete and real.damaged is None and real.sound == 5
    ghost = LW.walk_waiters(port, lay, M + 8)     # the "real mutex + 8"
    assert ghost.sound == 0 and ghost.damaged is not None
    for t, r in zip(TASKS, recs):
        assert _soundly_listed(real, t, r) is not None
        assert _soundly_listed(ghost, t, r) is None
        assert _soundly_listed(ghost, t, stack=(STACK, STACK + 0x14000)) is None


def test_looped_list_is_named_and_keeps_its_waiters():
    port, recs = _convoy(loop_back=1)
    lay = L.probe_layout(port, "mutex")
    real = LW.walk_waiters(port, lay, M)
    assert not real.complete and real.sound == 5 and "loops back" in real.damaged
    assert all(_soundly_listed(real, t, r) is not None for t, r in zip(TASKS, recs))
    ghost = LW.walk_waiters(port, lay, M + 8)
    assert all(_soundly_listed(ghost, t, r) is None for t, r in zip(TASKS, recs))
    assert corrupt_text("mutex", M, real).startswith(
        "wait list of mutex %x is corrupt after 5 entries: wait list loops back" % M)


def test_garbage_next_confirms_only_the_waiters_before_it():
    port, recs = _convoy(garbage_at=2)
    lay = L.probe_layout(port, "mutex")
    real = LW.walk_waiters(port, lay, M)
    assert real.sound == 3 and "bad wait-list pointer 0x4141414141414141" in real.damaged
    got = [_soundly_listed(real, t, r) for t, r in zip(TASKS, recs)]
    assert got == [0, 1, 2, None, None]
    ghost = LW.walk_waiters(port, lay, M + 8)
    assert all(_soundly_listed(ghost, t, r) is None for t, r in zip(TASKS, recs))
