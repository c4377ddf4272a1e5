"""What a lock's bytes say: owner, waiters bit, readers, the state of each lock kind
decoded from its layout (:func:`decode_state`).  Reads no memory itself (an owner's
``task`` behind a 2.6.32 ``thread_info`` through ``read_u64`` when given)."""

from ..compat import Optional

from ..core.errors import CrashExtError
from .locks import (MASK64, RWBASE_READER_BIAS, RWBASE_WRITER_BIAS, LockLayout, LockState,
                    is_kernel_pointer)

__all__ = ["decode_state", "field_value", "signed"]


def field_value(raw: bytes, off: Optional[int], size: int) -> Optional[int]:
    """Return the little-endian unsigned field of ``size`` bytes at ``off`` of ``raw``,
    None when ``off`` is None or the field lies beyond ``raw``."""
    if off is None or off + size > len(raw):
        return None
    return int.from_bytes(raw[off:off + size], "little")


def signed(v: int, bits: int) -> int:
    """Return ``v`` read as a ``bits``-bit two's-complement number."""
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def decode_state(layout: LockLayout, raw: bytes, read_u64=None) -> LockState:
    """Return the decoded state of a lock whose first ``layout.size`` bytes are ``raw``.

    ``read_u64(addr)`` is needed only for a ``thread_info *`` owner (to read
    ``thread_info.task``); when it raises or is absent the owner is left as a problem.
    Never raises for odd values: they are reported in ``problems``.
    """
    st = LockState()
    k = layout.kind
    if k == "mutex":
        _decode_mutex(layout, raw, st, read_u64)
    elif k == "rw_semaphore":
        _decode_rwsem(layout, raw, st)
    elif k == "semaphore":
        _decode_sem(layout, raw, st)
    elif k == "rt_mutex":
        _decode_rt(layout, raw, st)
    elif k == "spinlock":
        _decode_spin(layout, raw, st)
    return st


def _decode_mutex(lay, raw, st, read_u64):
    if lay.owner_kind == "rt_owner":
        _decode_rt(lay, raw, st, "mutex.rtmutex.owner")
        return
    owner = field_value(raw, lay.owner_off, 8)
    count = None
    if lay.count_off is not None:
        count = signed(field_value(raw, lay.count_off, lay.count_size), 8 * lay.count_size)
        st.fields["count"] = count
        # 1 unlocked, 0 locked, negative locked with (possible) waiters
        st.locked = count < 1
        if count < 0:
            st.flags.append("WAITERS(count<0)")
    if owner is None:
        return
    st.fields["owner"] = "%#x" % owner
    if lay.owner_kind == "atomic":
        bits = owner & 0x7
        for bit, name in ((0x1, "WAITERS"), (0x2, "HANDOFF"), (0x4, "PICKUP")):
            if bits & bit:
                st.flags.append(name)
        task = owner & ~0x7 & MASK64
        st.locked = task != 0
        if task:
            st.owner_task, st.owner_source = task, "mutex.owner"
    elif lay.owner_kind == "task_ptr":
        if owner:
            st.owner_task, st.owner_source = owner, "mutex.owner"
            if st.locked is None:
                st.locked = True
        elif st.locked:
            st.problems.append("count says locked but owner is NULL (owner is set after "
                               "the lock is taken; or a debug-less kernel)")
    elif lay.owner_kind == "thread_info_ptr":
        if owner:
            if read_u64 is None or lay.thread_info_task_off is None:
                st.problems.append("owner thread_info %#x: cannot read its task" % owner)
            else:
                try:
                    task = read_u64(owner + lay.thread_info_task_off)
                    st.owner_task = task
                    st.owner_source = "mutex.owner->task (thread_info)"
                    st.fields["owner_thread_info"] = "%#x" % owner
                except CrashExtError as e:
                    st.problems.append("owner thread_info %#x unreadable: %s" % (owner, e))
    if st.owner_task is not None and not is_kernel_pointer(st.owner_task):
        st.problems.append("owner field %#x is not a kernel pointer" % st.owner_task)
        st.owner_task = None


def _decode_rwbase(lay, raw, st):
    readers = field_value(raw, lay.count_off, lay.count_size) or 0
    st.fields["readers"] = "%#x" % readers
    owner = field_value(raw, lay.owner_off, 8) or 0
    st.fields["owner"] = "%#x" % owner
    if owner & 1:
        st.flags.append("HAS_WAITERS")
    writer = owner & ~0x3 & MASK64
    if readers & RWBASE_READER_BIAS:
        n = readers - RWBASE_READER_BIAS
        st.readers = n
        st.locked = n > 0
        if n:
            st.mode = "reader"
        if writer:
            # a writer (or a reader in the slow path) holds the rtmutex only briefly
            st.problems.append("readers count has READER_BIAS but rtmutex.owner is %#x"
                               % writer)
        return
    if readers == RWBASE_WRITER_BIAS:
        st.locked, st.mode = True, "writer"
        if writer:
            st.owner_task = writer
            st.owner_source = "rw_semaphore.rwbase.rtmutex.owner"
        else:
            st.problems.append("WRITER_BIAS but rtmutex.owner is NULL")
        return
    # a writer took the rtmutex (rwbase_write_lock), took READER_BIAS out of the count
    # and sleeps until ``readers`` readers leave: a waiter the lock records, not a holder
    st.locked, st.mode, st.readers = True, "reader", readers
    st.flags.append("WRITER_WAITING")
    if writer:
        st.pending_writer = writer
    else:
        st.problems.append("readers count %#x has no READER_BIAS but rtmutex.owner is "
                           "NULL" % readers)


def _decode_rwsem(lay, raw, st):
    if lay.count_kind == "rwbase_rt":
        _decode_rwbase(lay, raw, st)
        return
    cnt = field_value(raw, lay.count_off, lay.count_size)
    owner = field_value(raw, lay.owner_off, 8)
    if owner is not None:
        st.fields["owner"] = "%#x" % owner
    if lay.count_kind == "rwsem_activity":
        a = signed(cnt, 8 * lay.count_size)
        st.fields["activity"] = a
        st.locked = a != 0
        if a < 0:
            st.mode = "writer"
        elif a > 0:
            st.mode, st.readers = "reader", a
        return
    if lay.count_kind == "rwsem_atomic":
        st.fields["count"] = "%#x" % cnt
        wl = bool(cnt & 1)
        for bit, name in ((0x1, "WRITER_LOCKED"), (0x2, "WAITERS"), (0x4, "HANDOFF"),
                          (1 << 63, "READ_FAILED")):
            if cnt & bit:
                st.flags.append(name)
        readers = (cnt & ((1 << 63) - 1)) >> 8
        st.readers = readers
        st.locked = wl or readers > 0
        if wl and readers:
            st.problems.append("count has WRITER_LOCKED and %d readers (readers still "
                               "backing out of a failed attempt)" % readers)
        own = owner or 0
        task = own & ~0x7 & MASK64
        reader_owned = bool(own & 1)
        if reader_owned:
            st.flags.append("READER_OWNED")
        if own & 0x4:   # only the 5.3-5.10 layout uses bit 2
            if own & 0x2:
                st.flags.append("RD_NONSPINNABLE")
            st.flags.append("WR_NONSPINNABLE")
        elif own & 0x2:
            st.flags.append("NONSPINNABLE")
        if wl:
            st.mode = "writer"
            if task and not reader_owned:
                st.owner_task, st.owner_source = task, "rw_semaphore.owner"
            elif not task:
                st.problems.append("WRITER_LOCKED but owner is NULL (just taken, or "
                                   "owner cleared)")
        elif readers:
            st.mode = "reader"
            if task:
                st.hint_task = task
                st.hint_why = ("rw_semaphore.owner of a reader-owned rwsem names only the "
                               "last reader to take it, which may have released it since")
        elif task and reader_owned:
            st.hint_task = task
            st.hint_why = ("unlocked; rw_semaphore.owner keeps the last reader as a hint")
        return
    # xadd count: x86_64 active mask 0xffffffff, waiting bias -0x100000000
    c = signed(cnt, 8 * lay.count_size)
    st.fields["count"] = "%#x" % (cnt & MASK64)
    active = cnt & 0xffffffff
    st.fields["active"] = active
    st.locked = active != 0
    if c < 0:
        st.flags.append("NEGATIVE(writer or waiters)")
    if lay.owner_kind == "task_ptr" and owner:
        task = owner & ~0x3 & MASK64
        if owner & 1:
            st.flags.append("READER_OWNED")
            st.mode = "reader"
            if task:
                st.hint_task = task
                st.hint_why = "a reader-owned rwsem's owner names only the last reader"
        else:
            if owner & 2:
                st.flags.append("ANONYMOUSLY_OWNED")
            if st.locked and task:
                st.owner_task, st.owner_source = task, "rw_semaphore.owner"
                st.mode = "writer"
    if st.mode is None and st.locked:
        if c > 0:
            st.mode, st.readers = "reader", active
        elif active == 1 and c == signed(0xffffffff00000001, 64):
            st.mode = "writer"   # exactly ACTIVE_WRITE_BIAS, nobody queued
    if st.mode == "reader" and st.readers is None and c > 0:
        st.readers = active


def _decode_sem(lay, raw, st):
    cnt = field_value(raw, lay.count_off, lay.count_size)
    c = signed(cnt, 8 * lay.count_size)
    st.fields["count"] = c
    st.locked = c <= 0
    if lay.last_holder_off is not None:
        lh = field_value(raw, lay.last_holder_off, 8)
        st.fields["last_holder"] = "%#x" % (lh or 0)
        if lh:
            st.hint_task = lh
            st.hint_why = ("semaphore.last_holder records the last task that took it; a "
                           "semaphore may be released by another task")


def _decode_rt(lay, raw, st, source="rt_mutex.owner"):
    owner = field_value(raw, lay.owner_off, 8) or 0
    st.fields["owner"] = "%#x" % owner
    if owner & 1:
        st.flags.append("HAS_WAITERS")
    task = owner & ~0x3 & MASK64
    st.locked = task != 0
    if task:
        st.owner_task, st.owner_source = task, source


def _decode_spin(lay, raw, st):
    if lay.owner_kind == "rt_owner":
        _decode_rt(lay, raw, st, "spinlock_t.lock.owner (PREEMPT_RT)")
        return
    v = field_value(raw, lay.count_off, 4) or 0
    st.fields["raw_lock"] = "%#x" % v
    st.locked = v != 0
    if v & 0x100:
        st.flags.append("PENDING")
    if v >> 16:
        st.flags.append("QUEUED(tail=%#x)" % (v >> 16))
    if lay.owner_off is not None:
        own = field_value(raw, lay.owner_off, 8) or 0
        st.fields["owner"] = "%#x" % own
        if lay.spin_owner_cpu_off is not None:
            st.fields["owner_cpu"] = signed(field_value(raw, lay.spin_owner_cpu_off, 4) or 0, 32)
        if lay.spin_magic_off is not None:
            magic = field_value(raw, lay.spin_magic_off, 4)
            st.fields["magic"] = "%#x" % (magic or 0)
            if magic != 0xdead4ead:
                st.problems.append("spinlock magic %#x is not SPINLOCK_MAGIC 0xdead4ead: "
                                   "not a debug spinlock" % (magic or 0))
        if own and own != MASK64 and st.locked:
            st.owner_task, st.owner_source = own, "spinlock.owner (DEBUG_SPINLOCK)"
