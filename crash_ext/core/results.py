"""The result records analyses hand to verbs (and to each other).

Every fact carries how it was found: ``evidence`` strings are shown to the user, so an
inferred owner or a recovered value is never printed as if the kernel had recorded it.
"""

from .record import dataclass, field
from ..compat import Dict, List, Optional, Tuple


@dataclass
class TaskRef:
    """A task as the user sees it: pid, comm, task_struct address, ps state, cpu."""
    task: int
    pid: Optional[int] = None
    comm: Optional[str] = None
    state: Optional[str] = None
    cpu: Optional[int] = None
    last_ran: Optional[str] = None     # e.g. "[0 00:02:13.456]" from `ps -m`, when known


@dataclass
class Waiter:
    """A task on a lock's wait list, in queue order; ``mode`` 'reader'/'writer'/None."""
    task: TaskRef
    mode: Optional[str] = None


@dataclass
class Candidate:
    """A possible holder of a lock that records no owner; higher ``score`` ranks first."""
    task: TaskRef
    score: float
    evidence: List[str] = field(default_factory=list)


@dataclass
class LockReport:
    """What a lock is, its state, who holds it and who waits.

    ``type``: 'mutex', 'rw_semaphore', 'semaphore', 'rt_mutex', 'spinlock' or 'unknown'.
    ``owner`` is set only when the lock itself records it (``owner_source`` says which
    field); ``owner_hint`` is a recorded-but-unreliable owner (a reader-owned rwsem's last
    reader, a semaphore's ``last_holder``); ``candidates`` are inferred holders, ranked.
    ``readers``: reader count where the layout says it.  ``problems``: what could not be
    read or made sense of (bad pointers, loops, truncated walks) — reported, not raised.
    """
    address: int
    type: str
    where: Optional[str] = None
    layout: Optional[str] = None
    state: Dict[str, object] = field(default_factory=dict)
    flags: List[str] = field(default_factory=list)
    locked: Optional[bool] = None
    readers: Optional[int] = None
    owner: Optional[TaskRef] = None
    owner_source: Optional[str] = None
    owner_hint: Optional[TaskRef] = None
    owner_hint_why: Optional[str] = None
    candidates: List[Candidate] = field(default_factory=list)
    waiters: List[Waiter] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)


@dataclass
class Wait:
    """What a task waits for that is not a lock, and who must act for the wait to end.

    ``kind``: 'work' (a work item flushed: ``flush_work``, ``cancel_work_sync``),
    'workqueue' (a workqueue flushed or drained), 'kthread' (a kthread stopped:
    ``kthread_stop``), or 'completion' (a completion in no structure known here).  ``completion``: the ``struct completion`` the task sleeps on
    (None when it could not be confirmed); ``where``: where it lives (a task's stack, a
    slab object, a symbol); ``container``: the structure it is embedded in, in words;
    ``object``: the work_struct / workqueue_struct / task_struct waited on (``object_where``: where it
    lives); ``what``: the wait in words
    ("work item X (lab_dev_work_fn)"); ``must_act``: the tasks whose progress ends the
    wait (the kworker running the work item, the kthread to exit), each recorded by the
    kernel (``evidence`` says which field); ``pending``: when no task runs the work yet,
    where it is queued.  ``evidence``: how each fact was read."""
    kind: str
    completion: Optional[int] = None
    where: Optional[str] = None
    container: Optional[str] = None
    object: Optional[int] = None
    object_where: Optional[str] = None
    what: Optional[str] = None
    must_act: List[TaskRef] = field(default_factory=list)
    pending: Optional[str] = None
    evidence: List[str] = field(default_factory=list)


@dataclass
class Blocked:
    """What a task waits for: a lock (``lock`` set) or something else (``kind`` says).

    ``kind``: 'lock', 'completion', 'io', 'other', 'running', 'unknown'.  ``function`` and
    ``frame`` name the blocking frame; ``evidence`` says how the lock address was found
    (argument recovery, stack scan) and that the task was confirmed on its wait list.
    ``wait``: for a 'completion' wait, which completion and who must act (:class:`Wait`),
    when that could be read.
    """
    task: TaskRef
    kind: str
    lock_address: Optional[int] = None
    lock_type: Optional[str] = None
    mode: Optional[str] = None
    function: Optional[str] = None
    frame: Optional[int] = None
    evidence: List[str] = field(default_factory=list)
    wait: Optional[Wait] = None


# ------------------------------------------------------- argument recovery

@dataclass
class Arg:
    """One argument of a frame's function.

    ``name``/``type`` from the prototype (``arg0``.. and None without one; a ``?``
    suffix on clones); ``register``: the SysV register it arrives in (None if not in
    one); ``value``: recovered value or None; ``status``: 'recovered', 'unknown' or
    'conflict'; ``provenance``: how the value was found, step by step; ``reason``: why
    it is unknown, or what the conflict is; ``alternatives``: for conflicts, the other
    values found, each with its chain; ``weak``: the chain rests on a stack slot that a
    callee could have changed; ``wording``: when the Arg was answered from a
    :class:`Template`, ``provenance``'s steps with the task's numbers left out (one
    tuple object for every task that template answers: what is made from the chain's
    words alone can be made once), else None.
    """
    name: str
    type: Optional[str]
    register: Optional[str]
    value: Optional[int] = None
    provenance: List[str] = field(default_factory=list)
    status: str = "unknown"
    reason: Optional[str] = None
    alternatives: List[Tuple[int, List[str]]] = field(default_factory=list)
    weak: bool = False
    wording: Optional[Tuple[str, ...]] = None


@dataclass
class FrameArgs:
    """The recovered arguments of one frame's function.

    ``index``: crash's ``#N``; ``prototype``: the ``whatis`` text used (of the original
    function for a GCC clone); ``clone``: the clone suffix (``.constprop.0``) or None;
    ``registers``: callee-saved registers of this function at its call site that were
    recovered ({'rbx': value}); ``warnings``: what weakens the frame's results.
    """
    index: int
    function: str
    module: Optional[str] = None
    prototype: Optional[str] = None
    clone: Optional[str] = None
    args: List[Arg] = field(default_factory=list)
    registers: Dict[str, int] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)


@dataclass
class TaskArgs:
    """Argument recovery for one task: header fields from ``bt`` and one FrameArgs per
    frame, innermost first; ``warnings`` for the whole stack."""
    pid: Optional[int]
    task: Optional[int]
    command: Optional[str]
    frames: List[FrameArgs] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def frame(self, index: int) -> Optional[FrameArgs]:
        """Return the FrameArgs of frame ``#index``, or None."""
        for f in self.frames:
            if f.index == index:
                return f
        return None


# ----------------------------------------------------------- short names

def short_lock_name(rep: LockReport) -> str:
    """Return where a lock lives in a few words: ``inode.i_rwsem of /tmp/js/fire.js``,
    ``symbol foo_lock``, ``kmalloc-192+0x58``, or its address when nothing is known."""
    st = rep.state or {}
    if isinstance(st, dict) and st.get("wait"):
        return st["wait"]
    ino = st.get("inode") if isinstance(st, dict) else None
    cont = st.get("container") if isinstance(st, dict) else None
    if isinstance(ino, dict) and ino.get("path"):
        member = cont.get("member") if isinstance(cont, dict) and cont.get("member") \
            else "lock"
        return "inode.%s of %s" % (member, ino["path"])
    w = rep.where or ""
    for part in w.split("; "):
        if part.startswith("symbol "):
            return part[len("symbol "):]
    for part in w.split("; "):
        if part.startswith("slab cache "):
            rest = part[len("slab cache "):]
            name, _, obj = rest.partition(", object ")
            off = obj.split("+", 1)[1].split()[0] if "+" in obj else ""
            return "%s object%s" % (name, " +" + off if off else "")
    if isinstance(cont, dict) and cont.get("type"):
        return "%s.%s" % (cont.get("type"), cont.get("member", "?"))
    return "%x" % rep.address


def task_label(t: TaskRef) -> str:
    """Return ``pid comm`` (or the task address when ps does not know it)."""
    if t.pid is None:
        return "task %x" % t.task
    return "%d %s" % (t.pid, t.comm or "?")
