"""``whoholds``'s text: a lock report, a blocked task, what a task holds, the chain of
hops of ``whoholds -p``; records in, text out.  Reads nothing from crash."""

import re
from ..compat import Dict, List

from ..core.results import Blocked, Candidate, LockReport, short_lock_name
from .table import table
from .text import DEFAULT_WIDTH, bullets, header_lines, task_short, wait_address, wrap

#: how the text names the option that lists every candidate (the verb's shell adds it)
ALL_CANDIDATES = "--all-candidates"


def weak_evidence(e: str) -> bool:
    """Return True when candidate evidence ``e`` says nothing about this lock: being
    blocked elsewhere or sharing a function with the waiters (``(weak)``), running on
    a CPU, a tie."""
    return e.endswith("(weak)") or e.startswith(("running on CPU", "tied at the top"))


def has_evidence(c: Candidate) -> bool:
    """Return True when candidate ``c`` has a reason that ties it to the lock itself
    (its code holds it, its stack refers to it, the owner hint names it)."""
    return any(not weak_evidence(e) for e in c.evidence)


def _kind_of(e: str) -> str:
    """Return the kind of reason evidence ``e`` gives, without its addresses and frames
    (``its code holds the lock``, ``stack frame holds the lock's address``)."""
    k = re.sub(r"frame #\d+ \S+ ", "frame ", e)
    return re.split(r"[:(;]", k)[0].strip()


def why_first(cands: List[Candidate]) -> str:
    """Return why candidate #1 ranks above #2, from their evidence: the kinds of reason
    #1 has that #2 lacks (each kind adds a fixed weight, docs/locks.md), or that they
    tie.  Empty with fewer than two candidates."""
    if len(cands) < 2:
        return ""
    a, b = cands[0], cands[1]
    if a.score == b.score:
        return "#1 and #2 tie: the dump does not tell them apart"
    kb = {_kind_of(e) for e in b.evidence}
    extra = []  # type: List[str]
    for e in a.evidence:
        k = _kind_of(e)
        if k not in kb and k not in extra and not weak_evidence(e):
            extra.append(k)
    if extra:
        return "#1 ranks above #2: %s, which #2 has not" % "; ".join(extra)
    return ("#1 ranks above #2: the same kinds of reason, more of them (each adds a "
            "fixed weight, docs/locks.md)")


def _candidates(rep: LockReport, cols: int, all_candidates: bool) -> List[str]:
    """Return the candidate holders' lines: those with evidence tying them to the lock
    and that evidence (all, weak reasons too, with ``all_candidates``), why #1 ranks
    first, and one line for the rest."""
    out = ["  CANDIDATE HOLDERS (inferred, NOT certain; most evidence first):"]
    shown = [c for c in rep.candidates if all_candidates or has_evidence(c)]
    rest = [c for c in rep.candidates if c not in shown]
    for i, c in enumerate(shown, 1):
        tie = [j for j, o in enumerate(shown, 1) if j != i and o.score == c.score]
        out.extend(header_lines(c.task, cols, "    %d. " % i, "  (tied with %s)" % (
            ", ".join("#%d" % j for j in tie)) if tie else ""))
        out.extend(bullets([e for e in c.evidence if all_candidates or not
                            weak_evidence(e)], cols, "       "))
    if not shown:
        out.append("    none with evidence tying it to this lock")
    why = why_first(shown)
    if why:
        out.extend(wrap(why, cols, "    ", "      "))
    if rest:
        out.extend(wrap("%d other task%s: no evidence tying %s to this lock: %s (%s "
                        "lists %s)" % (
                            len(rest), "" if len(rest) == 1 else "s",
                            "it" if len(rest) == 1 else "them",
                            ", ".join(task_short(c.task) for c in rest[:4]) +
                            (" and %d more" % (len(rest) - 4) if len(rest) > 4 else ""),
                            ALL_CANDIDATES, "it" if len(rest) == 1 else "them"),
                        cols, "    ", "      "))
    if not all_candidates and any(weak_evidence(e) for c in shown for e in c.evidence):
        out.extend(wrap("(weak reasons, such as being blocked elsewhere, not shown: %s)"
                        % ALL_CANDIDATES, cols, "    ", "      "))
    return out


def format_report(rep: LockReport, cols: int = DEFAULT_WIDTH,
                  all_candidates: bool = False) -> str:
    """Return the crash-like text of a lock report, waiters as a table, long lines
    wrapped to ``cols``; candidate holders without evidence tying them to the lock in
    one line, unless ``all_candidates``."""
    out = []  # type: List[str]

    def line(text: str, hang: str = "      ") -> None:
        out.extend(wrap(text, cols, "", hang))
    out.append("LOCK: %x  TYPE: %s" % (rep.address, rep.type))
    tf = rep.state.get("type_from")
    if tf:
        line("  TYPE FROM: %s" % tf)
    if rep.layout:
        line("  LAYOUT: %s" % rep.layout)
    if rep.where:
        line("  WHERE: %s" % rep.where)
    if rep.type != "unknown":
        st = "locked" if rep.locked else ("unlocked" if rep.locked is False else "unknown")
        held = rep.state.get("held_as")
        if rep.locked and held:
            st += " (%s%s)" % (held, "s: %d" % rep.readers if held == "reader" and
                               rep.readers else "")
        raw = ["%s=%s" % (k, rep.state[k]) for k in ("count", "activity", "active", "owner",
                                                     "owner_thread_info", "last_holder",
                                                     "raw_lock", "owner_cpu")
               if k in rep.state]
        line("  STATE: %s%s%s" % (st, "  " + "  ".join(raw) if raw else "",
                                        "  flags: " + " ".join(rep.flags) if rep.flags
                                        else ""))
        if rep.owner is not None:
            out.extend(header_lines(rep.owner, cols, "  OWNER: "))
            out.append("         (recorded in %s)" % rep.owner_source)
        elif rep.locked:
            if rep.type == "rw_semaphore" and rep.state.get("held_as") == "reader":
                out.append("  OWNER: reader-owned%s; readers are not recorded" % (
                    " by %d reader(s)" % rep.readers if rep.readers else ""))
            else:
                out.append("  OWNER: not recorded by this %s" % rep.type)
        if rep.owner_hint is not None:
            out.append("  OWNER HINT (not proof):")
            out.extend(header_lines(rep.owner_hint, cols, "    "))
            out.extend(wrap(rep.owner_hint_why or "", cols, "         "))
        if rep.candidates:
            out.extend(_candidates(rep, cols, all_candidates))
            note = rep.state.get("candidates_note")
            if note:
                out.append("    (%s)" % note)
        elif rep.locked and rep.owner is None and "candidates_considered" in rep.state:
            out.append("  CANDIDATE HOLDERS: none with any evidence")
        elif rep.state.get("candidates_searched") is False:
            out.append("  CANDIDATE HOLDERS: not searched (--no-candidates)")
        out.append("  WAITERS: %d%s" % (len(rep.waiters), " (queue order)" if rep.waiters
                                        else ""))
        if rep.waiters:
            rows = []
            for i, w in enumerate(rep.waiters, 1):
                t = w.task
                rows.append([i, t.pid if t.pid is not None else "?", t.comm or "?",
                             "%x" % t.task, t.state or "?", w.mode or "-",
                             t.last_ran or "?"])
            hdr = ["#", "PID", "COMM", "TASK", "ST", "WAITS AS", "LAST RAN"]
            tbl = table(rows, hdr, "plain", cols - 4)
            out.extend("    " + line for line in tbl.splitlines())
        if rep.state.get("pending_writer"):
            out.extend(wrap("(waiter %s)" % rep.state["pending_writer"], cols, "    ",
                            "     "))
    for p in rep.problems:
        line("  PROBLEM: %s" % p)
    return "\n".join(out)


def format_blocked(b: Blocked, cols: int = DEFAULT_WIDTH) -> str:
    """Return the text of what a task is blocked on (crash's task header first), its
    evidence wrapped to ``cols``."""
    out = header_lines(b.task, cols)
    addr = wait_address(b)
    if b.kind == "lock":
        out.extend(wrap("BLOCKED ON: %s %x%s, in #%s %s" % (
            b.lock_type, b.lock_address, " as %s" % b.mode if b.mode else "", b.frame,
            b.function), cols, "  ", "    "))
    elif b.kind == "running":
        out.append("  NOT BLOCKED: running/runnable")
    elif b.kind == "unknown":
        out.append("  BLOCKED ON: unknown%s" % (
            " (in #%s %s, a %s slow path)" % (b.frame, b.function, b.lock_type)
            if b.lock_type else ""))
    else:
        out.extend(wrap("BLOCKED ON: not a lock: %s%s, in #%s %s" % (
            b.kind, " %x" % addr if addr is not None else " (address unknown)", b.frame,
            b.function), cols, "  ", "    "))
    out.extend(bullets(b.evidence, cols, "    "))
    w = b.wait
    if w is not None:
        if w.completion is not None:
            out.extend(wrap("COMPLETION: %x  WHERE: %s%s" % (
                w.completion, w.where or "?", "; %s" % w.container if w.container else ""),
                cols, "  ", "    "))
        if w.what:
            out.extend(wrap("WAITS FOR: %s%s%s" % (
                w.what, " at %x" % w.object if w.object is not None and w.kind == "work"
                else "", " (%s)" % w.object_where if w.object_where else ""), cols, "  ",
                "    "))
        for t in w.must_act:
            out.extend(header_lines(t, cols, "  MUST ACT: "))
        if w.pending:
            out.extend(wrap("PENDING: %s" % w.pending, cols, "  ", "    "))
        out.extend(bullets(w.evidence, cols, "    "))
    return "\n".join(out)


# ------------------------------------------------------------------ modes


def format_held(r: Dict, cols: int = DEFAULT_WIDTH) -> str:
    """Return the text of :func:`held_report`'s answer, wrapped to ``cols``."""
    b, th, reps = r["blocked"], r["holds"], r["locks"]
    out = header_lines(b.task, cols)
    if b.kind == "running":
        out.append("  (running or runnable: its stack is moving; frames may be stale)")
    src = {h.source for h in th.held}
    if not th.held:
        out.extend(wrap("HOLDS: nothing its frames' code shows%s, and no lock a blocked "
                        "task waits on names it as owner" % (
                            " (and lockdep records none)" if "lockdep" in src else ""),
                        cols, "  ", "    "))
    else:
        out.append("  HOLDS (%s):" % (
            "recorded by lockdep" if src == {"lockdep"} else
            "recorded by the locks' owner fields" if src == {"owner"} else
            "inferred from its frames' code, NOT recorded by the locks" if src == {"code"}
            else "each with its source below"))
    for i, h in enumerate(th.held, 1):
        rep = reps.get(h.address)
        where = " (%s)" % rep.where if rep is not None and rep.where else ""
        st = ""
        if rep is not None:
            st = "  [%s, %d waiter(s)]" % ("locked" if rep.locked else "NOT locked" if
                                           rep.locked is False else "state unknown",
                                           len(rep.waiters))
        out.extend(wrap("%d. %s %x%s%s%s" % (i, h.kind, h.address, where,
                                             " as %s" % h.mode if h.mode else "", st),
                        cols, "    ", "       "))
        out.extend(bullets(h.evidence, cols, "       "))
        if h.path_dependent:
            out.append("       - (which path the code took is inferred from the lock's "
                       "state)")
        if h.weak:
            out.append("       - (the address rests on memory read now; it may have "
                       "changed since)")
    for n in th.notes:
        out.extend(wrap("NOTE: %s" % n, cols, "  ", "    "))
    return "\n".join(out)


def _hop_line(h: Dict, first: bool) -> str:
    """Return one hop of the answer: ``rm 100 waits for rw_semaphore ADDR (name)`` and,
    when known, who holds it and how that is known."""
    b, rep = h["blocked"], h["lock"]
    lead = "" if first else "  -> "
    if rep is None and h.get("must_act") and b.wait is not None:
        return "%s%s in %s waits for %s; must act: %s (recorded by the kernel)" % (
            lead, task_short(b.task), h.get("caller") or b.function or "?",
            b.wait.what or b.wait.kind, task_short(b.wait.must_act[0]))
    if rep is None:
        return lead + task_short(b.task)
    s = "%s%s in %s waits for %s %x (%s)" % (
        lead, task_short(b.task), h.get("caller") or b.function or "?", rep.type,
        rep.address, short_lock_name(rep))
    if rep.owner is not None:
        s += ", held by %s (recorded in %s)" % (task_short(rep.owner), rep.owner_source)
    elif h.get("followed_candidate") and rep.candidates:
        s += ", held by %s (INFERRED: top-ranked candidate, not recorded)" % (
            task_short(rep.candidates[0].task))
    return s


def format_chain(hops: List[Dict], outcome: Dict, cols: int = DEFAULT_WIDTH,
                 all_candidates: bool = False) -> str:
    """Return ``whoholds -p``'s text: the answer (outcome and the hops in one line
    each), then each hop's task and lock report (``all_candidates``: as
    :func:`format_report`)."""
    out = wrap("ANSWER: %s" % outcome["text"], cols, "", "  ")
    for i, h in enumerate(hops):
        out.extend(wrap(_hop_line(h, i == 0), cols, "  ", "       "))
    out.append("")
    shown_locks = set()
    for i, h in enumerate(hops):
        out.append("HOP %d of %d" % (i + 1, len(hops)))
        out.append(format_blocked(h["blocked"], cols))
        rep = h["lock"]
        if rep is not None and rep.address in shown_locks:
            out.append("  (lock %x reported above; owner %s)" % (
                rep.address, "PID %s" % rep.owner.pid if rep.owner else "not recorded"))
        elif rep is not None:
            shown_locks.add(rep.address)
            out.append("")
            out.append(format_report(rep, cols, all_candidates))
            if h.get("followed_candidate"):
                out.append("  -> following the top CANDIDATE (inferred, not recorded)")
        if h.get("must_act"):
            out.append("  -> following the task that MUST ACT (recorded by the kernel)")
        out.append("")
    return "\n".join(out)
