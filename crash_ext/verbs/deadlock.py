"""``deadlock``: the wait-for graph of blocked tasks -- cycles first, then convoys.

    deadlock [--include-in | --all] [-p PID] [--json] [--dot FILE] [--svg FILE] [--force]

Exit codes (:data:`~crash_ext.verbs.shell.EXIT_TEXT`): 0 nothing alarming, 1 a deadlock
cycle, or tasks blocked behind a holder that is not running (a convoy), 2 usage or input
error (``deadlock: error: ...`` on stderr).
"""

import argparse
import os
import time

from ..core import jsontext
from ..core.errors import BadArgument, CrashExtError
from ..core.port import Port
from ..core.words import argtype, check_count_word, check_path_word
from ..render.deadlock import DEPTH_TEXT, format_text, summary_line, to_json
from ..render.shape import document
from ..render.text import width
from ..session.identity import dump_identity, live_system
from ..session.panic import panic_facts
from ..session.snapshot import no_gc
from ..session.taskview import require_task_view
from ..waits.collection import collect
from ..waits.graph import WaitFor, restrict_to_pid
from ..waits.liveconfirm import confirm
from . import shell
from .registry import VerbParser
from .shell import EXIT_ALARM, EXIT_ANSWERED
from .taskword import check_task_word, resolve_task


EXAMPLES = """
deadlock                     tasks in UN state: cycles, the tasks behind them, convoys
deadlock --include-in        also tasks sleeping interruptibly (IN)
deadlock -p rm               only the part of the graph that holds the task named rm
                             (or give its pid or task address)
deadlock --json              the same facts as JSON
deadlock --dot /tmp/wf.dot --svg /tmp/wf.svg   a Graphviz picture, the cycle in red
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``deadlock``."""
    p = VerbParser(prog="deadlock", examples=EXAMPLES, add_help=True,
                description="Wait-for graph of blocked tasks: deadlock cycles told step by "
                            "step (each 'held by' marked recorded or inferred, with its "
                            "evidence), the tasks stuck behind them, then chains without a "
                            "cycle (convoys) by their root.  The answer comes first (each "
                            "cycle as its victims see it), then the evidence.  " +
                            DEPTH_TEXT)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--include-in", action="store_true",
                   help="also analyse tasks in IN (interruptible sleep) state")
    g.add_argument("--all", action="store_true", help="analyse tasks in every state")
    p.add_argument("-p", "--pid", metavar="PID|TASK|COMMAND",
                   help="only the part of the graph connected to this task: a pid, a "
                        "task_struct address or a command name that one task has")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--dot", metavar="FILE", type=argtype(check_path_word, "--dot file"),
                   help="write a Graphviz picture to FILE (a new file, or one crash-ext "
                        "wrote before with --force; never the dump or the vmlinux)")
    p.add_argument("--svg", metavar="FILE", type=argtype(check_path_word, "--svg file"),
                   help="render the picture to FILE as SVG (needs Graphviz's dot; same "
                        "rules as --dot)")
    p.add_argument("--force", action="store_true",
                   help="replace a picture crash-ext wrote before at --dot/--svg FILE")
    p.add_argument("--limit", type=argtype(check_count_word, "--limit", 10 ** 6),
                   default=20, metavar="N",
                   help="rows per list in text output (0: all; default %(default)s)")
    c = p.add_mutually_exclusive_group()
    c.add_argument("--candidates", action="store_true",
                   help="always rank candidate holders of locks that record no owner "
                        "(by default only while few tasks could hold the lock: it "
                        "searches every stack)")
    c.add_argument("--no-candidates", action="store_true",
                   help="never rank them; holders of such locks are then inferred only "
                        "from live stack frames and by elimination")
    return p


# ------------------------------------------------------------------- main

def check(opts) -> None:
    """Check what needs no dump (run before crash starts): the -p word, and the
    --dot/--svg files (a file that exists and is not a picture of ours, or one of ours
    without --force, both options naming one file).  Raises BadArgument."""
    if opts.pid is not None:
        check_task_word(opts.pid)
    _check_outputs(None, opts)


def analyse(port: Port, opts, snap) -> WaitFor:
    """Return the analysis the parsed options ask for; raises CrashExtError."""
    if opts.all:
        states = sorted({t.state for t in snap.tasks()})
    elif opts.include_in:
        states = ["UN", "IN"]
    else:
        states = ["UN"]
    cands = True if opts.candidates else (False if opts.no_candidates else "auto")
    walked_at = time.monotonic()
    res = collect(port, states, snapshot=snap, use_candidates=cands)
    if live_system(port):
        res = confirm(port, res, walked_at)
    return res


def exit_code(res: WaitFor) -> int:
    """Return 1 when ``res`` holds a deadlock cycle or a convoy whose root is not a
    running task (tasks blocked behind a blocked holder, or one nobody records), else
    0."""
    if res.cycles:
        return EXIT_ALARM
    for c in res.convoys:
        if not c.roots or not all(r.state == "RU" for r in c.roots):
            return EXIT_ALARM
    return EXIT_ANSWERED


def main(argv, port: Port, out=None, err=None) -> int:
    """Run ``deadlock`` with ``argv`` on ``port`` through the verb shell
    (:func:`~crash_ext.verbs.shell.main`): the answer on ``out`` (stdout), errors as one
    line on ``err`` (stderr).  Returns the exit code (:func:`exit_code`, 2 for a usage
    or input error, 3 when crash failed)."""
    return shell.main("deadlock", argv, port, out, err)


def _check_outputs(port, opts) -> None:
    """Refuse --dot/--svg files crash-ext must not write (the dump, the vmlinux, a
    module, an existing file that is not a picture of ours, one of ours without
    --force, both options naming one file).  Without ``port`` (before crash starts)
    the session's own files are not known yet.  Raises BadArgument."""
    files = [f for f in (opts.dot, opts.svg) if f]
    if not files:
        return
    from ..render.outputs import check_output_path
    from ..session.identity import protected_files
    if len(files) == 2 and os.path.abspath(files[0]) == os.path.abspath(files[1]):
        raise BadArgument("--dot and --svg name the same file")
    prot = []

    def protected():        # asked of crash only when a named file exists
        if not prot:
            prot.extend((protected_files(port) if port is not None else None) or [""])
        return prot
    for f, what in ((opts.dot, "--dot file"), (opts.svg, "--svg file")):
        if f:
            check_output_path(f, protected, opts.force, what)


def run(opts, port: Port, out) -> int:
    """Answer parsed ``opts`` on ``port``, printing to ``out``; return
    :func:`exit_code`.  Raises CrashExtError for a one-line error."""
    # the collector paused for the whole verb: what it makes is freed by reference
    # counting when it returns, so no collection walks it afterwards
    with no_gc():
        return _run(opts, port, out)


def _run(opts, port: Port, out) -> int:
    from ..session.snapshot import Snapshot
    require_task_view(port)
    _check_outputs(port, opts)      # before the analysis: a refused file costs nothing
    snap = Snapshot(port)
    pid = None
    if opts.pid is not None:
        pid = snap.ref(resolve_task(port, snap, opts.pid)).pid
    res = analyse(port, opts, snap)
    if pid is not None:
        sub = restrict_to_pid(res, pid)
        if sub is None:
            raise BadArgument("PID %d is not among the analysed tasks (%s) nor a "
                              "holder of their locks" % (pid, "+".join(res.states)))
        res = sub
    res.panic = panic_facts(port)
    if opts.dot or opts.svg:
        from ..render.outputs import write_output
        from ..render.dot import to_dot, write_svg
        text = to_dot(res, title="crash-ext deadlock: %s" % summary_line(res)[10:])
        if opts.dot:
            write_output(opts.dot, text.encode())
        if opts.svg:
            write_svg(text, opts.svg)
    if opts.json:
        print(jsontext.dumps(document("deadlock", dump_identity(port), to_json(res)),
                             indent=1), file=out)
    else:
        out.write(format_text(res, opts.limit, width(out)))
        for f, what in ((opts.dot, "Graphviz"), (opts.svg, "SVG")):
            if f:
                print("%s picture written to %s" % (what, f), file=out)
    return exit_code(res)
