"""``deadlock``: the wait-for graph of blocked tasks -- cycles first, then convoys.

    deadlock [--include-in | --all] [-p PID] [--json] [--dot FILE] [--svg FILE] [--force]

Exit status: 0 nothing found (no cycle, nobody waiting behind anybody), 1 a deadlock
cycle or a convoy was found, 2 usage or input error (``deadlock: error: ...``).
"""

import argparse
import os
import sys
from ..compat import Dict, List, Optional

from ..analyses.results import TaskRef
from ..analyses.snapshot import no_gc
from ..analyses.taskview import require_task_view
from ..analyses.waitfor import (Cycle, HeldBy, LockNode, WaitFor, collect,
                                restrict_to_pid, short_lock_name)
from ..port import BadArgument, CrashExtError, Port
from ..words import argtype, check_count_word, check_path_word, check_pid_word
from .registry import CRASH_FAILURES, VerbParser, error_line, parse_verb_args
from ..render import jsontext
from ..render.table import table


EXAMPLES = """
deadlock                     tasks in UN state: cycles, the tasks behind them, convoys
deadlock --include-in        also tasks sleeping interruptibly (IN)
deadlock -p 5109             only the part of the graph that holds pid 5109
deadlock --json              the same facts as JSON
deadlock --dot /tmp/wf.dot --svg /tmp/wf.svg   a Graphviz picture, the cycle in red
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``deadlock``."""
    p = VerbParser(prog="deadlock", add_help=True,
                description="Wait-for graph of blocked tasks: deadlock cycles told step by "
                            "step (each 'held by' marked recorded or inferred, with its "
                            "evidence), the tasks stuck behind them, then chains without a "
                            "cycle (convoys) by their root.")
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


# ------------------------------------------------------------------- text

def _lock_text(ln: LockNode) -> str:
    return "%s %x (%s)" % (ln.report.type, ln.address, short_lock_name(ln.report))


def _held_text(h: HeldBy) -> str:
    if h.relation == "must act":
        return "must act: %s [%s]" % (_tl(h.task), "; ".join(h.evidence) or "recorded")
    if not h.inferred:
        return "held by %s [%s]" % (_tl(h.task), "; ".join(h.evidence) or "recorded")
    return "held by %s [INFERRED: %s]" % (_tl(h.task), "; ".join(
        e[len("inferred: "):] if e.startswith("inferred: ") else e for e in h.evidence))


def _tl(t: TaskRef) -> str:
    if t.pid is None:
        return "task %x" % t.task
    return "PID %d (%s)" % (t.pid, t.comm or "?")


def _where_blocked(step_caller: Optional[str], function: Optional[str]) -> str:
    if step_caller and function:
        return "%s (in %s)" % (step_caller, function)
    return step_caller or function or "?"


def _table(rows: List[List], headers: List[str]) -> str:
    return table(rows, headers, "simple")


def _indent(text: str, n: int = 4) -> str:
    return "\n".join((" " * n + line) if line else line for line in text.splitlines())


def _cut(rows: List, limit: int):
    if limit and len(rows) > limit:
        return rows[:limit], len(rows) - limit
    return rows, 0


def _lock_short(res: WaitFor, addr: Optional[int]) -> str:
    if addr is None:
        return "?"
    ln = res.graph.locks.get(addr)
    if ln is None:
        return "%x" % addr
    return "%s %x (%s)" % (ln.report.type, addr, short_lock_name(ln.report))


def format_cycle(res: WaitFor, i: int, c: Cycle, limit: int) -> str:
    """Return the story of cycle number ``i``."""
    n = len(c.steps)
    kind = "INFERRED " if c.inferred else ""
    waits = [s for s in c.steps if s.lock.wait is not None]
    out = ["DEADLOCK %d: %s%d-task cycle%s" % (
        i, kind.lower().strip() + " " if kind else "", n,
        " (at least one 'held by' is inferred, not recorded by the lock)" if c.inferred
        else " (every 'held by' recorded by the lock)" if not waits else
        " (every 'held by' recorded by the lock, every 'must act' by the kernel)")]
    for k, s in enumerate(c.steps):
        out.append("  %d. %s is blocked in %s" % (
            k + 1, _tl(s.task), _where_blocked(s.caller, s.blocked.function)))
        out.append("     on %s%s" % (_lock_text(s.lock), ", %s" % s.blocked.mode
                                      if s.blocked.mode else ""))
        back = " -- back to the start." if k == n - 1 else ","
        out.append("     %s%s" % (_held_text(s.held_by), back))
    # lock order
    names = {s.lock.address: short_lock_name(s.lock.report) for s in c.steps}
    if len(set(names.values())) < len(names):       # not telling the locks apart
        names = {s.lock.address: "%s %x" % (s.lock.type, s.lock.address)
                 for s in c.steps}
    out.append("  Lock-order inversion:" if not waits else
               "  Lock-order inversion, through %d wait%s that %s not a lock:" % (
                   len(waits), "" if len(waits) == 1 else "s",
                   "is" if len(waits) == 1 else "are"))
    for s, (held, wanted) in zip(c.steps, c.orders):
        hs = res.graph.locks.get(held)
        holds = ("must act for %s" if hs is not None and hs.wait is not None
                 else "holds %s") % _lock_short(res, held)
        wants = ("waits for %s" if s.lock.wait is not None else "wants %s") % \
            _lock_short(res, wanted)
        out.append("     %s %s, then %s" % (_tl(s.task), holds, wants))
    if waits:
        seq = [names.get(h, "%x" % h) for h, _ in c.orders] + [
            names.get(c.orders[0][0], "")]
        out.append("     => each waits for the next: %s" % " -> ".join(seq))
    elif n == 2:
        a, b = c.orders[0]
        out.append("     => %s and %s are taken in both orders (ABBA)." % (
            names.get(a, "%x" % a), names.get(b, "%x" % b)))
    else:
        seq = [names.get(h, "%x" % h) for h, _ in c.orders] + [
            names.get(c.orders[0][0], "")]
        out.append("     => lock order cycle: %s" % " -> ".join(seq))
    if c.behind:
        out.append("  Stuck behind this cycle: %d task%s" % (
            len(c.behind), "" if len(c.behind) == 1 else "s"))
        rows, more = _cut(c.behind, limit)
        tab = [[b.task.pid, b.task.comm, _where_blocked(b.caller, b.function),
                _lock_short(res, b.lock), b.depth] for b in rows]
        out.append(_indent(_table(tab, ["PID", "COMM", "BLOCKED IN", "ON LOCK", "DEPTH"]),
                           5))
        if more:
            out.append("     ... %d more (--limit 0 shows all)" % more)
    else:
        out.append("  Nobody else is stuck behind this cycle.")
    return "\n".join(out)


def format_convoys(res: WaitFor, limit: int) -> str:
    """Return the convoy table and, under it, what each root waits on."""
    if not res.convoys:
        return "No convoys: no blocked task waits behind another outside the cycles."
    out = ["CONVOYS (chains without a cycle), most tasks behind first: %d" %
           len(res.convoys)]
    rows, more = _cut(res.convoys, limit)
    tab = []
    for i, cv in enumerate(rows):
        if cv.roots:
            root = ", ".join(_tl(r) for r in cv.roots[:4]) + (
                " +%d" % (len(cv.roots) - 4) if len(cv.roots) > 4 else "")
        else:
            root = _lock_short(res, cv.root_lock)
        via = ", ".join("%s %x" % (res.graph.locks[a].report.type, a) for a in cv.via[:3])
        if len(cv.via) > 3:
            via += " +%d" % (len(cv.via) - 3)
        tab.append([i + 1, root, len(cv.behind), cv.depth, via])
    out.append(_indent(_table(tab, ["#", "ROOT", "BEHIND", "DEPTH", "VIA LOCK(S)"]), 2))
    if more:
        out.append("  ... %d more convoys (--limit 0 shows all)" % more)
    out.append("  What each root waits on:")
    for i, cv in enumerate(rows):
        out.append("  %d. %s" % (i + 1, cv.what))
        if cv.roots:
            for a in cv.via:
                ln = res.graph.locks.get(a)
                if ln is None:
                    continue
                for h in ln.holders:
                    if h.inferred and any(h.task.task == r.task for r in cv.roots):
                        out.append("     %s %s" % (_lock_text(ln), _held_text(h)))
    return "\n".join(out)


def summary_line(res: WaitFor) -> str:
    """Return the one-line summary."""
    g = res.graph
    n_an = len(g.analysed)
    in_cyc = {s.task.task for c in res.cycles for s in c.steps}
    behind = {b.task.task for c in res.cycles for b in c.behind}
    conv = {b.task.task for c in res.convoys for b in c.behind}
    inferred = sum(1 for c in res.cycles if c.inferred)
    return ("deadlock: %d task%s analysed (%s): %d cycle%s%s (%d task%s in cycles, %d "
            "behind them), %d convoy%s (%d task%s waiting), %d blocked alone%s" % (
                n_an, "" if n_an == 1 else "s", "+".join(res.states), len(res.cycles),
                "" if len(res.cycles) == 1 else "s",
                " [%d inferred]" % inferred if inferred else "",
                len(in_cyc), "" if len(in_cyc) == 1 else "s", len(behind),
                len(res.convoys), "" if len(res.convoys) == 1 else "s", len(conv),
                "" if len(conv) == 1 else "s", len(res.alone),
                "; %d problem%s" % (len(res.problems), "" if len(res.problems) == 1
                                     else "s") if res.problems else ""))


def format_text(res: WaitFor, limit: int = 20) -> str:
    """Return the whole text report: cycles, convoys, lone tasks, problems, summary."""
    out = []
    if not res.graph.analysed:
        out.append("No task in %s state: nothing is blocked." % "/".join(res.states))
    elif not res.cycles:
        out.append("No deadlock cycle among the %d blocked task%s." % (
            len(res.graph.analysed), "" if len(res.graph.analysed) == 1 else "s"))
    for i, c in enumerate(res.cycles):
        out.append(format_cycle(res, i + 1, c, limit))
        out.append("")
    for t in res.truncated:
        out.append("note: %s" % t)
    if res.graph.analysed:
        out.append(format_convoys(res, limit))
    if res.alone:
        rows, more = _cut(res.alone, limit)
        out.append("")
        out.append("Blocked with nobody behind them (%d):" % len(res.alone))
        tab = []
        for t in rows:
            b = res.graph.blocked.get(t.task)
            what = b.kind if b else "?"
            if b is not None and b.kind == "unknown" and b.evidence:
                what = "unknown: %s" % b.evidence[-1]
            tab.append([t.pid, t.comm, what, _where_blocked(
                res.graph.callers.get(t.task), b.function if b else None)])
        out.append(_indent(_table(tab, ["PID", "COMM", "WAITS ON", "IN"]), 2))
        if more:
            out.append("  ... %d more (--limit 0 shows all)" % more)
    unresolved = [ln for ln in res.graph.locks.values() if not ln.holders]
    if unresolved:
        out.append("")
        out.append("Locks whose holder is unknown (%d):" % len(unresolved))
        for ln in unresolved[: limit or None]:
            out.append("  %s: %s" % (_lock_text(ln), ln.unresolved or "no owner recorded"))
            for c in ln.candidates[:3]:
                out.append("     candidate %s, score %g: %s" % (
                    _tl(c.task), c.score, "; ".join(c.evidence[:2])))
    if res.problems:
        out.append("")
        out.append("Problems (%d):" % len(res.problems))
        rows, more = _cut(res.problems, limit)
        out += ["  " + p for p in rows]
        if more:
            out.append("  ... %d more" % more)
    out.append("")
    out.append(summary_line(res))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------- JSON

def _tj(t: TaskRef) -> Dict[str, object]:
    return {"pid": t.pid, "comm": t.comm, "task": "%#x" % t.task, "state": t.state}


def _hj(h: HeldBy) -> Dict[str, object]:
    d = _tj(h.task)
    d.update({"inferred": h.inferred, "evidence": list(h.evidence), "mode": h.mode,
              "relation": h.relation})
    return d


def _lj(ln: LockNode) -> Dict[str, object]:
    r = ln.report
    return {"address": "%#x" % ln.address, "type": r.type, "name": short_lock_name(r),
            "where": r.where, "locked": r.locked, "readers": r.readers,
            "owner_recorded": _tj(r.owner) if r.owner else None,
            "owner_source": r.owner_source,
            "held_by": [_hj(h) for h in ln.holders],
            "unresolved": ln.unresolved,
            "candidates": [dict(_tj(c.task), score=c.score, evidence=list(c.evidence))
                           for c in ln.candidates],
            "waiters": [dict(_tj(w.task), mode=w.mode) for w in r.waiters],
            "problems": list(r.problems)}


def _wj(w) -> Optional[Dict[str, object]]:
    """JSON of a :class:`~crash_ext.analyses.results.Wait` (None stays None)."""
    if w is None:
        return None
    hx = lambda v: "%#x" % v if v is not None else None  # noqa: E731
    return {"kind": w.kind, "completion": hx(w.completion), "where": w.where,
            "container": w.container, "object": hx(w.object),
            "object_where": w.object_where, "what": w.what,
            "must_act": [_tj(t) for t in w.must_act], "pending": w.pending,
            "evidence": list(w.evidence)}


def _bj(res: WaitFor, b) -> Dict[str, object]:
    d = _tj(b.task)
    d.update({"lock": "%#x" % b.lock if b.lock is not None else None,
              "function": b.function, "caller": b.caller, "depth": b.depth})
    return d


def to_json(res: WaitFor) -> Dict[str, object]:
    """Return the report as JSON-ready data (addresses as hex strings)."""
    g = res.graph
    cycles = []
    for i, c in enumerate(res.cycles):
        cycles.append({
            "number": i + 1, "component": c.component, "inferred": c.inferred,
            "steps": [{"task": _tj(s.task), "function": s.blocked.function,
                       "caller": s.caller, "mode": s.blocked.mode,
                       "blocked_evidence": list(s.blocked.evidence),
                       "lock": {"address": "%#x" % s.lock.address, "type": s.lock.type,
                                "name": short_lock_name(s.lock.report),
                                "where": s.lock.report.where,
                                "wait": _wj(s.lock.wait)},
                       "held_by": _hj(s.held_by)} for s in c.steps],
            "lock_orders": [{"task": _tj(s.task), "holds": "%#x" % a, "wants": "%#x" % b}
                            for s, (a, b) in zip(c.steps, c.orders)],
            "behind": [_bj(res, b) for b in c.behind]})
    convoys = []
    for cv in res.convoys:
        convoys.append({"roots": [_tj(r) for r in cv.roots],
                        "root_lock": "%#x" % cv.root_lock if cv.root_lock else None,
                        "what": cv.what, "via": ["%#x" % a for a in cv.via],
                        "behind_count": len(cv.behind), "depth": cv.depth,
                        "behind": [_bj(res, b) for b in cv.behind]})
    tasks = []
    for a in sorted(g.analysed, key=lambda x: (g.tasks[x].pid or 0, x)):
        b = g.blocked[a]
        tasks.append(dict(_tj(b.task), kind=b.kind,
                          lock="%#x" % b.lock_address if b.lock_address else None,
                          lock_type=b.lock_type, mode=b.mode, function=b.function,
                          caller=g.callers.get(a), frame=b.frame,
                          evidence=list(b.evidence), wait=_wj(b.wait)))
    return {"states": list(res.states), "summary": summary_line(res),
            "cycles": cycles, "convoys": convoys,
            "alone": [_tj(t) for t in res.alone],
            "locks": [_lj(ln) for _, ln in sorted(g.locks.items())],
            "tasks": tasks, "problems": list(res.problems),
            "notes": list(res.truncated)}


# ------------------------------------------------------------------- main

def run(port: Port, opts) -> WaitFor:
    """Return the analysis the parsed options ask for; raises CrashExtError."""
    from ..analyses.snapshot import Snapshot
    snap = Snapshot(port)
    if opts.all:
        states = sorted({t.state for t in snap.tasks()})
    elif opts.include_in:
        states = ["UN", "IN"]
    else:
        states = ["UN"]
    cands = True if opts.candidates else (False if opts.no_candidates else "auto")
    return collect(port, states, snapshot=snap, use_candidates=cands)


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
    from ..outputs import check_output_path, protected_files
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
        if opts.dot or opts.svg:
            from ..outputs import write_output
            from ..render.dot import to_dot, write_svg
            text = to_dot(res, title="crash-ext deadlock: %s" % summary_line(res)[10:])
            if opts.dot:
                write_output(opts.dot, text.encode())
            if opts.svg:
                write_svg(text, opts.svg)
        if opts.json:
            print(jsontext.dumps(to_json(res), indent=1), file=out)
        else:
            out.write(format_text(res, opts.limit))
            for f, what in ((opts.dot, "Graphviz"), (opts.svg, "SVG")):
                if f:
                    print("%s picture written to %s" % (what, f), file=out)
    except CRASH_FAILURES:
        raise                         # crash itself failed: crash-ext says so, exit 3
    except CrashExtError as e:
        print(error_line("deadlock", e), file=err)
        return 2
    return 1 if (res.cycles or res.convoys) else 0
