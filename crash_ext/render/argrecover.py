"""``argrecover``'s text and JSON: each frame's head and prototype, each argument's
value, decode and evidence (or whole chain); records in, text out.  The decodes are
read before (they read the kernel): :func:`~crash_ext.verbs.argrecover.decode_args`."""

import re
from ..compat import Dict, List, Optional

from ..core.results import Arg, FrameArgs, TaskArgs, TaskRef
from .shape import hexaddr, task_json
from .text import DEFAULT_WIDTH, header_lines, wrap


#: integer values that mean a constant in arguments whose name ends so:
#: {name suffix: {value: constant}}
_CONSTANTS = {"dfd": {-100: "AT_FDCWD"}}


def _show(a: Arg) -> str:
    """Return the value in hex, plus signed decimal for integer (non-pointer) types, and
    the constant it stands for (``dfd`` -100: ``AT_FDCWD``)."""
    if a.type and "*" not in a.type and "[" not in a.type:
        bits = 32 if a.value < 1 << 32 else 64
        signed = a.value - (1 << bits) if a.value >> (bits - 1) & 1 else a.value
        for suffix, names in _CONSTANTS.items():
            if (a.name or "").rstrip("?").endswith(suffix) and signed in names:
                return "%x (%d = %s)" % (a.value, signed, names[signed])
        return "%x (%d)" % (a.value, signed)
    return "%x" % a.value


def _chain(steps: List[str]) -> List[str]:
    """Return evidence steps with one arrow form (``<-``) throughout."""
    return [s.replace("\u2190", "<-") for s in steps]


def arg_json(a: Arg, decoded: Optional[str]) -> dict:
    """Return argument ``a`` as JSON-ready data, with its one-line decode."""
    return {"name": a.name, "type": a.type, "register": a.register, "status": a.status,
            "value": hexaddr(a.value), "provenance": _chain(a.provenance),
            "reason": a.reason, "weak": a.weak, "decoded": decoded,
            "alternatives": [{"value": hexaddr(v), "provenance": _chain(p)}
                             for v, p in a.alternatives]}


_REG = re.compile(r"%(r[0-9a-z]+|e[a-z]+)")


def evidence_tag(a: Arg) -> str:
    """Return a few words saying where a recovered value came from: the registers its
    chain passes through and where it ends (``via %rbx, stack slot``); ``-v`` prints
    the whole chain."""
    text = " ".join(a.provenance)
    regs = []  # type: List[str]
    for r in _REG.findall(text):
        if r != a.register and r not in regs and r not in ("rsp", "rbp", "rip"):
            regs.append(r)
    ends = "stack slot" if "read [" in text else (
        "register block" if "register block" in text or "exception frame" in text
        else "")
    bits = []
    if regs:
        bits.append("via " + ", ".join("%" + r for r in regs[:3]))
    if ends:
        bits.append(ends)
    if a.weak:
        bits.append("WEAK")
    return ", ".join(bits) or "%d step%s" % (len(a.provenance),
                                             "" if len(a.provenance) == 1 else "s")


#: the hint when a module's functions have no prototype (its debuginfo is not loaded)
MOD_HINT = ("no prototype for module %s's functions: load its debuginfo (crash-ext: "
            "--mod %s=FILE.ko; inside crash: mod -s %s FILE.ko), then their arguments "
            "have types and names")


def _frame_head(f: FrameArgs, cols: int) -> List[str]:
    """Return the lines that introduce frame ``f``: ``#N function [module]``, its
    prototype and its notes."""
    lines = [" #%d %s%s" % (f.index, f.function, " [%s]" % f.module if f.module else "")]
    if f.prototype:
        lines.extend(wrap(f.prototype.strip(), cols, "    ", "        "))
    warnings = list(f.warnings)
    if f.module and not f.prototype:
        warnings = [w for w in warnings if not w.startswith("no prototype for ")]
        warnings.append(MOD_HINT % (f.module, f.module, f.module))
    for w in warnings:
        lines.extend(wrap("note: %s" % w, cols, "    ", "      "))
    return lines


def _arg_lines(a: Arg, d: Optional[str], evidence: bool, cols: int) -> List[str]:
    """Return the lines of argument ``a``: name, type, register, value, decode ``d``
    and evidence tag, or with ``evidence`` its whole chain."""
    lines = []  # type: List[str]
    typ = " (%s)" % a.type if a.type else ""
    reg = " %%%s" % a.register if a.register else ""
    if a.status == "recovered":
        if evidence:
            weak = "  [weak: rests on a stack slot a callee could have changed]" \
                if a.weak else ""
            lines.extend(wrap("%s%s%s = %s%s%s" % (
                a.name, typ, reg, _show(a), "  -> " + d if d else "", weak), cols,
                "    ", "        "))
            for step in _chain(a.provenance):
                lines.extend(wrap("<- %s" % step, cols, "        ", "           "))
        else:
            lines.extend(wrap("%s%s%s = %s%s  [%s]" % (
                a.name, typ, reg, _show(a), "  -> " + d if d else "", evidence_tag(a)),
                cols, "    ", "        "))
    elif a.status == "conflict":
        lines.extend(wrap("%s%s%s = CONFLICT: %s" % (a.name, typ, reg, a.reason or ""),
                          cols, "    ", "        "))
        if evidence:
            for v, chain in ([(a.value, a.provenance)] if a.value is not None
                             else []) + list(a.alternatives):
                lines.extend(wrap("%x <- %s" % (v, "; ".join(chain).replace(
                    "\u2190", "<-")), cols, "        ", "           "))
    elif evidence:
        lines.extend(wrap("%s%s%s = unknown (%s)" % (
            a.name, typ, reg, a.reason or "no evidence"), cols, "    ", "        "))
    else:
        lines.append("    %s%s%s = unknown  [-v says why]" % (a.name, typ, reg))
    return lines


def frame_lines(f: FrameArgs, decoded: Optional[Dict[int, str]], lines: List[str],
                evidence: bool = False, cols: int = DEFAULT_WIDTH,
                memo: Optional[dict] = None) -> None:
    """Append the text lines of frame ``f`` to ``lines``: its head, then one line per
    argument, or with ``evidence`` each value's whole chain.  ``decoded``: {id of an
    argument: its one-line decode} (:func:`~crash_ext.verbs.argrecover.decode_args`),
    None when decoding is off.

    ``memo``: a dict kept across the frames of one output.  In it the heads are made
    once, and so are the lines of an argument answered from a template
    (:attr:`Arg.wording`) per value: without ``evidence`` or ``decode`` they depend on
    nothing else, and a template's tasks share their wording (many share values too)."""
    if memo is None:
        lines.extend(_frame_head(f, cols))
    else:
        key = (f.index, f.function, f.module, f.prototype, tuple(f.warnings), cols)
        head = memo.get(key)
        if head is None:
            head = memo[key] = _frame_head(f, cols)
        lines.extend(head)
    if f.module and not f.prototype and not evidence and all(
            a.status == "unknown" for a in f.args):
        lines.append("    arguments: unknown (%d argument registers, no prototype)"
                     % len(f.args))
        return
    shared = memo is not None and decoded is None and not evidence
    for a in f.args:
        if shared and a.wording is not None:
            key = (a.wording, a.name, a.type, a.register, a.status, a.value, a.weak,
                   a.reason, cols)
            got = memo.get(key)
            if got is None:
                got = memo[key] = _arg_lines(a, None, False, cols)
            lines.extend(got)
        else:
            lines.extend(_arg_lines(a, (decoded or {}).get(id(a)), evidence, cols))


def frames_json(ref: TaskRef, ta: TaskArgs, frames: List[FrameArgs],
                decoded: Optional[Dict[int, str]]) -> dict:
    """Return the JSON-ready object of ``frames`` of task ``ta`` (``ref``: how the task
    is shown; ``decoded``: see :func:`frame_lines`)."""
    got = decoded or {}
    return {"task": task_json(ref), "warnings": ta.warnings,
            "frames": [{"index": f.index, "function": f.function, "module": f.module,
                        "prototype": f.prototype, "clone": f.clone,
                        "warnings": f.warnings,
                        "args": [arg_json(a, got.get(id(a))) for a in f.args]}
                       for f in frames]}


def task_text(ref: TaskRef, ta: TaskArgs, frames: List[FrameArgs],
              decoded: Optional[Dict[int, str]], evidence: bool, cols: int,
              memo: Optional[dict] = None) -> str:
    """Return the text of ``frames`` of task ``ta``: crash's task header, the task's
    notes, each frame (:func:`frame_lines`), a blank line."""
    lines = header_lines(ref, cols)
    for w in ta.warnings:
        lines.extend(wrap("note: %s" % w, cols, "  ", "    "))
    for f in frames:
        frame_lines(f, decoded, lines, evidence, cols, memo)
    lines.append("")
    return "\n".join(lines) + "\n"
