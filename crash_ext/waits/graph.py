"""The wait-for graph of blocked tasks: cycles (deadlocks) and convoys (hang chains).

Nodes are tasks and locks.  Edges: a task *waits for* the lock it is blocked on (from
:class:`~crash_ext.core.results.Blocked`), a lock is *held by* its owner(s) (from
:class:`~crash_ext.core.results.LockReport`).  A held-by edge is either recorded by
the lock itself (a mutex's or rwsem's ``owner`` field) or inferred, and an inferred edge
carries its evidence:

* the holder's own code: a frame of a blocked task took the lock and has not released
  it on the way to its current call (or lockdep records it; :mod:`.holds`), or
* a candidate holder ranked first, alone, by ``lock_report`` (stack words, owner hints;
  see :mod:`.candidates`), or
* the lock's address in a live frame of a blocked task above the frame it blocks in, or
* elimination: the only blocked task(s) in the analysed set that neither wait on the
  lock nor hold a lock that records its owner -- as many as the lock says hold it.

Strongly connected components are found with an iterative Tarjan (no recursion limit at
thousands of nodes); every elementary cycle of each component is listed (bounded).
Tasks that reach a cycle are "behind" it; the rest form convoys, grouped by the root
they end at (a task waiting on something other than a lock, a running task, a lock
whose holder is unknown).

:func:`build_graph` and :func:`analyse` are pure functions of the records;
:func:`collect` reads a dump through a port, once: ``ps``, one ``foreach STATE bt -f``
per state, then each lock's report once per address.
"""

import itertools
from ..core.record import dataclass, field
from ..compat import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

from ..models import locks as L
from ..models.btlazy import text_search
from ..core.errors import CrashExtError
from ..core.port import Port
from ..code.holds import HeldLock, code_holders
from ..models.waitframes import SCHED_FUNCS, classify_function, classify_stack
from .blockedon import blocked_on, explain_wait, rt_lock_waiters
from .lockreport import lock_report, prefetch_locks
from ..session.facts import session_cache
from ..core.results import Blocked, Candidate, LockReport, TaskRef, Wait, task_label
from ..session.snapshot import Snapshot, no_gc

__all__ = ["HeldBy", "LockNode", "Step", "Cycle", "BehindTask", "Convoy", "WaitForGraph",
           "WaitFor", "build_graph", "analyse", "collect", "tarjan_scc", "simple_cycles",
           "restrict_to_pid", "blocked_all", "MAX_CYCLES", "MIN_CANDIDATE_SCORE",
           "AUTO_CANDIDATE_POOL"]

MAX_CYCLES = 64            # elementary cycles listed per component
MAX_CYCLE_STEPS = 200000   # search steps per component before giving up the listing
MIN_CANDIDATE_SCORE = 5.0  # a lock_report candidate below this never becomes an edge
AUTO_CANDIDATE_POOL = 200  # rank candidates when at most this many tasks could hold it

Node = Tuple[str, int]     # ('t', task address) or ('l', lock address)


@dataclass
class HeldBy:
    """A held-by edge: lock -> holder task.  ``inferred`` False when the lock records
    its owner (``evidence`` then names the field); ``mode`` 'writer'/'reader'/None.
    ``relation`` 'holds', or 'must act' for the edge from a wait that is not a lock (a
    work item, a kthread to stop) to the task whose progress ends it."""
    task: TaskRef
    inferred: bool
    evidence: List[str] = field(default_factory=list)
    mode: Optional[str] = None
    relation: str = "holds"


@dataclass
class LockNode:
    """A lock of the graph: its report, held-by edges, and, when no holder could be
    named, the candidates that were considered (``unresolved`` says why).  A wait that
    is not a lock (a work item flushed, a kthread stopped) is a node too: ``wait`` is
    set, ``report.type`` names the object (``work_struct``, ``kthread``) and its edges
    are 'must act'."""
    address: int
    report: LockReport
    holders: List[HeldBy] = field(default_factory=list)
    candidates: List[Candidate] = field(default_factory=list)
    unresolved: Optional[str] = None
    wait: Optional[Wait] = None

    @property
    def type(self) -> str:
        return self.report.type


@dataclass
class Step:
    """One link of a cycle: ``task`` is blocked in ``function`` (``caller`` is the first
    frame outside the lock code) on ``lock``, which is held by the next step's task
    through ``held_by``."""
    task: TaskRef
    blocked: Blocked
    lock: LockNode
    held_by: HeldBy
    caller: Optional[str] = None


class BehindTask(NamedTuple):
    """A task that waits, directly or through others, on a cycle or a convoy root:
    it is blocked on ``lock`` (None when unknown); ``depth`` 1 = waits on the root /
    cycle directly."""
    task: TaskRef
    lock: Optional[int]
    function: Optional[str]
    caller: Optional[str]
    depth: int


@dataclass
class Cycle:
    """A deadlock: ``steps`` in order, the last step's lock held by the first task.
    ``inferred`` True when any held-by edge is inferred.  ``inversion``: one line per
    task, "holds A, wants B"; ``orders`` the lock-order pairs (A, B) as addresses.
    ``component`` numbers the strongly connected component it belongs to."""
    steps: List[Step]
    inferred: bool
    component: int
    orders: List[Tuple[int, int]] = field(default_factory=list)
    behind: List[BehindTask] = field(default_factory=list)


@dataclass
class Convoy:
    """A chain without a cycle: the root(s) everyone behind ends at.

    ``roots``: root tasks (several when a lock has several holders, e.g. readers);
    ``root_lock``: set instead when the root is a lock whose holder is unknown;
    ``what``: what the root itself waits on, in words; ``via``: the locks on the way;
    ``behind``: the tasks behind the root(s); ``depth``: the longest chain in tasks."""
    roots: List[TaskRef]
    root_lock: Optional[int]
    what: str
    via: List[int]
    behind: List[BehindTask]
    depth: int


@dataclass
class WaitForGraph:
    """Tasks, what each waits for, locks and who holds them (see :func:`build_graph`)."""
    tasks: Dict[int, TaskRef]
    blocked: Dict[int, Blocked]
    locks: Dict[int, LockNode]
    callers: Dict[int, Optional[str]] = field(default_factory=dict)
    analysed: Set[int] = field(default_factory=set)
    problems: List[str] = field(default_factory=list)

    def successors(self, node: Node) -> List[Node]:
        """Return the nodes ``node`` has edges to (task -> lock, lock -> holders)."""
        kind, addr = node
        if kind == "t":
            a = waits_at(self.blocked.get(addr))
            return [("l", a)] if a is not None and a in self.locks else []
        ln = self.locks.get(addr)
        if ln is None:
            return []
        out, seen = [], set()
        for h in ln.holders:
            if h.task.task not in seen:
                seen.add(h.task.task)
                out.append(("t", h.task.task))
        return out

    def adjacency(self) -> Dict[Node, List[Node]]:
        """Return {node: :meth:`successors` of it} for every node of :meth:`nodes`, in
        that order."""
        locks, blocked = self.locks, self.blocked
        out = {}  # type: Dict[Node, List[Node]]
        for t in sorted(self.tasks):
            a = waits_at(blocked.get(t))
            out[("t", t)] = [("l", a)] if a is not None and a in locks else []
        for a in sorted(locks):
            out[("l", a)] = self.successors(("l", a))
        return out

    def nodes(self) -> List[Node]:
        """Return every node: analysed tasks, locks, holders that are not analysed."""
        out = [("t", t) for t in sorted(self.tasks)]
        out += [("l", a) for a in sorted(self.locks)]
        return out


@dataclass
class WaitFor:
    """The result of :func:`analyse`: the graph, its cycles and convoys, the blocked
    tasks that neither reach a cycle nor have anyone behind them (``alone``), and the
    problems met on the way (unreadable stacks, locks that could not be decoded)."""
    graph: WaitForGraph
    cycles: List[Cycle]
    convoys: List[Convoy]
    alone: List[TaskRef]
    components: int
    truncated: List[str] = field(default_factory=list)
    states: Sequence[str] = ("UN",)

    @property
    def problems(self) -> List[str]:
        return self.graph.problems


# ------------------------------------------------------------------- naming

def waits_at(b: Optional[Blocked]) -> Optional[int]:
    """Return the graph node a blocked task waits at: its lock's address, or the object
    of a wait that is not a lock when some task must act for it (``Blocked.wait``);
    None otherwise."""
    if b is None:
        return None
    if b.kind == "lock":
        return b.lock_address
    w = b.wait
    if w is not None and w.must_act and w.object is not None:
        return w.object
    return None


#: the graph's name of each kind of wait that is not a lock
WAIT_TYPES = {"work": "work_struct", "kthread": "kthread", "workqueue": "workqueue_struct"}


def wait_node(b: Blocked) -> LockNode:
    """Return the graph node of ``b``'s wait that is not a lock, with a 'must act' edge
    to each task ``b.wait`` names (recorded by the kernel: a worker's ``current_work``,
    a task's ``struct kthread``; the evidence says which)."""
    w = b.wait
    rep = LockReport(address=w.object, type=WAIT_TYPES.get(w.kind, w.kind),
                     where=w.object_where, locked=True,
                     state={"wait": w.what or "", "completion": w.completion})
    return LockNode(address=w.object, report=rep, wait=w, holders=[
        HeldBy(task=t, inferred=False, relation="must act", evidence=list(w.evidence[1:]))
        for t in w.must_act])


# --------------------------------------------------------------- graph build

def blocking_caller(bt, frame: Optional[int], frames=None) -> Optional[str]:
    """The first frame above ``frame`` that is not lock or scheduler code (``frames``:
    the frames to look through, when not ``bt``'s)."""
    if (bt is None and frames is None) or frame is None:
        return None
    for f in (frames if frames is not None else _heads(bt)):
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
    (``containing``: :func:`~crash_ext.models.btlazy.text_search` of ``backtraces``,
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


# ------------------------------------------------------------ graph algorithms

def tarjan_scc(nodes: Sequence, succ: Callable[[object], Sequence]) -> List[List]:
    """Return the strongly connected components of the graph (iterative Tarjan), each a
    list of nodes; components come out in reverse topological order.  Works at any
    size (no recursion)."""
    index = {}  # type: Dict[object, int]
    low = {}  # type: Dict[object, int]
    on = set()
    stack = []  # type: List
    out = []  # type: List[List]
    counter = 0
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        work = [(root, iter(succ(root)))]
        while work:
            v, it = work[-1]
            pushed = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(succ(w))))
                    pushed = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if pushed:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def simple_cycles(comp: Sequence, succ: Callable[[object], Sequence],
                  limit: int = MAX_CYCLES, max_steps: int = MAX_CYCLE_STEPS
                  ) -> Tuple[List[List], bool]:
    """Return (elementary cycles within component ``comp``, complete?).  Each cycle is a
    node list starting at its smallest node (in ``comp``'s order); iterative search, at
    most ``limit`` cycles and ``max_steps`` steps (complete False when cut short)."""
    order = {n: i for i, n in enumerate(comp)}
    members = set(comp)
    cycles = []  # type: List[List]
    steps = 0
    for s in comp:
        si = order[s]
        path = [s]
        on_path = {s}
        work = [iter([w for w in succ(s) if w in members and order[w] >= si])]
        # successors considered: the start itself (closes a cycle) or later nodes
        while work:
            steps += 1
            if steps > max_steps or len(cycles) >= limit:
                return cycles, False
            nxt = next(work[-1], None)
            if nxt is None:
                work.pop()
                on_path.discard(path.pop())
                continue
            if nxt == s:
                cycles.append(list(path))
                continue
            if nxt in on_path:
                continue
            path.append(nxt)
            on_path.add(nxt)
            work.append(iter([w for w in succ(nxt) if w in members and order[w] >= si]))
    return cycles, True


def _reverse(adj: Dict[Node, List[Node]]) -> Dict[Node, List[Node]]:
    rev = {}  # type: Dict[Node, List[Node]]
    for n, ws in adj.items():
        for w in ws:
            rev.setdefault(w, []).append(n)
    return rev


def _reaching_cycles(nodes: Sequence[Node], adj: Dict[Node, List[Node]],
                     rev: Dict[Node, List[Node]]) -> List[Node]:
    """Return the nodes (in ``nodes``' order) from which a cycle can be reached: the
    graph less every node whose edges all lead, at last, to nodes without any.  Every
    cycle lies within them; in a hang without a cycle there are none."""
    left = {n: len(adj.get(n, ())) for n in nodes}
    done = [n for n, k in left.items() if k == 0]
    for n in done:          # grows while it is read
        for p in rev.get(n, ()):
            left[p] -= 1
            if left[p] == 0:
                done.append(p)
    return [n for n in nodes if left[n]]


def _upstream(starts: Iterable[Node], rev: Dict[Node, List[Node]],
              stop: Set[Node]) -> Dict[Node, int]:
    """BFS over reverse edges from ``starts``: {node: distance}, not entering ``stop``."""
    dist = {}  # type: Dict[Node, int]
    frontier = list(starts)
    for n in frontier:
        dist[n] = 0
    while frontier:
        nf = []
        for n in frontier:
            for p in rev.get(n, []):
                if p in dist or p in stop:
                    continue
                dist[p] = dist[n] + 1
                nf.append(p)
        frontier = nf
    return dist


def _behind_list(g: WaitForGraph, dist: Dict[Node, int], exclude: Set[Node]
                 ) -> List[BehindTask]:
    out = []
    for (k, a), d in dist.items():
        if k != "t" or ("t", a) in exclude:
            continue
        b = g.blocked.get(a)
        out.append(BehindTask(g.tasks[a], waits_at(b),
                              b.function if b else None, g.callers.get(a), (d + 1) // 2))
    out.sort(key=lambda x: (x.depth, x.task.pid if x.task.pid is not None else 1 << 30,
                            x.task.task))
    return out


def _root_what(g: WaitForGraph, task: int) -> str:
    b = g.blocked.get(task)
    t = g.tasks.get(task)
    if b is None:
        st = t.state if t is not None and t.state else "?"
        words = {"RU": "running", "IN": "sleeping (interruptible)", "UN": "blocked",
                 "ID": "idle"}.get(st, st)
        return "%s%s; not analysed (its state is not among those asked for)" % (
            words, " on CPU %s" % t.cpu if t is not None and t.cpu is not None and
            st == "RU" else "")
    if b.kind == "lock":
        return "waits on lock %x" % (b.lock_address or 0)
    if b.kind == "running":
        return "running (%s)" % "; ".join(b.evidence[:1])
    if b.kind == "unknown":
        if b.lock_type:
            return "waits on a %s it could not be tied to (%s)" % (
                b.lock_type, b.function or "?")
        return "unknown (%s)" % "; ".join(b.evidence[:1])
    what = {"completion": "a completion", "io": "I/O"}.get(b.kind, b.kind)
    w = b.wait
    if w is not None and w.completion is not None:
        what = "completion %x (%s%s)" % (w.completion, w.where or "where unknown",
                                         "; in %s" % w.container if w.container else "")
    fn = b.function or "?"
    caller = g.callers.get(task)
    out = "waits on %s in %s%s" % (what, fn, " from %s" % caller if caller else "")
    if w is not None and w.what:
        out += ": waits for %s%s" % (w.what, " at %x" % w.object if w.object is not None
                                     and w.kind == "work" else "")
    if w is not None and w.pending:
        out += ", %s" % w.pending
    elif w is not None and w.completion is None and w.evidence:
        out += " (%s)" % w.evidence[-1]
    return out


def _orders(steps: List[Step]) -> List[Tuple[int, int]]:
    out = []
    k = len(steps)
    for i in range(k):
        held = steps[i - 1].lock.address   # the previous step's lock is held by this task
        wanted = steps[i].lock.address
        out.append((held, wanted))
    return out


def analyse(g: WaitForGraph, states: Sequence[str] = ("UN",)) -> WaitFor:
    """Return the cycles and convoys of graph ``g``.

    Cycles: every elementary cycle of every strongly connected component (bounded by
    :data:`MAX_CYCLES`; ``truncated`` says when), each starting at its task with the
    lowest pid, with the tasks behind it.  Convoys: for tasks outside every cycle and not
    behind one, grouped by the root(s) they end at, most tasks behind first.  Never
    raises.
    """
    adj = g.adjacency()
    nodes = list(adj)

    def succ(n: Node) -> List[Node]:
        return adj[n] if n in adj else g.successors(n)
    rev = _reverse(adj)
    comps = tarjan_scc(_reaching_cycles(nodes, adj, rev), succ)
    cyc_comps = []
    for c in comps:
        if len(c) > 1 or c[0] in succ(c[0]):
            cyc_comps.append(c)
    cycles = []  # type: List[Cycle]
    truncated = []  # type: List[str]
    in_cycle = set()  # type: Set[Node]
    for ci, comp in enumerate(sorted(cyc_comps, key=lambda c: min(
            (g.tasks[a].pid or 0) for k, a in c if k == "t") if any(
            k == "t" for k, _ in c) else 0)):
        in_cycle.update(comp)
        comp_sorted = sorted(comp, key=lambda n: (n[0] != "t", g.tasks[n[1]].pid
                                                  if n[0] == "t" and g.tasks[n[1]].pid
                                                  is not None else 1 << 30, n[1]))
        found, complete = simple_cycles(comp_sorted, succ)
        if not complete:
            truncated.append("component %d: cycle listing stopped after %d cycles"
                             % (ci + 1, len(found)))
        for nodes_c in found:
            steps = []
            tasks_in = [n for n in nodes_c if n[0] == "t"]
            if not tasks_in:
                continue
            # rotate to start at the lowest pid
            start = min(range(len(nodes_c)), key=lambda i: (
                nodes_c[i][0] != "t", g.tasks[nodes_c[i][1]].pid or 0
                if nodes_c[i][0] == "t" else 0))
            seq = nodes_c[start:] + nodes_c[:start]
            for i in range(0, len(seq), 2):
                t = seq[i][1]
                lk = seq[i + 1][1]
                nxt = seq[(i + 2) % len(seq)][1]
                ln = g.locks[lk]
                hb = next(h for h in ln.holders if h.task.task == nxt)
                steps.append(Step(task=g.tasks[t], blocked=g.blocked[t], lock=ln,
                                  held_by=hb, caller=g.callers.get(t)))
            cyc = Cycle(steps=steps, inferred=any(s.held_by.inferred for s in steps),
                        component=ci + 1)
            cyc.orders = _orders(steps)
            cycles.append(cyc)
    # tasks behind each component (reported with each of its cycles)
    behind_of = {}  # type: Dict[int, List[BehindTask]]
    behind_all = set()  # type: Set[Node]
    for ci, comp in enumerate(sorted(cyc_comps, key=lambda c: min(
            (g.tasks[a].pid or 0) for k, a in c if k == "t") if any(
            k == "t" for k, _ in c) else 0)):
        dist = _upstream(comp, rev, in_cycle)
        behind_of[ci + 1] = _behind_list(g, dist, in_cycle)
        behind_all.update(n for n in dist if n not in in_cycle)
    for c in cycles:
        c.behind = behind_of.get(c.component, [])
    # convoys
    done = in_cycle | behind_all
    sinks = []  # type: List[Node]
    for n in nodes:
        if n in done:
            continue
        if not succ(n):
            sinks.append(n)
    groups = {}  # type: Dict[Tuple, List[Node]]
    dists = {}  # type: Dict[Node, Dict[Node, int]]
    for s in sinks:
        dist = _upstream([s], rev, done)
        dists[s] = dist
        up = frozenset(n for n in dist if n[0] == "t" and n != s)
        if s[0] == "l":
            key = ("l", s[1])
        elif not up:
            key = ("alone", s[1])
        else:
            # several holders of one lock (readers) share the same tasks behind them
            key = ("t", up)
        groups.setdefault(key, []).append(s)
    convoys = []  # type: List[Convoy]
    alone = []  # type: List[TaskRef]
    for key, ss in groups.items():
        if key[0] == "alone":
            if ss[0][1] in g.analysed:
                alone.append(g.tasks[ss[0][1]])
            continue
        dist = {}  # type: Dict[Node, int]
        for s in ss:
            for n, d in dists[s].items():
                dist[n] = min(d, dist.get(n, d))
        behind = _behind_list(g, dist, set(ss))
        via = sorted({a for (k, a) in dist if k == "l"})
        if key[0] == "l":
            ln = g.locks[ss[0][1]]
            what = "held, holder unknown: %s" % (ln.unresolved or "no owner recorded")
            if ln.candidates:
                what += "; candidates: %s" % ", ".join(
                    "%s (score %g)" % (task_label(c.task), c.score)
                    for c in ln.candidates[:3])
            # depth counts the lock's waiters as 1
            behind = [BehindTask(b.task, b.lock, b.function, b.caller, b.depth)
                      for b in _behind_list(g, {n: d + 1 for n, d in dist.items()},
                                            set())]
            conv = Convoy(roots=[], root_lock=ss[0][1], what=what, via=via, behind=behind,
                          depth=max([b.depth for b in behind] or [0]))
        else:
            roots = sorted((g.tasks[s[1]] for s in ss),
                           key=lambda t: (t.pid if t.pid is not None else 1 << 30, t.task))
            whats = []
            for r in roots:
                w = _root_what(g, r.task)
                if w not in whats:
                    whats.append(w)
            conv = Convoy(roots=roots, root_lock=None, what="; ".join(whats), via=via,
                          behind=behind, depth=max([b.depth for b in behind] or [0]) + 1)
        convoys.append(conv)
    convoys.sort(key=lambda c: (-len(c.behind), -c.depth,
                                min([r.pid or 0 for r in c.roots] or [0]),
                                c.root_lock or 0))
    alone.sort(key=lambda t: (t.pid if t.pid is not None else 1 << 30, t.task))
    return WaitFor(graph=g, cycles=cycles, convoys=convoys, alone=alone,
                   components=len(cyc_comps), truncated=truncated, states=tuple(states))


# -------------------------------------------------------------- -p PID filter

def restrict_to_pid(res: WaitFor, pid: int) -> Optional[WaitFor]:
    """Return ``res`` cut down to the weakly connected component holding task ``pid``,
    or None when no analysed task or holder has that pid."""
    g = res.graph
    start = None
    for a, t in g.tasks.items():
        if t.pid == pid:
            start = ("t", a)
            break
    if start is None:
        return None
    rev = _reverse(g.adjacency())
    seen = {start}
    frontier = [start]
    while frontier:
        nf = []
        for n in frontier:
            for w in list(g.successors(n)) + rev.get(n, []):
                if w not in seen:
                    seen.add(w)
                    nf.append(w)
        frontier = nf
    tasks = {a for k, a in seen if k == "t"}
    locks = {a for k, a in seen if k == "l"}
    sub = WaitForGraph(tasks={a: t for a, t in g.tasks.items() if a in tasks},
                       blocked={a: b for a, b in g.blocked.items() if a in tasks},
                       locks={a: ln for a, ln in g.locks.items() if a in locks},
                       callers={a: c for a, c in g.callers.items() if a in tasks},
                       analysed={a for a in g.analysed if a in tasks},
                       problems=list(g.problems))
    return analyse(sub, res.states)


# ------------------------------------------------------------------ collection

class _Head:
    """A frame as far as classification looks: its number and function."""
    __slots__ = ("index", "function")

    def __init__(self, index: int, function: str):
        self.index, self.function = index, function


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


def _heads(bt):
    """Return the frames of ``bt`` with at least ``index`` and ``function``, innermost
    first -- made one by one as they are read when the back trace can tell them
    without making whole frames."""
    fh = getattr(bt, "frame_heads", None)
    if fh is None:
        return bt.frames
    return (_Head(i, f) for i, f in fh())


def _has_frames(bt) -> bool:
    has = getattr(bt, "has_frames", None)
    return has() if has is not None else bool(getattr(bt, "frames", None))


def _classify_stack(bt) -> Tuple[Optional[int], Optional[str], Optional[str],
                                 Optional[str], Optional[object], Optional[str]]:
    """Return (lock frame index, lock kind, mode, function, other, caller) for a back
    trace, by :func:`~.blockedon.classify_stack`, the frame rules of ``blocked_on``
    (``other``'s frame has ``index`` and ``function``), reading its frames once."""
    seen = []
    heads = _heads(bt)
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
    for rec, node, nxt, prv in L.own_records(words, bt.task, w):
        vals = [words.get(a) for a in range(rec, rec + max(w.size, w.task_off + 8), 8)]
        dec = None if None in vals else L.decode_waiter(
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
