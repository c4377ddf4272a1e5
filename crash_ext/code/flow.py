"""Symbolic execution of one function, from its entry to one instruction (a call site).

Values are ``Val(node, off)``: "the value of symbol ``node`` plus ``off``" (mod 2**64).
Symbols name what is not known inside the function: its entry registers
(``#4|entry|rdi``), values loaded from memory, call results, merges of different values
at join points (``phi``).  The constant symbol ``"0"`` makes ``Val("0", c)`` the
constant ``c``.  Nothing here reads the dump: :mod:`crash_ext.code.linking` ties the
symbols of neighbouring frames together and :mod:`crash_ext.code.recovery` to the stack
words crash printed.  Here: the values, states and one instruction's effect
(:func:`step`); the walk over the function, :func:`~.flowrun.run`, is in :mod:`.flowrun`.

The control-flow graph is built from the function's own direct jumps; jumps to its
``.cold`` part are followed back when the cold part's disassembly is available (the
state arriving from cold code is taken as unknown).  Join points merge states: a
location keeps its value only if every incoming path gives the same one.
"""

import re
from ..compat import Dict, List, NamedTuple, Optional, Set, Tuple

from ..models import x86
from ..models.disasm import Insn, Operand, rip_target

MASK = (1 << 64) - 1
CONST = "0"
MAX_STEPS = 8            # provenance steps kept per value
MAX_VISITS = 60          # per instruction, before giving up on a fixpoint

# Calls that preserve every register (ftrace/mcount hooks).
PRESERVE_ALL_CALLS = frozenset(("__fentry__", "mcount", "__mcount", "_mcount",
                                "__sanitizer_cov_trace_pc"))


class Val(NamedTuple):
    """Symbolic value ``node + off``; ``steps`` says, in words, how it got where it is."""
    node: str
    off: int
    steps: Tuple[str, ...] = ()

    def same(self, other: "Val") -> bool:
        """True when both denote the same value (provenance ignored)."""
        return self.node == other.node and self.off == other.off

    def plus(self, d: int, step: Optional[str] = None) -> "Val":
        """Return this value plus ``d`` with ``step`` appended to its provenance."""
        return Val(self.node, (self.off + d) & MASK, _add(self.steps, step))

    def moved(self, step: Optional[str]) -> "Val":
        """Return the same value with ``step`` appended to its provenance."""
        return Val(self.node, self.off, _add(self.steps, step))


def _add(steps: Tuple[str, ...], step: Optional[str]) -> Tuple[str, ...]:
    if not step:
        return steps
    s = steps + (step,)
    return s[-MAX_STEPS:]


def const(v: int, step: Optional[str] = None) -> Val:
    """Return the constant ``v`` as a Val."""
    return Val(CONST, v & MASK, (step,) if step else ())


def signed(v: int) -> int:
    """Return the 64-bit two's complement ``v`` as a Python signed int."""
    v &= MASK
    return v - (1 << 64) if v >> 63 else v


def fmt_off(off: int) -> str:
    """``-0xe0``/``0x10`` for a signed displacement."""
    off = signed(off)
    return "-%#x" % -off if off < 0 else "%#x" % off


MemKey = Tuple[str, int]


class MemInfo(NamedTuple):
    """How a tracked memory slot got its value: the storing instruction and operand."""
    where: str
    operand: str
    base: Optional[str]
    disp: int
    pushed: bool


class State:
    """Registers (all 16, always present), tracked 8-byte memory slots, and bookkeeping.

    ``mem`` maps (node, off) addresses to values; ``info`` says how each slot was
    written; ``escaped`` holds stack addresses whose address was handed out (passed in a
    register to a call or stored to memory): {stack node: lowest offset}.
    """
    __slots__ = ("regs", "mem", "info", "escaped")

    def __init__(self):
        self.regs = {}  # type: Dict[str, Val]
        self.mem = {}  # type: Dict[MemKey, Val]
        self.info = {}  # type: Dict[MemKey, MemInfo]
        self.escaped = {}  # type: Dict[str, int]

    def copy(self) -> "State":
        s = State()
        s.regs = dict(self.regs)
        s.mem = dict(self.mem)
        s.info = dict(self.info)
        s.escaped = dict(self.escaped)
        return s

    def signature(self):
        """A hashable summary used to detect fixpoints."""
        return (tuple(sorted((k, v.node, v.off) for k, v in self.regs.items())),
                tuple(sorted((k, v.node, v.off) for k, v in self.mem.items())),
                tuple(sorted(self.escaped.items())))


class Flow:
    """The result of running one function up to one instruction.

    ``fid``: prefix of this function's symbols (``#4``); ``insns``: its instructions;
    ``end``: index of the instruction the state is taken before (the call site);
    ``state``: the State there (None when ``error``); ``stack_nodes``: symbols that
    denote stack addresses (entry %rsp and any re-derived %rsp); ``entry_known``: False
    when the disassembly does not start at the function's entry (then the ``entry``
    symbols are "values at the first instruction shown"); ``warnings``: things that
    weaken the result (cold parts not followed, ...).
    """

    def __init__(self, fid: str, func: str, insns: List[Insn]):
        self.fid = fid
        self.func = func
        self.insns = insns
        self.end = None  # type: Optional[int]
        self.state = None  # type: Optional[State]
        self.stack_nodes = {node(fid, "entry", "", "rsp")}  # type: Set[str]
        self.entry_known = bool(insns) and insns[0].offset == 0
        self.warnings = []  # type: List[str]
        self.error = None  # type: Optional[str]
        self.index = {ins.addr: i for i, ins in enumerate(insns)}
        self.loads = {}  # type: Dict[str, Val]  load symbol -> address it was read from
        self.states = {}  # type: Dict[int, State]  state before each reached instruction

    @property
    def start(self) -> Optional[int]:
        """Address of the first instruction (the function entry when entry_known)."""
        return self.insns[0].addr if self.insns else None

    def entry(self, reg: str) -> str:
        """The symbol of ``reg``'s value at the function entry."""
        return node(self.fid, "entry", "", reg)


def zx32_node(v: Val) -> str:
    """The symbol for the low 32 bits of ``v`` (what a 32-bit register move keeps)."""
    if v.node.startswith("zx32:") and v.off == 0:
        return v.node
    return "zx32:%s:%x" % (v.node, v.off & MASK)


def zx32_parts(n: str) -> Optional[Tuple[str, int]]:
    """Return (symbol, offset) of a ``zx32`` symbol, or None for other symbols."""
    if not n.startswith("zx32:"):
        return None
    inner, off = n[5:].rsplit(":", 1)
    return inner, int(off, 16)


def node(fid: str, kind: str, where: str, what: str) -> str:
    """Build a symbol name ``fid|kind|where|what`` (see describe_node)."""
    return "%s|%s|%s|%s" % (fid, kind, where, what)


def describe_node(n: str) -> str:
    """Return words for symbol ``n``: ``%rdi at entry to frame #4``, ``the return value of
    the call at f+12``, ..."""
    if n == CONST:
        return "a constant"
    zx = zx32_parts(n)
    if zx is not None:
        return "the low 32 bits of %s" % describe_node(zx[0])
    parts = n.split("|")
    if len(parts) != 4:
        return n
    fid, kind, where, what = parts
    fr = "frame %s" % fid
    if kind == "entry":
        return "%%%s on entry to %s" % (what, fr)
    if kind == "ret":
        return "the value of %%rax returned by the call at %s" % where
    if kind == "clob":
        return "%%%s after the call at %s (not preserved across calls)" % (what, where)
    if kind == "load":
        return "a value loaded from %s at %s" % (what, where)
    if kind == "phi":
        return "%s after the merge of different paths at %s" % (what, where)
    if kind == "op":
        return "%%%s as computed at %s (not tracked)" % (what, where)
    if kind == "havoc":
        return "%%%s coming back from cold code at %s" % (what, where)
    if kind == "rsp":
        return "%%rsp re-derived at %s" % where
    return n


class _Ctx:
    def __init__(self, flow: Flow):
        self.flow = flow
        self.fid = flow.fid

    def fresh(self, kind: str, ins: Insn, what: str, step: Optional[str] = None) -> Val:
        return Val(node(self.fid, kind, ins.where, what), 0, (step,) if step else ())


def _opsize_from_suffix(raw: str) -> Optional[int]:
    m = raw.lower()
    if m.endswith("q"):
        return 8
    if m.endswith("l"):
        return 4
    if m.endswith("w"):
        return 2
    if m.endswith("b"):
        return 1
    return None


def _addr(st: State, ins: Insn, op: Operand) -> Optional[Val]:
    """The address a memory operand refers to, or None when not computable."""
    if op.kind != "mem" or op.seg:
        return None
    if op.base == "rip":
        t = rip_target(ins, op)
        return const(t) if t is not None else None
    if op.base:
        if x86.width(op.base) != 64:
            return None
        v = st.regs[x86.canonical(op.base)]
    else:
        v = const(0)
    v = Val(v.node, (v.off + op.disp) & MASK)
    if op.index:
        if x86.width(op.index) != 64:
            return None
        iv = st.regs[x86.canonical(op.index)]
        if iv.node == CONST:
            v = Val(v.node, (v.off + iv.off * op.scale) & MASK)
        elif v.node == CONST and op.scale == 1 and v.off == 0:
            v = Val(iv.node, iv.off)
        else:
            return None
    return v


def _is_stack(flow: Flow, v: Val) -> bool:
    return v.node in flow.stack_nodes


def _invalidate_unknown_store(flow: Flow, st: State) -> None:
    """A store through an unknown pointer: forget heap slots and escaped stack slots."""
    for k in list(st.mem):
        if k[0] not in flow.stack_nodes:
            del st.mem[k]
            st.info.pop(k, None)
        elif k[0] in st.escaped and signed(k[1]) >= signed(st.escaped[k[0]]) \
                and not st.info.get(k, MemInfo("", "", None, 0, False)).pushed:
            del st.mem[k]
            st.info.pop(k, None)


def _store(flow: Flow, st: State, ins: Insn, op: Operand, size: Optional[int],
           val: Optional[Val], pushed: bool = False) -> None:
    a = _addr(st, ins, op) if op.kind == "mem" else None
    if a is None:
        _invalidate_unknown_store(flow, st)
        return
    for k in list(st.mem):
        if k[0] == a.node:
            if abs(signed(k[1] - a.off)) < 8 or (size is None and signed(k[1] - a.off) >= 0):
                del st.mem[k]
                st.info.pop(k, None)
        elif k[0] not in flow.stack_nodes:
            del st.mem[k]          # a pointer of unknown kind may alias it
            st.info.pop(k, None)
    if val is not None and size == 8:
        key = (a.node, a.off)
        st.mem[key] = val
        st.info[key] = MemInfo(ins.where, op.text, x86.canonical(op.base) if op.base else None,
                               op.disp, pushed)
    if val is not None and val.node in flow.stack_nodes:
        _escape(st, val)


def _escape(st: State, v: Val) -> None:
    cur = st.escaped.get(v.node)
    if cur is None or signed(v.off) < signed(cur):
        st.escaped[v.node] = v.off


def _load(flow: Flow, ctx: _Ctx, st: State, ins: Insn, op: Operand, dst: str) -> Val:
    a = _addr(st, ins, op)
    step = "%%%s ← %s at %s" % (dst, op.text, ins.where)
    if a is not None and _is_stack(flow, a):
        key = (a.node, a.off)
        if key in st.mem:
            return st.mem[key].moved(step)
        v = ctx.fresh("load", ins, op.text, step)
        st.mem[key] = Val(v.node, v.off)
        st.info[key] = MemInfo(ins.where, op.text, None, 0, False)
        return v
    if a is not None and a.node == CONST:
        v = ctx.fresh("load", ins, "[%#x]" % a.off, step)
    else:
        v = ctx.fresh("load", ins, op.text, step)
    if a is not None:
        flow.loads[v.node] = Val(a.node, a.off)
    return v


def _src_val(flow: Flow, ctx: _Ctx, st: State, ins: Insn, op: Operand, dst: str,
             ) -> Optional[Val]:
    """Value of a 64-bit source operand; None when not representable."""
    if op.kind == "imm":
        return const(op.imm, "%%%s ← $%#x at %s" % (dst, op.imm & MASK, ins.where))
    if op.kind == "reg":
        if x86.width(op.reg) != 64:
            return None
        return st.regs[x86.canonical(op.reg)].moved(
            "%%%s ← %%%s at %s" % (dst, op.reg, ins.where))
    if op.kind == "mem":
        return _load(flow, ctx, st, ins, op, dst)
    return None


_MEM_READ_ONLY = frozenset(("cmp", "test", "bt", "nop", "jmp", "call", "push", "clflush",
                            "clflushopt", "clwb", "invlpg", "lgdt", "lidt", "ltr", "ldmxcsr",
                            "fldcw", "verw", "monitor", "lldt", "lmsw"))


def _writes_memory_dest(m: str) -> bool:
    """True when an instruction whose last operand is memory writes that memory."""
    return not (m in _MEM_READ_ONLY or m in x86.JCC or m.startswith("prefetch"))


def _call_target_name(ins: Insn) -> Optional[str]:
    sym = ins.branch_target_sym()
    if sym:
        return sym.split("+")[0]
    return None


def _do_call(flow: Flow, ctx: _Ctx, st: State, ins: Insn) -> None:
    name = _call_target_name(ins)
    if name in PRESERVE_ALL_CALLS:
        return
    rsp = st.regs["rsp"]
    for r in x86.ARG_REGS:
        if st.regs[r].node in flow.stack_nodes:
            _escape(st, st.regs[r])
    what = name or (ins.operands[0].text if ins.operands else "?")
    for r in x86.CALLER_SAVED:
        if r == "rax":
            st.regs[r] = Val(node(ctx.fid, "ret", ins.where, what), 0,
                             ("%%rax returned by %s at %s" % (what, ins.where),))
        else:
            st.regs[r] = ctx.fresh("clob", ins, r)
    for k in list(st.mem):
        if k[0] not in flow.stack_nodes:
            del st.mem[k]
            st.info.pop(k, None)
        elif k[0] == rsp.node and signed(k[1] - rsp.off) < 0:
            del st.mem[k]          # below %rsp: the callee's frame
            st.info.pop(k, None)
        elif k[0] in st.escaped and signed(k[1]) >= signed(st.escaped[k[0]]) \
                and not st.info[k].pushed:
            del st.mem[k]
            st.info.pop(k, None)


def _set_rsp_unknown(flow: Flow, ctx: _Ctx, st: State, ins: Insn) -> None:
    n = node(ctx.fid, "rsp", ins.where, "rsp")
    flow.stack_nodes.add(n)
    st.regs["rsp"] = Val(n, 0, ("%%rsp re-derived at %s" % ins.where,))


def step(flow: Flow, st_in: State, i: int) -> State:
    """Return the state after instruction ``i`` given the state before it."""
    ins = flow.insns[i]
    ctx = _Ctx(flow)
    st = st_in.copy()
    m = ins.mnemonic
    ops = ins.operands
    n = len(ops)
    where = ins.where
    dst = ops[-1] if ops else None
    dreg = x86.canonical(dst.reg) if dst is not None and dst.kind == "reg" else None
    dw = x86.width(dst.reg) if dreg else None

    def setreg(r: str, v: Optional[Val], kind: str = "op") -> None:
        if r == "rsp" and (v is None or v.node not in flow.stack_nodes):
            if v is not None and v.node != CONST:
                flow.stack_nodes.add(v.node)
                st.regs["rsp"] = v
            else:
                _set_rsp_unknown(flow, ctx, st, ins)
            return
        st.regs[r] = v if v is not None else ctx.fresh(kind, ins, r)

    if m in ("nop", "endbr64", "endbr32", "int3", "lfence", "mfence", "sfence", "pause") \
            or m == "jmp" or m in x86.JCC or x86.is_return(m):
        return st
    if m == "call":
        _do_call(flow, ctx, st, ins)
        return st
    if m == "push" and n == 1:
        rsp = st.regs["rsp"]
        if ops[0].kind == "reg" and x86.width(ops[0].reg) == 64:
            v = st.regs[x86.canonical(ops[0].reg)].moved(
                "%%%s pushed at %s" % (ops[0].reg, where))
        elif ops[0].kind == "imm":
            v = const(ops[0].imm)
        else:
            v = None
        new = rsp.plus(-8)
        st.regs["rsp"] = Val(new.node, new.off, rsp.steps)
        key = (new.node, new.off)
        for k in list(st.mem):
            if k[0] == key[0] and abs(signed(k[1] - key[1])) < 8:
                del st.mem[k]
                st.info.pop(k, None)
        if v is not None:
            st.mem[key] = v
            st.info[key] = MemInfo(where, "push %s" % ops[0].text,
                                   "rsp", 0, True)
        return st
    if m == "pop" and n == 1:
        rsp = st.regs["rsp"]
        key = (rsp.node, rsp.off)
        if dreg and dw == 64:
            v = st.mem.get(key)
            v = v.moved("%%%s popped at %s" % (dreg, where)) if v else ctx.fresh(
                "load", ins, "(%rsp)")
            setreg(dreg, v)
        elif dst is not None and dst.kind == "mem":
            _store(flow, st, ins, dst, None, None)
        if dreg != "rsp":
            st.regs["rsp"] = rsp.plus(8)
        return st
    if m == "leave":
        setreg("rsp", st.regs["rbp"].moved("%%rsp ← %%rbp by leave at %s" % where))
        rsp = st.regs["rsp"]
        v = st.mem.get((rsp.node, rsp.off))
        st.regs["rbp"] = v.moved("%%rbp restored by leave at %s" % where) if v else \
            ctx.fresh("load", ins, "(%rbp)")
        st.regs["rsp"] = rsp.plus(8)
        return st
    if m in ("mov", "movabs") and n == 2:
        src = ops[0]
        if dst.kind == "reg":
            if dreg is None:
                return st
            if dw == 64:
                setreg(dreg, _src_val(flow, ctx, st, ins, src, dst.reg))
            elif dw == 32 and src.kind == "imm":
                setreg(dreg, const(src.imm & 0xFFFFFFFF,
                                   "%%%s ← $%#x at %s" % (dst.reg, src.imm & 0xFFFFFFFF, where)))
            elif dw == 32 and src.kind == "reg" and x86.width(src.reg) == 32:
                sv = st.regs[x86.canonical(src.reg)]
                step_ = "%%%s ← %%%s at %s" % (dst.reg, src.reg, where)
                if sv.node == CONST:
                    setreg(dreg, const(sv.off & 0xFFFFFFFF, step_))
                else:
                    setreg(dreg, Val(zx32_node(sv), 0, _add(sv.steps, step_)))
            else:
                setreg(dreg, None)
            return st
        if dst.kind == "mem":
            if src.kind == "reg" and x86.width(src.reg) == 64:
                v = st.regs[x86.canonical(src.reg)].moved(
                    "%%%s stored to %s at %s" % (src.reg, dst.text, where))
                _store(flow, st, ins, dst, 8, v)
            elif src.kind == "imm" and _opsize_from_suffix(ins.raw_mnemonic) == 8:
                _store(flow, st, ins, dst, 8, const(src.imm))
            else:
                size = (abs(x86.width(src.reg)) // 8 if src.kind == "reg" and
                        x86.width(src.reg) else _opsize_from_suffix(ins.raw_mnemonic))
                _store(flow, st, ins, dst, size, None)
            return st
        return st
    if m == "lea" and n == 2 and dreg:
        a = _addr(st, ins, ops[0])
        if a is not None and dw == 64:
            base = st.regs[x86.canonical(ops[0].base)] if ops[0].base and \
                x86.canonical(ops[0].base) else None
            steps = base.steps if base is not None and base.node == a.node else ()
            setreg(dreg, Val(a.node, a.off, _add(steps, "%%%s ← lea %s at %s" % (
                dst.reg, ops[0].text, where))))
        elif a is not None and a.node == CONST and dw == 32:
            setreg(dreg, const(a.off & 0xFFFFFFFF))
        else:
            setreg(dreg, None)
        return st
    if m in ("xor", "sub") and n == 2 and dreg and ops[0].kind == "reg" and \
            ops[0].reg == dst.reg and dw in (32, 64):
        setreg(dreg, const(0, "%%%s zeroed at %s" % (dst.reg, where)))
        return st
    if m in ("add", "sub") and n == 2 and dreg and dw == 64:
        d = None
        if ops[0].kind == "imm":
            d = ops[0].imm
        elif ops[0].kind == "reg" and x86.width(ops[0].reg) == 64 and \
                st.regs[x86.canonical(ops[0].reg)].node == CONST:
            d = st.regs[x86.canonical(ops[0].reg)].off
        if d is not None:
            d = d if m == "add" else -d
            setreg(dreg, st.regs[dreg].plus(d, "%%%s %s %#x at %s" % (
                dst.reg, "+" if m == "add" else "-", abs(signed(ops[0].imm)) if
                ops[0].kind == "imm" else d & MASK, where)))
            return st
    if m in ("inc", "dec") and n == 1 and dreg and dw == 64:
        setreg(dreg, st.regs[dreg].plus(1 if m == "inc" else -1))
        return st
    if m == "xchg" and n == 2 and all(o.kind == "reg" and x86.width(o.reg) == 64
                                       for o in ops):
        a, b = x86.canonical(ops[0].reg), x86.canonical(ops[1].reg)
        va, vb = st.regs[a], st.regs[b]
        setreg(a, vb.moved("xchg at %s" % where))
        setreg(b, va.moved("xchg at %s" % where))
        return st
    # Generic: forget what the instruction writes.
    if n and ops[-1].kind == "mem" and _writes_memory_dest(m):
        size = _opsize_from_suffix(ins.raw_mnemonic)
        if n >= 2 and ops[0].kind == "reg" and x86.width(ops[0].reg):
            size = abs(x86.width(ops[0].reg)) // 8
        _store(flow, st, ins, ops[-1], size, None)
    if m in ("stos", "movs", "ins", "rep"):
        _invalidate_unknown_store(flow, st)
    for r in ins.writes():
        setreg(r, None)
    return st
