"""Argument recovery for a sleeping task's frames (the ``argrecover`` analysis).

How (docs/argrecover.md):

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

Entry points: :func:`~.templates.recover` (recorded text through callbacks) and
:func:`~.sources.recover_with_port` (a live Port).  Here: :class:`Recovery`, steps 3
and 4 (steps 1 and 2: :mod:`.linking`).
"""

from ..compat import List, Optional, Set, Tuple

from ..models import x86
from ..models.proto import Prototype, parse_whatis
from . import flow as fl
from ..core.results import Arg, FrameArgs, TaskArgs
from .argrecords import MASK, CodeFrame, hx, is_32bit_type, read_word
from .linking import FrameLinks
from .solver import ZERO


class Recovery(FrameLinks):
    """Steps 3 and 4: concrete anchors (stack slots, ``%rsp``), the union-find's answers
    and the report with each value's provenance."""

    def _read(self, addr) -> Tuple[object, str]:
        """Return (the word at ``addr`` as a parameter, where it was found: 'bt -f' or
        'memory'), or (None, "") when it cannot be read."""
        v, src = read_word(self.ps.value(addr), self.words, self.read_fn)
        w = self.ps.word(addr, v if v is not None else 0, src or None)
        return (w, src) if v is not None else (None, "")

    def _anchor_flow(self, f: CodeFrame) -> bool:
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

    def _slot_text(self, f: CodeFrame, key, val: fl.Val, info, addr: int, word: int,
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

    def _describe_unknown(self, f: CodeFrame, reg: str) -> str:
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

    def prototype(self, f: CodeFrame) -> Optional[Prototype]:
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

    def _arg(self, f: CodeFrame, name: str, typ: Optional[str], reg: Optional[str]) -> Arg:
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
