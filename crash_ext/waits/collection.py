"""Reading the wait-for graph of a dump through a port, once: ``ps``, one ``foreach
STATE bt -f`` per state, each blocked task's wait (:func:`blocked_all`: a lock at a
time, not a task at a time), then each lock's report once per address, then
:func:`~.build.build_graph` and :func:`~.graph.analyse` (:func:`collect`).
"""

import itertools
from ..compat import Dict, List, Optional, Sequence, Set, Tuple

from ..code.holdrecords import HeldLock
from ..code.holds import code_holders
from ..core.errors import CrashExtError
from ..core.port import Port
from ..core.results import Blocked, LockReport
from ..models import locks as L
from ..models import lockwalk as LW
from ..models.waitframes import classify_stack
from ..session.facts import session_cache
from ..session.snapshot import Snapshot, no_gc
from .blockedon import blocked_on, explain_wait, rt_lock_waiters
from .build import blocking_caller, build_graph, frame_heads
from .graph import WaitFor, analyse
from .lockreport import lock_report, prefetch_locks

__all__ = ["collect", "blocked_all", "owned_locks", "AUTO_CANDIDATE_POOL"]

AUTO_CANDIDATE_POOL = 200  # rank candidates when at most this many tasks could hold it


class _Record:
    """A sleeper's own waiter record, as printed under its lock slow-path frame
    (``decoded``: :func:`~crash_ext.models.locks.decode_waiter` of it, when all its
    bytes are printed there; ``prev_named``: whether the lock its ``prev`` would be the
    wait-list head of is among the words under that frame and the one above)."""
    __slots__ = ("kind", "addr", "node", "prev", "decoded", "bt", "lock_idx",
                 "prev_named")

    def __init__(self, kind, addr, node, prev, decoded, bt, lock_idx, prev_named):
        self.kind, self.addr, self.node, self.prev = kind, addr, node, prev
        self.decoded, self.bt, self.lock_idx = decoded, bt, lock_idx
        self.prev_named = prev_named


def _has_frames(bt) -> bool:
    has = getattr(bt, "has_frames", None)
    return has() if has is not None else bool(getattr(bt, "frames", None))


def _classify_stack(bt) -> Tuple[Optional[int], Optional[str], Optional[str],
                                 Optional[str], Optional[object], Optional[str]]:
    """Return (lock frame index, lock kind, mode, function, other, caller) for a back
    trace, by :func:`~.blockedon.classify_stack`, the frame rules of ``blocked_on``
    (``other``'s frame has ``index`` and ``function``), reading its frames once."""
    seen = []
    heads = frame_heads(bt)
    lock, kind, mode, other = classify_stack(seen.append(f) or f for f in heads)
    frame = lock.index if lock is not None else (other[1].index if other else None)
    caller = blocking_caller(None, frame, itertools.chain(seen, heads))
    if lock is None:
        return None, None, None, None, other, caller
    return lock.index, kind, mode, lock.function, None, caller


def _listed_on(bt, task: int, kind: str, on_lists: Dict[int, Set[int]], known,
               record: Optional[_Record] = None) -> Optional[Tuple[int, int]]:
    """Return (lock, waiter record) when exactly one walked lock of ``kind`` lists
    ``task`` and its waiter record lies within the task's stack (it is ``record``, found
    there, or lies between its innermost and outermost frames), else None."""
    locks = [v for v in on_lists.get(task, ()) if known[v][0] == kind]
    if len(locks) != 1:
        return None
    wrec = known[locks[0]][1][task][1]
    if record is not None and record.addr == wrec and record.bt is bt:
        return locks[0], wrec
    rng = bt.sp_range() if hasattr(bt, "sp_range") else (
        (bt.frames[0].sp, bt.frames[-1].sp) if bt.frames else None)
    if rng is None or not min(rng) <= wrec <= max(rng):
        return None
    return locks[0], wrec


def blocked_all(port: Port, snap, bts: Dict[int, object],
                callers: Optional[Dict[int, Optional[str]]] = None,
                classified: Optional[Dict[int, tuple]] = None,
                records: Optional[Dict[int, _Record]] = None) -> Dict[int, Blocked]:
    """Return {task: Blocked} for every task in ``bts``, with few crash commands
    (``callers``, when given, gets each task's caller: see :func:`blocking_caller`;
    ``classified``: {task: (back trace, :func:`_classify_stack` of it)} already done;
    ``records``: {task: :func:`_own_record`} found while the stacks were read).

    Each task's stack is classified from the back traces already read.  A task in a lock
    slow path is matched to a lock already walked when that lock's wait list holds the
    task through a waiter record in the task's own stack (what the kernel links while
    the task sleeps there); only when none matches is :func:`~.blockedon.blocked_on`
    asked (its full search), and the lock it finds is walked once for all its waiters.
    So crash is asked about each lock once, not about each task.  Per-task failures
    become ``unknown`` records."""
    cache = session_cache(snap)
    try:
        has_blocker = port.member_offset("task_struct", "blocker") is not None
    except CrashExtError:
        has_blocker = False
    known = {}  # type: Dict[int, Tuple[str, Dict[int, Tuple[Optional[str], int]], int]]
    on_lists = {}  # type: Dict[int, Set[int]]   # task -> known locks listing it
    out = {}  # type: Dict[int, Blocked]
    callers = {} if callers is None else callers
    records = records or {}
    if records:
        _walk_recorded(port, snap, records, _list_layouts(port), known, on_lists)

    def _pid(t):
        e = snap.by_task(t)
        return (e.pid if e is not None else None) or 0

    slow_paths = {}  # type: Dict[tuple, str]   # the first evidence line, made once

    def listed(task, ref, lock_idx, kind, mode, func) -> bool:
        # a lock already walked whose wait list holds this task, through a waiter
        # record inside this task's own stack
        hit = _listed_on(bts[task], task, kind, on_lists, known, records.get(task))
        if hit is None:
            return False
        v, wrec = hit
        lk, waiters, n = known[v]
        key = (lock_idx, func, kind, mode)
        if key not in slow_paths:
            slow_paths[key] = "blocking frame #%d %s: a %s%s slow path" % (
                lock_idx, func, kind, " (%s)" % mode if mode else "")
        out[task] = Blocked(
            task=ref, kind="lock", lock_address=v, lock_type=kind,
            mode=waiters[task][0] or mode, function=func, frame=lock_idx,
            evidence=[slow_paths[key],
                      "its waiter record at %x, in its own stack, is on the wait list of "
                      "the %s at %x (walked once for its %d waiters)" % (wrec, kind, v, n)])
        return True

    search = {}  # type: Dict[int, Optional[tuple]]   # for blocked_on, by pid below
    for task, bt in bts.items():
        if has_blocker or not _has_frames(bt):
            search[task] = None
            continue
        ref = snap.ref(task)
        pre = (classified or {}).get(task)
        lock_idx, kind, mode, func, other, callers[task] = (
            pre[1] if pre is not None and pre[0] is bt else _classify_stack(bt))
        if lock_idx is None:
            if other is None:
                out[task] = Blocked(task=ref, kind="unknown",
                                    evidence=["no back trace frames"])
            else:
                okind, f = other
                ev = ("blocking frame #%d %s" % (f.index, f.function) if okind != "other"
                      else "first non-scheduler frame #%d %s is not a lock or completion "
                           "wait" % (f.index, f.function))
                out[task] = explain_wait(port, snap, Blocked(
                    task=ref, kind=okind, function=f.function, frame=f.index,
                    evidence=[ev]), bt)
            continue
        if not listed(task, ref, lock_idx, kind, mode, func):
            search[task] = (ref, lock_idx, kind, mode, func)
    # the others in pid order; a lock found by one is walked once, for all its waiters
    for task in sorted(search, key=lambda t: (_pid(t), t)):
        slow = search[task]
        if slow is not None and listed(task, *slow):
            continue
        b = _safe_blocked_on(blocked_on, port, snap, task,
                             slow[0] if slow is not None else snap.ref(task))
        out[task] = b
        if b.kind == "lock" and b.lock_address is not None and b.lock_type:
            try:
                lay = L.probe_layout(port, b.lock_type)
                w = cache.walk(port, lay, b.lock_address)
            except CrashExtError:
                continue
            if w.complete and b.lock_address not in known:
                known[b.lock_address] = (b.lock_type, {e.task: (e.mode, e.waiter)
                                                       for e in w.entries}, len(w.entries))
                for e in w.entries:
                    on_lists.setdefault(e.task, set()).add(b.lock_address)
    # share the answers with lock_report's candidate ranking, which asks blocked_on
    # about every blocked task
    cache.remember_blocked(out)
    return out


def _list_layouts(port: Port) -> Dict[str, object]:
    """Return {kind: layout} of the lock kinds whose waiters are records on a list."""
    out = {}
    for kind in ("mutex", "rw_semaphore", "semaphore"):
        try:
            lay = L.probe_layout(port, kind)
        except CrashExtError:
            continue
        if lay.waiter is not None and lay.wait_kind == "list":
            out[kind] = lay
    return out


def _own_record(bt, cls: tuple, layouts: Dict[str, object]) -> Optional[_Record]:
    """Return the waiter record naming the task among the words printed under its lock
    slow-path frame and the one above (``cls``: its :func:`_classify_stack`), or None."""
    lock_idx, kind = cls[0], cls[1]
    lay = layouts.get(kind) if lock_idx is not None else None
    through = getattr(bt, "words_through", None)
    if lay is None or through is None:
        return None
    words = through(lock_idx + 1, lock_idx)
    w = lay.waiter
    for rec, node, nxt, prv in LW.own_records(words, bt.task, w):
        vals = [words.get(a) for a in range(rec, rec + max(w.size, w.task_off + 8), 8)]
        dec = None if None in vals else LW.decode_waiter(
            w, rec, b"".join(v.to_bytes(8, "little") for v in vals))
        return _Record(kind, rec, node, prv, dec, bt, lock_idx,
                       prv - lay.wait_off in words.values())
    return None


def _walk_recorded(port: Port, snap, records: Dict[int, _Record], layouts, known,
                   on_lists, cap: int = 1 << 16) -> None:
    """Walk, once each, the locks that the waiter records in ``records`` lead to, and
    note who each lists (``known``/``on_lists`` of :func:`blocked_all`; ``layouts``:
    :func:`_list_layouts`).

    A record's ``prev`` links are followed through the other records (bounded, loops
    stop it) to the first node that is no task's record: the list head, if the lock it
    belongs to -- head minus the wait list's offset -- is a word of the task's lock
    frames.  Each such lock's memory is read in one exchange for all, then its wait
    list is walked from the lock itself (records printed whole in their stacks are not
    read again); only those walks decide who waits where."""
    cache = session_cache(snap)
    by_node = {r.node: r for r in records.values()}
    head_of = {}  # type: Dict[int, Optional[int]]
    for r in records.values():
        path, on_path, cur = [], set(), r.node
        while cur in by_node and cur not in head_of and len(path) < cap:
            path.append(cur)
            on_path.add(cur)
            cur = by_node[cur].prev
            if cur in on_path:
                cur = None          # a ring of records only: no head
                break
        h = head_of.get(cur) if cur in head_of else cur
        for p in path:
            head_of[p] = h
    cands = {}  # type: Dict[int, str]
    # first waiters first: the head is their own prev, already looked for in their frames
    for r in sorted(records.values(), key=lambda r: head_of.get(r.node) != r.prev):
        h = head_of.get(r.node)
        if h is None:
            continue
        v = h - layouts[r.kind].wait_off
        if v not in cands and L.is_kernel_pointer(v) and (
                (h == r.prev and r.prev_named) or
                v in set(r.bt.words_through(r.lock_idx + 1).values())):
            cands[v] = r.kind     # the lock is named in its lock frames
    port.read_many([(v, layouts[k].size) for v, k in sorted(cands.items())])
    decoded = {}  # type: Dict[str, Dict[int, tuple]]   # kind -> {node: record}
    for r in records.values():
        if r.decoded:
            decoded.setdefault(r.kind, {})[r.node] = r.decoded
    for v, kind in sorted(cands.items()):
        try:
            w = cache.walk(port, layouts[kind], v, known=decoded.get(kind))
        except CrashExtError:
            continue
        if not w.complete or v in known:
            continue
        known[v] = (kind, {e.task: (e.mode, e.waiter) for e in w.entries}, len(w.entries))
        for e in w.entries:
            on_lists.setdefault(e.task, set()).add(v)


def _safe_blocked_on(blocked_on, port, snap, task, ref) -> Blocked:
    try:
        return blocked_on(port, task, snapshot=snap)
    except CrashExtError as ex:
        msg = str(ex).strip().splitlines()
        return Blocked(task=ref, kind="unknown", evidence=[
            "cannot tell what it waits on: %s" % (msg[-1] if msg else type(ex).__name__)])
    except Exception as ex:  # noqa: BLE001 - one garbage stack must not end the report
        return Blocked(task=ref, kind="unknown", evidence=[
            "its stack could not be analysed (%s: %s)" % (type(ex).__name__, ex)])


def owned_locks(res: "WaitFor", task: int) -> List[HeldLock]:
    """Return the locks of ``res``'s graph (those an analysed task waits on) whose own
    owner field names ``task``, as HeldLock with source 'owner', by address.  A lock no
    analysed task waits on is not in the graph, so not here."""
    out = []
    for addr, ln in sorted(res.graph.locks.items()):
        rep = ln.report
        if rep.owner is not None and rep.owner.task == task:
            held_as = rep.state.get("held_as")
            out.append(HeldLock(
                address=addr, kind=rep.type, mode=held_as if isinstance(held_as, str) else
                None, frame=None, function=None, source="owner",
                evidence=["recorded by the lock: %s names this task" % rep.owner_source]))
    return out


def collect(port: Port, states: Sequence[str] = ("UN",), snapshot=None,
            use_candidates="auto", last_ran: bool = False) -> WaitFor:
    """Read the dump through ``port`` and return :func:`analyse` of its wait-for graph.

    ``states``: ps states whose tasks are analysed (``UN``; ``IN`` for --include-in;
    every state present for --all).  One ``ps``, one ``foreach STATE bt -f`` per state,
    :func:`blocked_all` (crash is asked about each lock, not each task) and one
    :func:`~.lockreport.lock_report` per distinct lock address.  ``use_candidates``:
    True/False to rank candidate holders of ownerless locks always/never; "auto" ranks
    them when at most :data:`AUTO_CANDIDATE_POOL` analysed tasks could hold the lock
    (otherwise holders are inferred from live stack frames and elimination only).
    ``last_ran``: also
    read ``ps -m`` (how long ago each task ran; slow with thousands of tasks).  A task
    or lock that cannot be read becomes a problem line, not an exception.  Raises
    CrashExtError only when crash itself fails (``ps`` cannot be read).
    """
    with no_gc():
        return _collect(port, states, snapshot, use_candidates, last_ran)


def _collect(port: Port, states: Sequence[str], snapshot, use_candidates,
             last_ran: bool) -> WaitFor:
    snap = snapshot or Snapshot(port)
    cache = session_cache(snap)
    # skip `ps -m` (seconds at thousands of tasks) unless asked or already read
    session_cache(snap, last_ran=bool(last_ran) or cache.last_ran is not None)
    problems = []  # type: List[str]
    bts = {}  # type: Dict[int, object]
    classified = {}  # type: Dict[int, tuple]
    records = {}  # type: Dict[int, tuple]
    layouts = _list_layouts(port)

    def classify(bt):       # each stack, while crash prints the next ones
        if bt.task is None or not _has_frames(bt):
            return
        try:
            c = classified[bt.task] = (bt, _classify_stack(bt))
            rec = _own_record(bt, c[1], layouts)
        except Exception:   # noqa: BLE001 - blocked_all reads this stack again
            classified.pop(bt.task, None)
            return
        if rec is not None:
            records[bt.task] = rec
    for st in states:
        bts.update(snap.backtraces(st, on_task=classify))
    # PREEMPT_RT: sleepers on a spinlock_t are in a state crash cannot name
    rt_waiters = rt_lock_waiters(port, snap) if "UN" in states else []
    for e in rt_waiters:
        try:
            bt = bts[e.task] = snap.backtrace(e.task)
        except CrashExtError as ex:
            problems.append("PID %d (%s): back trace unreadable: %s" % (e.pid, e.comm, ex))
            continue
        classify(bt)
    # reads of stack words the back traces print are answered from their text
    port = snap.reading_port() if hasattr(snap, "reading_port") else port
    wanted = [e for e in snap.in_state(states)] + list(rt_waiters)
    readable = {}  # type: Dict[int, object]
    unreadable = []  # type: List[Blocked]
    for e in wanted:
        bt = bts.get(e.task)
        if bt is None or not _has_frames(bt):
            msg = "; ".join(getattr(bt, "messages", [])[:2]) if bt is not None else ""
            problems.append("PID %d (%s): back trace unreadable%s" % (
                e.pid, e.comm, ": " + msg if msg else ""))
            unreadable.append(Blocked(task=snap.ref(e.task), kind="unknown",
                                      evidence=["back trace unreadable"]))
            continue
        readable[e.task] = bt
    callers = {}  # type: Dict[int, Optional[str]]
    found = blocked_all(port, snap, readable, callers, classified, records)
    blocked = unreadable + [found[t] for t in readable]
    for b in blocked:
        if b.kind == "unknown" and b.evidence and b.evidence[0].startswith(
                ("cannot tell", "its stack could not")):
            problems.append("PID %s (%s): %s" % (b.task.pid, b.task.comm, b.evidence[0]))
    reports = {}  # type: Dict[int, LockReport]
    n_waiting = {}  # type: Dict[int, int]
    kinds = {}  # type: Dict[int, str]
    for b in blocked:
        if b.kind == "lock" and b.lock_address is not None:
            n_waiting[b.lock_address] = n_waiting.get(b.lock_address, 0) + 1
            if b.lock_type:
                kinds.setdefault(b.lock_address, b.lock_type)
    prefetch_locks(port, snap, kinds)     # every lock's memory, symbol and slab at once
    for b in blocked:
        a = b.lock_address
        if b.kind != "lock" or a is None or a in reports:
            continue
        if use_candidates == "auto":
            # ranking reads every blocked stack and searches all stacks for the lock:
            # worth it while the tasks that could hold it are few
            cands = len(blocked) - n_waiting.get(a, 0) <= AUTO_CANDIDATE_POOL
        else:
            cands = bool(use_candidates)
        try:
            reports[a] = lock_report(port, a, b.lock_type, snapshot=snap,
                                     candidates=cands)
        except CrashExtError as ex:
            problems.append("lock %x: cannot be read: %s" % (a, ex))
            reports[a] = LockReport(address=a, type=b.lock_type or "unknown",
                                    problems=[str(ex)])
        except Exception as ex:  # noqa: BLE001 - corrupt lock memory must not end the report
            problems.append("lock %x: could not be decoded (%s: %s)" % (
                a, type(ex).__name__, ex))
            reports[a] = LockReport(address=a, type=b.lock_type or "unknown",
                                    problems=[str(ex)])
    # the ownerless locks: which blocked task's code holds each
    ownerless = {a for a, r in reports.items() if r.owner is None and r.locked is not False
                 and r.type in ("semaphore", "rw_semaphore", "mutex", "spinlock")}
    code_held = code_holders(port, readable, {b.task.task: b for b in blocked}, ownerless)
    g = build_graph(blocked, reports, backtraces=bts, problems=problems, callers=callers,
                    code_held=code_held)
    return analyse(g, states)
