"""Control flow and the fixpoint of :mod:`.flow`'s symbolic execution: the successors of
an instruction, the join of states where paths meet, and :func:`run` from a function's
entry to one of its instructions."""

import heapq
import re
from ..compat import Callable, Dict, List, Optional, Set

from ..models import x86
from ..models.disasm import parse_dis
from .flow import MAX_VISITS, Flow, State, Val, fmt_off, node, signed, step


def successors(flow: Flow, i: int) -> List[int]:
    """Return the instruction indexes control may pass to after instruction ``i`` of
    ``flow``: the next one unless a ``ret``/``ud2``/``jmp`` ends the way, and a jump's
    target when it lies inside the function."""
    ins = flow.insns[i]
    m = ins.mnemonic
    out = []
    nxt = i + 1 if i + 1 < len(flow.insns) else None
    if x86.is_return(m) or m in ("ud2",):
        return out
    if x86.is_jump(m):
        t = ins.branch_target()
        if t is not None and t in flow.index:
            out.append(flow.index[t])
        if m != "jmp" and nxt is not None:
            out.append(nxt)
        return out
    if nxt is not None:
        out.append(nxt)
    return out


def _cold_targets(flow: Flow, dis_fn: Optional[Callable[[int], str]]) -> Set[int]:
    """Instructions of this function that its ``.cold`` part jumps back to."""
    colds = {}  # type: Dict[str, int]
    base = flow.func
    for ins in flow.insns:
        if x86.is_jump(ins.mnemonic):
            t = ins.branch_target()
            name = (ins.branch_target_sym() or "").split("+")[0]
            if t is not None and name != base and \
                    re.match(r"^%s\.cold(\.\d+)?$" % re.escape(base), name):
                colds.setdefault(name, t)
    out = set()  # type: Set[int]
    for c in sorted(colds):
        text = None
        if dis_fn is not None:
            try:
                text = dis_fn(colds[c])
            except Exception as e:  # noqa: BLE001 - any failure means "not followed"
                flow.warnings.append("could not disassemble %s: %s" % (c, e))
        if not text:
            flow.warnings.append("%s jumps to %s, which was not followed; values at "
                                 "instructions it may jump back to are uncertain" % (base, c))
            continue
        for ins in parse_dis(text):  # cold parts are small and rare: no memo
            t = ins.branch_target()
            if t is not None and t in flow.index:
                out.add(flow.index[t])
    return out


def _join(flow: Flow, states: List[State], i: int, havoc: bool) -> State:
    ins = flow.insns[i]
    where = ins.where
    if len(states) == 1 and not havoc:
        return states[0]
    out = State()
    groups = {}  # type: Dict[tuple, str]

    def merged(loc: str, vals: List[Val]) -> Val:
        first = vals[0]
        if all(v.same(first) for v in vals[1:]):
            return first
        sig = tuple((v.node, v.off) for v in vals)
        n = groups.get(sig)
        if n is None:
            n = node(flow.fid, "phi", where, loc)
            groups[sig] = n
        return Val(n, 0, ("%s differs between paths merging at %s" % (loc, where),))

    for r in x86.GPRS:
        v = merged("%" + r, [s.regs[r] for s in states])
        if r == "rsp" and v.node not in flow.stack_nodes:
            flow.stack_nodes.add(v.node)
        out.regs[r] = v
    keys = set(states[0].mem)
    for s in states[1:]:
        keys &= set(s.mem)
    for k in sorted(keys):
        out.mem[k] = merged("[%s%s]" % (k[0], fmt_off(k[1])), [s.mem[k] for s in states])
        out.info[k] = states[0].info[k]
    for s in states:
        for nd, off in s.escaped.items():
            cur = out.escaped.get(nd)
            if cur is None or signed(off) < signed(cur):
                out.escaped[nd] = off
    if havoc:
        for r in x86.GPRS:
            if r != "rsp":
                out.regs[r] = Val(node(flow.fid, "havoc", where, r), 0)
        for k in list(out.mem):
            if not out.info[k].pushed:
                del out.mem[k]
                del out.info[k]
    return out


def entry_state(flow: Flow) -> State:
    """The state at the first instruction: every register is its ``entry`` symbol."""
    st = State()
    for r in x86.GPRS:
        st.regs[r] = Val(flow.entry(r), 0)
    return st


def run(flow: Flow, end: int, dis_fn: Optional[Callable[[int], str]] = None,
        stop_at_control: bool = False, init: Optional[State] = None) -> Flow:
    """Compute ``flow.state``: the state before instruction ``end``.

    ``stop_at_control``: run only the straight line from the entry (used for a callee
    that is suspended in its prologue, e.g. ``__switch_to_asm``): stop at the first
    branch, call, or %rsp load, whichever comes first, and take the state there.
    ``init``: the state at the first instruction (default: every register its
    ``entry`` symbol); ``flow.states`` keeps the state before every reached instruction.
    Sets ``flow.error`` (and leaves ``state`` None) when ``end`` is not reached.
    """
    flow.end = end
    if not flow.insns:
        flow.error = "no instructions"
        return flow
    if stop_at_control:
        st = init.copy() if init is not None else entry_state(flow)
        for i in range(min(end, len(flow.insns))):
            ins = flow.insns[i]
            if ins.mnemonic == "call" or x86.is_jump(ins.mnemonic) or \
                    x86.is_return(ins.mnemonic):
                break
            if "rsp" in ins.writes() and ins.mnemonic not in ("push", "pop", "add", "sub"):
                break
            st = step(flow, st, i)
        flow.state = st
        return flow
    n = len(flow.insns)
    preds = {}  # type: Dict[int, List[int]]
    for i in range(n):
        for s in successors(flow, i):
            preds.setdefault(s, []).append(i)
    havoc_targets = _cold_targets(flow, dis_fn)
    start = init.copy() if init is not None else entry_state(flow)
    in_states = {0: start}  # type: Dict[int, State]
    out_states = {}  # type: Dict[int, State]
    sigs = {}  # type: Dict[int, tuple]
    visits = {}  # type: Dict[int, int]
    work = [0]
    queued = {0}
    while work:
        i = heapq.heappop(work)
        queued.discard(i)
        visits[i] = visits.get(i, 0) + 1
        if visits[i] > MAX_VISITS:
            flow.error = "no fixpoint at %s" % flow.insns[i].where
            return flow
        # run straight-line from i while successors have a single predecessor
        st = in_states[i]
        j = i
        while True:
            out = step(flow, st, j)
            succ = successors(flow, j)
            if len(succ) == 1 and len(preds.get(succ[0], ())) == 1 and \
                    succ[0] not in havoc_targets and succ[0] != 0:
                k = succ[0]
                in_states[k] = out
                st = out
                j = k
                continue
            out_states[j] = out
            for k in succ:
                srcs = [out_states[p] for p in preds.get(k, ()) if p in out_states]
                if k == 0:
                    srcs = [start] + srcs
                new = _join(flow, srcs, k, k in havoc_targets)
                sig = new.signature()
                if sigs.get(k) != sig:
                    sigs[k] = sig
                    in_states[k] = new
                    if k not in queued:
                        heapq.heappush(work, k)
                        queued.add(k)
            break
    flow.states = in_states
    if end not in in_states:
        flow.error = "%s is not reached from the function entry in the disassembly" % (
            flow.insns[end].where if end < n else "the call site")
        return flow
    flow.state = in_states[end]
    return flow
