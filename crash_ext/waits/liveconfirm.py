"""On a live system, a wait is told only when two reads of it agree.

A running kernel moves while crash reads it: a task leaves a wait list during the walk,
an owner field changes, a stack is rewritten.  A cycle put together from reads made at
different moments may never have existed, and a wrong cycle on a production machine is
worse than none.  After the walk (:func:`~.waitfor.collect`), :func:`confirm` reads again:

1. each task's progress counters: how often it was switched out (``task_struct.nvcsw``
   + ``nivcsw``) and how long it has run (``se.sum_exec_runtime``);
2. each lock of a cycle or a convoy: its report (owner field, wait list), through crash
   again (no cache: :func:`~.lockreport.lock_report` on a fresh snapshot);
3. after at least :data:`MIN_GAP` seconds since the walk began, the counters again.

A cycle is kept when none of its tasks ran between the two counter reads (so each is
still in the wait the walk saw) and the second read of every edge agrees with the first:
the task is still on its lock's wait list, and where the lock records its owner, the
owner field still names the next task.  A task that did not run cannot release what it
holds, so the cycle existed, whole, while the second read was made: it is reported
"confirmed twice, N ms apart" (N: from the walk's start to the second read).

A convoy is kept when its root made no progress between the two reads (a holder that
ran is progress, not a hang), with the tasks behind it that did not run either and are
still on their lock's wait list; a task blocked alone, when it did not run.  What is
dropped is counted in a note, never silently.
"""

import time

from ..compat import Dict, List, Optional, Sequence, Set, Tuple
from ..core.errors import CrashExtError
from ..core.port import Port
from ..core.record import replace

#: seconds between the walk's start and the second read, at least
MIN_GAP = 0.5

Progress = Tuple[int, int]      # (switches, runtime ns)


def progress_counters(port: Port, tasks: Sequence[int]) -> Dict[int, Optional[Progress]]:
    """Return {task_struct address: (nvcsw + nivcsw, se.sum_exec_runtime)}, None for a
    task whose counters cannot be read (or a kernel without those members)."""
    nv = port.member_offset("task_struct", "nvcsw")
    niv = port.member_offset("task_struct", "nivcsw")
    se = port.member_offset("task_struct", "se")
    rt = port.member_offset("sched_entity", "sum_exec_runtime")
    if None in (nv, niv, se, rt):
        return {t: None for t in tasks}
    ranges = []
    for t in tasks:
        ranges += [(t + nv, 8), (t + niv, 8), (t + se + rt, 8)]
    words = port.read_many(ranges)
    out = {}  # type: Dict[int, Optional[Progress]]
    for i, t in enumerate(tasks):
        a, b, c = words[3 * i:3 * i + 3]
        if a is None or b is None or c is None:
            out[t] = None
        else:
            out[t] = (int.from_bytes(a, "little") + int.from_bytes(b, "little"),
                      int.from_bytes(c, "little"))
    return out


def _reread_locks(port: Port, locks: Dict[int, str]) -> Dict[int, object]:
    """Return {lock address: its LockReport read again (no cache), or None when it cannot
    be read}."""
    from .lockreport import lock_report
    from ..session.snapshot import Snapshot
    snap = Snapshot(port)
    out = {}  # type: Dict[int, object]
    for addr, kind in locks.items():
        try:
            out[addr] = lock_report(port, addr, kind if kind != "unknown" else None,
                                    snapshot=snap, candidates=False)
        except CrashExtError:
            out[addr] = None
    return out


def _on_list(rep, task: int) -> bool:
    """True when the second read of a lock still lists ``task`` among its waiters, or
    lists no waiter at all (a wait no list records, e.g. a PREEMPT_RT writer waiting for
    readers: the task's not running is then the only second read); False when the lock
    cannot be read again."""
    return rep is not None and (not rep.waiters or any(w.task.task == task
                                                       for w in rep.waiters))


def _still(first, second, tasks) -> bool:
    return all(first.get(t) is not None and first.get(t) == second.get(t) for t in tasks)


def confirm(port: Port, res, walked_at: float, clock=time.monotonic, sleep=time.sleep):
    """Return ``res`` (a :class:`~.waitfor.WaitFor` read at ``clock()`` time
    ``walked_at``) keeping only the cycles and convoys whose second read agrees (module
    docstring), each kept cycle with the note "confirmed twice, N ms apart" in its
    ``confirmed`` field, and a note in ``truncated`` for each kind of thing dropped.
    Raises CrashDied/CrashTimeout when crash itself fails."""
    cycle_tasks = set()  # type: Set[int]
    locks = {}  # type: Dict[int, str]
    for c in res.cycles:
        for s in c.steps:
            cycle_tasks.add(s.task.task)
            cycle_tasks.add(s.held_by.task.task)
            if s.lock.wait is None:
                locks[s.lock.address] = s.lock.type
    convoy_tasks = set()  # type: Set[int]
    for cv in res.convoys:
        convoy_tasks.update(r.task for r in cv.roots)
        convoy_tasks.update(b.task.task for b in cv.behind)
        for b in cv.behind:
            if b.lock is not None and b.lock in res.graph.locks \
                    and res.graph.locks[b.lock].wait is None:
                locks[b.lock] = res.graph.locks[b.lock].type
    alone = [t.task for t in res.alone]
    tasks = sorted(cycle_tasks | convoy_tasks | set(alone))
    if not tasks:
        return res
    first = progress_counters(port, tasks)
    reports = _reread_locks(port, locks)
    wait = MIN_GAP - (clock() - walked_at)
    if wait > 0:
        sleep(wait)
    second = progress_counters(port, tasks)
    apart = int(round((clock() - walked_at) * 1000))
    cycles, dropped = [], 0
    for c in res.cycles:
        ok = _still(first, second, [s.task.task for s in c.steps] +
                    [s.held_by.task.task for s in c.steps])
        for s in c.steps:
            if not ok:
                break
            if s.lock.wait is not None:
                continue        # a wait that is not a lock: its tasks did not run
            rep = reports.get(s.lock.address)
            ok = _on_list(rep, s.task.task)
            if ok and not s.held_by.inferred:
                ok = rep.owner is not None and rep.owner.task == s.held_by.task.task
        if ok:
            cycles.append(replace(c, confirmed="confirmed twice, %d ms apart" % apart))
        else:
            dropped += 1
    convoys, dropped_convoys, dropped_tasks = [], 0, 0
    for cv in res.convoys:
        roots = [r.task for r in cv.roots]
        if not roots or not _still(first, second, roots):
            dropped_convoys += 1
            continue
        behind = []
        for b in cv.behind:
            rep = reports.get(b.lock) if b.lock is not None else None
            if _still(first, second, [b.task.task]) and (
                    b.lock not in locks or _on_list(rep, b.task.task)):
                behind.append(b)
            else:
                dropped_tasks += 1
        if behind:
            convoys.append(replace(cv, behind=behind))
        else:
            dropped_convoys += 1
    still_alone = [t for t in res.alone if _still(first, second, [t.task])]
    dropped_tasks += len(res.alone) - len(still_alone)
    notes = list(res.truncated)
    notes.append("live system: every reported wait was read twice, %d ms apart (what "
                 "changed between the two reads is not reported)" % apart)
    if dropped:
        notes.append("live system: %d cycle%s seen once but not on the second read "
                     "(a task ran or an edge changed): not reported"
                     % (dropped, "" if dropped == 1 else "s"))
    if dropped_convoys or dropped_tasks:
        notes.append("live system: %d chain%s and %d waiting task%s were moving "
                     "(their holder or the task itself ran between the two reads): "
                     "not reported" % (dropped_convoys, "" if dropped_convoys == 1 else "s",
                                      dropped_tasks, "" if dropped_tasks == 1 else "s"))
    return replace(res, cycles=cycles, convoys=convoys, alone=still_alone, truncated=notes)
