"""Waits that are not locks, resolved to the task that must act: :func:`completion_wait`.

A task blocked in ``wait_for_completion`` (``__wait_for_common``...) sleeps on a
``struct completion``.  Which one is confirmed the way a lock's waiter is: the task's
own wait record on its stack (``struct swait_queue``, or ``wait_queue_entry`` where a
completion holds a ``wait_queue_head``; probed from the types), ``task`` = the task, is
linked into a list whose only node that is no task's record is the completion's list
head.  Then the structure the completion is embedded in says who must act:

* ``struct wq_barrier`` (``flush_work``, ``__flush_work``, ``cancel_work_sync``,
  ``__cancel_work_timer``...): its ``work.func`` is ``wq_barrier_func`` and its ``task``
  the waiter.  ``insert_wq_barrier`` queues the barrier right behind the work flushed:
  at the head of ``worker.scheduled`` of the kworker running it (that worker's
  ``current_work``/``current_func`` name the item; the kworker's ``kthread.data`` is
  checked to be that worker), or behind the pending item on its pool's list ("not
  running yet, queued on pool N");
* ``struct wq_flusher.done`` (``flush_workqueue``, ``__flush_workqueue``,
  ``drain_workqueue``): the workqueue (of the ``workqueues`` list) whose
  ``first_flusher`` it is or whose ``flusher_queue``/``flusher_overflow`` holds it, and
  the kworkers running its items now (``worker.current_pwq->wq``; kworkers are the tasks
  whose ``kthread.data`` is a ``struct worker`` naming them back);
* ``struct kthread.exited`` (``kthread_stop``) or ``.parked`` (``kthread_park``): the
  kthread whose ``struct kthread`` it is (``task_struct.worker_private``, or
  ``set_child_tid`` on older kernels), among the tasks its stack names;
* otherwise the completion alone: its address and where it lives (a task's stack, a
  slab object, a symbol).

Every fact carries how it was read.  Unreadable memory leaves the fact out (with a
line saying so), never raises past :func:`completion_wait`.
"""

import re
from ..compat import Dict, List, Optional, Tuple

from ..models import locks as L

from ..models import lockwalk as LW
from ..core.errors import CrashExtError
from ..core.port import Port
from ..session.facts import session_cache
from .slabs import slab_info
from ..core.results import TaskRef, Wait

__all__ = ["completion_wait", "where_is", "COMPLETION_WAIT"]

#: the frame functions of a completion wait (blockedon's 'completion' kind)
COMPLETION_WAIT = re.compile(r"^(wait_for_completion\w*|__wait_for_common|"
                             r"wait_for_common\w*|do_wait_for_common)$")


class _Rec:
    """Where a sleeper's own record keeps its task and its list node."""
    __slots__ = ("type_name", "task_off", "node_off")

    def __init__(self, type_name: str, task_off: int, node_off: int):
        self.type_name, self.task_off, self.node_off = type_name, task_off, node_off


def _memo(snap) -> Dict:
    return session_cache(snap).completion_waits


def _completion_layout(port: Port) -> Optional[Tuple[int, _Rec]]:
    """Return (offset of the wait list head in struct completion, the sleeper's record
    layout), or None when the types do not say."""
    off = port.member_offset("completion", "wait")
    wtype = port.member_type("completion", "wait") or ""
    if off is None:
        return None
    if "swait" in wtype:
        h = port.member_offset("swait_queue_head", "task_list")
        t = port.member_offset("swait_queue", "task")
        n = port.member_offset("swait_queue", "task_list")
        name = "swait_queue"
    else:
        h = port.member_offset("wait_queue_head", "head")
        t = port.member_offset("wait_queue_entry", "private")
        n = port.member_offset("wait_queue_entry", "entry")
        name = "wait_queue_entry"
    if None in (h, t, n):
        return None
    return off + h, _Rec(name, t, n)


def _words_near(bt, frame: int) -> Dict[int, int]:
    """Stack words printed under the frames up to ``frame + 1`` (the wait's record is a
    local of the wait frame or of its inlined caller)."""
    through = getattr(bt, "words_through", None)
    if through is not None:
        return through(frame + 1)
    words = {}  # type: Dict[int, int]
    for f in bt.frames:
        if f.index <= frame + 1:
            words.update(f.words)
    return words


def _all_words(bt) -> Dict[int, int]:
    return bt.words


def _whose(snap, task: int) -> str:
    """Return how evidence names the waiting task ``task`` (``PID 101 (lab_reset)``):
    its lines are also read under the task that must act, where "this task" or "its
    own" would name the wrong one."""
    ref = snap.ref(task)
    if ref.pid is None:
        return "task %x" % task
    return "PID %s (%s)" % (ref.pid, ref.comm or "?")


def find_completion(port: Port, snap, task: int, bt, frame: int
                    ) -> Tuple[Optional[int], str]:
    """Return (completion address, evidence) of the completion ``task`` sleeps on, or
    (None, why not).  See the module docstring for the rule."""
    lay = _completion_layout(port)
    if lay is None:
        return None, "this kernel's struct completion has no wait list crash-ext reads"
    head_off, rec = lay
    cache = session_cache(snap)
    memo = _memo(snap).setdefault("heads", {})  # type: Dict[int, Optional[int]]
    recs = list(LW.own_records(_words_near(bt, frame), task, rec)) or \
        list(LW.own_records(_all_words(bt), task, rec))
    if not recs:
        return None, "no %s record naming %s on its stack" % (rec.type_name,
                                                              _whose(snap, task))
    why = ""
    for addr, node, _, _ in recs:
        nodes, probs = cache.ring(port, node)
        if probs:
            why = "its %s record at %x: %s" % (rec.type_name, addr, probs[0])
            continue
        heads, others = [], 0
        for n in nodes:
            if n == node:
                continue
            if n not in memo:
                try:
                    t = port.read_u64(n - rec.node_off + rec.task_off)
                except CrashExtError:
                    t = None
                memo[n] = t if t is not None and snap.by_task(t) is not None else None
            if memo[n] is None:
                heads.append(n)
            else:
                others += 1
        if len(heads) != 1:
            why = ("the list through its %s record at %x has %d nodes that are no task's "
                   "record (need exactly 1: the completion's list head)" % (
                       rec.type_name, addr, len(heads)))
            continue
        comp = heads[0] - head_off
        who = _whose(snap, task)
        return comp, ("the waiter %s's own %s record at %x (on its stack, task = %s) is "
                      "linked into the wait list of the completion at %x (the list's only "
                      "node that is no task's record%s)" % (
                          who, rec.type_name, addr, who.split(" (")[0], comp,
                          "; %d other waiter%s" % (others, "" if others == 1 else "s")
                          if others else "; no other waiter"))
    return None, why or "no completion confirmed"


# ------------------------------------------------------------------- where

def _stack_size(port: Port, snap) -> int:
    m = _memo(snap)
    if "stacksize" not in m:
        size = 0
        try:
            mt = re.search(r"stacksize:\s*(\d+)", port.command("help -m"))
            size = int(mt.group(1)) if mt else 0
        except CrashExtError:
            size = 0
        m["stacksize"] = size or 0x4000
    return m["stacksize"]


def _stack_owner(port: Port, snap, addr: int, first: Optional[int] = None
                 ) -> Optional[TaskRef]:
    """Return the task whose kernel stack holds ``addr`` (``task_struct.stack`` and
    crash's stack size), trying ``first`` before reading every task's."""
    off = port.member_offset("task_struct", "stack")
    if off is None:
        return None
    size = _stack_size(port, snap)
    m = _memo(snap)
    bases = m.setdefault("stacks", {})  # type: Dict[int, Optional[int]]
    if first is not None and first not in bases:
        try:
            bases[first] = port.read_u64(first + off)
        except CrashExtError:
            bases[first] = None
    if first is not None and bases[first] is not None and \
            bases[first] <= addr < bases[first] + size:
        return snap.ref(first)
    if not m.get("all_stacks"):
        todo = [e.task for e in snap.tasks() if e.task not in bases]
        for t, raw in zip(todo, port.read_many([(t + off, 8) for t in todo])):
            bases[t] = int.from_bytes(raw, "little") if raw is not None else None
        m["all_stacks"] = True
    for t, b in bases.items():
        if b is not None and b <= addr < b + size:
            return snap.ref(t)
    return None


def where_is(port: Port, snap, addr: int, task: Optional[int] = None) -> str:
    """Return where ``addr`` lives, in words: ``slab cache NAME, object X+0xOFF``,
    ``symbol NAME``, ``on the stack of PID N (COMM)`` (``task``'s stack tried first), or
    that none of those holds it.  Cached per address."""
    memo = _memo(snap).setdefault("where", {})  # type: Dict[int, str]
    if addr in memo:
        return memo[addr]
    out = None
    owner = _stack_owner(port, snap, addr, task) if task is not None else None
    if owner is None:
        slabs = session_cache(snap).slabs
        slab = slabs[addr] if addr in slabs else slab_info(port, addr)
        if slab is not None:
            obj = slab.get("object")
            out = "slab cache %s" % slab["cache"]
            if obj is not None:
                out += ", object %x+%#x" % (obj, addr - obj)
            if slab.get("allocated") is False:
                out += " (FREE object)"
    if out is None and owner is None:
        try:
            sym = port.address_symbol(addr)
        except CrashExtError:
            sym = None
        if sym and not sym.startswith("+"):
            out = "symbol %s" % sym
    if out is None and owner is None:
        owner = _stack_owner(port, snap, addr)
    if owner is not None:
        out = "on the stack of PID %s (%s)" % (owner.pid, owner.comm or "?")
    if out is None:
        bases = _memo(snap).get("stacks", {})
        unread = sum(1 for b in bases.values() if b is None)
        out = ("not in a slab object or at a symbol, and on none of the task stacks read "
               "(%d could not be read)" % unread if unread else
               "not on a task's stack, in a slab object or at a symbol")
    memo[addr] = out
    return memo[addr]


# --------------------------------------------------------------- containers

def _u64(port: Port, addr: int) -> Optional[int]:
    try:
        return port.read_u64(addr)
    except CrashExtError:
        return None


def _sym(port: Port, addr: Optional[int]) -> Optional[str]:
    if not addr:
        return None
    try:
        s = port.address_symbol(addr)
    except CrashExtError:
        return None
    return s if s and not s.startswith("+") else None


def _text(port: Port, addr: int, n: int = 32) -> Optional[str]:
    try:
        raw = port.read(addr, n)
    except CrashExtError:
        return None
    s = raw.split(b"\0", 1)[0]
    return s.decode("ascii", "replace") if s and re.match(rb"^[\x20-\x7e]+$", s) else None


def _kthread_of(port: Port, task: int) -> Tuple[Optional[int], Optional[str]]:
    """Return (the task's struct kthread address, the field it was read from)."""
    for member in ("worker_private", "set_child_tid"):
        off = port.member_offset("task_struct", member)
        if off is not None:
            return _u64(port, task + off), "task_struct.%s" % member
    return None, None


def _pool_text(port: Port, pool: Optional[int]) -> str:
    if not pool or not L.is_kernel_pointer(pool):
        return "pool ?"
    off_id = port.member_offset("worker_pool", "id")
    off_cpu = port.member_offset("worker_pool", "cpu")
    try:
        pid = port.read_u32(pool + off_id) if off_id is not None else None
        cpu = port.read_u32(pool + off_cpu) if off_cpu is not None else None
    except CrashExtError:
        pid = cpu = None
    if cpu is not None and cpu >= 1 << 31:
        cpu -= 1 << 32
    return "pool %s (worker_pool %x, %s)" % (
        pid if pid is not None else "?", pool,
        "cpu %d" % cpu if cpu is not None and cpu >= 0 else "unbound")


def _wq_name(port: Port, pwq: Optional[int]) -> Optional[str]:
    off = port.member_offset("pool_workqueue", "wq")
    noff = port.member_offset("workqueue_struct", "name")
    if not pwq or off is None or noff is None or not L.is_kernel_pointer(pwq):
        return None
    wq = _u64(port, pwq + off)
    return _text(port, wq + noff, 24) if wq and L.is_kernel_pointer(wq) else None


def _as_barrier(port: Port, snap, comp: int, task: int) -> Optional[Wait]:
    """Return the flush wait when ``comp`` is ``done`` of a ``struct wq_barrier`` the
    task queued (``work.func`` = ``wq_barrier_func``, ``task`` = the task), else None."""
    off_done = port.member_offset("wq_barrier", "done")
    off_task = port.member_offset("wq_barrier", "task")
    off_func = port.member_offset("work_struct", "func")
    off_entry = port.member_offset("work_struct", "entry")
    fn = port.symbol_address("wq_barrier_func")
    if None in (off_done, off_task, off_func, off_entry, fn):
        return None
    barr = comp - off_done
    if _u64(port, barr + off_func) != fn or _u64(port, barr + off_task) != task:
        return None
    w = Wait(kind="work", completion=comp, container="wq_barrier %x" % barr)
    w.evidence.append("the completion is done of the struct wq_barrier at %x (work.func "
                      "= wq_barrier_func, task = the waiter %s): a flush of a work item"
                      % (barr, _whose(snap, task)))
    prev = _u64(port, barr + off_entry + 8)
    if prev is None or not L.is_kernel_pointer(prev):
        w.evidence.append("the barrier's work.entry.prev cannot be read: the work item "
                          "flushed is unknown")
        return w
    running = _worker_running(port, snap, prev)
    if running is not None:
        wk, wtask, cur, func, pool, pwq, ev = running
        ref = snap.ref(wtask)
        name = _sym(port, func) or ("%x" % func if func else "?")
        wq = _wq_name(port, pwq)
        w.object, w.must_act = cur, [ref]
        w.what = "work item %s%s" % (name, " of workqueue %s" % wq if wq else "")
        w.evidence.append(
            "the barrier is queued first on worker.scheduled of the struct worker at %x, "
            "whose task is PID %s (%s)%s: it runs the work item flushed, current_work = "
            "%x, current_func = %s, in %s" % (wk, ref.pid, ref.comm, ev, cur or 0, name,
                                             _pool_text(port, pool)))
        return w
    target = prev - off_entry
    func = _u64(port, target + off_func)
    name = _sym(port, func)
    if name is None:
        w.evidence.append("the barrier's work.entry.prev %x is neither a worker's "
                          "scheduled list nor a work item with a function" % prev)
        return w
    data = _u64(port, target) or 0
    pool_txt, wq = "pool ?", None
    size = port.type_size("pool_workqueue") or 0
    align = size & -size if size else 0
    if data & 4 and align >= 16:          # WORK_STRUCT_PWQ: data is the pwq
        pwq = data & ~(align - 1)
        poff = port.member_offset("pool_workqueue", "pool")
        pool = _u64(port, pwq + poff) if poff is not None else None
        pool_txt, wq = _pool_text(port, pool), _wq_name(port, pwq)
    w.object = target
    w.what = "work item %s%s" % (name, " of workqueue %s" % wq if wq else "")
    w.pending = "not running yet, queued on %s" % pool_txt
    w.evidence.append("the barrier is queued right behind the work item at %x (func = %s), "
                      "which no worker runs yet: %s" % (target, name, w.pending))
    return w


def _worker_running(port: Port, snap, head: int):
    """Return (worker, its task, current_work, current_func, pool, current_pwq,
    evidence) when ``head`` is ``scheduled`` of a struct worker whose task is a task of
    the dump, else None."""
    o = {m: port.member_offset("worker", m) for m in
         ("scheduled", "task", "current_work", "current_func", "pool", "current_pwq")}
    if None in o.values():
        return None
    wk = head - o["scheduled"]
    try:
        raw = port.read(wk, max(o.values()) + 8)
    except CrashExtError:
        return None
    u = lambda k: int.from_bytes(raw[o[k]:o[k] + 8], "little")  # noqa: E731
    wtask = u("task")
    if snap.by_task(wtask) is None or not L.is_kernel_pointer(u("current_work")):
        return None
    ev = ""
    kt, field_name = _kthread_of(port, wtask)
    doff = port.member_offset("kthread", "data")
    if kt and doff is not None and _u64(port, kt + doff) == wk:
        ev = " (the kworker's kthread.data, through %s, is this worker)" % field_name
    return wk, wtask, u("current_work"), u("current_func"), u("pool"), \
        u("current_pwq"), ev


def _workers(port: Port, snap) -> List[Tuple[int, int]]:
    """Return [(task, struct worker)] of the dump's kworkers: tasks named ``kworker/...``
    whose ``kthread.data`` is a ``struct worker`` whose ``task`` is that task.  Cached."""
    m = _memo(snap)
    if "workers" in m:
        return m["workers"]
    out = []  # type: List[Tuple[int, int]]
    doff = port.member_offset("kthread", "data")
    toff = port.member_offset("worker", "task")
    tasks = [e.task for e in snap.tasks() if (e.comm or "").startswith("kworker/")]
    if doff is not None and toff is not None and tasks:
        kts = [_kthread_of(port, t)[0] for t in tasks]
        pairs = [(t, k) for t, k in zip(tasks, kts) if k and L.is_kernel_pointer(k)]
        datas = port.read_many([(k + doff, 8) for _, k in pairs])
        cands = [(t, int.from_bytes(raw, "little")) for (t, _), raw in zip(pairs, datas)
                 if raw is not None]
        backs = port.read_many([(w + toff, 8) for _, w in cands])
        out = [(t, w) for (t, w), raw in zip(cands, backs)
               if raw is not None and int.from_bytes(raw, "little") == t]
    m["workers"] = out
    return out


def _as_flusher(port: Port, snap, comp: int, task: int) -> Optional[Wait]:
    """Return the workqueue flush wait when ``comp`` is ``done`` of a ``struct
    wq_flusher`` a workqueue of the ``workqueues`` list knows, else None."""
    off_done = port.member_offset("wq_flusher", "done")
    off_list = port.member_offset("wq_flusher", "list")
    o = {k: port.member_offset("workqueue_struct", k) for k in
         ("list", "first_flusher", "flusher_queue", "flusher_overflow", "name")}
    head = port.symbol_address("workqueues")
    if None in (off_done, off_list, head) or None in o.values():
        return None
    fl = comp - off_done
    # the flusher is first (wq.first_flusher) or queued: its list's ring holds the head
    nodes = set()
    cur = fl + off_list
    for _ in range(64):
        cur = _u64(port, cur)
        if cur is None or cur == fl + off_list or not L.is_kernel_pointer(cur):
            break
        nodes.add(cur)
    wqs, cur = [], _u64(port, head)
    while cur and cur != head and len(wqs) < 4096 and L.is_kernel_pointer(cur):
        wqs.append(cur - o["list"])
        cur = _u64(port, cur)
    got = port.read_many([(q + o["first_flusher"], 8) for q in wqs])
    wq, how = None, None
    for q, raw in zip(wqs, got):
        if raw is not None and int.from_bytes(raw, "little") == fl:
            wq, how = q, "first_flusher"
        elif q + o["flusher_queue"] in nodes or q + o["flusher_overflow"] in nodes:
            wq, how = q, ("flusher_queue" if q + o["flusher_queue"] in nodes
                          else "flusher_overflow")
        if wq is not None:
            break
    if wq is None:
        return None
    name = _text(port, wq + o["name"], 24) or "?"
    w = Wait(kind="workqueue", completion=comp, object=wq,
             container="wq_flusher %x" % fl, what="workqueue %s to drain" % name,
             object_where="workqueue_struct %s" % name)
    w.evidence.append("the completion is done of the struct wq_flusher at %x, which is "
                      "%s of workqueue %s (workqueue_struct %x, on the workqueues list): a "
                      "flush of the whole workqueue" % (fl, how, name, wq))
    po = port.member_offset("worker", "current_pwq")
    fo = port.member_offset("worker", "current_func")
    qo = port.member_offset("pool_workqueue", "wq")
    if None in (po, fo, qo):
        return w
    for t, wk in _workers(port, snap):
        pwq = _u64(port, wk + po)
        if not pwq or _u64(port, pwq + qo) != wq:
            continue
        ref = snap.ref(t)
        func = _sym(port, _u64(port, wk + fo)) or "?"
        w.must_act.append(ref)
        w.evidence.append("PID %s (%s) runs an item of it: its struct worker %x (its "
                          "kthread.data) has current_pwq->wq = this workqueue, "
                          "current_func = %s" % (ref.pid, ref.comm, wk, func))
    if not w.must_act:
        w.pending = "no kworker runs an item of it now (its pending items wait in its pools)"
    return w


def _as_kthread(port: Port, snap, comp: int, task: int, bt) -> Optional[Wait]:
    """Return the kthread wait when ``comp`` is ``exited`` (or ``parked``) of the
    ``struct kthread`` of a task the waiter's stack names, else None."""
    for member, verb in (("exited", "to exit"), ("parked", "to park")):
        off = port.member_offset("kthread", member)
        if off is None:
            continue
        kt = comp - off
        seen = set()
        for v in _all_words(bt).values():
            if v in seen or v == task or snap.by_task(v) is None:
                continue
            seen.add(v)
            got, field_name = _kthread_of(port, v)
            if got != kt:
                continue
            ref = snap.ref(v)
            w = Wait(kind="kthread", completion=comp, object=v, must_act=[ref],
                     container="kthread %x" % kt,
                     what="kthread PID %s (%s) %s" % (ref.pid, ref.comm, verb))
            w.evidence.append(
                "the completion is %s of the struct kthread at %x, PID %s (%s)'s (its %s, "
                "a task the stack of the waiter %s names): the waiter waits for that "
                "kthread %s" % (member, kt, ref.pid, ref.comm, field_name,
                                _whose(snap, task), verb))
            return w
    return None


def completion_wait(port: Port, snap, task: int, bt, frame: int) -> Wait:
    """Return what ``task``, blocked in the completion wait of frame ``frame`` of back
    trace ``bt``, waits for: the completion (address, where it lives), the structure
    it is embedded in when known here, and the task(s) that must act.  Never raises:
    what cannot be read is said in ``evidence``."""
    try:
        return _completion_wait(port, snap, task, bt, frame)
    except CrashExtError as e:
        return Wait(kind="completion", evidence=["cannot read the completion: %s" % e])
    except Exception as e:  # noqa: BLE001 - a garbage stack must not end the report
        return Wait(kind="completion", evidence=["the completion could not be analysed "
                                                 "(%s: %s)" % (type(e).__name__, e)])


def _completion_wait(port: Port, snap, task: int, bt, frame: int) -> Wait:
    comp, how = find_completion(port, snap, task, bt, frame)
    if comp is None:
        return Wait(kind="completion", evidence=["completion unknown: %s" % how])
    w = _as_barrier(port, snap, comp, task) or _as_kthread(port, snap, comp, task, bt) \
        or _as_flusher(port, snap, comp, task) or Wait(kind="completion", completion=comp)
    w.evidence.insert(0, how)
    w.where = where_is(port, snap, comp, task)
    if w.object is not None and w.kind == "work":
        w.object_where = where_is(port, snap, w.object, task)
    elif w.object is not None and w.kind == "kthread":
        w.object_where = "task_struct of PID %s" % (w.must_act[0].pid if w.must_act
                                                    else "?")
    return w
