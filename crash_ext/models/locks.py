"""Kernel lock layouts, probed from debuginfo.

One job: given a lock kind and a :class:`~crash_ext.core.port.Port`, find out how *this*
kernel lays the lock out (by the C types of its members, never by version number).
Decoding a lock's bytes (state, flag bits, recorded owner) is :mod:`.lockstate`'s job,
walking its wait list (bounded, loop-checked) :mod:`.lockwalk`'s.

Kinds: ``mutex``, ``rw_semaphore``, ``semaphore``, ``rt_mutex``, ``spinlock``.

Layouts recognised (docs/locks.md):

* mutex: ``struct thread_info *owner`` (2.6.32; owner task is ``owner->task``),
  ``struct task_struct *owner`` (3.x), ``atomic_long_t owner`` with flag bits WAITERS,
  HANDOFF, PICKUP in the low 3 bits (>= 4.10); ``wait_list`` a ``struct list_head`` or,
  on RHEL6 >= 2.6.32-642, a ``struct list_head *`` to the first waiter (headless ring).
* rw_semaphore: ``long count`` with no owner (RHEL6 x86_64 xadd: active mask
  0xffffffff, waiting bias -0x100000000), ``__s32 activity`` (spinlock-based rwsem),
  ``struct task_struct *owner`` (4.x, RHEL7; bit0 reader-owned, bit1 anonymous),
  ``atomic_long_t owner`` (>= 5.3: bit0 READER_OWNED, bit1 NONSPINNABLE; bits 1/2
  RD_/WR_NONSPINNABLE on 5.3-5.10) with ``count`` bit0 WRITER_LOCKED, bit1 WAITERS,
  bit2 HANDOFF, bit63 READ_FAILED, readers from bit 8; ``wait_list`` a ``list_head``
  or RHEL7's ``struct slist_head`` (one ``next`` pointer: headless ring).
* semaphore: ``{lock, count, wait_list}`` (+ ``last_holder`` where present); waiters
  ``struct semaphore_waiter {list, task, up}``.
* 7.x (sid's 7.2): mutex, rw_semaphore and semaphore have no ``wait_list`` but
  ``struct X_waiter *first_waiter``: the first waiter record of a ring of records
  without head (linked through their ``list``), walked like RHEL6's headless ring.
* rt_mutex: (``rtmutex.``)``owner`` with bit0 HAS_WAITERS; waiters in an rbtree
  (``rb_root_cached`` or ``rb_root``) of ``rt_mutex_waiter`` by ``tree.entry`` /
  ``tree_entry``.
* spinlock: locked word; ``owner``/``owner_cpu`` only with CONFIG_DEBUG_SPINLOCK.
* PREEMPT_RT (recognised by a member of type ``struct rt_mutex_base``, not by the
  kernel's version or config): ``struct mutex { struct rt_mutex_base rtmutex; }``,
  ``struct rw_semaphore { struct rwbase_rt rwbase; }`` with ``rwbase_rt { atomic_t
  readers; struct rt_mutex_base rtmutex; }``, ``spinlock_t { struct rt_mutex_base lock;
  }``: the owner is the base's ``owner`` (bit0 HAS_WAITERS; a writer for an rwsem) and
  the waiters its rbtree of ``rt_mutex_waiter`` (priority order, arrival order among
  equals).  An rwbase's ``readers`` is READER_BIAS (1 << 31) plus the readers while no
  writer is in, the readers still to leave while a writer (the base's owner) waits for
  them, and WRITER_BIAS (1 << 30) once the writer holds it.
"""

from ..core.caches import LOCK_LAYOUTS
from ..core.record import dataclass, field
from ..compat import Dict, List, NamedTuple, Optional, Tuple

from ..core.errors import CrashExtError
from ..core.port import Port

__all__ = ["KINDS", "LockLayout", "WaiterLayout", "LockState", "WaitEntry", "WaitWalk",
           "probe_layout", "is_kernel_pointer", "normalize_kind", "rt_base_offset",
           "MAX_WAITERS"]

KINDS = ("mutex", "rw_semaphore", "semaphore", "rt_mutex", "spinlock")
MAX_WAITERS = 20000
MASK64 = (1 << 64) - 1
#: lowest x86-64 kernel address (canonical upper half)
KERNEL_START = 0xffff800000000000

_ALIASES = {
    "mutex": "mutex", "struct mutex": "mutex",
    "rw_semaphore": "rw_semaphore", "rwsem": "rw_semaphore",
    "struct rw_semaphore": "rw_semaphore",
    "semaphore": "semaphore", "sem": "semaphore", "struct semaphore": "semaphore",
    "rt_mutex": "rt_mutex", "struct rt_mutex": "rt_mutex",
    "rt_mutex_base": "rt_mutex", "struct rt_mutex_base": "rt_mutex",
    "spinlock": "spinlock", "spinlock_t": "spinlock", "struct spinlock": "spinlock",
    "raw_spinlock": "spinlock", "raw_spinlock_t": "spinlock",
    "struct raw_spinlock": "spinlock",
}


def normalize_kind(type_name: str) -> Optional[str]:
    """Return the lock kind for a C type name (``struct rw_semaphore``, ``mutex``,
    ``spinlock_t``...), or None when it is not a lock type we decode."""
    t = " ".join(str(type_name).replace("volatile", "").split())
    return _ALIASES.get(t)


def is_kernel_pointer(v: int) -> bool:
    """True when ``v`` looks like an x86-64 kernel pointer (canonical upper half, not -1
    or a small negative error code, 4-byte aligned)."""
    return KERNEL_START <= v < (MASK64 - 4095) and v % 4 == 0


@dataclass
class WaiterLayout:
    """How a waiter record is laid out: ``node_off`` (its list_head / rb_node), task
    offset, and how its mode (reader/writer) is recorded."""
    type_name: str
    size: int
    node_off: int
    task_off: int
    mode_off: Optional[int] = None
    mode_size: int = 4
    read_value: Optional[int] = None     # value (enum) or bit (flags) meaning "reader"
    write_value: Optional[int] = None
    mode_is_flags: bool = False


@dataclass
class LockLayout:
    """What :func:`probe_layout` found for one lock kind on this kernel.

    ``name`` is a one-line description shown to the user; offsets are relative to the
    lock's address; ``wait_kind``: 'list' (list_head head), 'headless' (a pointer to
    the first waiter of a ring without head), 'rbtree', or None (no waiters recorded).
    """
    kind: str
    type_name: str
    size: int
    name: str
    owner_off: Optional[int] = None
    owner_kind: Optional[str] = None      # 'atomic', 'task_ptr', 'thread_info_ptr', 'void_ptr'
    thread_info_task_off: Optional[int] = None
    count_off: Optional[int] = None
    count_size: int = 8
    count_kind: Optional[str] = None      # 'rwsem_atomic', 'rwsem_xadd', 'rwsem_activity',
                                          # 'sem', 'mutex_count', 'spin'
    wait_off: Optional[int] = None
    wait_kind: Optional[str] = None
    waiter: Optional[WaiterLayout] = None
    last_holder_off: Optional[int] = None
    rb_left_off: int = 16
    rb_right_off: int = 8
    spin_magic_off: Optional[int] = None
    spin_owner_cpu_off: Optional[int] = None
    rt_base_off: Optional[int] = None     # struct rt_mutex_base inside the lock (RT)
    first_is_record: bool = False         # headless: wait_off points at a waiter record
    notes: List[str] = field(default_factory=list)


@dataclass
class LockState:
    """A decoded lock.  ``owner_task`` is set only when the lock records its owner
    (``owner_source`` names the field); ``hint_task`` is a recorded but unreliable owner
    (``hint_why`` says why); ``pending_writer`` a writer the lock records as waiting
    for its readers (PREEMPT_RT's rwbase_rt); ``mode``: 'writer'/'reader'/None for who holds it;
    ``fields``: raw values as read, for the user; ``problems``: what looked wrong."""
    locked: Optional[bool] = None
    flags: List[str] = field(default_factory=list)
    readers: Optional[int] = None
    mode: Optional[str] = None
    owner_task: Optional[int] = None
    owner_source: Optional[str] = None
    hint_task: Optional[int] = None
    hint_why: Optional[str] = None
    #: PREEMPT_RT rw_semaphore: the writer that owns the inner rtmutex and waits for the
    #: readers to leave (a waiter on no wait list, not a holder)
    pending_writer: Optional[int] = None
    fields: Dict[str, object] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)


class WaitEntry(NamedTuple):
    """One waiter found on a wait list: its record address, task, mode."""
    waiter: int
    task: int
    mode: Optional[str] = None


@dataclass
class WaitWalk:
    """Result of a wait-list walk: ``entries`` in queue order, ``nodes`` every list node
    address visited (head included), ``complete`` False when the walk stopped early
    (``problems`` says why)."""
    entries: List[WaitEntry] = field(default_factory=list)
    nodes: List[int] = field(default_factory=list)
    complete: bool = True
    problems: List[str] = field(default_factory=list)
    #: how many leading entries are linked soundly: each one's ``prev`` points back at
    #: the node before it (the first's at the head).  Entries past it were reached
    #: through a link the list does not confirm.
    sound: int = 0
    #: the first sign the list itself is corrupt (a loop, a bad or unreadable pointer,
    #: a broken ``prev`` link), None when it is intact (stopping at ``cap`` is not one)
    damaged: Optional[str] = None
    #: on a live system: how many times the list was read and found damaged each time
    #: (it kept changing under the walk: "changed while reading", not corrupt); 0 on a
    #: dump, or when a read found it intact
    moving: int = 0


# ------------------------------------------------------------------- probing

def _clean(t: Optional[str]) -> Optional[str]:
    return " ".join(t.split()) if t else t


def _off(port: Port, t: str, m: str) -> Optional[int]:
    try:
        return port.member_offset(t, m)
    except CrashExtError:
        return None


def _mtype(port: Port, t: str, m: str) -> Optional[str]:
    try:
        return _clean(port.member_type(t, m))
    except CrashExtError:
        return None


def _size(port: Port, t: str) -> Optional[int]:
    try:
        return port.type_size(t)
    except CrashExtError:
        return None


def _scalar_size(port: Port, ctype: Optional[str], default: int = 8) -> int:
    if not ctype:
        return default
    c = ctype.replace("volatile ", "")
    if c.endswith("*"):
        return 8
    if c in ("atomic_long_t", "long", "signed long", "long int", "unsigned long",
             "long unsigned int", "atomic64_t", "s64", "u64"):
        return 8
    if c in ("atomic_t", "int", "unsigned int", "__s32", "s32", "u32", "__u32", "unsigned"):
        return 4
    n = _size(port, c)
    return n if n in (1, 2, 4, 8) else default


def _enum_value(port: Port, name: str) -> Optional[int]:
    """Return the value of enumerator ``name`` from debuginfo (``p/d NAME``), or None."""
    try:
        return port.enum_value(name)
    except CrashExtError:
        return None


def _wait_member(port: Port, t: str, lay: LockLayout) -> Optional[str]:
    """Set ``lay.wait_off``/``wait_kind``/``first_is_record`` from ``t``'s ``wait_list``
    or, without one, its ``first_waiter`` (a ``struct ..._waiter *``: the first record
    of a headless ring); return the member's type (None when neither exists)."""
    wt = _mtype(port, t, "wait_list")
    if wt is not None:
        lay.wait_off = _off(port, t, "wait_list")
        lay.wait_kind = _list_kind(wt)
        return wt
    ft = _mtype(port, t, "first_waiter")
    if ft is not None and ft.startswith("struct ") and ft.endswith("_waiter *"):
        lay.wait_off = _off(port, t, "first_waiter")
        lay.wait_kind = "headless"
        lay.first_is_record = True
    return ft


def _list_kind(mt: Optional[str]) -> Optional[str]:
    if not mt:
        return None
    if mt == "struct list_head":
        return "list"
    if mt in ("struct list_head *", "struct slist_head"):
        return "headless"
    if mt in ("struct rb_root_cached", "struct rb_root"):
        return "rbtree"
    if mt == "struct plist_head":
        return "plist"
    return None


# the structs each kind's probe reads several members of
_RT_BASE = "struct rt_mutex_base"
#: PREEMPT_RT rwbase_rt.readers: no writer in (readers are counted below it) / writer in
RWBASE_READER_BIAS = 1 << 31
RWBASE_WRITER_BIAS = 1 << 30

_STRUCTS = {"mutex": ("mutex", "mutex_waiter"),
            "rw_semaphore": ("rw_semaphore", "rwsem_waiter"),
            "semaphore": ("semaphore", "semaphore_waiter")}


def probe_layout(port: Port, kind: str) -> LockLayout:
    """Return this kernel's layout of lock ``kind`` (see :data:`KINDS`), probed from
    member types via the port and cached per port.

    Raises CrashExtError when the kernel has no such type or its members are not a
    layout this module knows (the message says what was found).
    """
    k = normalize_kind(kind) or kind
    if k not in KINDS:
        raise CrashExtError("not a lock type crash-ext decodes: %r (known: %s)"
                            % (kind, ", ".join(KINDS)))
    key = port.base_port   # a wrapper shares its port's layouts
    per_port = LOCK_LAYOUTS.get(key, dict)
    if k in per_port:
        return per_port[k]
    if k in _STRUCTS:   # one `struct -o` per type instead of a query per member
        try:
            port.prefetch_structs(_STRUCTS[k])
        except CrashExtError:
            pass
    lay = {"mutex": _probe_mutex, "rw_semaphore": _probe_rwsem,
           "semaphore": _probe_semaphore, "rt_mutex": _probe_rt_mutex,
           "spinlock": _probe_spinlock}[k](port)
    per_port[k] = lay
    return lay


def _need_size(port: Port, t: str) -> int:
    n = _size(port, t)
    if n is None:
        raise CrashExtError("this kernel's debuginfo has no type %r" % t)
    return n


def _list_waiter(port: Port, t: str, node: str = "list") -> WaiterLayout:
    size = _need_size(port, t)
    node_off = _off(port, t, node)
    task_off = _off(port, t, "task")
    if node_off is None or task_off is None:
        raise CrashExtError("%s has no %s/task members: unknown waiter layout" % (t, node))
    return WaiterLayout(type_name=t, size=size, node_off=node_off, task_off=task_off)


def _rt_base(port: Port, lay: LockLayout, t: str, base: str) -> None:
    """Fill ``lay``'s owner and rbtree waiters from the ``struct rt_mutex_base`` at
    member path ``base`` of ``t`` (PREEMPT_RT sleeping locks).  Raises CrashExtError
    when the base or its waiter record is not a layout this module knows."""
    lay.owner_off = _off(port, t, base + ".owner")
    lay.owner_kind = "rt_owner"
    lay.wait_off = _off(port, t, base + ".waiters")
    lay.wait_kind = _list_kind(_mtype(port, t, base + ".waiters"))
    if lay.owner_off is None or lay.wait_kind != "rbtree":
        raise CrashExtError("struct %s.%s: owner/waiters not an rbtree layout: not decoded"
                            % (t, base))
    wt = "rt_mutex_waiter"
    node = "tree.entry" if _off(port, wt, "tree.entry") is not None else "tree_entry"
    lay.waiter = _list_waiter(port, wt, node)
    lay.rb_right_off = _off(port, "rb_node", "rb_right") or 8
    lay.rb_left_off = _off(port, "rb_node", "rb_left") or 16


def rt_base_offset(layout: LockLayout) -> Optional[int]:
    """Return the offset of the ``struct rt_mutex_base`` inside a lock of ``layout`` (a
    PREEMPT_RT mutex, rw_semaphore or spinlock_t, or an rt_mutex), or None for a lock
    not built on one: ``rt_mutex_waiter.lock`` points there, not at the lock."""
    return layout.rt_base_off if layout.wait_kind == "rbtree" else None


def _probe_mutex(port: Port) -> LockLayout:
    t = "mutex"
    size = _need_size(port, t)
    lay = LockLayout(kind="mutex", type_name=t, size=size, name="")
    if _mtype(port, t, "rtmutex") == _RT_BASE:
        _rt_base(port, lay, t, "rtmutex")
        lay.rt_base_off = _off(port, t, "rtmutex")
        lay.name = ("mutex: PREEMPT_RT, rt_mutex_base rtmutex (owner, bit0 HAS_WAITERS), "
                    "rbtree of rt_mutex_waiter")
        return lay
    wt = _wait_member(port, t, lay)
    if lay.wait_off is None or lay.wait_kind not in ("list", "headless"):
        raise CrashExtError("struct mutex.wait_list has type %r: unknown mutex layout" % wt)
    lay.waiter = _list_waiter(port, "mutex_waiter")
    ot = _mtype(port, t, "owner")
    parts = []
    if ot is not None:
        lay.owner_off = _off(port, t, "owner")
        if ot == "atomic_long_t":
            lay.owner_kind = "atomic"
            parts.append("atomic_long_t owner + flag bits")
        elif ot == "struct task_struct *":
            lay.owner_kind = "task_ptr"
            parts.append("task_struct *owner")
        elif ot == "struct thread_info *":
            lay.owner_kind = "thread_info_ptr"
            lay.thread_info_task_off = _off(port, "thread_info", "task")
            parts.append("thread_info *owner")
        else:
            lay.notes.append("mutex.owner has unknown type %r: not decoded" % ot)
    else:
        parts.append("no owner field")
    ct = _mtype(port, t, "count")
    if ct is not None:
        lay.count_off = _off(port, t, "count")
        lay.count_size = _scalar_size(port, ct, 4)
        lay.count_kind = "mutex_count"
        parts.append("%s count" % ct)
    parts.append("first_waiter (headless ring of records)" if lay.first_is_record else
                 "headless wait_list pointer" if lay.wait_kind == "headless"
                 else "list_head wait_list")
    lay.name = "mutex: " + ", ".join(parts)
    return lay


def _probe_rwsem(port: Port) -> LockLayout:
    t = "rw_semaphore"
    size = _need_size(port, t)
    lay = LockLayout(kind="rw_semaphore", type_name=t, size=size, name="")
    if _mtype(port, t, "rwbase") == "struct rwbase_rt":
        if _mtype(port, t, "rwbase.rtmutex") != _RT_BASE:
            raise CrashExtError("struct rw_semaphore.rwbase has no rt_mutex_base rtmutex: "
                                "unknown PREEMPT_RT rwsem layout")
        _rt_base(port, lay, t, "rwbase.rtmutex")
        lay.rt_base_off = _off(port, t, "rwbase.rtmutex")
        rt = _mtype(port, t, "rwbase.readers")
        lay.count_off = _off(port, t, "rwbase.readers")
        lay.count_size = _scalar_size(port, rt, 4)
        lay.count_kind = "rwbase_rt"
        lay.name = ("rw_semaphore: PREEMPT_RT rwbase_rt, %s readers (READER_BIAS/"
                    "WRITER_BIAS), rt_mutex_base rtmutex (writer owner), rbtree of "
                    "rt_mutex_waiter" % rt)
        return lay
    wt = _wait_member(port, t, lay)
    if lay.wait_off is None or lay.wait_kind not in ("list", "headless"):
        raise CrashExtError("struct rw_semaphore.wait_list has type %r: unknown rwsem "
                            "layout" % wt)
    w = _list_waiter(port, "rwsem_waiter")
    mt = _mtype(port, "rwsem_waiter", "type")
    if mt is not None:
        w.mode_off = _off(port, "rwsem_waiter", "type")
        w.mode_size = 4
        r = _enum_value(port, "RWSEM_WAITING_FOR_READ")
        wr = _enum_value(port, "RWSEM_WAITING_FOR_WRITE")
        # enum rwsem_waiter_type {WRITE, READ} since 3.10 (used only if debuginfo says nothing)
        w.read_value = 1 if r is None else r
        w.write_value = 0 if wr is None else wr
    else:
        ft = _mtype(port, "rwsem_waiter", "flags")
        if ft is not None:
            # 2.6.32 rwsem-xadd: #define RWSEM_WAITING_FOR_READ 1, _WRITE 2 (not in DWARF)
            w.mode_off = _off(port, "rwsem_waiter", "flags")
            w.mode_size = _scalar_size(port, ft, 4)
            w.mode_is_flags = True
            w.read_value, w.write_value = 0x1, 0x2
    lay.waiter = w
    parts = []
    ct = _mtype(port, t, "count")
    act = _mtype(port, t, "activity")
    ot = _mtype(port, t, "owner")
    if ot is not None:
        lay.owner_off = _off(port, t, "owner")
    if act is not None:
        lay.count_off = _off(port, t, "activity")
        lay.count_size = _scalar_size(port, act, 4)
        lay.count_kind = "rwsem_activity"
        parts.append("%s activity" % act)
    elif ct is not None:
        lay.count_off = _off(port, t, "count")
        lay.count_size = _scalar_size(port, ct, 8)
        if ot == "atomic_long_t":
            lay.count_kind = "rwsem_atomic"
        else:
            lay.count_kind = "rwsem_xadd"
        parts.append("%s count" % ct)
    else:
        raise CrashExtError("struct rw_semaphore has neither count nor activity: unknown "
                            "layout")
    if ot is None:
        parts.append("no owner field")
    elif ot == "atomic_long_t":
        lay.owner_kind = "atomic"
        parts.append("atomic_long_t owner + flag bits")
    elif ot == "struct task_struct *":
        lay.owner_kind = "task_ptr"
        parts.append("task_struct *owner")
    else:
        lay.notes.append("rw_semaphore.owner has unknown type %r: not decoded" % ot)
    parts.append("first_waiter (headless ring of records)" if lay.first_is_record else
                 "slist_head/headless wait_list" if lay.wait_kind == "headless"
                 else "list_head wait_list")
    lay.name = "rw_semaphore: " + ", ".join(parts)
    return lay


def _probe_semaphore(port: Port) -> LockLayout:
    t = "semaphore"
    size = _need_size(port, t)
    lay = LockLayout(kind="semaphore", type_name=t, size=size, name="")
    _wait_member(port, t, lay)
    ct = _mtype(port, t, "count")
    if lay.wait_off is None or ct is None or not (
            lay.wait_kind == "list" or lay.first_is_record):
        raise CrashExtError("struct semaphore is not {lock, count, wait_list}: unknown "
                            "layout")
    lay.count_off = _off(port, t, "count")
    lay.count_size = _scalar_size(port, ct, 4)
    lay.count_kind = "sem"
    lay.waiter = _list_waiter(port, "semaphore_waiter")
    parts = ["%s count" % ct, "first_waiter (headless ring of records)"
             if lay.first_is_record else "list_head wait_list"]
    lh = _mtype(port, t, "last_holder")
    if lh is not None:
        lay.last_holder_off = _off(port, t, "last_holder")
        parts.append("last_holder")
    lay.name = "semaphore: " + ", ".join(parts)
    return lay


def _probe_rt_mutex(port: Port) -> LockLayout:
    t = "rt_mutex"
    size = _need_size(port, t)
    pre = "rtmutex." if _off(port, t, "rtmutex") is not None else ""
    lay = LockLayout(kind="rt_mutex", type_name=t, size=size, name="")
    lay.owner_off = _off(port, t, pre + "owner")
    lay.owner_kind = "task_ptr"
    lay.wait_off = _off(port, t, pre + "waiters")
    lay.wait_kind = _list_kind(_mtype(port, t, pre + "waiters"))
    if lay.owner_off is None or lay.wait_kind != "rbtree":
        raise CrashExtError("struct rt_mutex: owner/waiters not an rbtree layout: not "
                            "decoded")
    wt = "rt_mutex_waiter"
    node = "tree.entry" if _off(port, wt, "tree.entry") is not None else "tree_entry"
    lay.waiter = _list_waiter(port, wt, node)
    lay.rb_right_off = _off(port, "rb_node", "rb_right") or 8
    lay.rb_left_off = _off(port, "rb_node", "rb_left") or 16
    lay.rt_base_off = _off(port, t, pre.rstrip(".")) if pre else 0
    lay.name = "rt_mutex: %sowner (bit0 HAS_WAITERS), rbtree waiters" % pre
    return lay


def _probe_spinlock(port: Port) -> LockLayout:
    t = "spinlock"
    if _size(port, t) is None:
        t = "raw_spinlock"
    size = _need_size(port, t)
    lay = LockLayout(kind="spinlock", type_name=t, size=size, name="")
    if _mtype(port, t, "lock") == _RT_BASE:
        _rt_base(port, lay, t, "lock")
        lay.rt_base_off = _off(port, t, "lock")
        lay.name = ("spinlock_t: PREEMPT_RT sleeping lock, rt_mutex_base lock (owner, bit0 "
                    "HAS_WAITERS), rbtree of rt_mutex_waiter")
        return lay
    pre = "rlock." if _off(port, t, "rlock") is not None else ""
    lay.count_off = _off(port, t, pre + "raw_lock") or 0
    lay.count_size = 4
    lay.count_kind = "spin"
    own = _off(port, t, pre + "owner")
    parts = ["locked word"]
    if own is not None:
        lay.owner_off = own
        lay.owner_kind = "void_ptr"
        lay.spin_magic_off = _off(port, t, pre + "magic")
        lay.spin_owner_cpu_off = _off(port, t, pre + "owner_cpu")
        parts.append("owner/owner_cpu (CONFIG_DEBUG_SPINLOCK)")
    else:
        parts.append("no owner (kernel built without CONFIG_DEBUG_SPINLOCK)")
    lay.name = "spinlock: " + ", ".join(parts)
    return lay
