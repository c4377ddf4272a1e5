"""``whoholds``: who holds a kernel lock, who waits on it, what a task is blocked on.

    whoholds [-t TYPE] ADDR                  ADDR: hex, symbol or symbol+off
    whoholds [-t TYPE] STRUCT.MEMBER ADDR    the lock MEMBER of the STRUCT at ADDR
    whoholds -p PID|TASK                     what the task waits for, that lock's report,
                                             then its owner's wait, hop by hop
    whoholds --held PID|TASK                 the locks the task holds, with evidence
"""

import argparse
import re
from ..compat import Dict, List, Optional, Tuple

from ..waits.blockedon import blocked_on
from ..waits.liveconfirm import progress_counters
from ..waits.lockreport import lock_report, resolve_address
from ..core.results import Blocked, LockReport, TaskRef
from ..session.snapshot import Snapshot
from ..session.identity import dump_identity, live_system
from ..session.taskview import require_task_view
from ..models import locks as L
from ..core.errors import BadArgument, CrashExtError
from ..core.port import Port
from ..core.words import (argtype, check_address_word, check_count_word, check_member_word,
                          check_type_word, shown)
from . import shell
from .registry import VerbParser
from .shell import EXIT_ALARM, EXIT_ANSWERED, blocked
from .taskword import check_task_word, resolve_task
from ..waits.build import blocking_caller  # deadlock's 'in vfs_unlink'
from ..waits.collection import collect, owned_locks
from ..core import jsontext
from ..render.shape import document, hexaddr, to_json
from ..render.text import task_short, wait_address, width
from ..render.whoholds import format_chain, format_held, format_report


EXAMPLES = """
whoholds ffff8cfcc22919b0              report the lock at that address (type detected)
whoholds -t mutex my_global_mutex      a lock named by symbol, type given
whoholds inode.i_rwsem ffff8f518276b4a0   the i_rwsem inside the inode at that address
whoholds inode.i_mutex ffff8808a3dbf588   (older kernels)
whoholds -p 5109                       what pid 5109 waits for, who holds it, and on
whoholds -p rm --json                  from there, until a running task or a cycle
                                       (a task: pid, task address, or the command
                                       name of one task)
whoholds --held 4724                   the locks pid 4724 holds: lockdep's record, or
                                       what its frames' code took and did not release,
                                       and the locks whose owner field names it
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
    p = VerbParser(prog="whoholds", examples=EXAMPLES, add_help=True,
                description="Who holds a kernel lock, who waits on it, and what a task is "
                            "blocked on.  Owners the lock does not record are shown as "
                            "ranked candidates with evidence, never as fact.")
    p.add_argument("target", nargs="*", metavar="[STRUCT.MEMBER] ADDR",
                   help="lock address (hex, symbol, symbol+off), or STRUCT.MEMBER and the "
                        "address of the containing STRUCT")
    p.add_argument("-t", "--type", dest="lock_type", metavar="TYPE",
                   type=argtype(check_lock_kind_word),
                   help="lock type: mutex, rw_semaphore, semaphore, rt_mutex, spinlock")
    p.add_argument("-p", "--pid", dest="pid", metavar="PID|TASK|COMMAND",
                   help="start from a task (pid, task_struct address, or a command name "
                        "one task has): what it is blocked on, then follow owners")
    p.add_argument("--held", dest="held", metavar="PID|TASK|COMMAND",
                   help="list the locks the task holds (lockdep's record when the kernel "
                        "keeps one, else what its frames' code took and has not released; "
                        "then the locks blocked tasks wait on whose owner field names it), "
                        "each with its evidence")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--max-waiters", type=argtype(check_count_word, "--max-waiters",
                                                 L.MAX_WAITERS),
                   default=L.MAX_WAITERS, metavar="N",
                   help="stop walking a wait list after N waiters (default %(default)s)")
    p.add_argument("--no-candidates", action="store_true",
                   help="do not rank candidate holders for ownerless locks")
    p.add_argument("--all-candidates", action="store_true",
                   help="list every candidate holder, also those with no evidence tying "
                   "them to the lock (by default counted in one line)")
    p.add_argument("--args", action="store_true",
                   help="with -p: also try argument recovery to find the lock")
    return p


def held_report(port: Port, snap: Snapshot, task: int) -> Dict:
    """Return {"blocked": Blocked, "holds": TaskHolds, "locks": {address: LockReport}}
    for ``task``: what it waits on and what it holds -- lockdep's record or its frames'
    code (:mod:`~crash_ext.code.holds`), then the locks blocked tasks wait on whose
    owner field names it (:func:`~crash_ext.waits.collection.owned_locks`) -- and each
    held lock's report (its state and waiters, no candidates)."""
    from ..code.holds import analyser_for
    b = blocked_on(port, task, snapshot=snap)
    bt = snap.backtrace(task)
    th = analyser_for(port).task_holds(bt, above=b.frame if b.kind != "running" else None)
    res = collect(port, snapshot=snap, use_candidates=False)
    reps = {}  # type: Dict[int, LockReport]
    for h in owned_locks(res, task):
        reps[h.address] = res.graph.locks[h.address].report
        if not any(x.address == h.address for x in th.held):
            th.held.append(h)
    for h in th.held:
        if h.kind in L.KINDS and h.address not in reps:
            try:
                reps[h.address] = lock_report(port, h.address, h.kind, snapshot=snap,
                                              candidates=False)
            except CrashExtError as e:
                th.notes.append("lock %x: %s" % (h.address, e))
    return {"blocked": b, "holds": th, "locks": reps}


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


def _end(kind: str, task: Optional[TaskRef], text: str, **more) -> Dict:
    """Return a structured outcome of ``whoholds -p``: ``kind``, the ``pid`` it ends
    at, ``text`` (the sentence the text output prints) and ``more``."""
    d = {"kind": kind, "pid": task.pid if task is not None else None}  # type: Dict
    d.update(more)
    d["text"] = text
    return d


def _live_outcome(outcome: Dict, before, after, start: int, snap: Snapshot) -> Dict:
    """Return ``outcome`` with what a live system adds: ``live_moved`` True when the
    start task ran while its chain was read (its counters changed: it may no longer
    wait where the chain shows it), and a sentence saying so or that it did not."""
    ran = before.get(start) is None or before.get(start) != after.get(start)
    pid = snap.ref(start).pid
    note = (" (live system: PID %s ran while this was read: it may no longer wait "
            "there)" % pid if ran else
            " (live system: read once; PID %s did not run meanwhile)" % pid)
    return dict(outcome, live_moved=ran, text=outcome["text"] + note)


def _chain(port: Port, snap: Snapshot, start: int, opts) -> Tuple[List[Dict], Dict]:
    """Follow task -> lock -> owner hops; return (hops, outcome).

    The outcome's ``kind``: ``cycle`` (``pids`` in wait order), ``running``,
    ``unknown`` (not confirmed to wait on any lock), ``not_a_lock`` (``waits_on``:
    the kind of wait, ``address`` when known), ``no_owner``, ``tied_candidates``,
    ``hop_limit``."""
    hops = []  # type: List[Dict]
    seen = []  # type: List[int]
    task = start
    for _ in range(MAX_HOPS):
        if task in seen:
            i = seen.index(task)
            cyc = [snap.ref(t) for t in seen[i:]]
            desc = " -> ".join(task_short(t) for t in cyc + cyc[:1])
            acts = any(h["blocked"].kind != "lock" for h in hops[i:])
            return hops, _end(
                "cycle", cyc[0], "DEADLOCK: %s: each waits for a lock the next holds%s; "
                "run `deadlock` for the whole wait-for graph." % (
                    desc, " or for what the next must do" if acts else ""),
                pids=[t.pid for t in cyc])
        seen.append(task)
        b = blocked_on(port, task, snapshot=snap, use_args=opts.args)
        hop = {"blocked": b, "lock": None, "caller": None}  # type: Dict
        try:
            hop["caller"] = blocking_caller(snap.backtrace(task), b.frame)
        except CrashExtError:
            pass
        hops.append(hop)
        w = b.wait
        if b.kind != "lock" and w is not None and len(w.must_act) == 1:
            hop["must_act"] = True
            task = w.must_act[0].task
            continue
        if b.kind != "lock" and w is not None and w.must_act:
            return hops, _end(
                "must_act", b.task, "%s waits for %s; %d tasks must act: %s." % (
                    task_short(b.task), w.what or w.kind, len(w.must_act),
                    ", ".join(task_short(t) for t in w.must_act)),
                pids=[t.pid for t in w.must_act])
        if b.kind != "lock":
            if b.kind == "running":
                return hops, _end("running", b.task, "%s is running or runnable: it is "
                                  "not waiting." % task_short(b.task))
            if b.kind == "unknown":
                return hops, _end("unknown", b.task, "%s is not confirmed to wait on any "
                                  "lock." % task_short(b.task))
            addr = wait_address(b)
            if w is not None and w.completion is not None:
                return hops, _end(
                    "not_a_lock", b.task, "%s waits on completion %x (%s)%s%s." % (
                        task_short(b.task), addr, w.where or "where unknown",
                        ", for %s" % w.what if w.what else "",
                        ", %s" % w.pending if w.pending else
                        ", no task is known to complete it"),
                    waits_on=b.kind, address=hexaddr(addr), function=b.function)
            what = "a %s" % b.kind if b.kind != "io" else "I/O"
            return hops, _end(
                "not_a_lock", b.task, "%s waits on %s%s in %s, not on a lock." % (
                    task_short(b.task), what,
                    " at %x" % addr if addr is not None else " (address unknown)",
                    b.function or "?"),
                waits_on=b.kind, address=hexaddr(addr), function=b.function)
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
                return hops, _end(
                    "tied_candidates", b.task, "the %s %x records no owner and its top "
                    "candidate holders are tied; not following a guess." % (
                        rep.type, rep.address), lock=hexaddr(rep.address))
            hop["followed_candidate"] = True
            task = top.task.task
            continue
        if opts.no_candidates:
            return hops, _end("no_owner", b.task, "the %s %x records no owner; candidate "
                              "holders were not searched (--no-candidates)."
                              % (rep.type, rep.address), lock=hexaddr(rep.address),
                              candidates_searched=False)
        return hops, _end("no_owner", b.task, "the %s %x records no owner and no "
                          "candidate holder was found." % (rep.type, rep.address),
                          lock=hexaddr(rep.address), candidates_searched=True)
    return hops, _end("hop_limit", None, "stopped after %d hops." % MAX_HOPS)


def check(opts) -> None:
    """Check what needs no dump (run before crash starts); raises BadArgument."""
    if opts.held is not None:
        if opts.target or opts.pid is not None:
            raise BadArgument("give --held PID|TASK|COMMAND alone (not with -p or a lock)")
        check_task_word(opts.held)
    elif opts.pid is not None:
        if opts.target:
            raise BadArgument("give either -p PID|TASK|COMMAND or a lock, not both")
        check_task_word(opts.pid)
    elif not opts.target:
        raise BadArgument("give a lock (ADDR or STRUCT.MEMBER ADDR), -p PID|TASK|COMMAND "
                          "or --held PID|TASK|COMMAND")
    elif len(opts.target) > 2:
        raise BadArgument("expected ADDR or STRUCT.MEMBER ADDR (or -p PID), got %d words"
                          % len(opts.target))
    else:
        for w in opts.target:
            check_address_word(w)


def _holders(rep: LockReport) -> List[TaskRef]:
    """Return who holds the lock of ``rep`` as far as the answer says: its recorded
    owner, else its top-ranked candidates (several when tied)."""
    if rep.owner is not None:
        return [rep.owner]
    if rep.candidates:
        top = rep.candidates[0].score
        return [c.task for c in rep.candidates if c.score == top]
    return []


def lock_exit_code(rep: LockReport) -> int:
    """Return the exit code of a lock report: 1 when tasks wait and every holder the
    answer names is itself blocked, else 0 (no lock detected at the address is an
    input error, raised before)."""
    hs = _holders(rep)
    if rep.waiters and hs and all(blocked(h) for h in hs):
        return EXIT_ALARM
    return EXIT_ANSWERED


def chain_exit_code(hops: List[Dict], outcome: Dict) -> int:
    """Return the exit code of a ``-p`` chain: 1 for a cycle, or when the task waits
    behind a holder that is itself blocked (a later hop that is not running, or tied
    top candidates that are all blocked), else 0."""
    if outcome["kind"] == "cycle":
        return EXIT_ALARM
    if any(h["blocked"].kind != "running" for h in hops[1:]):
        return EXIT_ALARM
    if outcome["kind"] == "tied_candidates" and hops and hops[-1]["lock"] is not None:
        hs = _holders(hops[-1]["lock"])
        if hs and all(blocked(h) for h in hs):
            return EXIT_ALARM
    return EXIT_ANSWERED


def main(argv, port: Port, out=None, err=None) -> int:
    """Run ``whoholds`` with ``argv`` on ``port`` through the verb shell
    (:func:`~crash_ext.verbs.shell.main`): the answer on ``out`` (stdout), errors as one
    line on ``err`` (stderr).  Returns the exit code (:data:`~crash_ext.verbs.shell.EXIT_TEXT`)."""
    return shell.main("whoholds", argv, port, out, err)


def run(opts, port: Port, out) -> int:
    """Answer parsed ``opts`` on ``port``, printing to ``out``; return 0 or 1 (see
    :func:`lock_exit_code`, :func:`chain_exit_code`).  Raises CrashExtError for a
    one-line error (BadArgument, exit 2, when no lock type is detected at the address:
    the input named no lock)."""
    require_task_view(port)
    snap = Snapshot(port)
    if opts.held is not None:
        r = held_report(port, snap, resolve_task(port, snap, opts.held))
        if opts.json:
            js = document("whoholds", dump_identity(port), {
                "mode": "held", "blocked": to_json(r["blocked"]),
                "held": [dict(to_json(h), where=(
                    r["locks"][h.address].where if h.address in r["locks"] else None))
                    for h in r["holds"].held],
                "notes": list(r["holds"].notes)})
            print(jsontext.dumps(js, indent=1), file=out)
        else:
            print(format_held(r, width(out)), file=out)
        stuck = r["blocked"].kind != "running" and any(
            rep.waiters for rep in r["locks"].values())
        return EXIT_ALARM if stuck else EXIT_ANSWERED
    if opts.pid is not None:
        start = resolve_task(port, snap, opts.pid)
        live = live_system(port)
        before = progress_counters(port, [start]) if live else None
        hops, outcome = _chain(port, snap, start, opts)
        rc = chain_exit_code(hops, outcome)
        if live:
            outcome = _live_outcome(outcome, before, progress_counters(port, [start]),
                                    start, snap)
        if opts.json:
            js = document("whoholds", dump_identity(port), {
                "mode": "chain", "outcome": outcome,
                "chain": [{"blocked": to_json(h["blocked"]), "caller": h["caller"],
                           "lock": to_json(h["lock"]) if h["lock"] else None,
                           "followed_candidate": bool(h.get("followed_candidate")),
                           "followed_must_act": bool(h.get("must_act"))}
                          for h in hops]})
            print(jsontext.dumps(js, indent=1), file=out)
            return rc
        out.write(format_chain(hops, outcome, width(out), opts.all_candidates))
        return rc
    addr, kind, cont = _lock_target(port, opts)
    rep = lock_report(port, addr, kind, snapshot=snap, container=cont,
                      candidates=not opts.no_candidates, max_waiters=opts.max_waiters)
    if rep.type == "unknown":       # the input named no lock: exit 2, said on stderr
        why = [p for p in rep.problems if p.startswith("lock type not detected; tried: ")]
        tried = why[0].split("; tried: ", 1)[1].split(". Give it", 1)[0] if why else ""
        raise BadArgument("no lock at %x: lock type not detected; give it with -t TYPE or "
                          "as STRUCT.MEMBER ADDR%s%s" % (
                              addr, " (it is in %s)" % rep.where if rep.where else "",
                              "; tried: " + tried if tried else ""))
    if live_system(port):
        rep.problems.append("live system: read once, as it was while crash read it; "
                            "the running kernel may have changed it since")
    if opts.json:
        print(jsontext.dumps(document("whoholds", dump_identity(port), {
            "mode": "lock", "lock": to_json(rep)}), indent=1), file=out)
    else:
        print(format_report(rep, width(out), opts.all_candidates), file=out)
    return lock_exit_code(rep)
