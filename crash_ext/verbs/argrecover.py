"""``argrecover``: each frame's function arguments of a task, with the evidence for each.

Thin: parsing arguments, choosing tasks and frames, printing.  The recovery itself is
:mod:`crash_ext.analyses.args`; cheap one-line decodes of well-known pointer types are
:mod:`crash_ext.analyses.decode`.
"""

import argparse
import re
import sys
from ..compat import List, Optional

from ..analyses.args import (Arg, FrameArgs, TaskArgs, plain_view, recover_all,
                              recover_with_port)
from ..analyses.decode import decode_pointer
from ..analyses.panic import is_panic_task
from ..analyses.snapshot import Snapshot, no_gc
from ..analyses.taskview import require_task_view
from ..models.stack import parse_backtraces
from ..port import BadArgument, CrashExtError, Port
from ..words import check_frame_word, check_hex_word, pid_or_task_word, shown
from .registry import CRASH_FAILURES, VerbParser, error_line, parse_verb_args
from ..render import jsontext
from ..models.btf import param_names, read_vmlinux_btf
from ..render.shape import document, dump_identity, hexaddr, task_json
from ..render.text import DEFAULT_WIDTH, task_header, width, wrap
from ..analyses.results import TaskRef

EXAMPLES = """
Arguments of every frame of the stuck rm, then only vfs_unlink's:
  crash> argrecover 5109
  crash> argrecover 5109 vfs_unlink
Frame #4 of a task given by its task_struct address, as JSON:
  crash> argrecover ffff8802d0e5a080 4 --json
Every task in TASK_UNINTERRUPTIBLE:
  crash> argrecover -u
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argparse parser of ``argrecover`` (also used for crash's help)."""
    p = VerbParser(
        prog="argrecover", examples=EXAMPLES,
        description="Recover the arguments of a sleeping task's stack frames from the stack "
                    "and the disassembly (x86-64): one line per argument (name, type, "
                    "register, value, a decode of well-known pointer types and a short "
                    "tag saying where the value came from), or 'unknown'; -v prints the "
                    "whole chain of evidence behind each value, or why it is unknown.")
    p.add_argument("task", nargs="?", help="pid, or task_struct address (hex)")
    p.add_argument("frame", nargs="?",
                   help="one frame: its number (#N in bt) or its function's name")
    p.add_argument("-u", "--uninterruptible", action="store_true",
                   help="every task in state UN (no TASK argument)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-decode", action="store_true",
                   help="do not decode well-known pointer types (dentry, inode, locks)")
    p.add_argument("-v", "--evidence", action="store_true",
                   help="print each value's whole chain of evidence (default: one line "
                        "per argument with a short tag)")
    return p


def _task_text(port: Port, word: str) -> str:
    """Return ``bt -f`` text for a pid (ASCII digits) or a task address (hex, at most
    16 digits); raises BadArgument for any other word, CrashExtError when crash fails."""
    kind, v = pid_or_task_word(word)
    if kind == "pid":
        return port.command("bt -f %d" % v)
    try:
        addr = check_hex_word(v)
    except BadArgument:
        raise BadArgument("not a pid or task address: %s" % shown(word))
    return port.command("bt -f %#x" % addr)


def _check_sleeping(port: Port, bt) -> Snapshot:
    """Return the session's task list; raise BadArgument for a task that is running
    (its registers are live, not saved), unless it is the panic task of a dump (crash
    has the registers the kernel saved when it panicked)."""
    snap = Snapshot(port)
    entry = snap.by_task(bt.task) if bt.task is not None else None
    if entry is not None and entry.state == "RU" and not is_panic_task(port, entry.pid):
        raise BadArgument("PID %d (%s) is running: its registers are live, not saved on the "
                          "stack; argrecover works on sleeping tasks" % (entry.pid, entry.comm))
    return snap


def _select(ta: TaskArgs, frame: Optional[str]) -> List[FrameArgs]:
    """Return the frames ``frame`` names (all when None); raises BadArgument."""
    if frame is None:
        return ta.frames
    want = check_frame_word(frame)
    if isinstance(want, int):
        f = ta.frame(want)
        if f is None:
            last = ta.frames[-1].index if ta.frames else -1
            raise BadArgument("no frame #%d (this task has frames #0..#%d)" % (want, last))
        return [f]
    hits = [f for f in ta.frames if f.function == want or f.function.split(".")[0] == want]
    if not hits:
        raise BadArgument("no frame of function %s on this task's stack" % shown(want))
    return hits


def _show(a: Arg) -> str:
    """Return the value in hex, plus signed decimal for integer (non-pointer) types."""
    if a.type and "*" not in a.type and "[" not in a.type:
        bits = 32 if a.value < 1 << 32 else 64
        signed = a.value - (1 << bits) if a.value >> (bits - 1) & 1 else a.value
        return "%x (%d)" % (a.value, signed)
    return "%x" % a.value


def _chain(steps: List[str]) -> List[str]:
    """Return evidence steps with one arrow form (``<-``) throughout."""
    return [s.replace("\u2190", "<-") for s in steps]


def _arg_json(a: Arg, decoded: Optional[str]) -> dict:
    return {"name": a.name, "type": a.type, "register": a.register, "status": a.status,
            "value": hexaddr(a.value), "provenance": _chain(a.provenance),
            "reason": a.reason, "weak": a.weak, "decoded": decoded,
            "alternatives": [{"value": hexaddr(v), "provenance": _chain(p)}
                             for v, p in a.alternatives]}


def _decode(port: Port, a: Arg, enabled: bool) -> Optional[str]:
    if not enabled or a.status != "recovered" or a.value is None or not a.type:
        return None
    return decode_pointer(port, a.type, a.value)


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


def _arg_lines(a: Arg, port: Port, decode: bool, evidence: bool, cols: int) -> List[str]:
    """Return the lines of argument ``a``: name, type, register, value, decode and
    evidence tag, or with ``evidence`` its whole chain."""
    lines = []  # type: List[str]
    typ = " (%s)" % a.type if a.type else ""
    reg = " %%%s" % a.register if a.register else ""
    if a.status == "recovered":
        d = _decode(port, a, decode)
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


def _frame_lines(f: FrameArgs, port: Port, decode: bool, lines: List[str],
                 evidence: bool = False, cols: int = DEFAULT_WIDTH,
                 memo: Optional[dict] = None) -> None:
    """Append the text lines of frame ``f`` to ``lines``: its head, then one line per
    argument, or with ``evidence`` each value's whole chain.

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
    shared = memo is not None and not decode and not evidence
    for a in f.args:
        if shared and a.wording is not None:
            key = (a.wording, a.name, a.type, a.register, a.status, a.value, a.weak,
                   a.reason, cols)
            got = memo.get(key)
            if got is None:
                got = memo[key] = _arg_lines(a, port, False, False, cols)
            lines.extend(got)
        else:
            lines.extend(_arg_lines(a, port, decode, evidence, cols))


_ARGN = re.compile(r"arg[0-9]+\??\Z")


def name_params(port: Port, frames: List[FrameArgs]) -> None:
    """Give the arguments of ``frames`` that gdb's prototype left unnamed (``argN``)
    their names from the vmlinux's BTF (:mod:`crash_ext.models.btf`: the DWARF names,
    as pahole copied them), when BTF describes the function with as many parameters;
    a GCC clone's names keep their ``?``.  Module functions keep ``argN`` (a module's
    BTF, when it has one, is not read).  Never raises."""
    btf, loaded = None, False
    for f in frames:
        if f.module or not f.prototype or not f.args or not any(
                _ARGN.match(a.name) for a in f.args):
            continue
        if not loaded:
            btf, loaded = read_vmlinux_btf(dump_identity(port).get("vmlinux")), True
        names = param_names(btf, f.function, len(f.args))
        if names is None:
            continue
        for a, n in zip(f.args, names):
            if _ARGN.match(a.name):
                a.name = n + ("?" if a.name.endswith("?") else "")


def _ref(snap: Optional[Snapshot], ta: TaskArgs) -> TaskRef:
    """Return the task of ``ta`` as the verbs show tasks (pid, comm, state, cpu from
    ``ps``), from what ``bt`` printed when ``ps`` does not list it."""
    if snap is not None and ta.task is not None:
        r = snap.ref(ta.task)
        if r.pid is not None:
            return r
    return TaskRef(task=ta.task or 0, pid=ta.pid, comm=ta.command)


def _render(port: Port, ta: TaskArgs, frames: List[FrameArgs], opts, decode: bool,
            out, snap: Optional[Snapshot] = None, memo: Optional[dict] = None
            ) -> Optional[dict]:
    """Print ``frames`` of ``ta`` (returns None), or with --json return their object;
    ``memo``: see :func:`_frame_lines`."""
    ref = _ref(snap, ta)
    name_params(port, frames)
    if opts.json:
        return {"task": task_json(ref), "warnings": ta.warnings,
                "frames": [{"index": f.index, "function": f.function, "module": f.module,
                            "prototype": f.prototype, "clone": f.clone,
                            "warnings": f.warnings,
                            "args": [_arg_json(a, _decode(port, a, decode)) for a in f.args]}
                           for f in frames]}
    cols = width(out)
    lines = [task_header(ref)]
    lines.extend("  note: %s" % w for w in ta.warnings)
    for f in frames:
        _frame_lines(f, port, decode, lines, opts.evidence, cols, memo)
    lines.append("")
    out.write("\n".join(lines) + "\n")
    return None


def _view(views: dict, bt) -> None:
    """Note ``bt``'s shape and words (:func:`plain_view`, when its text allows) in
    ``views`` as ``{id(bt): (bt, view)}``."""
    v = plain_view(bt)
    if v is not None:
        views[id(bt)] = (bt, v)


def _one_task(port: Port, text: str, opts, out) -> Optional[dict]:
    """argrecover TASK [FRAME]: parse, refuse running tasks, recover, render."""
    bts = parse_backtraces(text)
    if not bts or not bts[0].frames:
        raise BadArgument("crash printed no stack frames for this task")
    snap = _check_sleeping(port, bts[0])
    ta = recover_with_port(port, bts[0])
    return _render(port, ta, _select(ta, opts.frame), opts, not opts.no_decode, out, snap)


def main(argv, port: Port, out=None) -> int:
    """Run ``argrecover`` with ``argv``; print to ``out``.  Returns 0, or 2 for usage
    and input errors (printed as one line).  Raises CrashDied/CrashTimeout when crash
    itself fails (``crash-ext`` exits 3)."""
    out = out or sys.stdout
    opts, rc = parse_verb_args(build_parser(), argv, out)
    if opts is None:
        return rc
    try:
        if opts.uninterruptible:
            if opts.task or opts.frame:
                raise BadArgument("-u takes no task or frame")
            require_task_view(port)
            snap = Snapshot(port)
            views = {}  # type: dict
            # decoding every pointer of every task would cost a crash command each;
            # tasks of one stack shape share one recovery (analyses.args.Template)
            docs = []
            memo = {}  # type: dict
            with no_gc():
                # each task's shape and words are read while crash prints the next ones
                bts = snap.backtraces("UN", on_task=lambda bt: _view(views, bt))
                for ta in recover_all(port, list(bts.values()), views=views):
                    doc = _render(port, ta, ta.frames, opts, False, out, snap, memo)
                    if opts.json:
                        docs.append(doc)
            if opts.json:
                print(jsontext.dumps(document("argrecover", port, {"tasks": docs}),
                                     indent=1), file=out)
            elif not bts:
                print("argrecover: no task in state UN", file=out)
            return 0
        if not opts.task:
            raise BadArgument("give a pid or task address (or -u)")
        if opts.frame is not None:
            check_frame_word(opts.frame)      # a bad word is refused before crash is asked
        require_task_view(port)
        doc = _one_task(port, _task_text(port, opts.task), opts, out)
        if opts.json:
            print(jsontext.dumps(document("argrecover", port, {"tasks": [doc]}), indent=1),
                  file=out)
        return 0
    except CRASH_FAILURES:
        raise                         # crash itself failed: crash-ext says so, exit 3
    except CrashExtError as e:
        print(error_line("argrecover", e), file=out)
        return 2
