"""``deadlock``: the wait-for graph of blocked tasks -- cycles first, then convoys.

    deadlock [--include-in | --all] [-p PID] [--json] [--dot FILE] [--svg FILE] [--force]

Exit status: 0 nothing found (no cycle, nobody waiting behind anybody), 1 a deadlock
cycle or a convoy was found, 2 usage or input error (``deadlock: error: ...``).
"""

import argparse
import os
import sys
import time

from ..core import jsontext
from ..core.errors import BadArgument, CrashExtError
from ..core.port import Port
from ..core.words import argtype, check_count_word, check_path_word, check_pid_word
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
from .registry import CRASH_FAILURES, VerbParser, error_line, parse_verb_args


EXAMPLES = """
deadlock                     tasks in UN state: cycles, the tasks behind them, convoys
deadlock --include-in        also tasks sleeping interruptibly (IN)
deadlock -p 5109             only the part of the graph that holds pid 5109
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
    p.add_argument("-p", "--pid", metavar="PID", type=argtype(check_pid_word),
                   help="only the part of the graph connected to this task")
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

def run(port: Port, opts) -> WaitFor:
    """Return the analysis the parsed options ask for; raises CrashExtError."""
    from ..session.snapshot import Snapshot
    snap = Snapshot(port)
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


def main(argv, port: Port, out=None, err=None) -> int:
    """Run ``deadlock`` with ``argv`` on ``port``, printing to ``out`` (stdout).

    Returns 0 when nothing is found, 1 when a deadlock cycle or a convoy is found, 2 for
    a usage or input error or a crash command's error (one line ``deadlock: error: ...``
    on ``err``, stderr by default).  Raises CrashDied/CrashTimeout when crash itself
    fails (``crash-ext`` exits 3).
    """
    # the collector paused for the whole verb: what it makes is freed by reference
    # counting when _main returns, so no collection walks it afterwards
    with no_gc():
        return _main(argv, port, out, err)


def _check_outputs(port: Port, opts) -> None:
    """Refuse --dot/--svg files crash-ext must not write (the dump, the vmlinux, a
    module, an existing file that is not a picture of ours, one of ours without
    --force, both options naming one file).  Raises BadArgument."""
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
            prot.extend(protected_files(port) or [""])
        return prot
    for f, what in ((opts.dot, "--dot file"), (opts.svg, "--svg file")):
        if f:
            check_output_path(f, protected, opts.force, what)


def _main(argv, port: Port, out, err) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    opts, rc = parse_verb_args(build_parser(), argv, err)
    if opts is None:
        return rc
    try:
        require_task_view(port)
        pid = opts.pid
        _check_outputs(port, opts)      # before the analysis: a refused file costs nothing
        res = run(port, opts)
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
    except CRASH_FAILURES:
        raise                         # crash itself failed: crash-ext says so, exit 3
    except CrashExtError as e:
        print(error_line("deadlock", e), file=err)
        return 2
    return 1 if (res.cycles or res.convoys) else 0
