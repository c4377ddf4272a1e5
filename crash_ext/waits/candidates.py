"""Ranked candidate holders for a lock that records no owner.

Nothing here is certain, and every candidate carries the evidence that ranks it:

==========================================================  =====
evidence                                                    score
==========================================================  =====
its frames' code took the lock and has not released it        200
(or lockdep records it as held: :mod:`.holds`)
a live frame above its blocking point holds the lock address   50
... holds the containing object's address                      30
a live frame at/below its blocking point holds the address     20 (10 container)
the lock's own hint (last reader, ``last_holder``)             20
the only non-waiter whose stack refers to the lock             25
a stale stack word (``search -t``) holds the address           10 (5 container)
not waiting for a lock and owning none that records an owner    8
waiting for another lock, owning none that records an owner     4
shares a specific call path with the waiters                    3
running on a CPU                                                2
==========================================================  =====

The code evidence outweighs every other line together: a holder the code shows always
ranks above one the hints point at.  Waiters of the lock are never candidates.  Ties at
the top are said to be ties.
"""

import re
from ..compat import Dict, List, Optional, Set

from ..models import locks as L

from ..models import lockstate as LS
from ..core.errors import CrashExtError
from ..core.port import Port
from .blockedon import blocked_on
from ..code.holds import analyser_for
from ..code.lockdep import lockdep_matches
from ..core.results import Candidate, LockReport
from ..session.facts import session_cache
from ..session.snapshot import Snapshot

__all__ = ["rank_candidates", "MAX_CANDIDATES"]

MAX_CANDIDATES = 10
CODE_SCORE = 200
_CODE_WORDS = ("its code holds the lock: ", "recorded as held by lockdep: ")
_GENERIC = re.compile(
    r"^(entry_\w+|do_syscall_\w+|__x64_sys_\w+|__ia32_sys_\w+|__do_sys_\w+|__se_sys_\w+|"
    r"ksys_\w+|vfs_\w+|ret_from_fork\w*|kthread|worker_thread|process_one_work|"
    r"system_call\w*|sys_\w+|proc_reg_\w+|__schedule|schedule\w*)$")


def _owned_locks(port: Port, snap: Snapshot, bts) -> Dict[int, List[str]]:
    """Return {task: [descriptions of locks it is the recorded owner of]} over the locks
    blocked tasks wait on (each lock's state read once)."""
    owned = {}  # type: Dict[int, List[str]]
    done = set()  # type: Set[int]
    for t in bts:
        try:
            b = blocked_on(port, t, snapshot=snap)
        except CrashExtError:
            continue
        if b.kind != "lock" or b.lock_address in done or not b.lock_type:
            continue
        done.add(b.lock_address)
        try:
            lay = L.probe_layout(port, b.lock_type)
            raw = port.read(b.lock_address, lay.size)
        except CrashExtError:
            continue
        st = LS.decode_state(lay, raw, read_u64=port.read_u64)
        if st.owner_task:
            owned.setdefault(st.owner_task, []).append(
                "%s %x" % (b.lock_type, b.lock_address))
    return owned


def _path_funcs(bt, lock_idx: Optional[int]) -> List[str]:
    out = []
    for f in bt.frames:
        if lock_idx is not None and f.index <= lock_idx:
            continue
        if _GENERIC.match(f.function):
            continue
        out.append(f.function)
    return out


def _code_holds(port: Port, bt, bidx: int, addr: int, kind: str):
    """The HeldLocks of :mod:`.holds` by which the task of ``bt`` holds the lock at
    ``addr`` (frames above ``bidx``).  Never raises for crash errors."""
    an = analyser_for(port)
    try:
        th = an.task_holds(bt, above=bidx if bidx >= 0 else None, reader=port)
    except CrashExtError:
        return []
    return [h for h in th.held if h.address == addr or (
        h.source == "lockdep" and lockdep_matches(h, addr, kind, an.dep_maps or {}))]


def rank_candidates(port: Port, snap: Snapshot, rep: LockReport,
                    container: Optional[int] = None) -> List[Candidate]:
    """Return up to :data:`MAX_CANDIDATES` possible holders of the lock ``rep`` describes,
    best first, each with its evidence.  Reads ``ps``, one ``foreach UN bt -f``,
    ``search -t`` for the lock (and container) address.  Never raises for crash
    errors in the optional steps; they only remove evidence."""
    cache = session_cache(snap)
    addr = rep.address
    waiters = {w.task.task for w in rep.waiters}
    try:
        bts = snap.backtraces("UN")
    except CrashExtError:
        bts = {}
    hits_lock = cache.search_stacks(addr)
    hits_cont = cache.search_stacks(container) if container and container != addr else {}
    pool = set(bts) | set(hits_lock) | set(hits_cont)
    hint = rep.owner_hint.task if rep.owner_hint else None
    if hint:
        pool.add(hint)
    for e in snap.tasks():
        if e.active and e.pid != 0:
            pool.add(e.task)
    pool -= waiters
    owned = _owned_locks(port, snap, bts)
    # the waiters' call path (specific functions above their lock frames)
    wfuncs = {}  # type: Dict[str, int]
    for t in list(waiters)[:16]:
        bt = bts.get(t)
        if bt is None:
            continue
        try:
            b = blocked_on(port, t, snapshot=snap)
        except CrashExtError:
            continue
        for fn in set(_path_funcs(bt, b.frame)[1:]):
            wfuncs[fn] = wfuncs.get(fn, 0) + 1
    scored = {}  # type: Dict[int, Candidate]
    touching = set()  # type: Set[int]
    for t in pool:
        e = snap.by_task(t)
        if e is None or e.pid == 0:
            continue
        ev = []  # type: List[str]
        score = 0.0
        bt = bts.get(t)
        if bt is None and (t in hits_lock or t in hits_cont or t == hint):
            try:
                bt = snap.backtrace(t)
            except CrashExtError:
                bt = None
        try:
            b = blocked_on(port, t, snapshot=snap)
        except CrashExtError:
            b = None
        bidx = b.frame if b is not None and b.frame is not None else -1
        if bt is not None and not e.active:
            for h in _code_holds(port, bt, bidx, addr, rep.type):
                score += CODE_SCORE
                ev.append(_CODE_WORDS[h.source == "lockdep"] + "; ".join(h.evidence))
                break
        live = set()  # type: Set[int]
        if bt is not None:
            for f in bt.frames:
                for a, v in f.words.items():
                    live.add(a)
                    for val, w_above, w_below, what in (
                            (addr, 50, 20, "the lock's address"),
                            (container, 30, 10, "the containing object's address")):
                        if not val or v != val:
                            continue
                        touching.add(t)
                        if f.index > bidx:
                            score += w_above
                            ev.append("stack frame #%d %s holds %s (%x, above where it "
                                      "blocks)" % (f.index, f.function, what, a))
                        else:
                            score += w_below
                            ev.append("stack frame #%d %s holds %s (%x)"
                                      % (f.index, f.function, what, a))
        for hits, w, what in ((hits_lock, 10, "the lock's address"),
                              (hits_cont, 5, "the containing object's address")):
            stale = [a for a in hits.get(t, []) if a not in live]
            if stale:
                touching.add(t)
                score += w
                ev.append("a stale stack word holds %s (%s)"
                          % (what, ", ".join("%x" % a for a in stale[:3])))
        if t == hint:
            score += 20
            ev.append("named by the lock's owner hint (%s)" % (rep.owner_hint_why or
                                                                 "hint"))
        mine = owned.get(t, [])
        if b is not None and b.kind in ("completion", "io", "other") and not mine:
            score += 8
            ev.append("blocked on a %s (%s), not on a lock, and owns no lock that records "
                      "an owner (weak)" % (b.kind, b.function))
        elif b is not None and b.kind == "lock" and not mine:
            score += 4
            ev.append("waits for another lock (%s %x) and owns none that records an owner "
                      "(weak)" % (b.lock_type, b.lock_address or 0))
        elif mine:
            ev.append("already the recorded owner of %s" % ", ".join(mine[:3]))
        if bt is not None and wfuncs:
            shared = [fn for fn in _path_funcs(bt, bidx) if fn in wfuncs]
            if shared:
                score += 3
                ev.append("runs through %s, as the waiters do (weak)" % shared[0])
        if e.active:
            score += 2
            ev.append("running on CPU %s" % e.cpu)
        if score <= 0:
            continue
        scored[t] = Candidate(task=cache.ref(t), score=score, evidence=ev)
    others = [t for t in touching if t in scored]
    if len(others) == 1:
        c = scored[others[0]]
        c.score += 25
        code = c.evidence[:1] and c.evidence[0].startswith(_CODE_WORDS)
        c.evidence.insert(1 if code else 0, "the only task besides the waiters whose stack "
                                            "refers to the lock")
    ranked = sorted(scored.values(), key=lambda c: (-c.score, c.task.pid or 0))
    if ranked:
        top = ranked[0].score
        tied = [c for c in ranked if c.score == top]
        if len(tied) > 1:
            for c in tied:
                c.evidence.append("tied at the top with %d other candidate(s): the dump "
                                  "does not tell them apart" % (len(tied) - 1))
    rep.state["candidates_considered"] = len(scored)
    if rep.readers:
        rep.state["candidates_note"] = ("the count says %d reader(s) hold it: expect that "
                                        "many holders" % rep.readers)
    return ranked[:MAX_CANDIDATES]
