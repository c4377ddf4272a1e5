"""``whoholds``: who holds a kernel lock, who waits on it, what a task is blocked on.

    whoholds [-t TYPE] ADDR                  ADDR: hex, symbol or symbol+off
    whoholds [-t TYPE] STRUCT.MEMBER ADDR    the lock MEMBER of the STRUCT at ADDR
    whoholds -p PID|TASK                     what the task waits for, that lock's report,
                                             then its owner's wait, hop by hop
    whoholds --held PID|TASK                 the locks the task holds, with evidence
"""

import argparse
import re
import sys
from ..compat import Dict, List, Optional, Tuple

from ..analyses.blockedon import blocked_on
from ..analyses.lockreport import lock_report, resolve_address
from ..analyses.results import Blocked, LockReport, TaskRef
from ..analyses.snapshot import Snapshot
from ..analyses.taskview import require_task_view
from ..models import locks as L
from ..port import BadArgument, CrashExtError, Port
from ..words import (argtype, check_count_word, check_member_word, check_type_word,
                     pid_or_task_word, shown)
from .registry import CRASH_FAILURES, VerbParser, error_line, parse_verb_args
from .. import record
from ..render import jsontext
from ..render.table import table


EXAMPLES = """
whoholds ffff8cfcc22919b0              report the lock at that address (type detected)
whoholds -t mutex my_global_mutex      a lock named by symbol, type given
whoholds inode.i_rwsem ffff8f518276b4a0   the i_rwsem inside the inode at that address
whoholds inode.i_mutex ffff8808a3dbf588   (older kernels)
whoholds -p 5109                       what pid 5109 waits for, who holds it, and on
whoholds -p 5109 --json                from there, until a running task or a cycle
whoholds --held 4724                   the locks pid 4724 holds: lockdep's record, or
                                       what its frames' code took and did not release
"""

MAX_HOPS = 64


def check_lock_kind_word(word) -> str:
    """Return the lock kind ``word`` names (``mutex``, ``rwsem``, ``struct semaphore``...
    as :func:`~crash_ext.models.locks.normalize_kind` knows them); raises BadArgument."""
    kind = L.normalize_kind(word) if isinstance(word, str) and len(word) < 64 else None
    if kind is None:
        raise BadArgument("not a lock type crash-ext decodes: %s (known: %s)"
                          % (shown(word), ", ".join(L.KINDS)))
    return kind


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``whoholds``."""
    p = VerbParser(prog="whoholds", add_help=True,
                description="Who holds a kernel lock, who waits on it, and what a task is "
                            "blocked on.  Owners the lock does not record are shown as "
                            "ranked candidates with evidence, never as fact.")
    p.add_argument("target", nargs="*", metavar="[STRUCT.MEMBER] ADDR",
                   help="lock address (hex, symbol, symbol+off), or STRUCT.MEMBER and the "
                        "address of the containing STRUCT")
    p.add_argument("-t", "--type", dest="lock_type", metavar="TYPE",
                   type=argtype(check_lock_kind_word),
                   help="lock type: mutex, rw_semaphore, semaphore, rt_mutex, spinlock")
    p.add_argument("-p", "--pid", dest="pid", metavar="PID|TASK",
                   help="start from a task: what it is blocked on, then follow owners")
    p.add_argument("--held", dest="held", metavar="PID|TASK",
                   help="list the locks the task holds (lockdep's record when the kernel "
                        "keeps one, else what its frames' code took and has not released), "
                        "each with its evidence")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--max-waiters", type=argtype(check_count_word, "--max-waiters",
                                                 L.MAX_WAITERS),
                   default=L.MAX_WAITERS, metavar="N",
                   help="stop walking a wait list after N waiters (default %(default)s)")
    p.add_argument("--no-candidates", action="store_true",
                   help="do not rank candidate holders for ownerless locks")
    p.add_argument("--args", action="store_true",
                   help="with -p: also try argument recovery to find the lock")
    return p


# ------------------------------------------------------------------ JSON

def _hexify(obj, key=None):
    if isinstance(obj, dict):
        return {k: _hexify(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_hexify(v, key) for v in obj]
    if isinstance(obj, int) and not isinstance(obj, bool) and key in (
            "task", "address", "lock_address", "waiter", "completion", "object"):
        return "%#x" % obj
    return obj


def to_json_obj(x) -> Dict:
    """Return a JSON-ready dict of a result dataclass (addresses as 0x-hex strings)."""
    return _hexify(record.asdict(x))


# ------------------------------------------------------------------ text

def _task_line(t: TaskRef) -> str:
    s = "PID %s  TASK %x  \"%s\"  %s  CPU %s" % (
        t.pid if t.pid is not None else "?", t.task, t.comm or "?", t.state or "?",
        t.cpu if t.cpu is not None else "?")
    if t.last_ran:
        s += "  last ran %s ago" % t.last_ran
    return s


def format_report(rep: LockReport) -> str:
    """Return the crash-like text of a lock report, waiters as a table."""
    out = []
    out.append("LOCK: %x  TYPE: %s" % (rep.address, rep.type))
    tf = rep.state.get("type_from")
    if tf:
        out.append("  TYPE FROM: %s" % tf)
    if rep.layout:
        out.append("  LAYOUT: %s" % rep.layout)
    if rep.where:
        out.append("  WHERE: %s" % rep.where)
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
        out.append("  STATE: %s%s%s" % (st, "  " + "  ".join(raw) if raw else "",
                                        "  flags: " + " ".join(rep.flags) if rep.flags
                                        else ""))
        if rep.owner is not None:
            out.append("  OWNER: %s" % _task_line(rep.owner))
            out.append("         (recorded in %s)" % rep.owner_source)
        elif rep.locked:
            if rep.type == "rw_semaphore" and rep.state.get("held_as") == "reader":
                out.append("  OWNER: reader-owned%s; readers are not recorded" % (
                    " by %d reader(s)" % rep.readers if rep.readers else ""))
            else:
                out.append("  OWNER: not recorded by this %s" % rep.type)
        if rep.owner_hint is not None:
            out.append("  OWNER HINT (not proof): %s" % _task_line(rep.owner_hint))
            out.append("         %s" % (rep.owner_hint_why or ""))
        if rep.candidates:
            out.append("  CANDIDATE HOLDERS (inferred, ranked, NOT certain):")
            for i, c in enumerate(rep.candidates, 1):
                out.append("    %d. %s  score %g" % (i, _task_line(c.task), c.score))
                for e in c.evidence:
                    out.append("         - %s" % e)
            note = rep.state.get("candidates_note")
            if note:
                out.append("    (%s)" % note)
        elif rep.locked and rep.owner is None and "candidates_considered" in rep.state:
            out.append("  CANDIDATE HOLDERS: none with any evidence")
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
            tbl = table(rows, hdr, "plain")
            out.extend("    " + line for line in tbl.splitlines())
    for p in rep.problems:
        out.append("  PROBLEM: %s" % p)
    return "\n".join(out)


def format_blocked(b: Blocked) -> str:
    """Return the text of what a task is blocked on."""
    t = b.task
    out = ["PID: %s  TASK: %x  CPU: %s  COMMAND: \"%s\"  [%s]%s" % (
        t.pid, t.task, t.cpu if t.cpu is not None else "?", t.comm or "?", t.state or "?",
        "  last ran %s ago" % t.last_ran if t.last_ran else "")]
    if b.kind == "lock":
        out.append("  BLOCKED ON: %s %x%s, in #%s %s" % (
            b.lock_type, b.lock_address, " as %s" % b.mode if b.mode else "", b.frame,
            b.function))
    elif b.kind == "running":
        out.append("  NOT BLOCKED: running/runnable")
    elif b.kind == "unknown":
        out.append("  BLOCKED ON: unknown%s" % (
            " (in #%s %s, a %s slow path)" % (b.frame, b.function, b.lock_type)
            if b.lock_type else ""))
    else:
        out.append("  BLOCKED ON: not a lock: %s, in #%s %s" % (b.kind, b.frame,
                                                                 b.function))
    for e in b.evidence:
        out.append("    - %s" % e)
    w = b.wait
    if w is not None:
        if w.completion is not None:
            out.append("  COMPLETION: %x  WHERE: %s%s" % (w.completion, w.where or "?",
                                                     "; %s" % w.container if w.container
                                                     else ""))
        if w.what:
            out.append("  WAITS FOR: %s%s%s" % (
                w.what, " at %x" % w.object if w.object is not None and w.kind == "work"
                else "", " (%s)" % w.object_where if w.object_where else ""))
        for t in w.must_act:
            out.append("  MUST ACT: %s" % _task_line(t))
        if w.pending:
            out.append("  PENDING: %s" % w.pending)
        for e in w.evidence:
            out.append("    - %s" % e)
    return "\n".join(out)


# ------------------------------------------------------------------ modes

def held_report(port: Port, snap: Snapshot, task: int) -> Dict:
    """Return {"blocked": Blocked, "holds": TaskHolds, "locks": {address: LockReport}}
    for ``task``: what it waits on and what it holds (:mod:`~crash_ext.analyses.holds`),
    each held lock's report (its state and waiters, no candidates)."""
    from ..analyses.holds import analyser_for
    b = blocked_on(port, task, snapshot=snap)
    bt = snap.backtrace(task)
    th = analyser_for(port).task_holds(bt, above=b.frame if b.kind != "running" else None)
    reps = {}  # type: Dict[int, LockReport]
    for h in th.held:
        if h.kind in L.KINDS and h.address not in reps:
            try:
                reps[h.address] = lock_report(port, h.address, h.kind, snapshot=snap,
                                              candidates=False)
            except CrashExtError as e:
                th.notes.append("lock %x: %s" % (h.address, e))
    return {"blocked": b, "holds": th, "locks": reps}


def format_held(r: Dict) -> str:
    """Return the text of :func:`held_report`'s answer."""
    b, th, reps = r["blocked"], r["holds"], r["locks"]
    out = [format_blocked(b).split("\n")[0]]
    if b.kind == "running":
        out.append("  (running or runnable: its stack is moving; frames may be stale)")
    src = {h.source for h in th.held}
    if not th.held:
        out.append("  HOLDS: nothing its frames' code shows%s" % (
            " (and lockdep records none)" if "lockdep" in src else ""))
    else:
        out.append("  HOLDS (%s):" % ("recorded by lockdep" if src == {"lockdep"} else
                                      "inferred from its frames' code, NOT recorded by "
                                      "the locks"))
    for i, h in enumerate(th.held, 1):
        rep = reps.get(h.address)
        where = " (%s)" % rep.where if rep is not None and rep.where else ""
        st = ""
        if rep is not None:
            st = "  [%s, %d waiter(s)]" % ("locked" if rep.locked else "NOT locked" if
                                           rep.locked is False else "state unknown",
                                           len(rep.waiters))
        out.append("    %d. %s %x%s%s%s" % (i, h.kind, h.address, where,
                                          " as %s" % h.mode if h.mode else "", st))
        for e in h.evidence:
            out.append("       - %s" % e)
        if h.weak:
            out.append("       - (the address rests on memory read now; it may have "
                       "changed since)")
    for n in th.notes:
        out.append("  NOTE: %s" % n)
    return "\n".join(out)


def _task_arg(port: Port, snap: Snapshot, word: str) -> int:
    """Return the task_struct address ``word`` names: a pid (ASCII digits) or a task
    address/symbol.  Raises BadArgument when it is neither or no such task exists."""
    kind, v = pid_or_task_word(word)
    if kind == "pid":
        e = snap.by_pid(v)
        if e is None:
            raise BadArgument("no task with pid %d" % v)
        return e.task
    a = resolve_address(port, v)
    if snap.by_task(a) is None:
        raise BadArgument("no task at %#x (not a pid, not a task_struct address)" % a)
    return a


def _lock_target(port: Port, opts) -> Tuple[int, Optional[str], Optional[tuple]]:
    tg = opts.target
    if len(tg) == 1:
        if "." in tg[0] and not re.match(r"^(0x)?[0-9a-fA-F]+$", tg[0]) and \
                "+" not in tg[0]:
            raise BadArgument("%s needs the address of the containing object: "
                              "whoholds %s ADDR" % (shown(tg[0]), shown(tg[0])))
        return resolve_address(port, tg[0]), opts.lock_type, None
    if len(tg) == 2:
        sm = tg[0]
        if "." not in sm:
            raise BadArgument("expected STRUCT.MEMBER ADDR, got %s %s" % (shown(tg[0]),
                                                                          shown(tg[1])))
        st, mem = sm.split(".", 1)
        st = check_type_word(st)
        mem = check_member_word(mem)
        base = resolve_address(port, tg[1])
        off = port.member_offset(st, mem)
        if off is None:
            if port.type_size(st) is None:
                raise BadArgument("no type %r in this kernel's debuginfo" % st)
            raise BadArgument("%s has no member %r in this kernel" % (st, mem))
        mtype = port.member_type(st, mem)
        kind = opts.lock_type
        if kind is None:
            kind = L.normalize_kind(mtype or "")
            if kind is None:
                raise BadArgument("%s.%s is a %s, not a lock type crash-ext decodes"
                                  % (st, mem, mtype))
        if base == 0 or base < L.KERNEL_START:
            raise BadArgument("%#x is %s, not a kernel %s" % (
                base, "NULL" if base == 0 else "a user-space address", st))
        return base + off, kind, (st, mem, base)
    raise BadArgument("expected ADDR or STRUCT.MEMBER ADDR (or -p PID), got %d words"
                      % len(tg))


def _chain(port: Port, snap: Snapshot, start: int, opts) -> Tuple[List[Dict], str, int]:
    """Follow task -> lock -> owner hops; return (hops, end text, exit code)."""
    hops = []  # type: List[Dict]
    seen = []  # type: List[int]
    task = start
    for _ in range(MAX_HOPS):
        if task in seen:
            i = seen.index(task)
            cyc = [snap.by_task(t) for t in seen[i:]] + [snap.by_task(task)]
            desc = " -> ".join("%s(%s)" % (e.pid, e.comm) for e in cyc if e is not None)
            acts = any(h["blocked"].kind != "lock" for h in hops[i:])
            return hops, ("CYCLE: %s.  Each waits for a lock the next holds%s: a deadlock; "
                          "run `deadlock` for the whole wait-for graph." % (
                              desc, " or for what the next must do" if acts else "")), 1
        seen.append(task)
        b = blocked_on(port, task, snapshot=snap, use_args=opts.args)
        hop = {"blocked": b, "lock": None}  # type: Dict
        hops.append(hop)
        w = b.wait
        if b.kind != "lock" and w is not None and len(w.must_act) == 1:
            hop["must_act"] = True
            task = w.must_act[0].task
            continue
        if b.kind != "lock" and w is not None and w.must_act:
            return hops, "END: PID %s waits for %s; %d tasks must act: %s." % (
                b.task.pid, w.what or w.kind, len(w.must_act), ", ".join(
                    "%s(%s)" % (t.pid, t.comm) for t in w.must_act)), 0
        if b.kind != "lock":
            why = {"running": "is running or runnable",
                   "unknown": "is not confirmed to wait on any lock"}.get(
                b.kind, "waits on a %s, not a lock" % b.kind)
            if w is not None and w.completion is not None:
                why = "waits on completion %x (%s)%s%s" % (
                    w.completion, w.where or "where unknown",
                    ", for %s" % w.what if w.what else "",
                    ", %s" % w.pending if w.pending else ", no task is known to complete it")
            return hops, "END: PID %s %s." % (b.task.pid, why), 0
        rep = lock_report(port, b.lock_address, b.lock_type, snapshot=snap,
                          candidates=not opts.no_candidates, max_waiters=opts.max_waiters)
        rep.state["type_from"] = "blocking frame #%s %s" % (b.frame, b.function)
        hop["lock"] = rep
        if rep.owner is not None:
            task = rep.owner.task
            continue
        if rep.candidates:
            top = rep.candidates[0]
            tied = len(rep.candidates) > 1 and rep.candidates[1].score == top.score
            if tied:
                return hops, ("END: the lock records no owner and the top candidates are "
                              "tied; not following a guess."), 0
            hop["followed_candidate"] = True
            task = top.task.task
            continue
        return hops, "END: the lock records no owner and no candidate was found.", 0
    return hops, "END: stopped after %d hops." % MAX_HOPS, 0


def main(argv, port: Port, out=None) -> int:
    """Run ``whoholds`` with ``argv`` on ``port``; print to ``out`` (stdout).

    Returns 0 (report printed), 1 (``-p`` found a cycle), 2 (bad input or a crash
    command's error: one line ``whoholds: error: ...``).  Raises CrashDied/CrashTimeout
    when crash itself fails (``crash-ext`` exits 3).
    """
    out = out or sys.stdout
    opts, rc = parse_verb_args(build_parser(), argv, out)
    if opts is None:
        return rc
    try:
        require_task_view(port)
        snap = Snapshot(port)
        if opts.held is not None:
            if opts.target or opts.pid is not None:
                raise BadArgument("give --held PID alone (not with -p or a lock)")
            r = held_report(port, snap, _task_arg(port, snap, opts.held))
            if opts.json:
                js = {"blocked": to_json_obj(r["blocked"]),
                      "held": [dict(to_json_obj(h), where=(
                          r["locks"][h.address].where if h.address in r["locks"] else None))
                          for h in r["holds"].held],
                      "notes": list(r["holds"].notes)}
                print(jsontext.dumps(js, indent=1), file=out)
            else:
                print(format_held(r), file=out)
            return 0
        if opts.pid is not None:
            if opts.target:
                raise BadArgument("give either -p PID or a lock, not both")
            start = _task_arg(port, snap, opts.pid)
            hops, end, rc = _chain(port, snap, start, opts)
            if opts.json:
                js = {"chain": [{"blocked": to_json_obj(h["blocked"]),
                                 "lock": to_json_obj(h["lock"]) if h["lock"] else None,
                                 "followed_candidate": bool(h.get("followed_candidate")),
                                 "followed_must_act": bool(h.get("must_act"))}
                                for h in hops], "end": end}
                print(jsontext.dumps(js, indent=1), file=out)
                return rc
            shown = set()
            for h in hops:
                print(format_blocked(h["blocked"]), file=out)
                rep = h["lock"]
                if rep is not None and rep.address in shown:
                    print("  (lock %x reported above; owner %s)" % (
                        rep.address, "PID %s" % rep.owner.pid if rep.owner else "not "
                        "recorded"), file=out)
                elif rep is not None:
                    shown.add(rep.address)
                    print("", file=out)
                    print(format_report(rep), file=out)
                    if h.get("followed_candidate"):
                        print("  -> following the top CANDIDATE (inferred, not recorded)",
                              file=out)
                if h.get("must_act"):
                    print("  -> following the task that MUST ACT (recorded by the kernel)",
                          file=out)
                print("", file=out)
            print(end, file=out)
            return rc
        addr, kind, cont = _lock_target(port, opts)
        rep = lock_report(port, addr, kind, snapshot=snap, container=cont,
                          candidates=not opts.no_candidates, max_waiters=opts.max_waiters)
        if opts.json:
            print(jsontext.dumps(to_json_obj(rep), indent=1), file=out)
        else:
            print(format_report(rep), file=out)
        return 0
    except CRASH_FAILURES:
        raise                         # crash itself failed: crash-ext says so, exit 3
    except CrashExtError as e:
        print(error_line("whoholds", e), file=out)
        return 2
