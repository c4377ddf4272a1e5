"""``argrecover``: each frame's function arguments of a task, with the evidence for each.

Thin: parsing arguments, choosing tasks and frames, printing.  The recovery itself is
:mod:`crash_ext.code.recovery`; cheap one-line decodes of well-known pointer types are
:mod:`crash_ext.waits.decode`.
"""

import argparse
import re
from ..compat import Dict, List, Optional

from ..code.sources import recover_all, recover_with_port, sources_for
from ..code.templates import plain_view
from ..core import jsontext
from ..core.errors import BadArgument
from ..core.port import Port
from ..core.results import FrameArgs, TaskArgs, TaskRef
from ..core.words import check_frame_word, shown, task_word
from ..models.btf import param_names, read_vmlinux_btf
from ..models.stack import parse_backtraces
from ..render.argrecover import frames_json, task_text
from ..render.shape import document
from ..render.text import width
from ..session.identity import dump_identity
from ..session.panic import is_panic_task
from ..session.snapshot import Snapshot, no_gc
from ..session.taskview import require_task_view
from ..waits.decode import decode_pointer
from . import shell
from .registry import VerbParser
from .shell import EXIT_ANSWERED
from .taskword import check_task_word, resolve_task

EXAMPLES = """
Arguments of every frame of the stuck rm (its pid, task address or command name),
then only vfs_unlink's:
  crash> argrecover rm
  crash> argrecover rm vfs_unlink
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
    p.add_argument("task", nargs="?", metavar="PID|TASK|COMMAND",
                   help="pid, task_struct address (hex), or a command name that one task "
                        "has")
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
    """Return ``bt -f`` text for the task ``word`` names: a pid (asked of crash as
    such), a command name one task has or a task address
    (:func:`~crash_ext.verbs.taskword.resolve_task`).  Raises BadArgument for a word
    that names no task, CrashExtError when crash fails."""
    kind, v = task_word(word)
    if kind == "pid":
        return port.command("bt -f %d" % v)
    return port.command("bt -f %#x" % resolve_task(port, Snapshot(port), word))


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


_ARGN = re.compile(r"arg[0-9]+\??\Z")


def name_params(port: Port, frames: List[FrameArgs]) -> None:
    """Give the arguments of ``frames`` that gdb's prototype left unnamed (``argN``)
    their names: a kernel function's from the vmlinux's BTF
    (:mod:`crash_ext.models.btf`: the DWARF names, as pahole copied them) when BTF
    describes it with as many parameters, a GCC clone's keeping their ``?``; a module
    function's from the module's debuginfo when crash loaded it (``mod -s``,
    ``--mod``): gdb's ``info scope`` at the function's entry
    (:meth:`~crash_ext.code.sources.PortSources.scope_names`).  A module's clone (its
    parameters may have been dropped) and a module without debuginfo keep ``argN``.
    Raises only what the port raises for crash dying or timing out."""
    btf, loaded = None, False
    for f in frames:
        if not f.prototype or not f.args or not any(_ARGN.match(a.name) for a in f.args):
            continue
        if f.module:
            if f.clone:
                continue
            listed = sources_for(port).scope_names(f.function)
            names = tuple(listed[:len(f.args)]) if len(listed) >= len(f.args) else None
        else:
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


def decode_args(port: Port, frames: List[FrameArgs]) -> Dict[int, Optional[str]]:
    """Return {id of an argument: its one-line decode} for the recovered arguments of
    ``frames`` that :func:`~crash_ext.waits.decode.decode_pointer` decodes (it reads
    the kernel), asked in the order they are printed."""
    out = {}  # type: Dict[int, Optional[str]]
    for f in frames:
        for a in f.args:
            if a.status != "recovered" or a.value is None or not a.type:
                continue
            out[id(a)] = decode_pointer(port, a.type, a.value)
    return out


def _render(port: Port, ta: TaskArgs, frames: List[FrameArgs], opts, decode: bool,
            out, snap: Optional[Snapshot] = None, memo: Optional[dict] = None
            ) -> Optional[dict]:
    """Print ``frames`` of ``ta`` (returns None), or with --json return their object;
    ``memo``: see :func:`~crash_ext.render.argrecover.frame_lines`."""
    ref = _ref(snap, ta)
    name_params(port, frames)
    decoded = decode_args(port, frames) if decode else None
    if opts.json:
        return frames_json(ref, ta, frames, decoded)
    out.write(task_text(ref, ta, frames, decoded, opts.evidence, width(out), memo))
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


def check(opts) -> None:
    """Check what needs no dump (run before crash starts); raises BadArgument."""
    if opts.uninterruptible:
        if opts.task or opts.frame:
            raise BadArgument("-u takes no task or frame")
        return
    if not opts.task:
        raise BadArgument("give a pid, task address or command name (or -u)")
    check_task_word(opts.task)
    if opts.frame is not None:
        check_frame_word(opts.frame)


def main(argv, port: Port, out=None, err=None) -> int:
    """Run ``argrecover`` with ``argv`` on ``port`` through the verb shell
    (:func:`~crash_ext.verbs.shell.main`): the answer on ``out`` (stdout), errors as one
    line on ``err`` (stderr).  Returns 0, 2 for usage and input errors, 3 when crash
    failed."""
    return shell.main("argrecover", argv, port, out, err)


def run(opts, port: Port, out) -> int:
    """Answer parsed ``opts`` on ``port``, printing to ``out``; return 0.  Raises
    CrashExtError for a one-line error."""
    if opts.uninterruptible:
        require_task_view(port)
        snap = Snapshot(port)
        views = {}  # type: dict
        # decoding every pointer of every task would cost a crash command each;
        # tasks of one stack shape share one recovery (code.templates.Template)
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
            print(jsontext.dumps(document("argrecover", dump_identity(port),
                                          {"tasks": docs}), indent=1), file=out)
        elif not bts:
            print("argrecover: no task in state UN", file=out)
        return EXIT_ANSWERED
    require_task_view(port)
    doc = _one_task(port, _task_text(port, opts.task), opts, out)
    if opts.json:
        print(jsontext.dumps(document("argrecover", dump_identity(port), {"tasks": [doc]}),
                             indent=1), file=out)
    return EXIT_ANSWERED
