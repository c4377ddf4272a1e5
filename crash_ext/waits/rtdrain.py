"""PREEMPT_RT rw_semaphore writers waiting for readers: :func:`draining_writer`.

On PREEMPT_RT an ``rw_semaphore`` is a ``struct rwbase_rt`` (recognised by its member
types, :mod:`~crash_ext.models.locks`).  ``down_write`` -> ``rwbase_write_lock`` first
takes the inner ``rt_mutex_base`` (``rwbase.rtmutex.owner`` = the writer), then takes
READER_BIAS out of ``rwbase.readers`` (new readers now take the slow path and queue on
that rtmutex) and sleeps until the readers count drains.  That writer sits on no wait
list, and the lock records none of its readers: what ties the task to the lock is the
lock's own fields -- its rtmutex owned by the task, its readers count with READER_BIAS
taken out and not WRITER_BIAS -- read at an address the task's lock frames hold (a
register the frames under ``rwbase_write_lock`` saved, or its own spill).
"""

from ..compat import Iterator, Optional, Tuple

from ..core.errors import CrashExtError
from ..core.port import Port
from ..models import locks as L
from ..models import lockstate as LS
from ..models.stack import Backtrace

__all__ = ["draining_writer", "drain_text", "DRAIN_EVIDENCE"]

#: how the evidence of :func:`draining_writer` begins
DRAIN_EVIDENCE = "PREEMPT_RT writer waiting for readers: "

#: stack words read as the lock at most (nearest the lock frame first)
MAX_TRIED = 64


def _words_near(bt: Backtrace, lock_idx: int, span: int = 2
                ) -> Iterator[Tuple[int, int, object]]:
    """Yield (slot address, value, frame) for the words of ``bt``'s frames: those up to
    ``lock_idx + span`` first (the lock frame, the frames it called, which saved its
    registers, and its callers'), innermost first, then the rest; each value once."""
    seen = set()
    for near in (True, False):
        for f in bt.frames:
            if (f.index <= lock_idx + span) != near:
                continue
            for a in sorted(f.words):
                v = f.words[a]
                if v not in seen:
                    seen.add(v)
                    yield a, v, f


def drain_text(readers: Optional[int]) -> str:
    """Return the words said of a writer waiting for ``readers`` readers to leave."""
    n = "%d reader(s)" % readers if readers is not None else "the readers"
    return ("it owns the inner rt_mutex (rwbase.rtmutex) and waits in rwbase_write_lock "
            "for %s to leave, on no wait list: a waiter, not a holder of the "
            "rw_semaphore" % n)


def draining_writer(port: Port, bt: Backtrace, task: int, layout: L.LockLayout,
                    lock_idx: int) -> Optional[Tuple[int, str, str]]:
    """Return (lock, 'writer', evidence) when the task of ``bt`` (``task``), blocked in a
    PREEMPT_RT rw_semaphore's write path (lock frame ``lock_idx``), is the writer the
    lock records as waiting for its readers: a word of its lock frames, read as a
    ``layout`` rw_semaphore, has ``rwbase.rtmutex.owner`` = ``task`` and a readers count
    with READER_BIAS taken out.  None for any other layout, or when no word is such a
    lock.  Never raises for crash errors (unreadable words are skipped)."""
    if layout.kind != "rw_semaphore" or layout.count_kind != "rwbase_rt":
        return None
    addrs = list(bt.words) + [f.sp for f in bt.frames]
    lo = (min(addrs) & ~0x3fff) if addrs else 0
    hi = lo + 0x8000 if addrs else 0
    tried = 0
    for slot, v, f in _words_near(bt, lock_idx):
        if not L.is_kernel_pointer(v) or v % 8 or lo <= v < hi or v == task:
            continue
        tried += 1
        if tried > MAX_TRIED:
            break
        try:
            raw = port.read(v, layout.size)
        except CrashExtError:
            continue
        st = LS.decode_state(layout, raw)
        if st.pending_writer != task:
            continue
        return v, "writer", (
            DRAIN_EVIDENCE + "the rw_semaphore at %x (word %x of "
            "frame #%d %s) has rwbase.rtmutex.owner = this task and readers = %s, "
            "READER_BIAS taken out (WRITER_WAITING); %s" % (
                v, slot, f.index, f.function, st.fields.get("readers", "?"),
                drain_text(st.readers)))
    return None
