"""The *must* analysis of the holds analysis (:mod:`.holds`): the locks a function holds
on every path from its entry to a call site, and what a function's callers may take from
its summary (steps 1 and 2 of :mod:`.holds`); step 3 starts here: where each held value
lives at the call site (:func:`loc_text`)."""

import re
from ..compat import Callable, Dict, List, NamedTuple, Optional, Set, Tuple

from ..models import lockcalls as LC
from ..models import x86
from ..models.disasm import Insn
from . import flow as fl
from . import flowrun
from .holdrecords import MASK, Acq, ArgExpr, SiteLock, Summary, base_name, what_text

#: functions longer than this are not summarised (treated as taking and releasing
#: nothing -- never as releasing, which would need their code)
MAX_SUMMARY_INSNS = 4000


MAX_PASSES = 40


Key = Tuple[str, int]


#: a lock held on some paths: its address, kind and mode (one address may be taken as
#: different kinds on different paths: a union of lock types)
MayKey = Tuple[str, int, str, Optional[str]]


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
    name = base_name(ins.branch_target_sym()) or ""
    return not re.match(r"^%s\.cold(\.\d+)?$" % re.escape(flow.func), name)


SummaryFn = Callable[[Insn], Optional[Summary]]


def _apply_call(flow: fl.Flow, f: _Facts, i: int, summary_of: Optional[SummaryFn]) -> None:
    ins = flow.insns[i]
    st = flow.states.get(i)
    if st is None:
        return
    name = base_name(ins.branch_target_sym())
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
                      (name or "?", len(s.may_acquire), what_text(a)))
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
            succ_cache[i] = flowrun.successors(flow, i)
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
        for s in flowrun.successors(flow, i):
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
    flowrun.run(flow, len(insns) - 1, dis_fn=dis_fn)
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
        if LC.primitive(base_name(ins.branch_target_sym())) is not None:
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
    flowrun.run(flow, end, dis_fn=dis_fn)
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
