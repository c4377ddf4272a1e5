"""liveconfirm: on a live system a cycle or convoy is told only when its second read agrees.

The counters and the second lock reads are the two inputs; each case changes one of them
(a task ran, a task left the wait list, the owner field moved, a root holder ran) and
checks what is kept and what the notes say.  The lab's live guest shows the same end to
end (tests/test_live_lab.py).
"""

import pytest

from crash_ext.waits import liveconfirm as LC
from crash_ext.core.results import Blocked, LockReport, TaskRef, Waiter
from crash_ext.waits.graph import (BehindTask, Convoy, Cycle, HeldBy, LockNode, Step,
                                   WaitFor, WaitForGraph)

A, B, C, D, E = 0xa000, 0xb000, 0xc000, 0xd000, 0xe000   # tasks
LX, LY, LZ = 0x1000, 0x2000, 0x3000                       # locks


def ref(t):
    return TaskRef(task=t, pid=t >> 12, comm="t%x" % (t >> 12), state="UN")


def node(addr, holder, recorded=True):
    rep = LockReport(address=addr, type="mutex", owner=ref(holder) if recorded else None)
    return LockNode(address=addr, report=rep,
                    holders=[HeldBy(task=ref(holder), inferred=not recorded)])


def result():
    """A and B in an ABBA over LX (held by B) and LY (held by A); C waits on LZ, held by
    D, which runs: a convoy; E blocked alone."""
    lx, ly, lz = node(LX, B), node(LY, A), node(LZ, D)
    blocked = {A: Blocked(task=ref(A), kind="lock", lock_address=LX, lock_type="mutex"),
               B: Blocked(task=ref(B), kind="lock", lock_address=LY, lock_type="mutex"),
               C: Blocked(task=ref(C), kind="lock", lock_address=LZ, lock_type="mutex"),
               E: Blocked(task=ref(E), kind="io")}
    g = WaitForGraph(tasks={t: ref(t) for t in (A, B, C, E)}, blocked=blocked,
                     locks={LX: lx, LY: ly, LZ: lz})
    cyc = Cycle(steps=[Step(task=ref(A), blocked=blocked[A], lock=lx, held_by=lx.holders[0]),
                       Step(task=ref(B), blocked=blocked[B], lock=ly, held_by=ly.holders[0])],
                inferred=False, component=1)
    cv = Convoy(roots=[ref(D)], root_lock=None, what="running", via=[LZ],
                behind=[BehindTask(task=ref(C), lock=LZ, function="mutex_lock", caller=None,
                                   depth=1)], depth=2)
    return WaitFor(graph=g, cycles=[cyc], convoys=[cv], alone=[ref(E)], components=1)


def second_reads(owner_lx=B, waiters_lx=(A,), waiters_lz=(C,)):
    return {LX: LockReport(address=LX, type="mutex", owner=ref(owner_lx),
                           waiters=[Waiter(task=ref(t)) for t in waiters_lx]),
            LY: LockReport(address=LY, type="mutex", owner=ref(A), waiters=[Waiter(ref(B))]),
            LZ: LockReport(address=LZ, type="mutex", owner=ref(D),
                           waiters=[Waiter(task=ref(t)) for t in waiters_lz])}


def run(monkeypatch, reads, ran=(), runs_between=None):
    """Confirm result() with the lock reports ``reads``; tasks in ``ran`` change their
    counters between the two reads (``runs_between`` overrides both reads)."""
    calls = []

    def counters(port, tasks):
        calls.append(list(tasks))
        second = len(calls) == 2
        return {t: (10 + (1 if second and t in ran else 0), 500) for t in tasks}
    monkeypatch.setattr(LC, "progress_counters", runs_between or counters)
    monkeypatch.setattr(LC, "_reread_locks", lambda port, locks: {a: reads.get(a)
                                                                  for a in locks})
    slept = []
    clock = iter([10.2, 10.5])
    res = LC.confirm(object(), result(), walked_at=10.0, clock=lambda: next(clock),
                     sleep=slept.append)
    return res, slept, calls


def test_nothing_moved_everything_kept(monkeypatch):
    res, slept, calls = run(monkeypatch, second_reads())
    assert len(res.cycles) == 1 and len(res.convoys) == 1
    assert slept == [pytest.approx(0.3)]                 # 0.5 s after the walk began
    assert sorted(calls[0]) == sorted([A, B, C, D, E])
    assert res.cycles[0].confirmed == "confirmed twice, 500 ms apart"
    assert [t.task for t in res.alone] == [E]
    assert any("read twice, 500 ms apart" in n for n in res.truncated)


def test_convoy_kept_when_its_root_did_not_run(monkeypatch):
    res, _, _ = run(monkeypatch, second_reads())
    assert len(res.convoys) == 1 and [b.task.task for b in res.convoys[0].behind] == [C]


def test_a_cycle_task_that_ran_drops_the_cycle(monkeypatch):
    res, _, _ = run(monkeypatch, second_reads(), ran=(B,))
    assert res.cycles == []
    assert any("1 cycle seen once" in n for n in res.truncated)


def test_owner_field_changed_drops_the_cycle(monkeypatch):
    res, _, _ = run(monkeypatch, second_reads(owner_lx=C))
    assert res.cycles == []


def test_task_off_the_wait_list_drops_the_cycle(monkeypatch):
    res, _, _ = run(monkeypatch, second_reads(waiters_lx=(C,)))
    assert res.cycles == []


def test_unreadable_second_read_drops_the_cycle(monkeypatch):
    reads = second_reads()
    del reads[LY]
    res, _, _ = run(monkeypatch, reads)
    assert res.cycles == []


def test_running_root_is_progress_not_a_hang(monkeypatch):
    res, _, _ = run(monkeypatch, second_reads(), ran=(D,))
    assert res.convoys == [] and len(res.cycles) == 1
    assert any("1 chain and 0 waiting tasks were moving" in n for n in res.truncated)


def test_waiter_that_ran_leaves_the_convoy_and_alone_list(monkeypatch):
    res, _, _ = run(monkeypatch, second_reads(), ran=(C, E))
    assert res.convoys == [] and res.alone == []
    assert any("1 chain and 2 waiting tasks were moving" in n for n in res.truncated)


def test_unreadable_counters_confirm_nothing(monkeypatch):
    res, _, _ = run(monkeypatch, second_reads(),
                    runs_between=lambda port, tasks: {t: None for t in tasks})
    assert res.cycles == [] and res.convoys == [] and res.alone == []
