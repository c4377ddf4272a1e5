"""Building the wait-for graph from blocked tasks and lock reports: who holds each lock,
recorded by the lock or inferred, each inferred edge with its evidence:

* the holder's own code: a frame of a blocked task took the lock and has not released
  it on the way to its current call (or lockdep records it; :mod:`~crash_ext.code.holds`),
* a candidate holder ranked first, alone, by ``lock_report`` (stack words, owner hints;
  see :mod:`.candidates`), or
* the lock's address in a live frame of a blocked task above the frame it blocks in, or
* elimination: the only blocked task(s) in the analysed set that neither wait on the
  lock nor hold a lock that records its owner -- as many as the lock says hold it.

:func:`build_graph` is a pure function of the records and back traces it is given.
"""

from ..compat import Callable, Dict, Iterable, List, Optional, Set, Tuple

from ..core.results import Blocked, LockReport, TaskRef
from ..models.btstream import text_search
from ..models.waitframes import SCHED_FUNCS, classify_function
from .graph import HeldBy, LockNode, WaitForGraph, wait_node, waits_at

__all__ = ["build_graph", "blocking_caller", "frame_heads", "FrameHead",
           "MIN_CANDIDATE_SCORE"]

MIN_CANDIDATE_SCORE = 5.0  # a lock_report candidate below this never becomes an edge


class FrameHead:
    """A frame as far as classification looks: its number and function."""
    __slots__ = ("index", "function")

    def __init__(self, index: int, function: str):
        self.index, self.function = index, function


def frame_heads(bt):
    """Return the frames of ``bt`` with at least ``index`` and ``function``, innermost
    first -- made one by one as they are read when the back trace can tell them
    without making whole frames."""
    fh = getattr(bt, "frame_heads", None)
    if fh is None:
        return bt.frames
    return (FrameHead(i, f) for i, f in fh())


# --------------------------------------------------------------- graph build

def blocking_caller(bt, frame: Optional[int], frames=None) -> Optional[str]:
    """The first frame above ``frame`` that is not lock or scheduler code (``frames``:
    the frames to look through, when not ``bt``'s)."""
    if (bt is None and frames is None) or frame is None:
        return None
    for f in (frames if frames is not None else frame_heads(bt)):
        if f.index <= frame:
            continue
        k, _, o = classify_function(f.function)
        if k is None and o is None and f.function not in SCHED_FUNCS:
            return f.function
    return None


def _recorded_holders(rep: LockReport) -> List[HeldBy]:
    if rep.owner is None:
        return []
    mode = rep.state.get("held_as") if isinstance(rep.state, dict) else None
    return [HeldBy(task=rep.owner, inferred=False, mode=mode if isinstance(mode, str) else
                   None, evidence=["recorded by the lock (%s)" % (rep.owner_source or
                                                                   "owner field")])]


def _expected_holders(rep: LockReport) -> int:
    if rep.readers and rep.readers > 0:
        return rep.readers
    return 1


def _from_candidates(rep: LockReport, waiters: Set[int]) -> Tuple[List[HeldBy], str]:
    """Top candidates from lock_report's ranking, when they stand alone at the top."""
    want = _expected_holders(rep)
    cands = [c for c in rep.candidates if c.task.task not in waiters]
    if not cands:
        return [], "no candidate holder"
    cands = sorted(cands, key=lambda c: -c.score)
    top = cands[:want]
    if top[-1].score < MIN_CANDIDATE_SCORE:
        return [], "best candidate's evidence is too weak (score %g)" % top[-1].score
    if len(cands) > want and cands[want].score >= top[-1].score:
        return [], "candidates tie at the top (score %g)" % top[-1].score
    nxt = cands[want].score if len(cands) > want else None
    out = []
    for c in top:
        if want == 1:
            rank = "ranked first of %d candidate holder(s)" % len(cands)
        else:
            rank = "one of the top %d of %d candidate holders, as many as the lock " \
                   "says hold it" % (want, len(cands))
        ev = ["inferred: %s (score %g%s)" % (
            rank, c.score, ", next %g" % nxt if nxt is not None else "")]
        ev += list(c.evidence)
        out.append(HeldBy(task=c.task, inferred=True, evidence=ev,
                          mode="reader" if rep.readers else None))
    return out, ""


def _from_code(waiters: Set[int], found, tasks: Dict[int, TaskRef]) -> List[HeldBy]:
    """Held-by edges from :func:`~.holds.code_holders`' answers for one lock (``found``:
    [(task, HeldLock)]), waiters excluded: every task whose code holds it."""
    out = []
    for t, h in found:
        if t in waiters or t not in tasks:
            continue
        first = "its code holds it" if h.source == "code" else \
            "recorded by lockdep (task_struct.held_locks)"
        out.append(HeldBy(task=tasks[t], inferred=True, mode=h.mode,
                          evidence=["%s: %s" % (first, h.evidence[0])] + h.evidence[1:]))
    out.sort(key=lambda hb: (hb.task.pid or 0, hb.task.task))
    return out


def _from_stacks(addr: int, waiters: Set[int], blocked: Dict[int, Blocked],
                 backtraces: Dict[int, object], want: int,
                 containing: Optional[Callable[[int], Set[int]]] = None) -> List[HeldBy]:
    """Blocked tasks with ``addr`` in a live frame above their blocking frame
    (``containing``: :func:`~crash_ext.models.btstream.text_search` of ``backtraces``,
    which narrows the tasks to look at)."""
    found = []
    for t in containing(addr) if containing is not None else backtraces:
        bt = backtraces.get(t)
        if bt is None or t in waiters or t not in blocked:
            continue
        bidx = blocked[t].frame if blocked[t].frame is not None else -1
        hit = None
        for f in getattr(bt, "frames", []):
            if f.index > bidx and addr in f.words.values():
                hit = f
                break
        if hit is not None:
            found.append((t, hit))
    found.sort(key=lambda x: (blocked[x[0]].task.pid or 0, x[0]))
    if len(found) != want:
        return []
    return [HeldBy(task=blocked[t].task, inferred=True, evidence=[
        "inferred: the lock's address is in frame #%d %s of its stack, above the frame it "
        "blocks in (it took the lock on the way)" % (f.index, f.function)])
        for t, f in found]


def _by_elimination(rep: LockReport, waiters: Set[int], blocked: Dict[int, Blocked],
                    owners: Set[int], want: int) -> List[HeldBy]:
    """The only analysed blocked tasks that neither wait on the lock nor own a lock
    that records its owner -- when there are exactly as many as hold the lock."""
    pool = [t for t, b in blocked.items()
            if t not in waiters and t not in owners and b.kind != "running"]
    if len(pool) != want:
        return []
    n_other = len([t for t in blocked if t not in waiters])
    return [HeldBy(task=blocked[t].task, inferred=True, mode="reader" if rep.readers else
                   None, evidence=[
                       "inferred by elimination: of the %d analysed blocked task(s) not "
                       "waiting on this lock, it is the %s that owns no lock recording an "
                       "owner (%d holder(s) expected); a running or sleeping task not "
                       "analysed could hold it instead" % (
                           n_other, "only one" if want == 1 else "one of %d" % want, want)])
            for t in sorted(pool, key=lambda x: (blocked[x].task.pid or 0, x))]


def build_graph(blocked: Iterable[Blocked], reports: Dict[int, LockReport],
                backtraces: Optional[Dict[int, object]] = None,
                problems: Optional[List[str]] = None,
                callers: Optional[Dict[int, Optional[str]]] = None,
                code_held: Optional[Dict[int, list]] = None) -> WaitForGraph:
    """Return the wait-for graph of ``blocked`` tasks over the locks in ``reports``.

    ``backtraces``: {task: Backtrace} of the analysed tasks, for callers and the stack
    evidence of inferred holders (optional); ``callers``: each task's caller when already
    known (see :func:`blocking_caller`); ``code_held``: {lock: [(task, HeldLock)]} from
    :func:`~.holds.code_holders`.  A lock that records an owner gets that one
    held-by edge; one that records none (or names a reader count) gets inferred edges
    only when the evidence singles out its holder(s) -- the holders' own code first --,
    otherwise none, and its candidates are kept for the report.  Never raises.
    """
    bl = {}  # type: Dict[int, Blocked]
    for b in blocked:
        bl[b.task.task] = b
    bts = backtraces or {}
    g = WaitForGraph(tasks={t: b.task for t, b in bl.items()}, blocked=bl, locks={},
                     analysed=set(bl), problems=list(problems or []))
    known = callers or {}
    for t, b in bl.items():
        g.callers[t] = known[t] if t in known else blocking_caller(bts.get(t), b.frame)
    for addr, rep in reports.items():
        g.locks[addr] = LockNode(address=addr, report=rep, candidates=list(rep.candidates))
    for t, b in bl.items():
        a = waits_at(b)
        if b.kind != "lock" and a is not None and a not in g.locks:
            g.locks[a] = wait_node(b)
    owners = set()  # type: Set[int]
    search = []     # [text_search of bts], made for the first lock that needs it
    for ln in g.locks.values():
        if ln.wait is None:
            ln.holders = _recorded_holders(ln.report)
        owners.update(h.task.task for h in ln.holders if h.relation == "holds")
    on_lock = {}  # type: Dict[int, Set[int]]   # lock -> analysed tasks blocked on it
    for t, b in bl.items():
        if b.lock_address is not None:
            on_lock.setdefault(b.lock_address, set()).add(t)
    for addr, ln in sorted(g.locks.items()):
        rep = ln.report
        if ln.holders:
            continue
        waiters = {w.task.task for w in rep.waiters}
        waiters.update(on_lock.get(addr, ()))
        if rep.locked is False:
            ln.unresolved = "not locked (its waiters are being woken, or it is not a %s)" \
                % rep.type
            continue
        want = _expected_holders(rep)
        held, why = _from_code(waiters, (code_held or {}).get(addr, ()), g.tasks), ""
        if not held:
            held, why = _from_candidates(rep, waiters)
        if not held:
            if not search:
                ts = text_search(bts.values())
                # the locks that may come here next are searched in the same pass
                more = [a for a, n in g.locks.items() if a > addr and not n.holders
                        and n.report.locked is not False]
                search.append(ts and (lambda v: ts(v, more)))
            held = _from_stacks(addr, waiters, bl, bts, want, search[0])
        if not held:
            held = _by_elimination(rep, waiters, bl, owners, want)
        if held:
            ln.holders = held
        else:
            ln.unresolved = "the lock records no owner and the evidence does not single " \
                            "out its holder%s" % ("s" if want > 1 else "") + \
                            (" (%s)" % why if why and rep.candidates else "")
    # holders that are not analysed tasks still become task nodes (sinks)
    for ln in g.locks.values():
        for h in ln.holders:
            g.tasks.setdefault(h.task.task, h.task)
    return g
