"""Graphviz pictures of a wait-for graph (:func:`to_dot`) and SVG through ``dot``.

Tasks are ellipses, locks boxes; "waits for" edges run task -> lock, "held by" edges
lock -> task (dashed and labelled ``inferred`` when the lock does not record it).  A
wait that is not a lock (a work item flushed, a kthread stopped) is a box too: the
waiting task's edge runs to it, its "must act" edges to the tasks that must act.  Cycle
nodes and edges are red and thick: every cycle is a closed loop in the picture.  Long queues of waiters that nobody waits behind are
folded into one "+N more" node per lock so that a 2,000-task picture stays readable.
"""

import os
import shutil
import time
from ..compat import Dict, List, Optional, Set, Tuple

from ..core.results import short_lock_name, task_label
from ..core.errors import CrashExtError
from ..waits.graph import waits_at

__all__ = ["to_dot", "render_svg", "write_svg", "dot_available", "FOLD_AFTER"]

FOLD_AFTER = 5     # waiters of one lock shown before folding the rest into one node


def _q(s: str) -> str:
    return '"%s"' % str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(res, title: str = "wait-for graph") -> str:
    """Return the Graphviz ``digraph`` text of ``res``'s graph (a
    :class:`~crash_ext.waits.graph.WaitFor`, read as a record).  Never raises."""
    g = res.graph
    cyc_nodes = set()  # type: Set[Tuple[str, int]]
    cyc_edges = set()  # type: Set[Tuple[Tuple[str, int], Tuple[str, int]]]
    for c in res.cycles:
        for i, s in enumerate(c.steps):
            t, lk = ("t", s.task.task), ("l", s.lock.address)
            nxt = ("t", s.held_by.task.task)
            cyc_nodes.update([t, lk])
            cyc_edges.update([(t, lk), (lk, nxt)])
    # who has something behind it
    has_in = set()  # type: Set[Tuple[str, int]]
    for n in g.nodes():
        for w in g.successors(n):
            has_in.add(w)
    # fold leaf waiters per lock
    shown_tasks = set()  # type: Set[int]
    folded = {}  # type: Dict[int, int]
    by_lock = {}  # type: Dict[int, List[int]]
    for a, b in sorted(g.blocked.items(), key=lambda kv: (kv[1].task.pid or 0, kv[0])):
        at = waits_at(b)
        if at is not None and at in g.locks:
            by_lock.setdefault(at, []).append(a)
    fold_out = set()  # type: Set[int]
    for lk, ws in by_lock.items():
        leaves = [a for a in ws if ("t", a) not in has_in and ("t", a) not in cyc_nodes]
        if len(leaves) > FOLD_AFTER + 1:
            for a in leaves[FOLD_AFTER:]:
                fold_out.add(a)
            folded[lk] = len(leaves) - FOLD_AFTER
    from .outputs import dot_header
    lines = [dot_header().rstrip("\n"), "digraph waitfor {",
             "  label=%s; labelloc=t; rankdir=LR;" % _q(title),
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9];']
    for a, t in sorted(g.tasks.items()):
        if a in fold_out:
            continue
        shown_tasks.add(a)
        b = g.blocked.get(a)
        where = g.callers.get(a) or (b.function if b else None) or \
            (b.kind if b else (t.state or "not analysed"))
        if b is not None and b.kind not in ("lock",):
            where = "%s: %s" % (b.kind, b.function or "?")
        attrs = ["shape=ellipse", "label=%s" % _q("%s\n%s" % (task_label(t), where))]
        if ("t", a) in cyc_nodes:
            attrs += ["color=red", "penwidth=2", "fontcolor=red"]
        elif b is None:
            attrs += ["style=dashed"]
        lines.append("  t%x [%s];" % (a, ", ".join(attrs)))
    for a, ln in sorted(g.locks.items()):
        rep = ln.report
        label = "%s %x\n%s" % (rep.type, a, short_lock_name(rep))
        if not ln.holders:
            label += "\nholder unknown"
        attrs = ["shape=box", "label=%s" % _q(label)]
        if ("l", a) in cyc_nodes:
            attrs += ["color=red", "penwidth=2", "fontcolor=red"]
        lines.append("  l%x [%s];" % (a, ", ".join(attrs)))
        if a in folded:
            lines.append("  more%x [shape=note, label=%s];" % (
                a, _q("+%d more waiting" % folded[a])))
            lines.append("  more%x -> l%x [label=%s, style=bold];" % (
                a, a, _q("waits for")))
    for a, b in sorted(g.blocked.items()):
        at = waits_at(b)
        if a not in shown_tasks or at is None or at not in g.locks:
            continue
        e = (("t", a), ("l", at))
        attrs = ["label=%s" % _q("waits for" if b.kind == "lock" else
                                 "waits for (%s)" % (b.function or b.kind))]
        if e in cyc_edges:
            attrs += ["color=red", "penwidth=2", "fontcolor=red"]
        lines.append("  t%x -> l%x [%s];" % (a, at, ", ".join(attrs)))
    for a, ln in sorted(g.locks.items()):
        for h in ln.holders:
            e = (("l", a), ("t", h.task.task))
            label = "must act" if h.relation == "must act" else "held by"
            attrs = ["label=%s" % _q(label + " (inferred)" if h.inferred else label)]
            if h.inferred:
                attrs.append("style=dashed")
            if e in cyc_edges:
                attrs += ["color=red", "penwidth=2", "fontcolor=red"]
            lines.append("  l%x -> t%x [%s];" % (a, h.task.task, ", ".join(attrs)))
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_available() -> Optional[str]:
    """Return the path of Graphviz's ``dot``, or None when it is not installed."""
    return shutil.which("dot")


def render_svg(dot_text: str, scratch: str, timeout: float = 300) -> bytes:
    """Return the SVG that Graphviz's ``dot -Tsvg`` makes of ``dot_text``; dot writes it
    to the file ``scratch`` (removed afterwards), so a large picture cannot fill a pipe
    while its input is still being written.

    Raises CrashExtError when ``dot`` is missing, fails or takes longer than
    ``timeout`` seconds (its message is included).  Runs ``dot`` with ``os`` alone
    (pykdump's embedded standard library has no ``subprocess``).
    """
    exe = dot_available()
    if exe is None:
        raise CrashExtError("--svg needs Graphviz's dot, which is not installed "
                            "(apt-get install graphviz); --dot FILE works without it")
    try:
        rc, err = _run(exe, ["-Tsvg", "-o", scratch], dot_text.encode(), timeout)
        if rc is None:
            raise CrashExtError("dot took longer than %ds" % timeout)
        if rc != 0:
            raise CrashExtError("dot failed: %s" % " ".join(
                err.decode(errors="replace").split())[:300])
        with open(scratch, "rb") as f:
            return f.read()
    except OSError as e:
        raise CrashExtError("cannot read dot's picture: %s" % e)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)


def write_svg(dot_text: str, path: str, timeout: float = 300) -> None:
    """Render ``dot_text`` to SVG (:func:`render_svg`) and write it to ``path``, marked
    as ours (:func:`~crash_ext.render.outputs.mark_svg`), through a temporary file.  The caller
    checks ``path`` first (:func:`~crash_ext.render.outputs.check_output_path`).  Raises
    CrashExtError."""
    from .outputs import mark_svg, write_output
    scratch = "%s.dot-%d.tmp" % (path, os.getpid())
    write_output(path, mark_svg(render_svg(dot_text, scratch, timeout)))


def _run(exe: str, args: List[str], data: bytes, timeout: float):
    """Run ``exe args`` with ``data`` on its stdin; return (exit status, stderr bytes),
    the status None when it was killed after ``timeout`` seconds.  Raises CrashExtError
    when it cannot be started."""
    rin, win = os.pipe()
    rerr, werr = os.pipe()
    try:
        pid = os.fork()
    except OSError as e:
        for fd in (rin, win, rerr, werr):
            os.close(fd)
        raise CrashExtError("cannot run dot: %s" % e)
    if pid == 0:                                  # the child: never returns
        try:
            os.dup2(rin, 0)
            os.dup2(werr, 2)
            for fd in (rin, win, rerr, werr):
                os.close(fd)
            os.execv(exe, [exe] + list(args))
        finally:
            os._exit(127)
    os.close(rin)
    os.close(werr)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(win, view):]
    except OSError:
        pass                                      # it exited early: its status says why
    finally:
        os.close(win)
    os.set_blocking(rerr, False)
    err, status = [], None
    deadline = time.monotonic() + timeout
    try:
        while status is None:
            try:
                chunk = os.read(rerr, 65536)
                if chunk:
                    err.append(chunk)
                    continue
            except BlockingIOError:
                pass
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
            elif time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return None, b"".join(err)
            else:
                time.sleep(0.02)
        try:
            err.append(os.read(rerr, 65536))
        except BlockingIOError:
            pass
    finally:
        os.close(rerr)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    return code, b"".join(err)
