"""Argument recovery for a sleeping task's frames (the ``argrecover`` analysis).

How (DESIGN.md, "Argument recovery on x86-64"):

1. Every frame's function is run symbolically from its entry to its call site (the
   instruction before the frame's return address) -- :mod:`.flow`.
2. Neighbouring frames are tied together: the callee's entry registers equal the
   caller's registers at the call (callee-saved ones always; argument registers when the
   call goes straight to the callee -- a direct call to its start, an indirect call whose
   target register is shown to hold its start, or a call into a function that reaches
   it only by tail jumps, which is then run to those jumps), and the innermost frame's
   callee ``__switch_to_asm`` (suspended after its pushes, i.e. the task's
   inactive_task_frame at thread.sp) is added as frame ``#-1``.  Nothing is tied across
   exception entries, stack switches, or frames whose code contradicts crash's frame
   addresses (reported as a "frame geometry" warning).
3. Concrete anchors: ``%rsp`` at frame N's call is RSP_N + 8; frame N's function was
   entered with ``%rsp`` = RSP_{N+1}; every stack slot a function wrote (pushes of
   callee-saved registers, spills) is read from ``bt -f``'s words or memory.
4. A union-find (:mod:`.solver`) combines all of it; a value is reported only when a
   chain of equations ties it to a constant, and that chain is the provenance.  Two
   chains that disagree make a conflict.

Entry point: :func:`recover` (recorded text through callbacks) and
:func:`recover_with_port` (a live Port).
"""

import re
from ..core.record import dataclass, field
from ..compat import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from ..models import x86
from ..models.disasm import Insn, gdb_as_dis, join_dis, parse_dis
from ..models.proto import Prototype, parse_whatis
from ..models.btlazy import LazyBacktrace
from ..models.stack import Backtrace, Frame
from ..models.symtab import SymbolTable
from ..core.caches import SOURCES, HeldWeakly
from ..core.errors import CrashCommandError, CrashExtError
from ..core.words import check_address_word
from . import flow as fl
from .solver import MASK as _MASK, ZERO, Lin, Params, Reason, Solver, value_of

MASK = (1 << 64) - 1
SWITCH_FUNCS = ("__switch_to_asm",)
TAIL_DEPTH = 3
_CLONE = re.compile(
    r"^(?P<base>[^.]+)(?P<suffix>(?:\.(?:constprop|isra|part|cold|lto_priv|localalias|"
    r"llvm)(?:\.\d+)?)+)$")

DisFn = Callable[[int], str]
ReadFn = Callable[[int], Optional[int]]
WhatisFn = Callable[[str], str]


@dataclass
class Arg:
    """One argument of a frame's function.

    ``name``/``type`` from the prototype (``arg0``.. and None without one; a ``?``
    suffix on clones); ``register``: the SysV register it arrives in (None if not in
    one); ``value``: recovered value or None; ``status``: 'recovered', 'unknown' or
    'conflict'; ``provenance``: how the value was found, step by step; ``reason``: why
    it is unknown, or what the conflict is; ``alternatives``: for conflicts, the other
    values found, each with its chain; ``weak``: the chain rests on a stack slot that a
    callee could have changed; ``wording``: when the Arg was answered from a
    :class:`Template`, ``provenance``'s steps with the task's numbers left out (one
    tuple object for every task that template answers: what is made from the chain's
    words alone can be made once), else None.
    """
    name: str
    type: Optional[str]
    register: Optional[str]
    value: Optional[int] = None
    provenance: List[str] = field(default_factory=list)
    status: str = "unknown"
    reason: Optional[str] = None
    alternatives: List[Tuple[int, List[str]]] = field(default_factory=list)
    weak: bool = False
    wording: Optional[Tuple[str, ...]] = None


@dataclass
class FrameArgs:
    """The recovered arguments of one frame's function.

    ``index``: crash's ``#N``; ``prototype``: the ``whatis`` text used (of the original
    function for a GCC clone); ``clone``: the clone suffix (``.constprop.0``) or None;
    ``registers``: callee-saved registers of this function at its call site that were
    recovered ({'rbx': value}); ``warnings``: what weakens the frame's results.
    """
    index: int
    function: str
    module: Optional[str] = None
    prototype: Optional[str] = None
    clone: Optional[str] = None
    args: List[Arg] = field(default_factory=list)
    registers: Dict[str, int] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)


@dataclass
class TaskArgs:
    """Argument recovery for one task: header fields from ``bt`` and one FrameArgs per
    frame, innermost first; ``warnings`` for the whole stack."""
    pid: Optional[int]
    task: Optional[int]
    command: Optional[str]
    frames: List[FrameArgs] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def frame(self, index: int) -> Optional[FrameArgs]:
        """Return the FrameArgs of frame ``#index``, or None."""
        for f in self.frames:
            if f.index == index:
                return f
        return None


class _F:
    """Per-frame working data."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.fid = "#%d" % frame.index
        self.flow = None  # type: Optional[fl.Flow]
        self.call = None  # type: Optional[Insn]
        self.problem = None  # type: Optional[str]
        m = _CLONE.match(frame.function)
        self.base = m.group("base") if m else frame.function
        self.clone = m.group("suffix") if m else None
        self.cold = bool(self.clone and ".cold" in self.clone)
        self.sp = frame.sp  # type: object   # the slot as an int or a Lin (_Recovery)

    @property
    def state(self):
        return self.flow.state if self.flow is not None else None

    def where(self) -> str:
        return self.call.where if self.call else self.frame.function


_PARSED = {}  # type: Dict[str, List[Insn]]


def parsed(text: str) -> List[Insn]:
    """parse_dis with a memo: the same function text is parsed once per process
    (instructions are never modified by the analyses)."""
    r = _PARSED.get(text)
    if r is None:
        if len(_PARSED) > 2048:
            _PARSED.clear()
        r = _PARSED[text] = parse_dis(text)
    return r


def hx(v) -> str:
    """Return an address/value formatted the way crash does (bare hex for kernel
    words); for a task-dependent value (a Lin), the mark its Params renders per task."""
    if isinstance(v, Lin):
        return v.ps.mark(v)
    return "%x" % (v & MASK)


class _Recovery:
    def __init__(self, bt: Backtrace, dis_fn: DisFn, read_fn: Optional[ReadFn],
                 whatis_fn: Optional[WhatisFn], flows: Optional[dict] = None):
        self.bt = bt
        self.dis_fn = dis_fn
        self.read_fn = read_fn
        self.whatis_fn = whatis_fn
        self.flow_cache = flows  # {(fid, return address, cold): Flow} shared, or None
        self.solver = Solver()
        self.frames = [_F(f) for f in sorted(bt.frames, key=lambda f: f.index)]
        # the task's numbers are parameters (see solver.Params): its innermost frame's
        # stack slot, the words read; every frame's slot is that one plus a constant
        self.ps = Params()
        self.words = task_words(bt)
        if self.frames:
            sp0 = self.frames[0].frame.sp
            base = self.ps.new(("sp",), sp0)
            for f in self.frames:
                f.sp = base + (f.frame.sp - sp0)
        self.byidx = {f.frame.index: f for f in self.frames}
        self.virtual = None  # type: Optional[_F]
        self.linkkind = {}  # type: Dict[int, str]  callee index -> 'direct'|'cs-only'|reason
        self.link_why = {}  # type: Dict[int, str]
        self.anchored = set()  # type: Set[Tuple[str, str, int]]
        self.warnings = []  # type: List[str]
        self.pending_indirect = []  # type: List[Tuple[_F, _F, str]]
        self.thunks = {}  # type: Dict[int, Optional[str]]

    # -- step 1: flows ------------------------------------------------------------
    def _dis(self, addr: int) -> List[Insn]:
        return parsed(self.dis_fn(addr) or "")

    def build_flows(self) -> None:
        for f in self.frames:
            fr = f.frame
            if fr.ret_addr is None:
                f.problem = "crash printed no return address for this frame"
                continue
            try:
                insns = self._dis(fr.ret_addr)
            except Exception as e:  # noqa: BLE001 - report, do not crash the verb
                f.problem = "could not disassemble %s: %s" % (fr.function, e)
                continue
            idx = None
            for i, ins in enumerate(insns):
                if ins.addr == fr.ret_addr:
                    idx = i
                    break
            if idx is None or idx == 0:
                f.problem = ("the return address %s is not an instruction boundary after "
                             "the start of %s's disassembly" % (hx(fr.ret_addr), fr.function))
                continue
            call = insns[idx - 1]
            if call.mnemonic != "call":
                f.problem = ("the instruction before the return address (%s: %s) is not a "
                             "call; the frame was entered otherwise (exception, entry code)"
                             % (call.where, call.text))
                continue
            f.call = call
            key = (f.fid, fr.ret_addr, f.cold, insns[0].addr)
            flow = self.flow_cache.get(key) if self.flow_cache is not None else None
            if flow is None:
                flow = fl.Flow(f.fid, insns[0].func, insns)
                if f.cold:
                    flow.entry_known = False
                fl.run(flow, idx - 1, dis_fn=self.dis_fn)
                if self.flow_cache is not None:   # flows are not changed once run
                    self.flow_cache[key] = flow
            f.flow = flow
            if flow.error:
                f.problem = "%s: %s" % (fr.function, flow.error)
        inner = self.frames[0] if self.frames else None
        if inner is not None and inner.call is not None and inner.frame.index == 0:
            name = (inner.call.branch_target_sym() or "").split("+")[0]
            target = inner.call.branch_target()
            if name in SWITCH_FUNCS and target is not None:
                try:
                    insns = self._dis(target)
                except Exception as e:  # noqa: BLE001
                    self.warnings.append("could not disassemble %s: %s" % (name, e))
                    insns = []
                if insns and insns[0].addr == target:
                    v = _F(Frame(index=-1, sp=inner.sp - 8, function=name,
                                 ret_addr=None))
                    v.sp = inner.sp - 8
                    v.flow = fl.run(fl.Flow("#-1", name, insns), len(insns),
                                    stop_at_control=True)
                    self.virtual = v

    # -- step 2/3: equations ----------------------------------------------------------
    def _eq(self, a: str, b: str, d: int, text: str, uses: Tuple[str, ...] = (),
            weak: bool = False) -> bool:
        return self.solver.add(a, b, d, Reason(text, uses, weak))

    def boundaries(self) -> None:
        """Mark frame pairs that no call ties together (exception entries, stack
        switches): nothing is linked across them."""
        for f in self.frames:
            fr = f.frame
            up = self.byidx.get(fr.index + 1)
            if up is None:
                continue
            if fr.exception_rip or fr.regs:
                self.link_why[fr.index] = (
                    "frame #%d is an exception or system-call entry: the code it "
                    "interrupted ran between it and frame #%d" % (fr.index, up.frame.index))
            elif up.frame.stack is not None:
                self.link_why[fr.index] = ("the stack changes (%s) between frames #%d and #%d"
                                           % (up.frame.stack, fr.index, up.frame.index))

    def geometry(self) -> None:
        byidx = self.byidx
        for f in self.frames:
            if f.state is None:
                continue
            fr = f.frame
            rsp = f.state.regs["rsp"]
            self._eq(rsp.node, ZERO, f.sp + 8 - rsp.off,
                     "%%rsp at %s's call (%s) is %s: the slot [%s] of frame #%d holds its "
                     "return address" % (fr.function, f.where(), hx(f.sp + 8), hx(f.sp),
                                         fr.index))
            up = byidx.get(fr.index + 1)
            if up is None or f.cold or not f.flow.entry_known or fr.index in self.link_why:
                continue
            entry = f.flow.entry("rsp")
            if rsp.node == entry:
                expect = (f.sp + 8 - rsp.off) & MASK
                if not self.ps.eq(expect, up.sp):
                    msg = ("frame geometry: %s's code puts its entry %%rsp at %s, but frame "
                           "#%d's slot is [%s]; a frame may be missing or stale between "
                           "#%d and #%d" % (fr.function, hx(expect), up.frame.index,
                                            hx(up.sp), fr.index, up.frame.index))
                    self.warnings.append(msg)
                    self.link_why[fr.index] = msg
                    continue
            self._eq(entry, ZERO, up.sp,
                     "%s was entered with %%rsp = %s, the slot of frame #%d's return "
                     "address" % (fr.function, hx(up.sp), up.frame.index))
        if self.virtual is not None and self.virtual.state is not None:
            v = self.virtual
            inner = self.frames[0]
            self._eq(v.flow.entry("rsp"), ZERO, inner.sp,
                     "%s (suspended in its prologue) was entered with %%rsp = %s, frame "
                     "#0's slot" % (v.frame.function, hx(inner.sp)))

    def _target_ok(self, caller: _F, callee: _F) -> Optional[str]:
        """'direct' when the caller's call enters the callee's function at its start,
        'indirect:REG' when it goes through a register, None when it goes elsewhere."""
        call = caller.call
        t = call.branch_target()
        sym = (call.branch_target_sym() or "").split("+")
        if t is not None:
            if callee.flow is not None and callee.flow.entry_known and \
                    callee.flow.start == t:
                return "direct"
            name = sym[0]
            if len(sym) == 1 and name in (callee.frame.function, callee.base) and \
                    (callee.flow is None or not callee.flow.entry_known or callee.cold):
                return "direct"
            reg = self._thunk_register(t, name)
            if reg is not None:
                return "indirect:" + reg
            return None
        op = call.operands[0] if call.operands else None
        if op is not None and op.kind == "reg" and x86.width(op.reg) == 64:
            return "indirect:" + x86.canonical(op.reg)
        return None

    def _thunk_register(self, target: int, name: str) -> Optional[str]:
        """The register an indirect-call thunk jumps through, or None when ``target``
        is not such a thunk.  Known by name (``__x86_indirect_thunk_rax``) or by its
        code, since crash may give the thunk another symbol at the same address
        (``__indirect_thunk_start`` on 6.1, ``__softirqentry_text_end`` on 6.12):
        ``jmp *%reg``, ``lfence; jmp *%reg``, or the retpoline ``call 1f; ...;
        1: mov %reg,(%rsp); ret``."""
        m = re.match(r"^__x86_indirect_thunk_(r\w+)$", name)
        if m:
            return m.group(1)
        if target in self.thunks:
            return self.thunks[target]
        reg = None
        try:
            insns = self._dis(target)
        except Exception:  # noqa: BLE001
            insns = []
        body = [i for i in insns if i.addr >= target][:8]

        def ind_jmp(ins):
            op = ins.operands[0] if ins.operands else None
            if ins.mnemonic == "jmp" and op is not None and op.indirect and op.kind == "reg":
                return x86.canonical(op.reg)
            return None
        if body and body[0].addr == target:
            reg = ind_jmp(body[0])
            if reg is None and len(body) > 1 and body[0].mnemonic == "lfence":
                reg = ind_jmp(body[1])
            first_t = body[0].branch_target() if body[0].mnemonic == "call" else None
            if reg is None and first_t is not None and target < first_t < target + 32:
                for a, b in zip(body, body[1:]):
                    if a.mnemonic == "mov" and len(a.operands) == 2 and \
                            a.operands[0].kind == "reg" and a.operands[1].kind == "mem" \
                            and a.operands[1].base == "rsp" and a.operands[1].disp == 0 \
                            and x86.is_return(b.mnemonic):
                        reg = x86.canonical(a.operands[0].reg)
                        break
        self.thunks[target] = reg
        return reg

    def _link(self, callee: _F, caller: _F, regs, note: str = "") -> None:
        st = caller.state
        for r in regs:
            v = st.regs[r]
            steps = "; ".join(v.steps)
            text = ("%s%%%s at %s's call %s = %%%s on entry to %s%s" % (
                (steps + "; ") if steps else "", r, caller.frame.function, caller.where(), r,
                callee.frame.function, note))
            self._eq("%s|entry||%s" % (callee.fid, r), v.node, v.off, text)

    def links(self) -> None:
        pairs = []
        seq = self.frames
        for callee, caller in zip(seq, seq[1:]):
            if caller.frame.index != callee.frame.index + 1:
                continue
            pairs.append((callee, caller))
        for callee, caller in pairs:
            ci = callee.frame.index
            if caller.state is None:
                self.link_why.setdefault(ci, "frame #%d (%s) could not be analysed: %s" % (
                    caller.frame.index, caller.frame.function, caller.problem))
                continue
            if ci in self.link_why:
                continue
            kind = self._target_ok(caller, callee)
            if callee.flow is None or callee.flow.entry_known:
                self._link(callee, caller, sorted(x86.CALLEE_SAVED))
            if kind == "direct":
                self.linkkind[ci] = "direct"
                self._link(callee, caller, x86.ARG_REGS)
            elif kind is not None and kind.startswith("indirect:"):
                self.pending_indirect.append((callee, caller, kind.split(":")[1]))
                self.link_why[ci] = ("%s calls through %%%s at %s; it is not known to "
                                     "enter %s directly" % (caller.frame.function,
                                                            kind.split(":")[1], caller.where(),
                                                            callee.frame.function))
            else:
                self.link_why[ci] = (
                    "%s's call at %s goes to %s, not to %s: %s was reached by a tail call "
                    "(or jump), so the registers at that call need not be its arguments" % (
                        caller.frame.function, caller.where(),
                        caller.call.branch_target_sym() or caller.call.text,
                        callee.frame.function, callee.frame.function))
                t = caller.call.branch_target()
                if t is not None and callee.flow is not None and callee.flow.entry_known:
                    why = self._follow_tail(callee, caller, t)
                    if why:
                        self.link_why[ci] += "; " + why
        if self.virtual is not None and self.virtual.state is not None and \
                self.frames and self.frames[0].state is not None:
            self._link(self.virtual, self.frames[0], sorted(x86.CALLEE_SAVED))

    def _eval(self, f: _F, v: fl.Val, depth: int = 4) -> Tuple[Optional[int], List[str]]:
        """Value of ``v`` from the solver or, for a value loaded from memory whose address
        is known, by reading that memory now (with a note saying so)."""
        x = self.solver.value(v.node)
        if x is not None:
            return (x + v.off) & MASK, []
        a = f.flow.loads.get(v.node) if f.flow is not None else None
        if a is None or depth <= 0:
            return None, []
        addr, notes = self._eval(f, a, depth - 1)
        if addr is None:
            return None, []
        word, _src = self._read(addr)
        if word is None:
            return None, []
        where = v.node.split("|")[2] if "|" in v.node else "?"
        return (word + v.off) & MASK, notes + [
            "[%s] = %s, loaded at %s (read from the dump; assumed unchanged since)" % (
                hx(addr), hx(word), where)]

    def _follow_tail(self, callee: _F, caller: _F, target: int) -> Optional[str]:
        """When the caller's call enters a function T that reaches the callee only by
        tail jumps (no frame of its own), run T from the caller's registers to those
        jumps (up to TAIL_DEPTH functions deep) and tie the callee's argument registers
        to what they hold there when every jump agrees.  Returns None when linked, else
        words saying why not."""
        state = caller.state.copy()
        rsp = state.regs["rsp"]
        state.regs["rsp"] = rsp.plus(-8)
        state.mem = {}
        state.info = {}
        chain = []  # type: List[str]
        for depth in range(TAIL_DEPTH):
            try:
                insns = self._dis(target)
            except Exception:  # noqa: BLE001
                return None
            if not insns or insns[0].addr != target:
                return None
            name = insns[0].func
            flow = fl.Flow("%s>%d" % (caller.fid, depth), name, insns)
            fl.run(flow, len(insns), dis_fn=self.dis_fn, init=state)
            to_callee, onward = [], {}  # type: List[int], Dict[int, List[int]]
            for i, ins in enumerate(insns):
                if i not in flow.states or not x86.is_jump(ins.mnemonic):
                    continue
                t = ins.branch_target()
                tname = (ins.branch_target_sym() or "").split("+")[0]
                if t is None or "indirect_thunk" in tname:
                    return ("%s has an indirect tail jump at %s; %s may have been "
                            "entered through it" % (name, ins.where, callee.frame.function))
                if t in flow.index or "return_thunk" in tname or \
                        tname.endswith("_untrain_ret"):
                    continue
                if t == callee.flow.start:
                    to_callee.append(i)
                else:
                    onward.setdefault(t, []).append(i)
            chain.append(name)
            if to_callee:
                sts = [flow.states[i] for i in to_callee]
                wheres = ", ".join(insns[i].where for i in to_callee)
                for r in x86.ARG_REGS:
                    v = sts[0].regs[r]
                    if not all(x.regs[r].same(v) for x in sts[1:]):
                        continue            # the jumps disagree: leave it unknown
                    steps = "; ".join(v.steps)
                    self._eq("%s|entry||%s" % (callee.fid, r), v.node, v.off,
                             "%s%%%s at %s's call %s, then through %s to its tail jump%s "
                             "(%s) to %s = %%%s on entry to %s" % (
                                 (steps + "; ") if steps else "", r, caller.frame.function,
                                 caller.where(), " -> ".join(chain),
                                 "s" if len(to_callee) > 1 else "", wheres,
                                 callee.frame.function, r, callee.frame.function))
                self.linkkind[callee.frame.index] = "tail"
                self.link_why.pop(callee.frame.index, None)
                return None
            if len(onward) != 1:
                return ("%s does not reach %s by a tail jump that could be followed"
                        % (name, callee.frame.function))
            target, sites = next(iter(onward.items()))
            sts = [flow.states[i] for i in sites]
            state = sts[0].copy()
            for r in x86.GPRS:
                if not all(x.regs[r].same(state.regs[r]) for x in sts[1:]):
                    state.regs[r] = fl.Val("%s|phi|%s|%s" % (flow.fid, name, r), 0)
            state.mem, state.info = {}, {}
        return None

    def _resolve_indirect(self) -> bool:
        changed = False
        for item in list(self.pending_indirect):
            callee, caller, reg = item
            v = caller.state.regs[reg]
            val, notes = self._eval(caller, v)
            start = callee.flow.start if callee.flow is not None and \
                callee.flow.entry_known else None
            if val is not None and start is not None and self.ps.eq(val, start):
                self.pending_indirect.remove(item)
                self.linkkind[callee.frame.index] = "direct"
                self.link_why.pop(callee.frame.index, None)
                note = " (the call goes through %%%s = %s, the start of %s: %s)" % (
                    reg, hx(val), callee.frame.function, "; ".join(notes) or "recovered")
                self._link(callee, caller, x86.ARG_REGS, note)
                changed = True
        return changed

    def _derive_zx32(self) -> bool:
        """Give ``zx32`` symbols (low halves) a value once their full value is known."""
        changed = False
        for n in list(self.solver.adj):
            parts = fl.zx32_parts(n)
            if parts is None or self.solver.value(n) is not None:
                continue
            x = self.solver.value(parts[0])
            if x is not None:
                full = (x + parts[1]) & MASK
                low = full & 0xFFFFFFFF if isinstance(full, int) else \
                    self.ps.new(("lo32", full), self.ps.value(full) & 0xFFFFFFFF)
                self._eq(n, ZERO, low, "its low 32 bits: %s" % hx(low))
                changed = True
        return changed

    def _read(self, addr) -> Tuple[object, str]:
        """Return (the word at ``addr`` as a parameter, where it was found: 'bt -f' or
        'memory'), or (None, "") when it cannot be read."""
        v, src = read_word(self.ps.value(addr), self.words, self.read_fn)
        w = self.ps.word(addr, v if v is not None else 0, src or None)
        return (w, src) if v is not None else (None, "")

    def _anchor_flow(self, f: _F) -> bool:
        st = f.state
        if st is None:
            return False
        new = False
        rsp = st.regs["rsp"]
        rsp_val = self.solver.value(rsp.node)
        low = (rsp_val + rsp.off) & MASK if rsp_val is not None else None
        entry_val = self.solver.value(f.flow.entry("rsp"))
        high = None  # type: Optional[int]
        if entry_val is not None and f.flow.entry_known:
            high = entry_val + 0x40          # up to a few stack arguments
        up = self.byidx.get(f.frame.index + 1)
        lt = self.ps.lt
        if up is not None and up.frame.stack is None:
            high = up.sp if high is None or lt(high, up.sp) else high
        for key, val in sorted(st.mem.items()):
            nd, off = key
            base = self.solver.value(nd)
            if base is None:
                continue
            addr = (base + off) & MASK
            if low is None or lt(addr, low):
                continue            # below the stack pointer: free space, not ours
            if nd not in f.flow.stack_nodes:
                # a slot addressed through a register not known to point into the
                # stack (a frame pointer whose setup is not in the disassembly): use it
                # only when it lands inside this frame
                if high is None or not lt(addr, high):
                    continue
            elif high is not None and not lt(addr, high):
                continue
            tag = (f.fid, nd, off)
            if tag in self.anchored:
                continue
            word, src = self._read(addr)
            if word is None:
                continue
            self.anchored.add(tag)
            info = st.info.get(key)
            text = self._slot_text(f, key, val, info, addr, word, src)
            weak = False
            esc = st.escaped.get(nd)
            if esc is not None and fl.signed(off) >= fl.signed(esc) and \
                    not (info is not None and info.pushed):
                weak = True
                text += (" (the slot lies at or above a frame address passed to a callee, "
                         "which could have changed it)")
            self._eq(val.node, ZERO, word - val.off, text, uses=(nd,), weak=weak)
            new = True
        return new

    def _slot_text(self, f: _F, key, val: fl.Val, info, addr: int, word: int,
                   src: str) -> str:
        steps = "; ".join(val.steps)
        where = ""
        if info is not None and info.base and info.base != "rsp" and not info.pushed:
            base_val = (addr - info.disp) & MASK
            where = "%s is [%s] with %%%s = %s" % (info.operand, hx(addr), info.base,
                                                   hx(base_val))
        elif info is not None and info.pushed:
            where = "[%s] is the %s slot of %s" % (hx(addr), info.operand, f.frame.function)
        elif info is not None and info.operand:
            where = "%s is [%s]" % (info.operand, hx(addr))
        else:
            where = "slot [%s]" % hx(addr)
        rel = ""
        if val.off:
            rel = "; the slot holds the value %s %#x, so the value is %s" % (
                "+" if fl.signed(val.off) > 0 else "-", abs(fl.signed(val.off)),
                hx(word - val.off))
        return "%s%s; read [%s] = %s (%s)%s" % ((steps + "; ") if steps else "", where,
                                                hx(addr), hx(word), src, rel)

    def anchors(self) -> None:
        for _ in range(20):
            new = False
            for f in self.frames + ([self.virtual] if self.virtual else []):
                if self._anchor_flow(f):
                    new = True
            if self._resolve_indirect():
                new = True
            if self._derive_zx32():
                new = True
            if not new:
                break

    # -- step 4: report ---------------------------------------------------------------
    def explain(self, nd: str, depth: int = 0) -> Tuple[List[str], Set[str], bool]:
        """Return (steps, symbols used, weak) of the chain tying ``nd`` to a constant."""
        path = self.solver.path(nd)
        if path is None:
            return [], set(), False
        steps = []  # type: List[str]
        used = {nd}
        weak = False
        for a, b, _d, reason in path:
            used.add(a)
            used.add(b)
            weak = weak or reason.weak
            text = reason.text
            if depth < 2:
                for u in reason.uses:
                    val = self.solver.value(u)
                    sub, subused, subweak = self.explain(u, depth + 1)
                    used |= subused
                    weak = weak or subweak
                    if sub and val is not None:
                        text += " [that address from: %s]" % "; ".join(sub)
            steps.append(text)
        return steps, used, weak

    def _conflicts_for(self, used: Set[str]):
        roots = {self.solver.find(u)[0] for u in used}
        out = []
        for c in self.solver.conflicts:
            if self.solver.find(c.a)[0] in roots:
                out.append(c)
        return out

    def _describe_unknown(self, f: _F, reg: str) -> str:
        idx = f.frame.index
        parts = []
        byidx = {x.frame.index: x for x in self.frames}
        caller = byidx.get(idx + 1)
        if caller is None:
            parts.append("no caller frame")
        elif self.linkkind.get(idx) == "tail":
            parts.append("%s was reached through tail jumps from %s's call %s; %%%s at the "
                         "jump is not recovered (or the jumps disagree)" % (
                             f.frame.function, caller.frame.function, caller.where(), reg))
        elif self.linkkind.get(idx) == "direct":
            v = caller.state.regs[reg]
            d = fl.describe_node(v.node)
            parts.append("at %s's call %s, %%%s holds %s%s, which is not recovered" % (
                caller.frame.function, caller.where(), reg, d,
                (" %+#x" % fl.signed(v.off)) if v.off else ""))
        else:
            parts.append(self.link_why.get(idx) or "the caller's call site was not analysed")
        if f.state is not None and f.flow.entry_known:
            entry = f.flow.entry(reg)
            holders = [("%" + r) for r, v in sorted(f.state.regs.items())
                       if v.node == entry and v.off == 0 and r != reg]
            holders += [f.state.info[k].operand + " (" + f.state.info[k].where + ")"
                        for k, v in sorted(f.state.mem.items())
                        if v.node == entry and v.off == 0 and k in f.state.info]
            if holders:
                parts.append("%s still holds it in %s at its call %s, but that was not "
                             "recovered" % (f.frame.function, ", ".join(holders), f.where()))
            else:
                parts.append("%s does not keep %%%s in a callee-saved register or a stack "
                             "slot up to its call %s" % (f.frame.function, reg, f.where()))
        elif f.problem:
            parts.append(f.problem)
        return "; ".join(parts)

    def prototype(self, f: _F) -> Optional[Prototype]:
        if self.whatis_fn is None:
            return None
        for name in (f.frame.function, f.base) if f.clone else (f.frame.function,):
            if f.clone and name == f.frame.function:
                continue
            try:
                p = parse_whatis(self.whatis_fn(name) or "", name)
            except Exception:  # noqa: BLE001 - no prototype is not an error
                p = None
            if p is not None:
                return p
        return None

    def report(self) -> TaskArgs:
        out = TaskArgs(pid=self.bt.pid, task=self.bt.task, command=self.bt.command,
                       warnings=list(self.warnings))
        for f in self.frames:
            fr = f.frame
            fa = FrameArgs(index=fr.index, function=fr.function, module=fr.module,
                           clone=f.clone)
            if f.problem:
                fa.warnings.append(f.problem)
            if f.flow is not None:
                fa.warnings.extend(f.flow.warnings)
                if f.state is not None:
                    for r in sorted(x86.CALLEE_SAVED):
                        v = f.state.regs[r]
                        val = self.solver.value(v.node)
                        if val is not None:
                            fa.registers[r] = (val + v.off) & MASK
            proto = self.prototype(f)
            if proto is not None:
                fa.prototype = proto.text
            if f.clone and not f.cold:
                fa.warnings.append(
                    "%s is a GCC clone (%s) of %s: parameters may have been dropped or "
                    "moved to other registers; the names below come from %s's prototype "
                    "and may not match the registers" % (fr.function, f.clone, f.base, f.base))
            elif f.cold:
                fa.warnings.append("%s is the cold part of %s, entered by a jump: "
                                   "arguments are those %s was called with" % (
                                       fr.function, f.base, f.base))
            regs = []  # type: List[Tuple[str, Optional[str], Optional[str]]]
            outermost = fr.index == self.frames[-1].frame.index
            if outermost and fr.regs:
                fa.warnings.append("entry code of a system call or exception: it takes no "
                                   "C arguments; the registers it saved are crash's "
                                   "register block")
                out.frames.append(fa)
                continue
            if outermost and proto is None and self.whatis_fn is not None:
                fa.warnings.append("outermost frame without a C prototype (entry code such "
                                   "as ret_from_fork): no arguments to recover")
                out.frames.append(fa)
                continue
            if proto is not None:
                for i, (p, r) in enumerate(zip(proto.params, proto.registers())):
                    nm = p.name or "arg%d" % i
                    if f.clone and not f.cold:
                        nm += "?"
                    regs.append((nm, p.type, r))
            else:
                regs = [("arg%d" % i, None, r) for i, r in enumerate(x86.ARG_REGS)]
                if self.whatis_fn is not None:
                    fa.warnings.append("no prototype for %s: all six argument registers "
                                       "are shown" % fr.function)
            for nm, typ, r in regs:
                fa.args.append(self._arg(f, nm, typ, r))
            out.frames.append(fa)
        return out

    def _arg(self, f: _F, name: str, typ: Optional[str], reg: Optional[str]) -> Arg:
        a = Arg(name=name, type=typ, register=reg)
        if reg is None:
            a.reason = "not passed in an integer register (or its register is uncertain)"
            return a
        nd = "%s|entry||%s" % (f.fid, reg)
        val = self.solver.value(nd)
        low = False
        if val is None and typ is not None and is_32bit_type(typ):
            zx = "zx32:%s:0" % nd
            if self.solver.value(zx) is not None:
                nd, val, low = zx, self.solver.value(zx), True
        if val is None:
            a.reason = self._describe_unknown(f, reg)
            return a
        steps, used, weak = self.explain(nd)
        if low:
            steps.append("%s is a 32-bit parameter: its value is the low half of %%%s" % (
                a.name, reg))
        a.value = val
        a.provenance = steps
        a.weak = weak
        a.status = "recovered"
        conf = self._conflicts_for(used)
        if conf:
            a.status = "conflict"
            msgs = []
            for c in conf:
                va = self.solver.value(c.a)
                vb = self.solver.value(c.b)
                if va is not None and vb is not None and self.solver.same_class(c.a, nd):
                    alt = (val - va + vb + c.d) & MASK
                    a.alternatives.append((alt, [c.reason.text]))
                msgs.append(c.reason.text)
            a.reason = ("another chain disagrees: " + " | ".join(msgs))
        return a


_SMALL = re.compile(
    r"^(const\s+)?(unsigned\s+|signed\s+)?(int|short|char|short int|_Bool|bool|"
    r"u8|u16|u32|s8|s16|s32|__u8|__u16|__u32|__s8|__s16|__s32|uint|gfp_t|pid_t|uid_t|"
    r"gid_t|umode_t|fmode_t|dev_t|blk_opf_t|enum\s+\w+)$")


def is_32bit_type(typ: str) -> bool:
    """True for scalar C types of at most 32 bits (``int``, ``unsigned int``, ``char``,
    ``enum x``, common kernel typedefs such as ``gfp_t``)."""
    t = " ".join(typ.split())
    return t in ("unsigned", "signed") or bool(_SMALL.match(t))


def task_words(bt: Backtrace) -> Dict[int, int]:
    """Return the stack words ``bt -f`` printed under ``bt``'s frames ({address: word})."""
    words = {}  # type: Dict[int, int]
    for f in bt.frames:
        words.update(f.words)
    return words


def read_word(addr: int, words: Dict[int, int], read_fn: Optional[ReadFn]
              ) -> Tuple[Optional[int], str]:
    """Return (the word at ``addr``, where it was found: 'bt -f' when ``words`` has it,
    else 'memory' from ``read_fn``), or (None, "") when neither gives it."""
    v = words.get(addr)
    if v is not None:
        return v, "bt -f"
    if read_fn is not None:
        try:
            v = read_fn(addr)
        except Exception:  # noqa: BLE001 - unreadable means no anchor
            v = None
        if v is not None:
            return v, "memory"
    return None, ""


def shape_of(bt: Backtrace) -> tuple:
    """Return what a recovery reads of ``bt`` besides its numbers: per frame (innermost
    first) its index, function, return address, module, stack slot relative to the
    innermost frame's, stack marker, exception RIP and whether it has registers.
    Tasks of one shape share a :class:`Template`."""
    frames = sorted(bt.frames, key=lambda f: f.index)
    if not frames:
        return ()
    sp0 = frames[0].sp
    return tuple((f.index, f.function, f.ret_addr, f.module, f.sp - sp0, f.stack,
                  f.exception_rip, bool(f.regs)) for f in frames)


def _expr(x) -> str:
    """Return Python source computing int-or-Lin ``x`` from a parameter list ``e``."""
    if isinstance(x, int):
        return "%d" % (x & _MASK)
    terms = "+".join(("e[%d]" % p) if k == 1 else ("%d*e[%d]" % (k, p)) for p, k in x.t)
    return "((%d+%s)&%d)" % (x.c, terms, _MASK)


def _compile(source: str):
    """Return the function the generated ``lambda`` ``source`` defines (numbers and
    parameter look-ups only)."""
    return eval(compile(source, "<argrecover template>", "eval"), {})


def plain_view(bt: Backtrace) -> Optional[tuple]:
    """Return :func:`task_view` of a lazily read back trace whose text is only frame
    and plain word lines, from its text alone (so also while ``foreach`` is still
    being read: see Snapshot.backtraces' ``on_task``), the words' values as printed
    (hex text, found in the text and turned into numbers only when read:
    :class:`~crash_ext.models.btlazy.PrintedWords`); None for any other."""
    got = bt.printed_view() if isinstance(bt, LazyBacktrace) else None
    if got is None:
        return None
    frames = got[0]
    shape = _SHAPES.get(frames)
    if shape is None:
        if len(_SHAPES) > 4096:
            _SHAPES.clear()
        shape = _SHAPES[frames] = tuple((i, fn, ret, mod, rel, None, None, False)
                                        for i, fn, ret, mod, rel in frames)
    return shape, got[1], got[2]


_SHAPES = {}  # type: Dict[tuple, tuple]   # plain_view's shapes, one object per shape


def task_view(bt: Backtrace) -> tuple:
    """Return (:func:`shape_of`, the innermost frame's stack slot or None without
    frames, :func:`task_words` -- values as ints or, from :func:`plain_view`, hex
    text) of ``bt``: what :meth:`Template.env_for` needs of a task."""
    got = plain_view(bt)
    if got is not None:
        return got
    frames = sorted(bt.frames, key=lambda f: f.index)
    return shape_of(bt), (frames[0].sp if frames else None), task_words(bt)


class Template:
    """A recovery run for one task, reusable for every task of the same stack shape.

    ``result``: that task's TaskArgs with its task-dependent numbers as Lins and its
    texts holding marks; ``ps``: the recovery's :class:`~.solver.Params` (how each
    parameter is found, the guards its decisions noted); ``shape``: :func:`shape_of`.
    The guards, the marks and the values are turned into Python functions of the
    parameter list on first reuse.
    """

    __slots__ = ("result", "ps", "shape", "_holds", "_hexes", "_values", "_plan", "_env",
                 "_answer")

    def __init__(self, result: TaskArgs, ps: Params, shape: tuple):
        self.result = result
        self.ps = ps
        self.shape = shape
        self._plan = None

    def _prepare(self) -> None:
        ps = self.ps
        tests = []  # type: List[str]
        for kind, a, b, res in ps.guards:
            if kind == "lt":
                t = "(%s<%s)" % (_expr(a), _expr(b))
            else:
                t = "(%s==0)" % _expr(a)
            tests.append(t if res else "(not %s)" % t)
        self._holds = _compile("lambda e: %s" % (" and ".join(tests) or "True"))
        self._hexes = _compile("lambda e: [%s]" % ",".join(
            "'%%x'%%%s" % _expr(m) for m in ps.marks))
        # the parameters of a task: read_word's answer for each word, or None when it
        # comes from elsewhere than it came for this recovery's task
        body = ["def env(sp0, w, rd):", " e = []", " a = e.append"]
        for d in ps.defs:
            if d[0] == "sp":
                body.append(" a(sp0)")
            elif d[0] == "lo32":
                body.append(" a(%s & 0xffffffff)" % _expr(d[1]))
            else:
                body.append(" x = %s" % _expr(d[1]))
                if d[2] == "bt -f":
                    body += [" v = w.get(x)", " if v is None: return None",
                             " a(v if v.__class__ is int else int(v, 16))"]
                else:
                    body += [" if w.get(x) is not None: return None",
                             " v = rd(x)", " if (v is None) != %s: return None" % (d[2] is None),
                             " a(0 if v is None else v)"]
        body.append(" return e")
        scope = {}  # type: Dict[str, object]
        exec(compile("\n".join(body), "<argrecover template>", "exec"), scope)
        self._env = scope["env"]
        values = []  # type: List[str]

        def val(x):
            """Return an int, or the index of ``x`` in the values list."""
            if x is None or isinstance(x, int):
                return ("int", x)
            values.append(_expr(x))
            return ("lin", len(values) - 1)

        def txt(x):
            if not isinstance(x, str) or "\x00" not in x:
                return x
            parts = x.split("\x00")
            fmt = "".join(p.replace("%", "%%") if i % 2 == 0 else "%s"
                          for i, p in enumerate(parts))
            return (fmt, tuple(int(p) for p in parts[1::2]))

        t = self.result
        frames = []
        for fa in t.frames:
            args = [(a.name, a.type, a.register, val(a.value),
                     [txt(x) for x in a.provenance], a.status, txt(a.reason),
                     [(val(v), [txt(x) for x in ch]) for v, ch in a.alternatives], a.weak)
                    for a in fa.args]
            frames.append((fa.index, fa.function, fa.module, fa.prototype, fa.clone, args,
                           [(k, val(v)) for k, v in fa.registers.items()],
                           [txt(w) for w in fa.warnings]))
        self._values = _compile("lambda e: [%s]" % ",".join(values))
        self._plan = ([txt(w) for w in t.warnings], frames)
        self._answer = _answer_function(self._plan, self._hexes, self._values)

    def env_for(self, sp0: Optional[int], words: Dict[int, int],
                read_fn: Optional[ReadFn]) -> Optional[List[int]]:
        """Return the parameter values of a task of this shape (``sp0``: its innermost
        frame's stack slot, ``words``: its :func:`task_words`), or None when a word is
        not found where this recovery's own task had it (then it does not apply)."""
        if sp0 is None:
            return None
        if self._plan is None:
            self._prepare()
        return self._env(sp0, words, lambda x: read_word(x, {}, read_fn)[0])

    def holds(self, env: List[int]) -> bool:
        """Return True when every decision the recovery took comes out the same with
        the parameter values ``env``."""
        if self._plan is None:
            self._prepare()
        return self._holds(env)

    def answer(self, bt: Backtrace, env: List[int]) -> TaskArgs:
        """Return the TaskArgs of ``bt`` from this recovery with the parameter values
        ``env`` (from :meth:`env_for`, checked with :meth:`holds`)."""
        if self._plan is None:
            self._prepare()
        return self._answer(bt, env)


def _answer_function(plan: tuple, hexes, values):
    """Return the function ``f(bt, env)`` that builds a Template's TaskArgs for a task
    from its ``plan`` (see Template._prepare: texts as they are or (format, mark
    indexes), numbers as ("int", n) or ("lin", index in ``values(env)``)) and the mark
    texts ``hexes(env)``: one generated expression, with the records' fields filled
    directly (no dataclass __init__)."""
    def text(x) -> str:
        if x.__class__ is tuple:
            return "(%r%%(%s,))" % (x[0], ",".join("h[%d]" % i for i in x[1]))
        return repr(x)

    def num(x) -> str:
        return repr(x[1]) if x[0] == "int" else "v[%d]" % x[1]

    def texts(xs) -> str:
        return "[%s]" % ",".join(text(x) for x in xs)

    def rec(cls: str, fields) -> str:
        return "mk(%s,{%s})" % (cls, ",".join("%r:%s" % kv for kv in fields))

    warnings, frames = plan
    fexprs = []
    for index, function, module, proto, clone, args, regs, fwarn in frames:
        aexprs = [rec("Arg", [
            ("name", repr(name)), ("type", repr(typ)), ("register", repr(reg)),
            ("value", num(value)), ("provenance", texts(prov)), ("status", repr(status)),
            ("reason", text(reason)),
            ("alternatives", "[%s]" % ",".join("(%s,%s)" % (num(av), texts(ch))
                                               for av, ch in alts)),
            ("weak", repr(weak)),
            ("wording", repr(tuple(x[0] if x.__class__ is tuple else x for x in prov)))])
            for name, typ, reg, value, prov, status, reason, alts, weak in args]
        fexprs.append(rec("FrameArgs", [
            ("index", repr(index)), ("function", repr(function)), ("module", repr(module)),
            ("prototype", repr(proto)), ("clone", repr(clone)),
            ("args", "[%s]" % ",".join(aexprs)),
            ("registers", "{%s}" % ",".join("%r:%s" % (k, num(x)) for k, x in regs)),
            ("warnings", texts(fwarn))]))
    body = rec("TaskArgs", [("pid", "bt.pid"), ("task", "bt.task"), ("command", "bt.command"),
                            ("frames", "[%s]" % ",".join(fexprs)),
                            ("warnings", texts(warnings))])
    source = "\n".join([
        "def answer(bt, e):",
        " h = hexes(e)" if "h[" in body else "",
        " v = values(e)" if "v[" in body else "",
        " return " + body])

    def mk(cls, fields):
        o = object.__new__(cls)
        o.__dict__ = fields
        return o
    scope = {"mk": mk, "hexes": hexes, "values": values, "Arg": Arg, "FrameArgs": FrameArgs,
             "TaskArgs": TaskArgs}
    exec(compile(source, "<argrecover template>", "exec"), scope)
    return scope["answer"]


def build_template(bt: Backtrace, dis_fn: DisFn, read_fn: Optional[ReadFn] = None,
                   whatis_fn: Optional[WhatisFn] = None,
                   flows: Optional[dict] = None) -> Template:
    """Run the recovery of ``bt`` (see :func:`recover`) and return it as a Template
    (``flows``: a cache of function runs shared between recoveries)."""
    r = _Recovery(bt, dis_fn, read_fn, whatis_fn, flows)
    r.build_flows()
    r.boundaries()
    r.geometry()
    r.links()
    r.anchors()
    return Template(r.report(), r.ps, shape_of(bt))


def recover(bt: Backtrace, dis_fn: DisFn, read_fn: Optional[ReadFn] = None,
            whatis_fn: Optional[WhatisFn] = None) -> TaskArgs:
    """Recover the arguments of every frame of ``bt`` (a parsed ``bt -f``).

    ``dis_fn(addr)`` returns crash ``dis`` text of the whole function containing ``addr``
    (raise or return "" when unavailable); ``read_fn(addr)`` the 8-byte word at ``addr``
    or None (used for stack words ``bt -f`` did not print, e.g. __switch_to_asm's saves
    below frame #0); ``whatis_fn(name)`` crash ``whatis`` text.  Never raises for
    missing data: what cannot be found is reported unknown with a reason.
    """
    t = build_template(bt, dis_fn, read_fn, whatis_fn)
    return t.answer(bt, t.ps.env)


class PortSources:
    """``dis``/``whatis``/memory callbacks on a Port, cached (share one across tasks),
    and the recoveries made through them.

    ``dis(addr)``: the whole function around ``addr`` as crash's ``dis`` prints it, by
    address so that clones and duplicate static names are unambiguous.
    ``flows``: the runs of functions to their call sites (:mod:`.flow`), shared by
    every recovery; ``templates``: {shape: [Template]} (:meth:`recover`).
    """

    #: recoveries kept per stack shape (tasks of one shape whose numbers lead to other
    #: decisions get their own)
    TEMPLATES_PER_SHAPE = 8
    #: tasks whose memory words are fetched together by :meth:`recover_many`
    CHUNK = 256
    #: the port read through (weakly: ``caches.SOURCES`` is keyed by it)
    port = HeldWeakly()

    def __init__(self, port):
        self.port = port
        self._dis = {}  # type: Dict[int, str]     # {instruction address: its function's text}
        self._symtab = None  # type: Optional[SymbolTable]
        self._whatis = {}  # type: Dict[str, str]
        self._words = {}  # type: Dict[int, Optional[int]]
        self.flows = {}  # type: Dict[tuple, fl.Flow]
        self.templates = {}  # type: Dict[tuple, List[Template]]

    def rebind(self, port, fixed: bool) -> None:
        """Read through ``port``, a later port of this one's crash session (see
        :meth:`~crash_ext.core.caches.Cache.for_session`); memory words are dropped unless
        ``fixed``."""
        self.port = port
        if not fixed:
            self._words = {}

    def _covered(self, addr: int) -> Optional[str]:
        return self._dis.get(addr)

    def _keep(self, text: str) -> str:
        for ins in parsed(text):
            self._dis[ins.addr] = text
        return text

    def symbols(self) -> Optional[SymbolTable]:
        """Return crash's symbol table (``sym -l``, read once), None when crash did not
        print one."""
        if self._symtab is None:
            try:
                tab = SymbolTable(self.port.command("sym -l"))
            except CrashExtError:
                tab = SymbolTable("")
            self._symtab = tab
        return self._symtab if len(self._symtab) else None

    def _gdb_dis(self, addr: int, answer: Optional[str] = None) -> Optional[str]:
        """The function around ``addr`` from gdb's ``disassemble`` (``answer``: its text
        when fetched already) with crash's names (:func:`gdb_as_dis`), kept; None when
        gdb has no function there or crash no symbol table."""
        tab = self.symbols()
        if tab is None:
            return None
        if answer is None:
            try:
                answer = self.port.command("gdb disassemble %#x" % addr)
            except CrashExtError:
                return None
        text = gdb_as_dis(answer, addr, tab)
        return None if text is None else self._keep(text)

    def dis(self, addr: int) -> str:
        """Return the disassembly of the whole function containing ``addr``, as crash's
        ``dis`` prints it; raises what the port raises (CrashCommandError when crash has
        no code there).

        gdb's ``disassemble`` renamed with crash's symbol table gives the same text
        in ~2 ms instead of ~7 ms for ``dis -r ADDR`` + ``dis -f ADDR`` (crash looks
        up every line's symbol itself; docs/design.md); crash's ``dis`` answers where
        gdb knows no function (a module whose debuginfo was not loaded)."""
        text = self._covered(addr)
        if text is not None:
            return text
        text = self._gdb_dis(addr)
        if text is not None:
            return text
        back = self.port.command("dis -r %#x" % addr)
        fwd = self.port.command("dis -f %#x" % addr)
        return self._keep(join_dis(back, fwd))

    def whatis(self, name: str) -> str:
        """Return ``whatis NAME`` text, "" when crash has no prototype for it."""
        if name not in self._whatis:
            try:
                self._whatis[name] = self.port.command("whatis %s" % check_address_word(name))
            except CrashCommandError:
                self._whatis[name] = ""
            except Exception:  # noqa: BLE001 - names crash will not take
                self._whatis[name] = ""
        return self._whatis[name]

    def prefetch(self, shapes) -> None:
        """Fetch the code and prototypes of the functions in ``shapes`` (of
        :func:`shape_of`) not known yet, all in one exchange when the port can batch
        commands (one return address per function: the others are in the same text).
        What fails here is left to :meth:`dis`/:meth:`whatis`, which ask again and
        report it."""
        if not self.port.batches_commands:
            return          # in crash every command is a call: nothing to save
        rets = {}  # type: Dict[tuple, int]
        names = set()  # type: Set[str]
        for shape in shapes:
            for _i, function, ret, module, _sp, _st, _exc, _regs in shape:
                if ret is not None:
                    rets.setdefault((function, module), ret)
                m = _CLONE.match(function)
                names.add(m.group("base") if m else function)
        addrs = [a for a in rets.values() if self._covered(a) is None]
        words = []  # type: List[str]
        for n in sorted(names):
            if n in self._whatis:
                continue
            try:
                words.append(check_address_word(n))
            except CrashExtError:
                continue
        cmds = ["gdb disassemble %#x" % a for a in addrs]
        cmds += ["whatis %s" % n for n in words]
        if not cmds:
            return
        try:
            outs = self.port.batch(cmds)
        except CrashExtError:
            return
        for a, out in zip(addrs, outs):
            if isinstance(out, str) and self._covered(a) is None:
                self._gdb_dis(a, out)
        for n, out in zip(words, outs[len(addrs):]):
            self._whatis[n] = out if isinstance(out, str) else ""

    def read(self, addr: int) -> Optional[int]:
        """Return the u64 at ``addr`` or None when unreadable (reads and caches the
        aligned 64-byte block around it: stack slots come in runs)."""
        if addr in self._words:
            return self._words[addr]
        if addr & 7:
            try:
                return self.port.read_u64(addr)
            except CrashExtError:
                return None
        block = addr & ~0x3F
        try:
            data = self.port.read(block, 64)
        except CrashExtError:
            try:
                v = self.port.read_u64(addr)
            except CrashExtError:
                v = None
            self._words[addr] = v
            return v
        self._keep_block(block, data)
        return self._words[addr]

    def _keep_block(self, block: int, data: bytes) -> None:
        for i in range(8):
            self._words[block + 8 * i] = int.from_bytes(data[8 * i:8 * i + 8], "little")

    def prefetch_words(self, addrs) -> None:
        """Read the 64-byte blocks around ``addrs`` not cached yet, in one exchange when
        the port can (unreadable blocks are left to :meth:`read`)."""
        blocks = sorted({a & ~0x3F for a in addrs if a not in self._words and not a & 7})
        if not blocks:
            return
        try:
            got = self.port.read_many([(b, 64) for b in blocks])
        except CrashExtError:
            return
        for b, data in zip(blocks, got):
            if data is not None and len(data) == 64:
                self._keep_block(b, data)

    def _peek(self, misses: List[int]) -> ReadFn:
        """A read function answering from the cache only, noting the misses."""
        words = self._words

        def peek(addr: int) -> Optional[int]:
            if addr in words:
                return words[addr]
            misses.append(addr)
            return None
        return peek

    def _reuse(self, bt: Backtrace, view: tuple, read_fn: ReadFn) -> Optional[TaskArgs]:
        shape, sp0, words = view
        for t in self.templates.get(shape, ()):
            env = t.env_for(sp0, words, read_fn)
            if env is not None and t.holds(env):
                return t.answer(bt, env)
        return None

    def recover(self, bt: Backtrace, view: Optional[tuple] = None) -> TaskArgs:
        """Return the argument recovery of ``bt`` (``view``: its :func:`task_view`,
        when made already): from a recovery already made for a task of the same shape
        when all its decisions come out the same with ``bt``'s numbers, else from a new
        one (kept for the next tasks).  Raises only what the port raises for crash
        dying or timing out."""
        view = view or task_view(bt)
        shape = view[0]
        got = self._reuse(bt, view, self.read)
        if got is not None:
            return got
        t = build_template(bt, self.dis, self.read, self.whatis, self.flows)
        kept = self.templates.setdefault(shape, [])
        if len(kept) < self.TEMPLATES_PER_SHAPE:
            kept.append(t)
        return t.answer(bt, t.ps.env)

    def recover_many(self, bts: Sequence[Backtrace], views: Optional[Dict[int, tuple]] = None
                     ) -> Iterator[TaskArgs]:
        """Yield :meth:`recover` of each of ``bts`` in order, with the crash commands
        batched: code and prototypes of every function first, then per CHUNK tasks the
        memory words their recoveries need, in one exchange.  ``views``: {id(bt): (bt,
        :func:`task_view`)} made already (e.g. while the back traces were read); they
        are used up (removed) as the tasks are answered."""
        views = {} if views is None else views
        shapes = set()  # type: Set[tuple]
        for bt in bts:
            v = views.get(id(bt))
            if v is None or v[0] is not bt:
                v = views[id(bt)] = (bt, task_view(bt))
            shapes.add(v[1][0])
        self.prefetch(shapes)
        for i in range(0, len(bts), self.CHUNK):
            chunk = bts[i:i + self.CHUNK]
            done = [None] * len(chunk)  # type: List[Optional[TaskArgs]]
            misses = []  # type: List[int]
            peek = self._peek(misses)
            for j, bt in enumerate(chunk):
                view = views[id(bt)][1]
                if view[0] not in self.templates:
                    done[j] = self.recover(bt, view)
                    continue
                n = len(misses)
                got = self._reuse(bt, view, peek)
                if len(misses) == n:
                    done[j] = got       # None: no template fits; recover() below
            self.prefetch_words(misses)
            for j, bt in enumerate(chunk):
                view = views.pop(id(bt))[1]
                yield done[j] if done[j] is not None else self.recover(bt, view)
                done[j] = None


def sources_for(port) -> PortSources:
    """Return the PortSources shared by every recovery on ``port`` (caches of
    disassembly, prototypes, memory words and recoveries live as long as the port).

    A port with a ``session_identity`` (pykdump's: one port per verb call inside one
    crash session) shares them with the earlier ports of that session: the code, the
    prototypes and the recoveries (functions of each task's own words); the memory
    words too when the port's ``memory_fixed()`` says it reads a dump (a live system's
    memory changes: read again in each call)."""
    return SOURCES.for_session(port, PortSources)


def recover_with_port(port, bt: Backtrace, sources: Optional[PortSources] = None
                      ) -> TaskArgs:
    """Recover ``bt``'s arguments reading code, prototypes and memory through ``port``.

    ``bt``: the task's parsed ``bt -f`` (e.g. from Snapshot.backtrace); ``sources``
    defaults to the port's shared caches.  Raises only what the port raises for crash
    dying or timing out (CrashDied, CrashTimeout).
    """
    src = sources or sources_for(port)
    return src.recover(bt)


def recover_all(port, bts: Sequence[Backtrace], sources: Optional[PortSources] = None,
                views: Optional[Dict[int, tuple]] = None) -> Iterator[TaskArgs]:
    """Yield the recovery of each of ``bts`` in order -- what :func:`recover_with_port`
    gives for each -- with the crash commands batched (:meth:`PortSources.recover_many`;
    ``views``: {id(bt): (bt, task_view)} made already, e.g. by :func:`plain_view` while the
    back traces were streamed).  Raises only what the port raises for crash dying or
    timing out."""
    src = sources or sources_for(port)
    return src.recover_many(list(bts), views)
