"""What a task holds: the locks each frame's code took before its current call and has
not released on the way (the ``holds`` analysis).

For one function and one call site (the instruction before a frame's return address):

1. The function is run symbolically (:mod:`.flow`, the dataflow ``argrecover`` uses),
   so the lock argument of every earlier call is a value ``symbol + offset``: a
   constant (``down(&some_global_sem)``, RIP-relative or immediate), or an entry
   register, a load, ... of this function.
2. A forward *must* analysis over its control-flow graph keeps the locks acquired on
   every path from the entry to the call site: a call of a lock primitive
   (:mod:`~crash_ext.models.lockcalls`) acquires; a trylock (or ``_interruptible``/
   ``_killable``) acquires only on the branch where its return value says success; a
   release of the same lock removes it, and a release of a lock of the same kind whose
   address cannot be told apart removes it too (never claim a lock the code may have
   dropped).  A direct callee is summarised once per function ("acquires arg0+0x50 as a
   semaphore", "releases arg0+0x50"), from its own primitives, and that summary is
   applied at each call of it (wrappers like ``xfs_ilock(ip)``, ``inode_lock(inode)``,
   ``mmap_read_lock(mm)``).
3. Each held value is located where the dump keeps it at the call site: a constant, a
   callee-saved register (its value from ``argrecover``), a stack slot of the frame, an
   argument ``argrecover`` recovered, or memory loaded through one of those.

Per-function work (disassembly, flows, summaries, the held values at a call site) is
cached per analyser (one per port); per task only the locations are read.

Where the kernel records held locks itself (lockdep's ``task_struct.held_locks`` on
debug kernels) :func:`lockdep_held` reads them, and they come first.
"""

import re
from ..core.record import dataclass, field
from ..compat import Callable, Dict, List, NamedTuple, Optional, Set, Tuple

from ..models import lockcalls as LC
from ..models import locks as L
from ..models import x86
from ..models.disasm import Insn
from ..models.waitframes import SCHED_FUNCS, classify_function
from ..core.caches import HOLDS, HeldWeakly
from ..core.errors import CrashExtError
from . import flow as fl
from .argrecords import parsed, task_words
from .sources import sources_for

__all__ = ["HeldLock", "TaskHolds", "Summary", "SiteLock", "HoldsAnalyser",
           "analyser_for", "function_holds", "summarise", "lockdep_held", "code_holders",
           "lockdep_locks", "lockdep_matches"]

MASK = (1 << 64) - 1
#: callees of a frame's function are summarised from their own calls of lock
#: primitives (depth 0: the wrappers ``xfs_ilock``, ``mmap_read_lock`` call them
#: directly); each level deeper also summarises the callees' callees (depth 1: a
#: dispatcher calling wrappers, ``lab_take`` -> ``lab_mutex_lock`` -> ``mutex_lock``)
SUMMARY_DEPTH = 1
#: functions longer than this are not summarised (treated as taking and releasing
#: nothing -- never as releasing, which would need their code)
MAX_SUMMARY_INSNS = 4000
MAX_PASSES = 40

Key = Tuple[str, int]
#: a lock held on some paths: its address, kind and mode (one address may be taken as
#: different kinds on different paths: a union of lock types)
MayKey = Tuple[str, int, str, Optional[str]]


class Acq(NamedTuple):
    """A lock a function's code holds: its address as a flow value (``node``+``off``),
    kind and mode, the call that took it and, for a wrapper, the wrapper's own words."""
    node: str
    off: int
    kind: str
    mode: Optional[str]
    call: str            # the function called: 'down', 'lab_xnode_ilock'
    where: str           # the call site: 'lab_gsem_a_section+92'
    via: Optional[str]   # a wrapper's summary line, or None for a primitive
    #: for a lock taken on some paths only (a callee that takes one of several locks,
    #: ``lab_take``/``xfs_ilock(ip, flags)``): (the callee, how many it may take, this
    #: one in the callee's words: ``arg0+0x58 as a mutex``)
    may: Optional[Tuple[str, int, str]] = None


class ArgExpr(NamedTuple):
    """A lock address in a summary: ``reg`` at the function's entry (the constant 0 when
    None), through the memory loads ``loads`` (each: add it, then read a pointer there:
    ``d_inode(l->path.dentry)``), plus ``off``."""
    reg: Optional[str]
    off: int
    kind: str
    mode: Optional[str]
    how: str             # 'down at lab_xnode_ilock+31'
    loads: Tuple[int, ...] = ()


@dataclass
class Summary:
    """What calling a function does to locks: ``acquires`` on every path to its returns,
    ``releases`` (of locks it did not take itself) on some path, and the kinds it
    releases at addresses not expressible in its arguments (``releases_unknown``)."""
    name: str
    acquires: List[ArgExpr] = field(default_factory=list)
    releases: List[ArgExpr] = field(default_factory=list)
    releases_unknown: Set[str] = field(default_factory=set)
    #: locks taken on some paths to its returns but not on all, and released on none
    may_acquire: List[ArgExpr] = field(default_factory=list)

    def describe(self, a: ArgExpr) -> str:
        """``lab_xnode_ilock takes its arg0+0x50 as a semaphore (down at ...)``; for one
        of :attr:`may_acquire`, ``lab_take may take ... (one of its 6 path-dependent
        locks; ...)``."""
        if a in self.may_acquire:
            return "%s may take %s (one of the %d locks it takes on different paths; " \
                   "%s)" % (self.name, _what(a), len(self.may_acquire), a.how)
        return "%s takes %s (%s)" % (self.name, _what(a), a.how)


class SiteLock(NamedTuple):
    """A lock held at one call site, located: ``loc`` is ('const', value),
    ('reg', callee-saved register, delta), ('slot', offset from the entry %rsp, delta),
    ('arg', argument register, delta), ('load', inner location, delta), or None (the
    address is kept nowhere the dump shows)."""
    acq: Acq
    loc: Optional[tuple]
    released_by: str     # the release calls that were looked for, for evidence
    at: str              # the call site: 'lab_gsem_a_section+111'
    rsp: Optional[int]   # %rsp at the call site minus %rsp at entry, when known


@dataclass
class HeldLock:
    """A lock a task holds, with how that is known.  ``source``: 'code' (this module's
    analysis of frame ``frame``), 'lockdep' (recorded by the kernel) or 'owner' (the
    lock's own owner field, :func:`~crash_ext.waits.collection.owned_locks`); ``weak``: the
    address rests on memory read now (it may have changed since);
    ``path_dependent``: the frame's code takes it on some paths only (a dispatcher),
    and the lock's state in the dump is what says it was this path."""
    address: int
    kind: str
    mode: Optional[str]
    frame: Optional[int]
    function: Optional[str]
    source: str
    evidence: List[str] = field(default_factory=list)
    weak: bool = False
    path_dependent: bool = False


@dataclass
class TaskHolds:
    """What one task holds (``held``), innermost frame first, and what could not be
    told (``notes``: a held lock whose address is kept nowhere, a frame not analysed)."""
    task: int
    pid: Optional[int] = None
    held: List[HeldLock] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def _mode_words(mode: Optional[str]) -> str:
    return {"reader": " for reading", "writer": " for writing"}.get(mode or "", "")


def _article(kind: str) -> str:
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


def _what(a: ArgExpr) -> str:
    """``arg0+0x58 as a mutex``, ``[[arg0+0x88]+0x30]+0xa0 as an rw_semaphore for
    writing``."""
    return "%s as %s%s" % (_expr_text(a), _article(a.kind), _mode_words(a.mode))


def _expr_text(a: ArgExpr) -> str:
    if a.reg is None and not a.loads:
        return "%x" % (a.off & MASK)
    if a.reg is None:
        text = "0"
    else:
        i = x86.ARG_REGS.index(a.reg) if a.reg in x86.ARG_REGS else None
        text = "arg%d" % i if i is not None else "%" + a.reg
    for d in a.loads:
        text = "[%s%s]" % (text, "%+#x" % fl.signed(d) if d else "")
    return text + ("%+#x" % fl.signed(a.off) if a.off else "")


def _base(sym: Optional[str]) -> Optional[str]:
    return sym.split("+")[0] if sym else None


# ------------------------------------------------------------------- the must analysis

class _Facts:
    """Held locks {key: Acq} (on every path), locks a callee took on some of its paths
    (``may``: {MayKey: Acq}, on some path here), pending trylocks {return-value symbol:
    (Acq, success)}, and (for summaries) releases of locks not taken here."""
    __slots__ = ("held", "may", "tent", "rel", "rel_unknown")

    def __init__(self):
        self.held = {}  # type: Dict[Key, Acq]
        self.may = {}  # type: Dict[MayKey, Acq]
        self.tent = {}  # type: Dict[str, Tuple[Acq, str]]
        self.rel = {}  # type: Dict[Key, Tuple[str, bool, str]]   # kind, direct, how
        self.rel_unknown = set()  # type: Set[str]

    def copy(self) -> "_Facts":
        f = _Facts()
        f.held = dict(self.held)
        f.may = dict(self.may)
        f.tent = dict(self.tent)
        f.rel = dict(self.rel)
        f.rel_unknown = set(self.rel_unknown)
        return f

    def sig(self):
        return (tuple(sorted(self.held)),
                tuple(sorted(_order(k) for k in self.may)), tuple(sorted(self.tent)),
                tuple(sorted(self.rel)), tuple(sorted(self.rel_unknown)))


def _meet(a: Optional[_Facts], b: _Facts, demote: bool = False) -> _Facts:
    """The facts where paths ``a`` and ``b`` merge; ``demote``: a lock held on one of
    them only is kept as held on some paths (a summary's dispatcher: the caller learns
    "it may take X"), else dropped (at a call site: a loop's earlier round or another
    branch took it, and the dump's lock state alone cannot tell a round apart)."""
    if a is None:
        return b.copy()
    out = _Facts()
    out.held = {k: v for k, v in a.held.items() if k in b.held and b.held[k].kind == v.kind}
    out.may = dict(b.may)
    out.may.update(a.may)
    for side in (a, b) if demote else ():     # held on one side only
        for k, v in side.held.items():
            mk = _may_key(k, v)
            if k not in out.held and mk not in out.may:
                out.may[mk] = v
    out.tent = {k: v for k, v in a.tent.items() if k in b.tent}
    out.rel = dict(a.rel)
    out.rel.update(b.rel)
    out.rel_unknown = a.rel_unknown | b.rel_unknown
    return out


def _may_key(k: Key, a: Acq) -> MayKey:
    return (k[0], k[1], a.kind, a.mode)


def _order(k: MayKey) -> tuple:
    """A sort key for a MayKey (its mode may be None)."""
    return k[:3] + (k[3] or "",)


def _distinct(a: Key, b: Key) -> bool:
    """True when two lock addresses are certainly different."""
    if a[0] == b[0]:
        return a[1] != b[1]
    return False


def _release(f: _Facts, key: Optional[Key], kind: str, call: str, where: str,
             direct: bool = True) -> None:
    """Apply a release of the lock at ``key`` (None: unknown address) of ``kind``;
    ``direct``: by a primitive this function calls (not inside a summarised callee)."""
    for k, a in list(f.may.items()):
        if a.kind == kind and (key is None or not _distinct(k[:2], key)):
            del f.may[k]
    if key is not None and key in f.held:
        del f.held[key]
        return
    for k, a in list(f.held.items()):
        if a.kind == kind and (key is None or not _distinct(k, key)):
            del f.held[k]
    if key is None:
        f.rel_unknown.add(kind)
    else:
        f.rel[key] = (kind, direct, "%s at %s" % (call, where))


def _test_of(flow: fl.Flow, i: int) -> Optional[Tuple[str, str]]:
    """For a conditional jump at ``i`` right after ``test R,R``/``cmp $0,R``: return
    (symbol of R's value, 'zero'|'nonzero': the condition under which it is taken), or
    None."""
    ins = flow.insns[i]
    if ins.mnemonic in ("je", "jz"):
        taken = "zero"
    elif ins.mnemonic in ("jne", "jnz"):
        taken = "nonzero"
    else:
        return None
    for j in range(i - 1, max(i - 4, -1), -1):
        t = flow.insns[j]
        if t.mnemonic in ("mov", "movabs", "lea", "nop"):
            continue
        ops = t.operands
        reg = None
        if t.mnemonic == "test" and len(ops) == 2 and ops[0].kind == "reg" and \
                ops[1].kind == "reg" and ops[0].reg == ops[1].reg:
            reg = ops[0].reg
        elif t.mnemonic == "cmp" and len(ops) == 2 and ops[0].kind == "imm" and \
                ops[0].imm == 0 and ops[1].kind == "reg":
            reg = ops[1].reg
        if reg is None or x86.canonical(reg) is None:
            return None
        st = flow.states.get(j)
        if st is None:
            return None
        v = st.regs[x86.canonical(reg)]
        zx = fl.zx32_parts(v.node)
        sym = zx[0] if zx is not None and zx[1] == 0 else v.node
        return (sym, taken) if v.off == 0 else None
    return None


def _tail_exit(flow: fl.Flow, ins: Insn) -> bool:
    """True for a ``jmp`` that leaves the function (a tail call), not into its .cold part."""
    if ins.mnemonic != "jmp":
        return False
    t = ins.branch_target()
    if t is None or t in flow.index:
        return False
    name = _base(ins.branch_target_sym()) or ""
    return not re.match(r"^%s\.cold(\.\d+)?$" % re.escape(flow.func), name)


SummaryFn = Callable[[Insn], Optional[Summary]]


def _apply_call(flow: fl.Flow, f: _Facts, i: int, summary_of: Optional[SummaryFn]) -> None:
    ins = flow.insns[i]
    st = flow.states.get(i)
    if st is None:
        return
    name = _base(ins.branch_target_sym())
    prim = LC.primitive(name)
    if prim is not None:
        v = st.regs[x86.ARG_REGS[prim.arg]]
        key = (v.node, v.off)
        acq = Acq(v.node, v.off, prim.kind, prim.mode, prim.name, ins.where, None)
        if prim.action == "acquire":
            f.held[key] = acq
        elif prim.action == "try":
            f.tent[fl.node(flow.fid, "ret", ins.where, name)] = (acq, prim.success)
        elif prim.action == "release":
            _release(f, key, prim.kind, prim.name, ins.where)
        elif prim.action == "downgrade" and key in f.held:
            f.held[key] = f.held[key]._replace(mode="reader")
        return
    s = summary_of(ins) if summary_of is not None and ins.branch_target() is not None \
        else None
    if s is None:
        return

    def at_call(a: ArgExpr) -> Key:
        if a.reg is None:
            node_, off = fl.CONST, 0
        else:
            v = st.regs[a.reg]
            node_, off = v.node, v.off
        for d in a.loads:       # the callee's loads, as values of this function
            ld = fl.node(flow.fid, "load", ins.where, "[%s%+#x]" % (node_, off + d))
            flow.loads[ld] = fl.Val(node_, (off + d) & MASK)
            node_, off = ld, 0
        return (node_, (off + a.off) & MASK)

    for a in s.releases:
        _release(f, at_call(a), a.kind, name or "?", ins.where, False)
    for kind in sorted(s.releases_unknown):
        _release(f, None, kind, name or "?", ins.where, False)
    for a in s.acquires:
        k = at_call(a)
        f.held[k] = Acq(k[0], k[1], a.kind, a.mode, name or "?", ins.where, s.describe(a))
    for a in s.may_acquire:
        k = at_call(a)
        if k not in f.held:
            acq = Acq(k[0], k[1], a.kind, a.mode, name or "?", ins.where, s.describe(a),
                      (name or "?", len(s.may_acquire), _what(a)))
            f.may[_may_key(k, acq)] = acq


def _analyse(flow: fl.Flow, summary_of: Optional[SummaryFn],
             relevant: Optional[Set[int]] = None, demote: bool = False
             ) -> Dict[int, _Facts]:
    """Return the facts before each reached instruction (must analysis; see the module
    doc).  ``relevant``: the instructions whose callees are worth summarising (those
    that can reach the call site of interest); others apply only primitives.
    ``demote``: see :func:`_meet`."""
    n = len(flow.insns)
    succ_cache = {}  # type: Dict[int, List[int]]
    ins_facts = {0: _Facts()}  # type: Dict[int, _Facts]
    sigs = {}  # type: Dict[int, tuple]
    work = [0]
    passes = {}  # type: Dict[int, int]
    while work:
        i = work.pop()
        passes[i] = passes.get(i, 0) + 1
        if passes[i] > MAX_PASSES:
            return {}           # no fixpoint: claim nothing rather than half an answer
        f = ins_facts[i].copy()
        ins = flow.insns[i]
        if ins.mnemonic == "call":
            _apply_call(flow, f, i, summary_of if relevant is None or i in relevant
                        else None)
        if i not in succ_cache:
            succ_cache[i] = fl.successors(flow, i)
        succ = succ_cache[i]
        test = _test_of(flow, i) if f.tent and x86.is_jump(ins.mnemonic) and \
            ins.mnemonic != "jmp" else None
        for k in succ:
            out = f
            if test is not None and test[0] in f.tent:
                out = f.copy()
                acq, success = out.tent.pop(test[0])
                taken = flow.insns[k].addr == ins.branch_target()
                zero = (test[1] == "zero") == taken
                if (success == "zero") == zero:
                    out.held[(acq.node, acq.off)] = acq
            new = _meet(ins_facts.get(k) if k in sigs else None, out, demote)
            s = new.sig()
            if sigs.get(k) != s:
                sigs[k] = s
                ins_facts[k] = new
                if k not in work and k < n:
                    work.append(k)
    return ins_facts


def _reaching(flow: fl.Flow, end: int) -> Set[int]:
    """The instructions from which ``end`` can be reached inside the function."""
    preds = {}  # type: Dict[int, List[int]]
    for i in range(len(flow.insns)):
        for s in fl.successors(flow, i):
            preds.setdefault(s, []).append(i)
    seen = {end}
    stack = [end]
    while stack:
        j = stack.pop()
        for p in preds.get(j, ()):
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def summarise(name: str, insns: List[Insn], summary_of: Optional[SummaryFn] = None,
              dis_fn: Optional[Callable[[int], str]] = None) -> Summary:
    """Return the :class:`Summary` of the function whose whole disassembly is ``insns``
    (``summary_of``: summaries of its own callees, None to use primitives only).
    Never raises; a function without usable code summarises as doing nothing."""
    s = Summary(name=name)
    if not insns or insns[0].offset != 0 or len(insns) > MAX_SUMMARY_INSNS or \
            _inert(insns, summary_of):
        return s
    flow = fl.Flow("#s", insns[0].func, insns)
    fl.run(flow, len(insns) - 1, dis_fn=dis_fn)
    if not flow.states:
        return s
    facts = _analyse(flow, summary_of, demote=True)
    exits = []  # type: List[_Facts]
    for i, ins in enumerate(insns):
        if i not in facts:
            continue
        if x86.is_return(ins.mnemonic):
            exits.append(facts[i])
        elif _tail_exit(flow, ins):
            f = facts[i].copy()
            _apply_call(flow, f, i, summary_of)     # the tail callee runs as our part
            exits.append(f)
    if not exits:
        return s
    must = None  # type: Optional[_Facts]
    for e in exits:
        must = _meet(must, e, True)
    entry = {flow.entry(r): r for r in x86.ARG_REGS}

    def chain(node_: str, depth: int = 3) -> Optional[Tuple[Optional[str], Tuple[int, ...]]]:
        if node_ == fl.CONST:
            return None, ()
        if node_ in entry:
            return entry[node_], ()
        a = flow.loads.get(node_)
        if a is None or depth == 0:
            return None
        inner = chain(a.node, depth - 1)
        return None if inner is None else (inner[0], inner[1] + (a.off & MASK,))

    def expr(node_: str, off: int, kind: str, mode, how: str) -> Optional[ArgExpr]:
        c = chain(node_)
        return None if c is None else ArgExpr(c[0], off, kind, mode, how, c[1])

    for (nd, off), a in sorted(must.held.items()):
        e = expr(nd, off, a.kind, a.mode, "%s at %s" % (a.call, a.where))
        if e is not None:
            s.acquires.append(e)
    s.may_acquire = _may_acquire(flow, facts, exits, must, summary_of, expr)
    for (nd, off), (kind, _direct, how) in sorted(must.rel.items()):
        e = expr(nd, off, kind, None, how)
        if e is not None:
            s.releases.append(e)
        else:
            s.releases_unknown.add(kind)
    s.releases_unknown |= must.rel_unknown
    return s


def _inert(insns: List[Insn], summary_of: Optional[SummaryFn]) -> bool:
    """True when the function of ``insns`` neither calls (or jumps to) a lock primitive
    nor a function whose summary does anything to locks: its summary is empty without
    running the analysis (most callees are such)."""
    for ins in insns:
        if ins.mnemonic != "call" and not x86.is_jump(ins.mnemonic):
            continue
        if LC.primitive(_base(ins.branch_target_sym())) is not None:
            return False
        t = ins.branch_target()
        if summary_of is None or t is None or insns[0].addr <= t <= insns[-1].addr:
            continue                        # nothing to ask, or a jump inside
        s = summary_of(ins)
        if s is not None and (s.acquires or s.releases or s.releases_unknown or
                              s.may_acquire):
            return False
    return True


def _may_acquire(flow: fl.Flow, facts: Dict[int, _Facts], exits: List[_Facts], must: _Facts,
                 summary_of: Optional[SummaryFn], expr) -> List[ArgExpr]:
    """The locks a function returns holding on some paths but not all (a dispatcher such
    as ``xfs_ilock(ip, flags)``): held at some exit, not at every one, and released
    nowhere in the function -- a lock it also releases on some path is the
    "take it if needed, drop it if taken" idiom the path-blind analysis cannot pair up,
    so it is not claimed."""
    some = {}  # type: Dict[MayKey, Acq]
    for e in exits:
        for k, a in list(e.held.items()) + list(e.may.items()):
            if k[:2] not in must.held:
                some.setdefault(_may_key(k[:2], a), a)
    if not some:
        return []
    released = []  # type: List[Tuple[Optional[Key], str]]
    for i in sorted(facts):
        if flow.insns[i].mnemonic == "call" or _tail_exit(flow, flow.insns[i]):
            r = _Facts()
            _apply_call(flow, r, i, summary_of)
            released.extend((k, v[0]) for k, v in r.rel.items())
            released.extend((None, kind) for kind in r.rel_unknown)
    out = []
    for (nd, off, _k, _m), a in sorted(some.items(), key=lambda it: _order(it[0])):
        if any(kind == a.kind and (k is None or not _distinct(k, (nd, off)))
               for k, kind in released):
            continue
        e = expr(nd, off, a.kind, a.mode, "%s at %s" % (a.call, a.where))
        if e is not None:
            out.append(e)
    return out


def function_holds(insns: List[Insn], end: int, summary_of: Optional[SummaryFn] = None,
                   dis_fn: Optional[Callable[[int], str]] = None, fid: str = "#h"
                   ) -> Tuple[List[SiteLock], Optional[str]]:
    """Return (locks held at instruction ``end`` -- a frame's call site --, problem):
    each located where the dump keeps it at that point (:class:`SiteLock`).  ``insns``:
    the function from its entry.  ``problem`` says why nothing could be analysed."""
    locks, _rel, problem = function_site(insns, end, summary_of, dis_fn, fid)
    return locks, problem


class SiteRelease(NamedTuple):
    """A release, on some path to a call site, of a lock the function did not take:
    ``loc`` as in SiteLock (None: its address is not known), ``how`` 'up at f+12'."""
    kind: str
    loc: Optional[tuple]
    how: str
    rsp: Optional[int]


def function_site(insns: List[Insn], end: int, summary_of: Optional[SummaryFn] = None,
                  dis_fn: Optional[Callable[[int], str]] = None, fid: str = "#h"
                  ) -> Tuple[List[SiteLock], List[SiteRelease], Optional[str]]:
    """Return (locks held at instruction ``end``, releases of locks taken by callers on
    some path to it, problem): see :func:`function_holds`.  The releases matter to the
    frames further out: a lock a caller took and this frame dropped (the page-fault path
    dropping ``mmap_lock`` before it sleeps) is not held."""
    if not insns or end >= len(insns):
        return [], [], "no disassembly up to the call site"
    if insns[0].offset != 0:
        return [], [], "the disassembly does not start at the function's entry"
    flow = fl.Flow(fid, insns[0].func, insns)
    fl.run(flow, end, dis_fn=dis_fn)
    if flow.error:
        return [], [], flow.error
    facts = _analyse(flow, summary_of, _reaching(flow, end))
    at = facts.get(end)
    if at is None:
        return [], [SiteRelease(k, None, "the lock analysis of %s" % insns[0].func, None)
                    for k in ("mutex", "rw_semaphore", "semaphore", "spinlock", "rwlock",
                              "rt_mutex")], \
            "the call site is not reached in the lock analysis"
    st = flow.state
    rsp = st.regs["rsp"]
    delta = fl.signed(rsp.off) if rsp.node == flow.entry("rsp") else None
    out = []
    for key, a in sorted(at.held.items()) + sorted(at.may.items(), key=lambda it: _order(it[0])):
        if a.may is not None and key[:2] in at.held:
            continue
        out.append(SiteLock(a, _locate(flow, st, a.node, a.off, 3),
                            LC.RELEASES.get(a.kind, "a release"), insns[end].where, delta))
    # releases by its own primitive calls (the "drop the lock, then sleep" idiom), and
    # those inside callees whose address is located here; a callee's release of an
    # address nothing here keeps (a loop's earlier step) is not taken as this one
    rels = []
    for k, (kind, direct, how) in sorted(at.rel.items()):
        loc = _locate(flow, st, k[0], k[1], 3)
        if direct or loc is not None:
            rels.append(SiteRelease(kind, loc, how, delta))
    return out, rels, None


def _locate(flow: fl.Flow, st: fl.State, node: str, off: int, depth: int):
    if node == fl.CONST:
        return ("const", off & MASK)
    for r in sorted(x86.CALLEE_SAVED):
        v = st.regs[r]
        if v.node == node:
            return ("reg", r, (off - v.off) & MASK)
    rsp = flow.entry("rsp")
    for k, v in sorted(st.mem.items()):
        if v.node == node and k[0] == rsp:
            return ("slot", fl.signed(k[1]), (off - v.off) & MASK)
    for r in x86.ARG_REGS:
        if node == flow.entry(r):
            return ("arg", r, off & MASK)
    if depth > 0 and node in flow.loads:
        a = flow.loads[node]
        inner = _locate(flow, st, a.node, a.off, depth - 1)
        if inner is not None:
            return ("load", inner, off & MASK)
    return None


def loc_text(loc) -> str:
    """Words for a SiteLock location."""
    kind = loc[0]
    if kind == "const":
        return "a constant in the code"
    d = ("%+#x" % fl.signed(loc[-1])) if loc[-1] else ""
    if kind == "reg":
        return "%%%s%s at the call" % (loc[1], d)
    if kind == "slot":
        return "the stack slot at entry %%rsp%+#x%s" % (loc[1], d)
    if kind == "arg":
        return "argument %%%s%s" % (loc[1], d)
    if kind == "load":
        return "memory at (%s)%s" % (loc_text(loc[1]), d)
    return "?"


def held_now(port, addr: int, kind: str, task: int) -> Tuple[bool, str, Optional[str]]:
    """Return (the dump agrees ``task`` may hold it, words why, mode) for the lock of
    ``kind`` at ``addr``: it must decode as locked, with a sound wait list, and an owner
    field that names ``task`` or nobody; a spinning lock only when its owner field
    names ``task`` (a task asleep holds none; PREEMPT_RT's record their owner).
    ``mode``: 'writer'/'reader' when the lock's state tells.  Never raises."""
    try:
        lay = L.probe_layout(port, kind)
        raw = port.read(addr, lay.size)
    except CrashExtError as e:
        return False, "cannot read it as %s: %s" % (_article(kind), e), None
    st = L.decode_state(lay, raw, read_u64=port.read_u64)
    if not st.locked:
        return False, "free in the dump" if st.locked is False else \
            "its state does not say locked", None
    if st.owner_task is not None and st.owner_task != task:
        return False, "its owner field names another task (%x)" % st.owner_task, None
    if lay.wait_kind is not None:
        ww = L.walk_waiters(port, lay, addr, raw, cap=64)
        if ww.damaged:
            return False, "not %s: %s" % (_article(kind), ww.damaged), None
        if any(e.task == task for e in ww.entries):
            return False, "the task waits for it itself", None
    if kind in ("spinlock", "rwlock") and st.owner_task != task:
        return False, "a sleeping task holds no spinning lock", None
    words = ", ".join("%s=%s" % kv for kv in sorted(st.fields.items()))
    who = "its owner field names this task" if st.owner_task == task else \
        "it records no owner"
    return True, "locked in the dump (%s; %s)" % (words, who), st.mode


# ------------------------------------------------------------------- lockdep

def lockdep_held(port, task: int) -> Optional[List[Tuple[int, Optional[int]]]]:
    """Return [(lockdep_map address, acquire_ip)] of the locks lockdep records as held
    by ``task`` (``task_struct.held_locks[0..lockdep_depth)``), or None when the kernel
    has no lockdep (no such members).  Raises MemoryReadError for unreadable memory."""
    off_h = port.member_offset("task_struct", "held_locks")
    off_d = port.member_offset("task_struct", "lockdep_depth")
    size = port.type_size("struct held_lock")
    off_i = port.member_offset("held_lock", "instance")
    if None in (off_h, off_d, size, off_i) or not size:
        return None
    off_ip = port.member_offset("held_lock", "acquire_ip")
    depth = port.read_u32(task + off_d)
    cap = 48        # MAX_LOCK_DEPTH
    out = []
    for i in range(min(depth, cap)):
        rec = task + off_h + i * size
        inst = port.read_u64(rec + off_i)
        ip = port.read_u64(rec + off_ip) if off_ip is not None else None
        out.append((inst, ip))
    return out


def dep_map_offsets(port) -> Dict[str, int]:
    """Return {lock kind: offset of its ``dep_map``} for the kinds that have one here."""
    out = {}  # type: Dict[str, int]
    for kind, typ in (("mutex", "mutex"), ("rw_semaphore", "rw_semaphore"),
                      ("spinlock", "spinlock"), ("rt_mutex", "rt_mutex")):
        off = port.member_offset(typ, "dep_map")
        if off is not None:
            out[kind] = off
    return out


# ------------------------------------------------------------------- per port

class HoldsAnalyser:
    """The holds analysis on one port, with its per-function caches.

    ``sources``: :class:`~crash_ext.code.sources.PortSources` (disassembly and argument
    recovery, shared with ``argrecover``)."""

    #: weakly: ``caches.HOLDS`` is keyed by it
    port = HeldWeakly()

    def __init__(self, port, sources=None):
        self.port = port
        self.src = sources or sources_for(port)
        self.summaries = {}  # type: Dict[Tuple[int, int], Optional[Summary]]
        self.sites = {}  # type: Dict[int, Tuple[List[SiteLock], List[SiteRelease], Optional[str]]]
        self.dep_maps = None  # type: Optional[Dict[str, int]]
        self.tasks = {}  # type: Dict[tuple, TaskHolds]
        self.has_lockdep = None  # type: Optional[bool]

    def rebind(self, port, fixed: bool) -> None:
        """Work through ``port``, a later port of this one's crash session (see
        :meth:`~crash_ext.core.caches.Cache.for_session`); what each task holds is dropped unless
        ``fixed`` (the stacks of a live system move)."""
        self.port = port
        self.src = sources_for(port)
        if not fixed:
            self.tasks = {}

    def _insns(self, addr: int) -> List[Insn]:
        return parsed(self.src.dis(addr) or "")

    def summary(self, addr: int, name: str, depth: int = SUMMARY_DEPTH) -> Optional[Summary]:
        """Return the Summary of the function at ``addr`` (cached), None when its code
        cannot be read."""
        key = (addr, depth)
        if key in self.summaries:
            return self.summaries[key]
        self.summaries[key] = None          # recursion guard
        try:
            insns = self._insns(addr)
        except CrashExtError:
            return None
        if not insns or insns[0].addr != addr:
            return None
        sub = self._summary_fn(depth - 1) if depth > 0 else None
        s = summarise(name, insns, sub, self.src.dis)
        self.summaries[key] = s
        return s

    def _summary_fn(self, depth: int) -> SummaryFn:
        def of(ins: Insn) -> Optional[Summary]:
            t = ins.branch_target()
            name = _base(ins.branch_target_sym())
            if t is None or name is None or "+" in (ins.branch_target_sym() or ""):
                return None
            if name in fl.PRESERVE_ALL_CALLS or name.startswith("__x86_indirect") or \
                    name.startswith("__stack_chk"):
                return None
            return self.summary(t, name, depth)
        return of

    def site(self, ret_addr: int) -> Tuple[List[SiteLock], List[SiteRelease], Optional[str]]:
        """Return (SiteLocks, SiteReleases, problem) for the call before ``ret_addr``
        (cached)."""
        if ret_addr in self.sites:
            return self.sites[ret_addr]
        try:
            insns = self._insns(ret_addr)
        except CrashExtError as e:
            r = ([], [], "no disassembly: %s" % e)   # type: tuple
            self.sites[ret_addr] = r
            return r
        idx = None
        for i, ins in enumerate(insns):
            if ins.addr == ret_addr:
                idx = i
                break
        if not idx or insns[idx - 1].mnemonic != "call":
            r = ([], [], "the instruction before the return address is not a call")
        else:
            r = function_site(insns, idx - 1, self._summary_fn(SUMMARY_DEPTH),
                              self.src.dis)
        self.sites[ret_addr] = r
        return r

    # -- per task --------------------------------------------------------------------
    def task_holds(self, bt, above: Optional[int] = None, args=None) -> TaskHolds:
        """Return what the task of back trace ``bt`` holds: lockdep's record when the
        kernel keeps one, else the locks its frames' code holds (frames with index
        greater than ``above``, the frame it blocks in, when given).  ``args``: its
        TaskArgs when already recovered (recovered here only when a lock's address
        needs it).  Never raises for unreadable code or memory (they become notes)."""
        key = (bt.task, above, args is None,
               tuple((f.sp, f.ret_addr) for f in bt.frames[:2]), len(bt.frames))
        got = self.tasks.get(key)
        if got is None:
            if len(self.tasks) > 65536:
                self.tasks.clear()
            got = self.tasks[key] = self._task_holds(bt, above, args)
        return got

    def _task_holds(self, bt, above, args) -> TaskHolds:
        out = TaskHolds(task=bt.task, pid=bt.pid)
        dep = self._lockdep(bt.task, out)
        if dep is not None:
            out.held = dep
            return out
        frames = sorted(bt.frames, key=lambda f: f.index)
        todo = []
        for f in frames:                        # innermost first
            if f.ret_addr is None or f.exception_rip or f.regs or f.function in SCHED_FUNCS:
                continue
            k, _m, o = classify_function(f.function)
            todo.append((f, (above is not None and f.index <= above) or k is not None or
                         o is not None))
        # the frames that may hold first; the inner ones (lock and wait code) are read
        # for their releases only when some frame holds a lock
        if not any(self.site(f.ret_addr)[0] for f, inner in todo if not inner):
            return out
        sites = []
        for f, inner in todo:
            locks, rels, _problem = self.site(f.ret_addr)
            if locks or rels:
                sites.append((f, [] if inner else locks, rels))
        words = None
        dropped = []  # type: List[Tuple[object, SiteRelease]]   # releases further in
        for f, locks, rels in sites:
            maybe = [sl for sl in locks if sl.acq.may is not None]
            for sl in locks:
                if sl.acq.may is not None:
                    continue
                if sl.loc is None:
                    out.notes.append(
                        "frame #%d %s holds %s taken by %s at %s, but its address is kept "
                        "nowhere the dump shows" % (f.index, f.function, _article(sl.acq.kind),
                                                    sl.acq.call, sl.acq.where))
                    continue
                if args is None and _needs_args(sl.loc):
                    args = self._args(bt)
                if words is None:
                    words = task_words(bt)
                val, how, weak = self._value(bt, f, sl.loc, args, words, sl.rsp)
                gone = self._released_further_in(bt, dropped, sl.acq.kind, val, args, words)
                if gone is not None:
                    out.notes.append("frame #%d %s took %s by %s at %s, but frame #%d %s may "
                                     "have released it (%s) before it blocked: not counted"
                                     % (f.index, f.function, _article(sl.acq.kind),
                                        sl.acq.call, sl.acq.where, gone[0].index,
                                        gone[0].function, gone[1].how))
                    continue
                if val is None:
                    out.notes.append("frame #%d %s holds %s taken by %s at %s; its address "
                                     "(%s) is not recovered%s" % (
                                         f.index, f.function, _article(sl.acq.kind),
                                         sl.acq.call, sl.acq.where, loc_text(sl.loc),
                                         ": " + how if how else ""))
                    continue
                out.held.append(HeldLock(
                    address=val, kind=sl.acq.kind, mode=sl.acq.mode, frame=f.index,
                    function=f.function, source="code", weak=weak,
                    evidence=[_evidence(f, sl, val, how)]))
            if maybe:
                if args is None and any(sl.loc and _needs_args(sl.loc) for sl in maybe):
                    args = self._args(bt)
                if words is None:
                    words = task_words(bt)
                self._path_dependent(bt, f, maybe, args, words, dropped, out)
            dropped.extend((f, r) for r in rels)
        return out

    def _path_dependent(self, bt, f, maybe: List[SiteLock], args, words, dropped,
                        out: TaskHolds) -> None:
        """Add to ``out`` the locks of ``maybe`` (frame ``f``'s callees took them on some
        paths: :attr:`Acq.may`) that the dump shows held (:func:`held_now`), one per
        address; a note for a call none of whose locks is."""
        groups = {}  # type: Dict[Tuple[str, str], List[SiteLock]]
        for sl in maybe:
            groups.setdefault((sl.acq.call, sl.acq.where), []).append(sl)
        for (call, where), sls in sorted(groups.items()):
            n = sls[0].acq.may[1]
            seen = {}  # type: Dict[int, list]
            why_not = []  # type: List[str]
            for sl in sls:
                what = sl.acq.may[2]
                if sl.loc is None:
                    why_not.append("%s: its address is kept nowhere the dump shows" % what)
                    continue
                val, how, weak = self._value(bt, f, sl.loc, args, words, sl.rsp)
                if val is None:
                    why_not.append("%s: address not recovered%s" % (
                        what, " (" + how + ")" if how else ""))
                    continue
                if self._released_further_in(bt, dropped, sl.acq.kind, val, args,
                                             words) is not None:
                    why_not.append("%s (%x): an inner frame may have released it" % (what, val))
                    continue
                ok, why, mode = held_now(self.port, val, sl.acq.kind, bt.task)
                if not ok:
                    why_not.append("%s (%x): %s" % (what, val, why))
                    continue
                seen.setdefault(val, []).append((sl, how, weak, why, mode))
            kept = 0
            for val, alts in sorted(seen.items()):
                kinds = sorted({a[0].acq.kind for a in alts})
                if len(kinds) > 1:
                    out.notes.append("frame #%d %s: %s at %s may have taken %x as %s: the "
                                     "dump does not tell which" % (
                                         f.index, f.function, call, where, val,
                                         " or ".join(_article(k) for k in kinds)))
                    continue
                sl, how, weak, why, mode = next(
                    (a for a in alts if a[4] and a[0].acq.mode == a[4]), alts[0])
                if mode is None and len({a[0].acq.mode for a in alts}) == 1:
                    mode = sl.acq.mode
                kept += 1
                ev = [_evidence(f, sl, val, how) + "; that path is inferred: the lock is "
                      "%s" % why]
                if why_not:
                    ev.append("the other locks %s takes on other paths are not held: %s"
                              % (call, "; ".join(why_not)))
                out.held.append(HeldLock(
                    address=val, kind=sl.acq.kind, mode=mode, frame=f.index,
                    function=f.function, source="code", weak=weak, path_dependent=True,
                    evidence=ev))
            if not kept:
                out.notes.append("frame #%d %s: %s at %s %s depending on the path; the dump "
                                 "shows %s held (%s)" % (
                                     f.index, f.function, call, where,
                                     "takes one of %d locks" % n if n else "takes a lock",
                                     "none of them" if n > 1 else "it not",
                                     "; ".join(why_not) or "no address known"))

    def _released_further_in(self, bt, dropped, kind: str, val: Optional[int], args, words):
        """The (frame, SiteRelease) of an inner frame that may have released a lock of
        ``kind`` at ``val`` (None: any), or None."""
        for g, r in dropped:
            if r.kind != kind:
                continue
            if r.loc is None or val is None:
                return g, r
            if _needs_args(r.loc) and args is None:
                args = self._args(bt)
            v, _how, _weak = self._value(bt, g, r.loc, args, words, r.rsp)
            if v is None or v == val:
                return g, r
        return None

    def _args(self, bt):
        try:
            return self.src.recover(bt)
        except CrashExtError:
            return None

    def _value(self, bt, f, loc, args, words, rsp=None):
        """(value, how, weak) of a location in frame ``f``; value None when unknown."""
        kind = loc[0]
        if kind == "const":
            return loc[1], "", False
        if kind in ("reg", "arg"):
            fa = args.frame(f.index) if args is not None else None
            if fa is None:
                return None, "argument recovery did not cover the frame", False
            if kind == "reg":
                v = fa.registers.get(loc[1])
                if v is None:
                    return None, "%%%s at the call is not recovered" % loc[1], False
                return (v + loc[2]) & MASK, "%%%s = %x, recovered by argrecover" % (
                    loc[1], v), False
            for a in fa.args:
                if a.register == loc[1] and a.status == "recovered" and a.value is not None:
                    return (a.value + loc[2]) & MASK, "its argument %s (%%%s) = %x " \
                        "(recovered by argrecover)" % (a.name, loc[1], a.value), a.weak
            return None, "argument %%%s is not recovered" % loc[1], False
        if kind == "slot":
            st_rsp = rsp
            if st_rsp is None:
                return None, "the frame's stack pointer is not known", False
            entry_rsp = (f.sp + 8 - st_rsp) & MASK
            addr = (entry_rsp + loc[1]) & MASK
            w = words.get(addr)
            if w is None:
                try:
                    w = self.port.read_u64(addr)
                except CrashExtError:
                    return None, "stack slot %x unreadable" % addr, False
            return (w + loc[2]) & MASK, "stack slot %x = %x" % (addr, w), False
        if kind == "load":
            inner, how, weak = self._value(bt, f, loc[1], args, words, rsp)
            if inner is None:
                return None, how, weak
            try:
                w = self.port.read_u64(inner)
            except CrashExtError:
                return None, "memory at %x unreadable" % inner, False
            return (w + loc[2]) & MASK, "%s; [%x] = %x read from the dump (assumed " \
                "unchanged since it was loaded)" % (how, inner, w), True
        return None, "", False

    def _lockdep(self, task: int, out: TaskHolds) -> Optional[List[HeldLock]]:
        if self.has_lockdep is False:
            return None
        try:
            recs = lockdep_held(self.port, task)
        except CrashExtError as e:
            out.notes.append("lockdep's held_locks could not be read: %s" % e)
            return None
        self.has_lockdep = recs is not None
        if recs is None:
            return None
        if self.dep_maps is None:
            self.dep_maps = dep_map_offsets(self.port)
        return lockdep_locks(recs, self.dep_maps, self.port.address_symbol)


def code_holders(port, backtraces: Dict[int, object], blocked: Dict[int, object],
                 locks: Set[int]) -> Dict[int, List[Tuple[int, HeldLock]]]:
    """Return {lock address: [(task, HeldLock)]} for the ``locks`` that tasks of
    ``backtraces`` hold by :meth:`HoldsAnalyser.task_holds` (frames above the one each
    blocks in, from ``blocked``: {task: Blocked}; running tasks are left out: their
    stacks move).  Never raises for crash errors."""
    out = {}  # type: Dict[int, List[Tuple[int, HeldLock]]]
    if not locks:
        return out
    an = analyser_for(port)
    for t, bt in backtraces.items():
        b = blocked.get(t)
        if b is None or getattr(b, "kind", None) == "running" or not getattr(bt, "frames", None):
            continue
        try:
            th = an.task_holds(bt, above=b.frame)
        except CrashExtError:
            continue
        for h in th.held:
            a = h.address
            if h.source == "lockdep" and a not in locks:
                a = next((x for x in locks for k in (an.dep_maps or {})
                          if lockdep_matches(h, x, k, an.dep_maps or {})), a)
            if a in locks and t not in [x[0] for x in out.get(a, [])]:
                out.setdefault(a, []).append((t, h))
    return out


def lockdep_locks(recs, dep_maps: Dict[str, int], sym_fn=None) -> List[HeldLock]:
    """Return HeldLocks for lockdep records [(dep_map address, acquire_ip)]: the lock
    address is the dep_map's minus its offset in the lock type, and that type is said
    only when every kind with a dep_map puts it at the same offset (kind 'unknown'
    otherwise, with the candidates in the evidence)."""
    out = []
    offs = sorted(set(dep_maps.values()))
    for inst, ip in recs:
        where = sym_fn(ip) if (sym_fn and ip) else None
        ev = "recorded by lockdep (task_struct.held_locks): lockdep_map %x, acquired " \
             "at %s" % (inst, where or ("%x" % ip if ip else "an unknown ip"))
        if len(offs) == 1 and len(dep_maps) == 1:
            kind = list(dep_maps)[0]
            out.append(HeldLock(address=(inst - offs[0]) & MASK, kind=kind, mode=None,
                                frame=None, function=where, source="lockdep", evidence=[ev]))
        else:
            cands = ", ".join("%s at %x" % (k, (inst - o) & MASK)
                              for k, o in sorted(dep_maps.items()))
            out.append(HeldLock(address=inst, kind="unknown", mode=None, frame=None,
                                function=where, source="lockdep",
                                evidence=[ev + "; the lock is the %s" % (
                                    "one whose dep_map this is: " + cands if cands else
                                    "object containing it")]))
    return out


def lockdep_matches(h: HeldLock, addr: int, kind: str, dep_maps: Dict[str, int]) -> bool:
    """True when lockdep record ``h`` is the lock ``addr`` of ``kind``."""
    if h.kind != "unknown":
        return h.address == addr
    off = dep_maps.get(kind)
    return off is not None and h.address == (addr + off) & MASK


def _needs_args(loc) -> bool:
    if loc[0] in ("reg", "arg"):
        return True
    return loc[0] == "load" and _needs_args(loc[1])


def _evidence(f, sl: SiteLock, val: int, how: str) -> str:
    a = sl.acq
    took = "acquired by %s at %s" % (a.call, a.where)
    if a.via:
        took += ", which %s" % a.via.split(" ", 1)[1]
    text = "frame #%d %s: %s%s, no %s on the way to the call at %s" % (
        f.index, f.function, took, _mode_words(a.mode) if not a.via else "",
        sl.released_by, sl.at)
    text += "; lock address %x from %s%s" % (val, loc_text(sl.loc), " (" + how + ")"
                                             if how else "")
    return text


def analyser_for(port) -> HoldsAnalyser:
    """Return the HoldsAnalyser shared by every use of ``port`` and of the ports made
    over it (a snapshot's stack-reading port is keyed by its ``base_port``), and, as
    :func:`~crash_ext.code.sources.sources_for` does, by the ports of one crash
    session when they have a ``session_identity`` (pykdump's: one port per verb call):
    the per-function caches live as long as the crash session, across verbs and runs.
    Its per-task answers are kept per back trace (the task's stack pointer), across
    verb calls only when the port's ``memory_fixed()`` says it reads a dump."""
    return HOLDS.for_session(port.base_port, HoldsAnalyser)
