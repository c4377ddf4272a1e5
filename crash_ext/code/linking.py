"""Steps 1 and 2 of argument recovery (:mod:`.recovery`): each frame's function run
symbolically to its call site (:mod:`.flow`), and neighbouring frames tied together
(callee-saved registers always; argument registers when the call goes straight to the
callee, through thunks and tail jumps), with the frame geometry checked against crash's
frame addresses."""

import re
from ..compat import Dict, List, Optional, Set, Tuple

from ..models import x86
from ..models.disasm import Insn
from ..models.stack import Backtrace, Frame
from . import flow as fl
from . import flowrun
from .argrecords import (MASK, SWITCH_FUNCS, TAIL_DEPTH, CodeFrame, DisFn, ReadFn, WhatisFn,
                         hx, parsed, task_words)
from .solver import ZERO, Params, Reason, Solver


class FrameLinks:
    """The frames of one back trace, their flows and the equations that tie them; the
    base of :class:`~.recovery.Recovery`."""

    def __init__(self, bt: Backtrace, dis_fn: DisFn, read_fn: Optional[ReadFn],
                 whatis_fn: Optional[WhatisFn], flows: Optional[dict] = None):
        self.bt = bt
        self.dis_fn = dis_fn
        self.read_fn = read_fn
        self.whatis_fn = whatis_fn
        self.flow_cache = flows  # {(fid, return address, cold): Flow} shared, or None
        self.solver = Solver()
        self.frames = [CodeFrame(f) for f in sorted(bt.frames, key=lambda f: f.index)]
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
        self.virtual = None  # type: Optional[CodeFrame]
        self.linkkind = {}  # type: Dict[int, str]  callee index -> 'direct'|'cs-only'|reason
        self.link_why = {}  # type: Dict[int, str]
        self.anchored = set()  # type: Set[Tuple[str, str, int]]
        self.warnings = []  # type: List[str]
        self.pending_indirect = []  # type: List[Tuple[CodeFrame, CodeFrame, str]]
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
                flowrun.run(flow, idx - 1, dis_fn=self.dis_fn)
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
                    v = CodeFrame(Frame(index=-1, sp=inner.sp - 8, function=name,
                                 ret_addr=None))
                    v.sp = inner.sp - 8
                    v.flow = flowrun.run(fl.Flow("#-1", name, insns), len(insns),
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

    def _target_ok(self, caller: CodeFrame, callee: CodeFrame) -> Optional[str]:
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

    def _link(self, callee: CodeFrame, caller: CodeFrame, regs, note: str = "") -> None:
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

    def _eval(self, f: CodeFrame, v: fl.Val, depth: int = 4) -> Tuple[Optional[int], List[str]]:
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

    def _follow_tail(self, callee: CodeFrame, caller: CodeFrame, target: int) -> Optional[str]:
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
            flowrun.run(flow, len(insns), dis_fn=self.dis_fn, init=state)
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
