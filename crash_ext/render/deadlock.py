"""``deadlock``'s text and JSON: the answer (each cycle as its victims see it), the
evidence, the tasks behind, the convoys; records of the wait-for graph in, text out.
Reads nothing from crash."""

import re
from ..compat import Dict, List, Optional

from ..core.results import TaskRef, short_lock_name
from ..waits.graph import Cycle, HeldBy, LockNode, WaitFor
from .shape import hexaddr, task_json
from .shape import to_json as shape_json
from .table import table
from .text import DEFAULT_WIDTH, bullets, task_header, task_short, wait_address, wrap
from .whoholds import has_evidence

#: what DEPTH means, said once in the text and in ``help deadlock``
DEPTH_TEXT = ("DEPTH: how many 'waits for a lock held by' steps separate a task from what "
              "it is stuck behind (a cycle's task, or a convoy's root): 1 = it waits for a "
              "lock that one holds; 2 = it waits for a task at DEPTH 1; and so on.")

_RANKED = re.compile(r"^ranked first of (\d+) candidate holder\(s\) \(score ([0-9.]+)"
                     r"(?:, next ([0-9.]+))?\)$")


def _reason(e: str) -> str:
    """Return one reason of an inferred 'held by' as a bullet says it: without the
    ``inferred:`` tag, and a rank explained instead of a bare score."""
    if e.startswith("inferred: "):
        e = e[len("inferred: "):]
    m = _RANKED.match(e)
    if m:
        n, top, nxt = m.group(1), m.group(2), m.group(3)
        return ("ranked first of %s candidate holder%s: its reasons weigh %s%s (each "
                "kind of reason adds a fixed weight, listed in docs/locks.md)" % (
                    n, "" if n == "1" else "s", top,
                    ", the next candidate's %s" % nxt if nxt else ""))
    return e


def _held_lines(h: HeldBy, cols: int, indent: str) -> List[str]:
    """Return 'held by' (or, for a wait that is not a lock, 'must act') and its
    evidence: one line when recorded, a bullet list of reasons when inferred."""
    who = task_short(h.task)
    if h.relation == "must act":
        return wrap("must act: %s: %s" % (who, "; ".join(h.evidence) or "recorded"), cols,
                    indent)
    if not h.inferred:
        return wrap("held by %s: %s" % (who, "; ".join(h.evidence) or "recorded"), cols,
                    indent)
    return (wrap("held by %s: INFERRED (not recorded by the lock), because:" % who, cols,
                 indent) + bullets([_reason(e) for e in h.evidence], cols, indent + "  "))


def _lock_text(ln: LockNode) -> str:
    return "%s %x (%s)" % (ln.report.type, ln.address, short_lock_name(ln.report))


def _lock_name_full(res: WaitFor, addr: Optional[int]) -> str:
    """Return a lock as a sentence names it: its place (``inode.i_rwsem of
    /tmp/js/fire.js``) when known, else type and address."""
    if addr is None:
        return "an unknown lock"
    ln = res.graph.locks.get(addr)
    if ln is None:
        return "lock %x" % addr
    name = short_lock_name(ln.report)
    if name == "%x" % addr:
        return "%s %x" % (ln.report.type, addr)
    return "%s %x (%s)" % (ln.report.type, addr, name)


def _tl(t: TaskRef) -> str:
    if t.pid is None:
        return "task %x" % t.task
    return "PID %d (%s)" % (t.pid, t.comm or "?")


def _where_blocked(step_caller: Optional[str], function: Optional[str]) -> str:
    if step_caller and function:
        return "%s (in %s)" % (step_caller, function)
    return step_caller or function or "?"


def _table(rows: List[List], headers: List[str], cols: int = DEFAULT_WIDTH) -> str:
    """Return tabulate's ``simple`` table of ``rows``, its widest text cells wrapped
    onto more lines where the table would be wider than ``cols``."""
    return table(rows, headers, "simple", cols)


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


def _kind(c: Cycle) -> str:
    """Return ``ABBA`` for two tasks each holding the lock the other wants, else
    ``N-task cycle`` (a cycle through a wait that is not a lock is no lock order)."""
    if len(c.steps) == 2 and all(s.lock.wait is None for s in c.steps):
        return "ABBA"
    return "%d-task cycle" % len(c.steps)


def cycle_answer(res: WaitFor, c: Cycle) -> str:
    """Return the victims' view of cycle ``c`` in one sentence: the first task stuck
    behind it (when there is one), the lock it waits for, who holds that, what that
    task waits for... back to the first lock of the cycle: ``rm 100 in vfs_unlink ->
    rw_semaphore ... -> held by ruby 98 -> waits in ... for ... : DEADLOCK (ABBA)``."""
    steps = list(c.steps)
    first = [b for b in c.behind if b.depth == 1]
    parts = []
    named = set()
    names = [short_lock_name(st.lock.report) for st in steps]
    unique = len(set(names)) == len(names)

    def _lock_name(res, addr):          # a lock said once in full, then more briefly
        full = _lock_name_full(res, addr)
        if addr in named and "(" in full:
            ln = res.graph.locks[addr]
            return full[full.index("(") + 1:-1] if unique else "%s %x" % (
                ln.report.type, addr)
        named.add(addr)
        return full
    # edges[k]: how steps[k]'s task is known to hold the lock the part before names
    edges = [steps[k - 1].held_by for k in range(len(steps))]
    if first:
        v = first[0]
        parts.append("%s in %s -> %s" % (task_short(v.task), v.caller or v.function or "?",
                                         _lock_name(res, v.lock)))
        ln = res.graph.locks.get(v.lock) if v.lock is not None else None
        tasks = [st.task.task for st in steps]
        for h in (ln.holders if ln is not None else []):
            if h.task.task in tasks:
                k = tasks.index(h.task.task)
                edges[k] = h
                steps, edges = steps[k:] + steps[:k], edges[k:] + edges[:k]
                break
    else:
        parts.append("%s in %s" % (task_short(steps[0].task),
                                   steps[0].caller or steps[0].blocked.function or "?"))
        parts[-1] += " -> %s" % _lock_name(res, steps[0].lock.address)
        steps, edges = steps[1:] + steps[:1], edges[1:] + edges[:1]
    for st, held in zip(steps, edges):
        parts.append("%s %s%s" % ("must act:" if held.relation == "must act" else
                                  "held by", task_short(st.task),
                                  " (INFERRED)" if held.inferred else ""))
        parts.append("waits in %s for %s" % (st.caller or st.blocked.function or "?",
                                            _lock_name(res, st.lock.address)))
    return " -> ".join(parts) + ": DEADLOCK (%s)" % _kind(c)


def format_cycle(res: WaitFor, i: int, c: Cycle, limit: int,
                 cols: int = DEFAULT_WIDTH) -> str:
    """Return the evidence of cycle number ``i``: each task in crash's header style,
    where it blocks, on which lock, who holds it and how that is known; the lock
    order; the tasks stuck behind it."""
    n = len(c.steps)
    waits = [s for s in c.steps if s.lock.wait is not None]
    kind = _kind(c)
    out = wrap("DEADLOCK %d: %s; %s" % (
        i, "ABBA, 2 tasks" if kind == "ABBA" else kind,
        "at least one 'held by' is INFERRED, not recorded by the lock"
        if c.inferred else "every 'held by' recorded by the lock" if not waits else
        "every 'held by' recorded by the lock, every 'must act' by the kernel"),
        cols, "", "  ")
    if c.confirmed:
        out.extend(wrap("(live system: %s)" % c.confirmed, cols, "  ", "    "))
    for k, s in enumerate(c.steps):
        out.append("  " + task_header(s.task, state=False))
        out.extend(panic_notes(res, s.task, cols, "    "))
        out.extend(wrap("blocked in %s, on %s%s" % (
            _where_blocked(s.caller, s.blocked.function), _lock_text(s.lock),
            " as %s" % s.blocked.mode if s.blocked.mode else ""), cols, "    ", "      "))
        out.extend(_held_lines(s.held_by, cols, "    "))
        if k == n - 1:
            out.append("    -- back to the start.")
    names = {s.lock.address: short_lock_name(s.lock.report) for s in c.steps}
    if len(set(names.values())) < len(names):       # not telling the locks apart
        names = {s.lock.address: "%s %x" % (s.lock.type, s.lock.address)
                 for s in c.steps}
    out.extend(wrap("Lock order (each task holds the first lock, then wants the second):"
                    if not waits else
                    "Lock order, through %d wait%s that %s not a lock (each task holds or "
                    "must act for the first, then waits for the second):" % (
                        len(waits), "" if len(waits) == 1 else "s",
                        "is" if len(waits) == 1 else "are"), cols, "  ", "    "))
    for s, (held, wanted) in zip(c.steps, c.orders):
        hs = res.graph.locks.get(held)
        holds = ("must act for %s" if hs is not None and hs.wait is not None
                 else "holds %s") % _lock_short(res, held)
        wants = ("waits for %s" if s.lock.wait is not None else "wants %s") % \
            _lock_short(res, wanted)
        out.extend(wrap("%s: %s, %s" % (task_short(s.task), holds, wants), cols,
                        "    ", "      "))
    if waits:
        seq = [names.get(h, "%x" % h) for h, _ in c.orders] + [
            names.get(c.orders[0][0], "")]
        out.extend(wrap("=> each waits for the next: %s" % " -> ".join(seq), cols,
                        "    ", "       "))
    elif n == 2:
        a, b = c.orders[0]
        out.extend(wrap("=> %s and %s are taken in both orders (ABBA)." % (
            names.get(a, "%x" % a), names.get(b, "%x" % b)), cols, "    ", "       "))
    else:
        seq = [names.get(h, "%x" % h) for h, _ in c.orders] + [
            names.get(c.orders[0][0], "")]
        out.extend(wrap("=> lock order cycle: %s" % " -> ".join(seq), cols, "    ",
                        "       "))
    if c.behind:
        out.append("  Stuck behind this cycle: %d task%s (DEPTH as defined below)" % (
            len(c.behind), "" if len(c.behind) == 1 else "s"))
        rows, more = _cut(c.behind, limit)
        tab = [[b.task.pid, b.task.comm, b.caller or b.function or "?",
                "%x" % b.lock if b.lock is not None else "?", b.depth] for b in rows]
        out.append(_indent(_table(tab, ["PID", "COMM", "BLOCKED IN", "ON LOCK", "DEPTH"],
                                  cols - 4), 4))
        if more:
            out.append("    ... %d more (--limit 0 shows all)" % more)
    else:
        out.append("  Nobody else is stuck behind this cycle.")
    return "\n".join(out)


def _root_waits(res: WaitFor, cv) -> str:
    """Return what a convoy's root waits on, with the address of what it waits on when
    an analysis found it (a completion, another lock)."""
    what = cv.what
    for r in cv.roots[:1]:
        addr = wait_address(res.graph.blocked.get(r.task))
        if addr is not None and ("%x" % addr) not in what:
            what += " at %x" % addr
    return what


#: tasks a convoy names before "and N more"
NAMED_MEMBERS = 4


def _plural(n: int, one: str, many: str) -> str:
    return "%d %s" % (n, one if n == 1 else many)


def _members(tasks, named: int = NAMED_MEMBERS) -> str:
    """Return the first ``named`` tasks (``comm pid``), then ``and N more``; all of
    them when only one more would be left out."""
    tasks = list(tasks)
    if len(tasks) <= named + 1:
        shown, more = tasks, 0
    else:
        shown, more = tasks[:named], len(tasks) - named
    text = ", ".join(task_short(t) for t in shown)
    return text + (" and %d more" % more if more else "")


def _root_holds(res: WaitFor, cv, r: TaskRef) -> Optional[HeldBy]:
    """Return the held-by edge through which root ``r`` of convoy ``cv`` holds one of
    the convoy's locks (an inferred one when any is), or None."""
    found = None
    for a in cv.via:
        ln = res.graph.locks.get(a)
        for h in (ln.holders if ln is not None else []):
            if h.task.task == r.task and (found is None or h.inferred):
                found = h
    return found


def _roots_text(res: WaitFor, cv, named: int = 3) -> str:
    """Return a convoy's roots, each tagged ``(INFERRED)`` when the lock does not
    record that it holds it."""
    parts = []
    for r in cv.roots[:named]:
        h = _root_holds(res, cv, r)
        parts.append(task_short(r) + (" (INFERRED)" if h is not None and h.inferred
                                      else ""))
    if len(cv.roots) > named:
        parts.append("and %d more" % (len(cv.roots) - named))
    return ", ".join(parts)


def convoy_answer(res: WaitFor, cv) -> str:
    """Return one convoy in one sentence: how many wait, the first few named, behind
    whom (an inferred holder tagged ``(INFERRED)``), and what that root waits on."""
    n = len(cv.behind)
    who = "%s (%s)" % (_plural(n, "task", "tasks"), _members(b.task for b in cv.behind))
    if cv.roots:
        root = _roots_text(res, cv)
        if len(cv.via) == 1:
            return "%s %s for %s, held by %s, which %s" % (
                who, "waits" if n == 1 else "wait", _lock_name_full(res, cv.via[0]), root,
                _root_waits(res, cv))
        return "%s behind %s, which %s" % (who, root, _root_waits(res, cv))
    return "%s behind %s: %s" % (who, _lock_name_full(res, cv.root_lock), cv.what)


def format_convoys(res: WaitFor, limit: int, cols: int = DEFAULT_WIDTH) -> str:
    """Return the convoy table, under it each convoy's members and what its root waits
    on (roots that wait on the same kind of thing grouped), then how each inferred
    root is known to hold its lock."""
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
        tab.append([i + 1, root, len(cv.behind), max([b.depth for b in cv.behind] or [0]),
                    via])
    out.append(_indent(_table(tab, ["CONVOY", "ROOT", "BEHIND", "DEPTH", "VIA LOCK(S)"],
                              cols - 2), 2))
    if more:
        out.append("  ... %d more convoys (--limit 0 shows all)" % more)
    out.extend(wrap("DEPTH here: the largest DEPTH of the tasks behind the root.", cols,
                    "  ", "    "))
    out.append("  Who waits in each convoy:")
    for i, cv in enumerate(rows):
        out.extend(wrap("CONVOY %d: %s" % (i + 1, _members(b.task for b in cv.behind)),
                        cols, "    ", "      "))
    out.append("  What each root waits on:")
    groups = []  # type: List[List]
    for i, cv in enumerate(rows):
        w = _root_waits(res, cv)
        if groups and groups[-1][1] == w:
            groups[-1][0].append(i + 1)
        else:
            groups.append([[i + 1], w])
    for nums, w in groups:
        label = "CONVOY %d" % nums[0] if len(nums) == 1 else "CONVOYS %d-%d" % (
            nums[0], nums[-1])
        out.extend(wrap("%s: %s" % (label, w), cols, "    ", "      "))
    inferred = []  # type: List[str]
    for i, cv in enumerate(rows):
        if not cv.roots:
            continue
        for a in cv.via:
            ln = res.graph.locks.get(a)
            if ln is None:
                continue
            for h in ln.holders:
                if h.inferred and any(h.task.task == r.task for r in cv.roots):
                    inferred.extend(wrap("CONVOY %d: %s" % (i + 1, _lock_text(ln)), cols,
                                         "    ", "      "))
                    inferred.extend(_held_lines(h, cols, "      "))
    if inferred:
        out.append("  How each root is known to hold its lock (INFERRED):")
        out.extend(inferred)
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


#: answer lines for convoys before "... N more"
ANSWER_CONVOYS = 5


def format_answer(res: WaitFor, cols: int = DEFAULT_WIDTH) -> List[str]:
    """Return the one-screen answer: each cycle in the victims' order, the biggest
    convoys in one sentence each, numbered as the evidence numbers them (``DEADLOCK
    N``, ``CONVOY N``)."""
    out = []  # type: List[str]
    for i, c in enumerate(res.cycles):
        out.extend(wrap("DEADLOCK %d: %s" % (i + 1, cycle_answer(res, c)), cols, "",
                        "     "))
        others = [b for b in c.behind if b.depth == 1][1:]
        deeper = [b for b in c.behind if b.depth > 1]
        if others or deeper:
            out.extend(wrap("also stuck behind it: %s%s" % (
                ", ".join(task_short(b.task) for b in others[:5]) +
                (" +%d" % (len(others) - 5) if len(others) > 5 else ""),
                "%s%d more further back" % ("; " if others else "", len(deeper))
                if deeper else ""), cols, "     ", "       "))
    for j, cv in enumerate(res.convoys[:ANSWER_CONVOYS]):
        out.extend(wrap("CONVOY %d: %s" % (j + 1, convoy_answer(res, cv)), cols, "",
                        "     "))
    if len(res.convoys) > ANSWER_CONVOYS:
        out.append("   ... %d more convoys below" % (len(res.convoys) - ANSWER_CONVOYS))
    return out


# ------------------------------------------------------------------- the panic

def _hung(res: WaitFor, pid: Optional[int]) -> Optional[str]:
    """The hung-task detector's report of ``pid`` (session/panic.py), or None."""
    return res.panic.hung_evidence(pid) if res.panic is not None and pid is not None \
        else None


def panic_header(res: WaitFor, cols: int) -> List[str]:
    """Return the header lines naming the panic that made the dump and the tasks the
    hung-task detector reported (none without a panic: a snapshot, a live kernel)."""
    out = []  # type: List[str]
    for line in (res.panic.header_lines() if res.panic is not None else []):
        out.extend(wrap(line, cols, "", "  "))
    return out


def panic_notes(res: WaitFor, task, cols: int, indent: str) -> List[str]:
    """Return the lines under a task's header: the hung-task detector's report of it."""
    ev = _hung(res, task.pid)
    return wrap(ev, cols, indent, indent + "  ") if ev else []


def format_text(res: WaitFor, limit: int = 20, cols: int = DEFAULT_WIDTH) -> str:
    """Return the whole text report: the answer (cycles in the victims' order,
    convoys), then the evidence (each cycle, convoys, lone tasks, unknown holders,
    problems), then the summary line."""
    out = panic_header(res, cols)
    if not res.graph.analysed:
        out.append("No task in %s state: nothing is blocked." % "/".join(res.states))
    elif not res.cycles and not res.convoys:
        out.append("No deadlock cycle and no convoy among the %d blocked task%s." % (
            len(res.graph.analysed), "" if len(res.graph.analysed) == 1 else "s"))
    else:
        out.append("ANSWER")
        out.extend(format_answer(res, cols))
        if not res.cycles:
            out.append("No deadlock cycle among the %d blocked task%s." % (
                len(res.graph.analysed), "" if len(res.graph.analysed) == 1 else "s"))
        out.append("")
        out.append("EVIDENCE")
    evidence = []
    indented = out[-1] == "EVIDENCE"         # the evidence is indented under its title
    full = cols
    if indented:
        cols -= 2
    for i, c in enumerate(res.cycles):
        evidence.append(format_cycle(res, i + 1, c, limit, cols))
        evidence.append("")
    for t in res.truncated:
        evidence.extend(wrap("note: %s" % t, cols, "", "  "))
    if res.graph.analysed:
        evidence.append(format_convoys(res, limit, cols))
    if res.alone:
        rows, more = _cut(res.alone, limit)
        evidence.append("")
        evidence.append("Blocked with nobody behind them (%d):" % len(res.alone))
        tab = []
        for t in rows:
            b = res.graph.blocked.get(t.task)
            what = b.kind if b else "?"
            addr = wait_address(b) if b is not None and b.kind != "lock" else None
            if addr is not None:
                what += " %x" % addr
            if b is not None and b.kind == "unknown" and b.evidence:
                what = "unknown: %s" % b.evidence[-1]
            tab.append([t.pid, t.comm, what, _where_blocked(
                res.graph.callers.get(t.task), b.function if b else None)])
        evidence.append(_indent(_table(tab, ["PID", "COMM", "WAITS ON", "IN"], cols - 2),
                                2))
        if more:
            evidence.append("  ... %d more (--limit 0 shows all)" % more)
    unresolved = [ln for ln in res.graph.locks.values() if not ln.holders]
    if unresolved:
        evidence.append("")
        evidence.append("Locks whose holder is unknown (%d):" % len(unresolved))
        for ln in unresolved[: limit or None]:
            evidence.extend(wrap("%s: %s" % (_lock_text(ln), ln.unresolved or
                                             "no owner recorded"), cols, "  ", "    "))
            strong = [c for c in ln.candidates if has_evidence(c)]
            for k, c in enumerate(strong[:3]):
                evidence.extend(wrap("candidate %d (INFERRED): %s" % (k + 1, task_short(
                    c.task)), cols, "    "))
                evidence.extend(bullets(c.evidence[:3], cols, "      "))
            if len(ln.candidates) > len(strong[:3]):
                evidence.extend(wrap("%d other candidate%s: %s" % (
                    len(ln.candidates) - len(strong[:3]),
                    "" if len(ln.candidates) - len(strong[:3]) == 1 else "s",
                    "no evidence tying them to this lock" if len(strong) <= 3 else
                    "not shown (--json lists every candidate with its score)"),
                    cols, "    ", "      "))
    if res.problems:
        evidence.append("")
        evidence.append("Problems (%d):" % len(res.problems))
        rows, more = _cut(res.problems, limit)
        for p in rows:
            evidence.extend(wrap(p, cols, "  ", "    "))
        if more:
            evidence.append("  ... %d more" % more)
    if any(c.behind for c in res.cycles) or res.convoys:
        evidence.append("")
        evidence.extend(wrap(DEPTH_TEXT, cols))
    out.extend(_indent("\n".join(evidence), 2).split("\n") if indented else evidence)
    out.append("")
    # always last, starting "deadlock: ": for grep and scripts (wrapped, as all is)
    out.extend(wrap(summary_line(res), full, "", "  "))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------- JSON

def _hj(h: HeldBy) -> Dict[str, object]:
    return {"task": task_json(h.task), "inferred": h.inferred,
            "evidence": list(h.evidence), "mode": h.mode, "relation": h.relation}


def _lj(ln: LockNode) -> Dict[str, object]:
    r = ln.report
    return {"address": hexaddr(ln.address), "type": r.type, "name": short_lock_name(r),
            "where": r.where, "locked": r.locked, "readers": r.readers,
            "owner_recorded": task_json(r.owner) if r.owner else None,
            "owner_source": r.owner_source,
            "held_by": [_hj(h) for h in ln.holders],
            "unresolved": ln.unresolved,
            "candidates": [{"task": task_json(c.task), "score": c.score,
                            "evidence": list(c.evidence)} for c in ln.candidates],
            "waiters": [{"task": task_json(w.task), "mode": w.mode} for w in r.waiters],
            "problems": list(r.problems)}


def _bj(res: WaitFor, b) -> Dict[str, object]:
    return {"task": task_json(b.task), "lock": hexaddr(b.lock), "function": b.function,
            "caller": b.caller, "depth": b.depth}


def _counts(res: WaitFor) -> Dict[str, int]:
    in_cyc = {s.task.task for c in res.cycles for s in c.steps}
    behind = {b.task.task for c in res.cycles for b in c.behind}
    conv = {b.task.task for c in res.convoys for b in c.behind}
    return {"analysed": len(res.graph.analysed), "cycles": len(res.cycles),
            "inferred_cycles": sum(1 for c in res.cycles if c.inferred),
            "in_cycles": len(in_cyc), "behind_cycles": len(behind),
            "convoys": len(res.convoys), "in_convoys": len(conv),
            "alone": len(res.alone), "problems": len(res.problems)}


def to_json(res: WaitFor) -> Dict[str, object]:
    """Return the report's body as JSON-ready data (render.shape's rules: addresses as
    "0x..." strings, every task as the one task object); :func:`main` wraps it in the
    document (schema version, dump identity)."""
    g = res.graph
    cycles = []
    for i, c in enumerate(res.cycles):
        cycles.append({
            "number": i + 1, "component": c.component, "inferred": c.inferred,
            "abba": _kind(c) == "ABBA", "confirmed": c.confirmed,
            "pids": [s.task.pid for s in c.steps],
            "steps": [{"task": task_json(s.task), "function": s.blocked.function,
                       "caller": s.caller, "mode": s.blocked.mode,
                       "blocked_evidence": list(s.blocked.evidence),
                       "lock": {"address": hexaddr(s.lock.address), "type": s.lock.type,
                                "name": short_lock_name(s.lock.report),
                                "where": s.lock.report.where,
                                "wait": shape_json(s.lock.wait)},
                       "held_by": _hj(s.held_by)} for s in c.steps],
            "lock_orders": [{"task": task_json(s.task), "holds": hexaddr(a),
                             "wants": hexaddr(b)}
                            for s, (a, b) in zip(c.steps, c.orders)],
            "behind": [_bj(res, b) for b in c.behind]})
    convoys = []
    for cv in res.convoys:
        edges = [(r, _root_holds(res, cv, r)) for r in cv.roots]
        convoys.append({"roots": [task_json(r) for r in cv.roots],
                        "roots_held_by": [_hj(h) for _, h in edges if h is not None],
                        "root_lock": hexaddr(cv.root_lock) if cv.root_lock else None,
                        "what": cv.what, "via": [hexaddr(a) for a in cv.via],
                        "behind_count": len(cv.behind),
                        "max_depth": max([b.depth for b in cv.behind] or [0]),
                        "behind": [_bj(res, b) for b in cv.behind]})
    tasks = []
    for a in sorted(g.analysed, key=lambda x: (g.tasks[x].pid or 0, x)):
        b = g.blocked[a]
        blocked = shape_json(b)
        blocked.pop("task", None)
        blocked["caller"] = g.callers.get(a)
        tasks.append(dict({"task": task_json(b.task)}, **blocked))
        tasks[-1]["hung_task"] = _hung(res, b.task.pid)
    return {"states": list(res.states), "summary": summary_line(res),
            "counts": _counts(res),
            "cycles": cycles, "convoys": convoys,
            "alone": [task_json(t) for t in res.alone],
            "locks": [_lj(ln) for _, ln in sorted(g.locks.items())],
            "tasks": tasks, "problems": list(res.problems),
            "notes": list(res.truncated),
            "panic": res.panic.to_json() if res.panic is not None and res.panic.reason
            else None}
