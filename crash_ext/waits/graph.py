"""The wait-for graph of blocked tasks: its records, cycles (deadlocks) and convoys (hang
chains).

Nodes are tasks and locks.  Edges: a task *waits for* the lock it is blocked on (from
:class:`~crash_ext.core.results.Blocked`), a lock is *held by* its owner(s) (from
:class:`~crash_ext.core.results.LockReport`); how held-by edges are found and inferred is
:mod:`.build`'s business, how the dump is read :mod:`.collection`'s.

Strongly connected components are found with an iterative Tarjan (no recursion limit at
thousands of nodes); every elementary cycle of each component is listed (bounded).
Tasks that reach a cycle are "behind" it; the rest form convoys, grouped by the root
they end at (a task waiting on something other than a lock, a running task, a lock
whose holder is unknown).

Pure functions of the records: nothing here reads the kernel (render imports it).
"""

from ..core.record import dataclass, field
from ..compat import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

from ..core.results import Blocked, Candidate, LockReport, TaskRef, Wait, task_label
from ..core.excluded import EXCLUDED

__all__ = ["HeldBy", "LockNode", "Step", "Cycle", "BehindTask", "Convoy", "WaitForGraph",
           "WaitFor", "Node", "waits_at", "wait_node", "WAIT_TYPES", "analyse",
           "tarjan_scc", "simple_cycles", "restrict_to_pid", "MAX_CYCLES"]

MAX_CYCLES = 64            # elementary cycles listed per component
MAX_CYCLE_STEPS = 200000   # search steps per component before giving up the listing

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
    ``component`` numbers the strongly connected component it belongs to.
    ``confirmed``: on a live system, how a second read confirmed it
    (:mod:`.liveconfirm`); None on a dump."""
    steps: List[Step]
    inferred: bool
    component: int
    orders: List[Tuple[int, int]] = field(default_factory=list)
    behind: List[BehindTask] = field(default_factory=list)
    confirmed: Optional[str] = None


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
    #: the dump's panic (session/panic.PanicFacts), set by the verb; None: not read
    panic: Optional[object] = None

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
            # a stack word on a page makedumpfile left out may be the lock: say so
            gone = [e for e in b.evidence if EXCLUDED in e]
            return "waits on a %s it could not be tied to (%s%s)" % (
                b.lock_type, b.function or "?", "; %s" % gone[0] if gone else "")
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
