"""What a task is blocked on: :func:`blocked_on`.

1. ``task_struct.blocker`` where the kernel has it (address | type).
2. The blocking frame: the innermost frame that is a lock slow path names the lock type
   and mode (``rwsem_down_write_slowpath`` -> rw_semaphore writer, ``__mutex_lock`` ->
   mutex, ``__down_common`` -> semaphore, ``rt_mutex_slowlock`` -> rt_mutex).  Where
   that slow path is an rt_mutex one called from a sleeping lock's entry (PREEMPT_RT:
   ``mutex_lock``, ``rwbase_write_lock``/``down_write``, ``rt_spin_lock``), the outer
   frame names the type (mutex, rw_semaphore, spinlock).  Other blocking frames give
   ``completion``, ``io`` or ``other``.
3. The lock address, accepted only when the task is confirmed on that lock's wait list:
   0. for a lock whose waiters are an rbtree of ``rt_mutex_waiter`` (rt_mutex and the
      PREEMPT_RT locks built on it): ``task_struct.pi_blocked_on``, the kernel's own
      record of the waiter, whose ``lock`` is the lock's ``rt_mutex_base``; a
      PREEMPT_RT rw_semaphore writer waiting for its readers is on no list: the lock
      its frames hold records it (:mod:`.rtdrain`);
   a. the task's own waiter record (``mutex_waiter``/``rwsem_waiter``/
      ``semaphore_waiter`` live on the sleeper's stack, ``task`` = the task): walk its
      ring and match a stack word that is the lock whose list head is in that ring;
   b. argument recovery (:mod:`.args`) of the lock frames, if asked for;
   c. a stack scan: pointer-looking words, nearest the slow-path frame first, each
      distinct word read as the lock type once; accepted only if its wait list, soundly
      linked from the word's own list head (every ``prev`` pointing back), holds the
      task's own waiter record from its stack -- a word next to a lock reads other
      fields as a list and fails (issue 17: "the real mutex + 8").
A lock whose wait list is corrupt before it reaches the task is named as corrupt in
the evidence ("wait list of mutex X is corrupt after N entries: ..."), and the task
stays 'unknown' rather than being filed under a neighbouring address.

A completion wait is explained by :func:`explain_wait` (:mod:`.waits`): the completion,
where it lives, and the task that must act (a kworker running the work item flushed,
the kthread stopped).
"""

import re
from ..compat import List, Optional, Tuple

from ..models import locks as L

from ..models import lockwalk as LW
from ..models.stack import Backtrace
from ..models.waitframes import classify_function, classify_stack
from ..core.errors import BadArgument, CrashExtError
from ..core.excluded import EXCLUDED, is_excluded
from ..core.port import Port
from ..code import sources as A
from ..session.facts import session_cache
from ..core.results import Blocked, TaskRef
from ..session.snapshot import Snapshot
from .completions import completion_wait
from .rtdrain import draining_writer

__all__ = ["blocked_on", "explain_wait", "rt_lock_waiters", "corrupt_text"]

def _task_ref(snap: Snapshot, task: int) -> TaskRef:
    return session_cache(snap).ref(task)


def _stack_range(bt: Backtrace) -> Tuple[int, int]:
    addrs = list(bt.words) + [f.sp for f in bt.frames]
    if not addrs:
        return 0, 0
    lo = min(addrs) & ~0x3fff
    return lo, lo + 0x8000



def blocked_on(port: Port, task_addr: int, snapshot: Optional[Snapshot] = None,
               use_args: bool = False) -> Blocked:
    """Return what task ``task_addr`` (a task_struct address) is blocked on.

    ``kind`` 'lock' with ``lock_address``/``lock_type``/``mode`` only when the task was
    confirmed on that lock's wait list (``evidence`` says how it was found); 'running'
    for a task on a CPU or runnable; 'completion'/'io'/'other' for other waits;
    'unknown' when the stack shows a lock slow path but no lock could be confirmed
    (``evidence`` says what was tried).  ``use_args``: also try argument recovery of
    the lock frames (slower: disassembles each function once).

    Raises BadArgument when no task lives at ``task_addr``; CrashExtError subclasses
    when crash fails.
    """
    snap = snapshot or Snapshot(port)
    cache = session_cache(snap)
    if task_addr in cache.blocked and not use_args:
        return cache.blocked[task_addr]  # type: ignore
    ps = snap.by_task(task_addr)
    if ps is None:
        raise BadArgument("no task at %#x" % task_addr)
    ref = _task_ref(snap, task_addr)
    res = _blocked_on(port, snap, ref, ps, use_args)
    cache.blocked[task_addr] = res
    return res


def _blocked_on(port, snap, ref, ps, use_args) -> Blocked:
    task = ref.task
    if ps.state in ("RU",):
        return Blocked(task=ref, kind="running",
                       evidence=["ps state RU%s" % (" (active on CPU %s)" % ps.cpu
                                                    if ps.active else "")])
    b = _from_blocker_field(port, snap, ref)
    if b is not None:
        return b
    try:
        bt = snap.backtrace(task)
    except CrashExtError as e:
        return Blocked(task=ref, kind="unknown", evidence=["bt -f failed: %s" % e])
    lock_frame, kind, mode, other = classify_stack(bt.frames)
    if other is not None and other[0] != "other":
        f = other[1]
        return explain_wait(port, snap, Blocked(
            task=ref, kind=other[0], function=f.function, frame=f.index,
            evidence=["blocking frame #%d %s" % (f.index, f.function)]), bt)
    if lock_frame is None:
        if not bt.frames:
            return Blocked(task=ref, kind="unknown", evidence=["no back trace frames"])
        f = other[1] if other else bt.frames[0]
        return Blocked(task=ref, kind="other", function=f.function, frame=f.index,
                       evidence=["first non-scheduler frame #%d %s is not a lock or "
                                 "completion wait" % (f.index, f.function)])
    lock_idx, func = lock_frame.index, lock_frame.function
    entry = None
    if kind == "rt_mutex":
        entry = _rt_entry_kind(port, snap, bt, lock_idx)
        if entry is not None:
            kind, mode = entry[0], entry[1] or mode
    res = Blocked(task=ref, kind="unknown", lock_type=kind, mode=mode, function=func,
                  frame=lock_idx,
                  evidence=["blocking frame #%d %s: a %s%s slow path" % (
                      lock_idx, func, kind, " (%s)" % mode if mode else "")])
    if entry is not None:
        res.evidence[0] = ("blocking frame #%d %s: an rt_mutex slow path entered from %s "
                           "(the call in frame #%d's caller), a %s%s" % (
                               lock_idx, func, entry[2], entry[3], kind,
                               " (%s)" % mode if mode else ""))
    try:
        layout = L.probe_layout(port, kind)
    except CrashExtError as e:
        res.evidence.append("cannot decode %s on this kernel: %s" % (kind, e))
        return res
    found = _via_pi_blocked_on(port, snap, task, layout)
    if found is None and mode == "writer":
        found = draining_writer(port, bt, task, layout, lock_idx)
    if found is None:
        found = _via_own_waiter(port, snap, bt, task, layout, lock_idx)
    if found is None and use_args:
        found = _via_args(port, snap, bt, task, layout, lock_idx)
    if found is None:
        found = _via_scan(port, snap, bt, task, layout, lock_idx)
    if found is None:
        damaged = session_cache(snap).damaged_for.get(task)
        excluded = session_cache(snap).excluded_for.get(task)
        if damaged:
            res.evidence.append("no lock confirmed: %s, and this task's own waiter record "
                                "is not reached before the damage" % damaged)
        else:
            res.evidence.append("no lock confirmed: no stack word is a %s whose wait list "
                                "holds this task" % kind)
        if excluded:
            res.evidence.append("the lock may be on a page left out: stack word%s %s %s "
                                "%s" % ("s" if len(excluded) > 1 else "",
                                        ", ".join("%x" % v for v in excluded[:4]),
                                        "are" if len(excluded) > 1 else "is", EXCLUDED))
        return res
    lock, wmode, how = found
    res.kind = "lock"
    res.lock_address = lock
    if wmode:
        res.mode = wmode
    res.evidence.append(how)
    return res


def explain_wait(port: Port, snap: Snapshot, res: Blocked, bt: Backtrace) -> Blocked:
    """Return ``res`` with ``wait`` filled for a completion wait: which completion the
    task sleeps on, where it lives, and who must act (:mod:`.waits`); other kinds are
    returned as they are.  Never raises."""
    if res.kind == "completion" and res.frame is not None:
        res.wait = completion_wait(port, snap, res.task.task, bt, res.frame)
    return res


def _from_blocker_field(port, snap, ref) -> Optional[Blocked]:
    """``task_struct.blocker`` (newest kernels): address | type in the low 2 bits."""
    try:
        off = port.member_offset("task_struct", "blocker")
    except CrashExtError:
        off = None
    if off is None:
        return None
    try:
        v = port.read_u64(ref.task + off)
    except CrashExtError:
        return None
    if not v:
        return None
    kinds = {0: ("mutex", None), 1: ("semaphore", None), 2: ("rw_semaphore", "reader"),
             3: ("rw_semaphore", "writer")}
    kind, mode = kinds[v & 3]
    lock = v & ~3
    try:
        layout = L.probe_layout(port, kind)
        w = session_cache(snap).walk(port, layout, lock)
    except CrashExtError:
        return None
    if any(e.task == ref.task for e in w.entries):
        return Blocked(task=ref, kind="lock", lock_address=lock, lock_type=kind, mode=mode,
                       evidence=["task_struct.blocker = %#x (%s), task confirmed on its "
                                 "wait list" % (v, kind)])
    return None


_CALL_RE = re.compile(r"\scall[q]?\s+0x[0-9a-f]+\s+<([A-Za-z0-9_.]+)(\+\d+)?>\s*$")


def _rt_entry_kind(port, snap, bt, lock_idx):
    """(kind, mode, entry function, frame index) of the sleeping-lock entry a task called
    into an rt_mutex slow path from, or None.

    On PREEMPT_RT, ``mutex_lock`` (and others) tail-jump into ``rt_mutex_slowlock``, so
    no frame of theirs is left and a ``struct mutex`` is laid out as an ``rt_mutex``: the
    caller's own call instruction, the one before its return address (``dis -r``),
    names the entry.  Only entries of another lock kind count (mutex, rw_semaphore,
    spinlock); cached per return address."""
    frames = [f for f in bt.frames if f.index > lock_idx]
    caller = None
    for f in frames:
        if classify_function(f.function)[0] is None:
            caller = f
            break
    if caller is None or caller.ret_addr is None:
        return None
    cache = session_cache(snap)
    memo = cache.__dict__.setdefault("_rt_entries", {})
    if caller.ret_addr not in memo:
        name = None
        try:
            lines = [ln for ln in port.command("dis -r %x" % caller.ret_addr).splitlines()
                     if ln.strip()]
        except CrashExtError:
            lines = []
        if len(lines) >= 2:
            m = _CALL_RE.search(lines[-2])
            name = m.group(1) if m else None
        memo[caller.ret_addr] = name
    name = memo[caller.ret_addr]
    if name is None:
        return None
    k, m, _ = classify_function(name)
    if k is None or k == "rt_mutex":
        return None
    return k, m, name, caller.index


def _via_pi_blocked_on(port, snap, task, layout):
    """(lock, None, evidence) from ``task_struct.pi_blocked_on`` for a lock whose waiters
    are an rbtree of ``rt_mutex_waiter`` (rt_mutex, PREEMPT_RT mutex/rw_semaphore/
    spinlock_t): the waiter record the kernel linked for the task, its ``lock`` the
    lock's ``rt_mutex_base``; accepted only when the record names the task and the lock's
    rbtree, walked, holds that record.  None when any of that is missing."""
    base_off = L.rt_base_offset(layout)
    w = layout.waiter
    if base_off is None or w is None:
        return None
    try:
        off = port.member_offset("task_struct", "pi_blocked_on")
        lock_off = port.member_offset(w.type_name, "lock")
    except CrashExtError:
        return None
    if off is None or lock_off is None:
        return None
    try:
        rec = port.read_u64(task + off)
        if not L.is_kernel_pointer(rec):
            return None
        raw = port.read(rec, max(w.size, lock_off + 8, w.task_off + 8))
    except CrashExtError:
        return None
    if int.from_bytes(raw[w.task_off:w.task_off + 8], "little") != task:
        return None
    base = int.from_bytes(raw[lock_off:lock_off + 8], "little")
    lock = base - base_off
    if not L.is_kernel_pointer(base):
        return None
    try:
        wk = session_cache(snap).walk(port, layout, lock)
    except CrashExtError:
        return None
    if not any(e.task == task and e.waiter == rec for e in wk.entries):
        return None
    return lock, None, (
        "task_struct.pi_blocked_on = %x: its %s (task = this task) has lock = %x, the "
        "rt_mutex_base of the %s at %x, and is in that lock's waiter rbtree"
        % (rec, w.type_name, base, layout.kind, lock))


#: ps states crash names; a task in another (crash prints ``??``) may be a PREEMPT_RT
#: TASK_RTLOCK_WAIT sleeper
_NAMED_STATES = {"RU", "IN", "UN", "ID", "ZO", "ST", "TR", "DE", "SW", "WA", "PA", "NE"}


def rt_lock_waiters(port: Port, snap: Snapshot) -> List[object]:
    """Return the ps entries of tasks blocked on a PREEMPT_RT sleeping spinlock_t/rwlock_t.

    Those sleep in TASK_RTLOCK_WAIT, a state crash 8.0.6 and 9.0.2 print as ``??``, so
    ``foreach UN`` misses them.  A task counts when crash names no state for it and the
    kernel records it as an rt_mutex waiter (``task_struct.pi_blocked_on`` is a kernel
    pointer).  On a kernel whose spinlock_t is not built on ``struct rt_mutex_base`` (no
    PREEMPT_RT) this returns [] without reading ``ps``.  Cached per snapshot; never
    raises for unreadable tasks (they are left out).
    """
    cache = session_cache(snap)
    cached = cache.rt_lock_waiters
    if cached is not None:
        return cached
    out = []  # type: List[object]
    try:
        rt = L.rt_base_offset(L.probe_layout(port, "spinlock")) is not None
        off = port.member_offset("task_struct", "pi_blocked_on") if rt else None
    except CrashExtError:
        off = None
    if off is not None:
        for e in snap.tasks():
            if e.state in _NAMED_STATES:
                continue
            try:
                v = port.read_u64(e.task + off)
            except CrashExtError:
                continue
            if L.is_kernel_pointer(v):
                out.append(e)
    cache.rt_lock_waiters = out
    return out


def _lock_frame_values(bt: Backtrace, lock_idx: int, span: int = 3):
    """Yield the distinct stack word values, frames up to ``lock_idx + span`` (nearest
    the slow path) first, then the rest innermost first; the far frames are read only
    when the near ones are used up."""
    seen = set()
    for near in (True, False):
        for f in bt.frames:
            if (f.index <= lock_idx + span) != near:
                continue
            words = f.words
            for a in sorted(words):
                v = words[a]
                if v not in seen:
                    seen.add(v)
                    yield v


def _via_own_waiter(port, snap, bt, task, layout, lock_idx):
    w = layout.waiter
    if w is None or layout.wait_kind not in ("list", "headless"):
        return None
    cache = session_cache(snap)
    # the waiter record is a local of the slow path: in the words printed up to (and
    # under) the lock frame
    words = {}
    for f in bt.frames:
        if f.index <= lock_idx + 1:
            words.update(f.words)
    recs = list(LW.own_records(words, task, w))
    if not recs:
        words = bt.words
        recs = list(LW.own_records(words, task, w))
    for rec, node, nxt, prv in recs:
        mode = None
        if w.mode_off is not None:
            raw = b"".join((words.get(rec + i, 0)).to_bytes(8, "little")
                           for i in range(0, max(w.size, 8), 8))
            mode = LW.mode_of(w, raw)
        if layout.wait_kind == "list":
            # first or last in the queue: a neighbour of the record is the list head of
            # a lock the frames name; its wait list, walked, must hold the task
            near = set(words.values())
            for head in (prv, nxt):
                v = head - layout.wait_off
                if head == node or v not in near or not L.is_kernel_pointer(v):
                    continue
                try:
                    wk = cache.walk(port, layout, v)
                except CrashExtError:
                    continue
                i = _soundly_listed(wk, task, rec)
                if i is not None:
                    return v, mode, (
                        "the task's own %s record at %x (on its stack, task = this task) "
                        "is on the wait list of the %s at %x, an address in its lock "
                        "frames (walked from the lock)%s" % (
                            w.type_name, rec, layout.kind, v, _damage_note(wk, layout, v)))
                if wk.damaged is not None:
                    # the task's own record links to this lock's list head, which the
                    # lock frames name: the lock is real, its list broken
                    _note_damaged(snap, task, layout, v, wk)
        nodes, probs = cache.ring(port, node)
        if probs:
            continue
        ring = set(nodes)
        for v in _lock_frame_values(bt, lock_idx):
            if not L.is_kernel_pointer(v) or v in ring:
                continue
            if layout.wait_kind == "list":
                ok = (v + layout.wait_off) in ring and (v + layout.wait_off) != node
            else:
                try:
                    first = port.read_u64(v + layout.wait_off)
                    ok = (first + (w.node_off if layout.first_is_record else 0)) in ring
                except CrashExtError:
                    ok = False
            if ok:
                how = ("the task's own %s record at %x (on its stack, task = this task) is "
                       "on the wait list of the %s at %x, an address found on its stack"
                       % (w.type_name, rec, layout.kind, v))
                return v, mode, how
    return None


def _via_args(port, snap, bt, task, layout, lock_idx):
    try:
        ta = A.recover_with_port(port, bt)
    except CrashExtError:
        return None
    except Exception:   # noqa: BLE001 - a failure there must not stop the report
        return None
    cache = session_cache(snap)
    for fa in ta.frames:
        k, _, _ = classify_function(fa.function)
        if k != layout.kind or not fa.args:
            continue
        a0 = fa.args[0]
        if a0.status != "recovered" or a0.value is None:
            continue
        wk = cache.walk(port, layout, a0.value)
        for e in wk.entries:
            if e.task == task:
                return a0.value, e.mode, (
                    "argument recovery: %s(%s=%x) [%s]; task confirmed on its wait list"
                    % (fa.function, a0.name, a0.value, " <- ".join(a0.provenance[:3])))
    return None


def _soundly_listed(wk, task: int, rec: Optional[int] = None,
                    stack: Optional[Tuple[int, int]] = None) -> Optional[int]:
    """Return the index of ``task``'s entry in walk ``wk`` when it lies in the soundly
    linked part of the list (every ``prev`` before it points back, the first at the
    head) and its record is ``rec`` (or lies in ``stack``, (lo, hi)); else None."""
    for i, e in enumerate(wk.entries[:wk.sound]):
        if e.task != task:
            continue
        if rec is not None and e.waiter != rec:
            continue
        if stack is not None and not stack[0] <= e.waiter < stack[1]:
            continue
        return i
    return None


def _damage_note(wk, layout, v) -> str:
    """Return '' for an intact wait list, else '; ' + what is wrong with it."""
    if wk.damaged is None:
        return ""
    return "; but %s" % corrupt_text(layout.kind, v, wk)


def corrupt_text(kind: str, lock: int, wk) -> str:
    """Return 'wait list of KIND X is corrupt after N entries: PROBLEM' for walk ``wk``
    of the lock at ``lock`` (which has ``damaged`` set); on a live system, where it was
    read ``wk.moving`` times and changed each time, 'wait list of KIND X changed while
    it was read (live system, N reads; the last broke after M entries: PROBLEM)'."""
    if wk.moving:
        return ("wait list of %s %x changed while it was read (live system, %d reads; "
                "the last broke after %d entr%s: %s)" % (
                    kind, lock, wk.moving, wk.sound, "y" if wk.sound == 1 else "ies",
                    wk.damaged))
    return "wait list of %s %x is corrupt after %d entr%s: %s" % (
        kind, lock, wk.sound, "y" if wk.sound == 1 else "ies", wk.damaged)


def _note_damaged(snap, task: int, layout, v: int, wk) -> None:
    """Remember, for ``task``, a lock of its lock frames whose wait list is corrupt
    before it reaches the task (the first one seen is kept)."""
    cache = session_cache(snap)
    cache.damaged_for.setdefault(task, corrupt_text(layout.kind, v, wk))


def _via_scan(port, snap, bt, task, layout, lock_idx, limit: int = 64):
    """A stack word ``v`` is taken for the lock only when it reads as a lock of this
    layout whose wait list, walked from ``v`` and soundly linked up to the task (each
    ``prev`` pointing back, the first at ``v``'s own list head), holds the task
    through a waiter record inside the task's own stack.  A word near a lock (the lock
    plus 8, its spinlock...) reads other fields as the list and fails that test;
    a real lock whose list is corrupt before the task is noted as corrupt, not
    replaced by a neighbouring address."""
    cache = session_cache(snap)
    lo, hi = _stack_range(bt)
    tried = 0
    for v in _lock_frame_values(bt, lock_idx):
        if not L.is_kernel_pointer(v) or v % 8 or lo <= v < hi or v == task:
            continue
        tried += 1
        if tried > limit:
            break
        try:
            wk = cache.walk(port, layout, v, cap=4096)
        except CrashExtError as e:
            _note_excluded(cache, task, v, [str(e)])
            continue
        if not wk.entries:
            _note_excluded(cache, task, v, wk.problems)
        i = _soundly_listed(wk, task, stack=(lo, hi))
        if i is not None:
            e = wk.entries[i]
            return v, e.mode, ("stack scan: word %x read as a %s has this task's own "
                               "waiter record %x (in its stack) as entry %d of its soundly "
                               "linked wait list%s" % (v, layout.kind, e.waiter, i + 1,
                                                       _damage_note(wk, layout, v)))
        if wk.damaged is not None and _plausible_lock(wk, snap):
            _note_damaged(snap, task, layout, v, wk)
    return None


def _note_excluded(cache, task: int, word: int, problems) -> None:
    """Note stack ``word`` for ``task`` when ``problems`` (crash's errors reading it as
    a lock) say its page was left out of the dump."""
    words = cache.excluded_for.setdefault(task, [])
    if word not in words and any(is_excluded(p) for p in problems):
        words.append(word)


def _plausible_lock(wk, snap) -> bool:
    """True when the soundly linked entries of ``wk`` all name tasks crash lists: a
    real lock's corrupt list, worth naming (a word that is no lock rarely gets so far)."""
    ents = wk.entries[:wk.sound]
    return bool(ents) and all(snap.by_task(e.task) is not None for e in ents)
