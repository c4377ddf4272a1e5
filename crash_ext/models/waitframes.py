"""What a blocked task's frames say by their names alone: which lock slow path
(kind, mode), which other wait (completion, I/O), which frames are the scheduler's.
No kernel reads: names in, kinds out."""

import re
from ..core.caches import FRAME_KINDS
from ..compat import Optional, Tuple

__all__ = ["SCHED_FUNCS", "CLONE_SUFFIX", "classify_function", "classify_stack"]

SCHED_FUNCS = {"__schedule", "schedule", "schedule_timeout", "schedule_preempt_disabled",
               "io_schedule", "io_schedule_timeout", "__switch_to", "__switch_to_asm",
               "schedule_hrtimeout_range_clock", "schedule_hrtimeout_range",
               "preempt_schedule_common", "rwsem_down_failed_common"}

CLONE_SUFFIX = re.compile(r"(\.(constprop|isra|part|cold|lto_priv|localalias|llvm)(\.\d+)?)+$")

# (regex on the function name without clone suffix, lock kind, mode)
_LOCK_FUNCS = [
    (r"^(rwsem_down_write_slowpath|rwsem_down_write_failed(_killable)?|"
     r"call_rwsem_down_write_failed(_killable)?|__down_write(_common|_slowpath|_killable|"
     r"_nested)?|down_write(_killable|_nested|_trylock)?|rwbase_write_lock)$",
     "rw_semaphore", "writer"),
    (r"^(rwsem_down_read_slowpath|rwsem_down_read_failed(_killable)?|"
     r"call_rwsem_down_read_failed(_killable)?|__down_read(_common|_slowpath|_killable|"
     r"_interruptible)?|down_read(_killable|_interruptible|_nested|_non_owner)?|"
     r"__rwbase_read_lock|rwbase_read_lock)$", "rw_semaphore", "reader"),
    (r"^(__mutex_lock(_common|_slowpath|_killable_slowpath|_interruptible_slowpath)?|"
     r"mutex_lock(_nested|_killable|_interruptible|_io|_killable_nested|"
     r"_interruptible_nested|_io_nested)?|__ww_mutex_lock(_slowpath)?|ww_mutex_lock"
     r"(_interruptible)?|mutex_lock_slowpath)$", "mutex", None),
    (r"^(__down(_common|_interruptible|_killable|_timeout)?|down(_interruptible|"
     r"_killable|_timeout)?)$", "semaphore", None),
    (r"^(rt_mutex_slowlock(_block)?|__rt_mutex_slowlock(_locked)?|rt_mutex_lock"
     r"(_interruptible|_killable|_nested)?|rtlock_slowlock(_locked)?|"
     r"__rt_mutex_lock|rwbase_rtmutex_slowlock_locked|rwbase_rtmutex_lock_state|"
     r"rt_mutex_slowlock_locked|rtlock_lock|__rt_mutex_lock_common)$", "rt_mutex", None),
    # PREEMPT_RT: spinlock_t is a sleeping lock built on rt_mutex_base
    (r"^(rt_spin_lock(_nested|_nest_lock)?)$", "spinlock", None),
]
_LOCK_RES = [(re.compile(p), k, m) for p, k, m in _LOCK_FUNCS]
_OTHER = [
    (re.compile(r"^(wait_for_completion\w*|__wait_for_common|wait_for_common\w*|"
                r"do_wait_for_common)$"), "completion"),
    (re.compile(r"^(io_schedule\w*|folio_wait\w*|wait_on_page_bit\w*|__lock_page\w*|"
                r"__folio_lock\w*|bit_wait_io|out_of_line_wait_on_bit\w*|"
                r"__wait_on_buffer|wait_on_buffer|blk_mq_get_tag|__bio_wait\w*|"
                r"submit_bio_wait)$"), "io"),
]



@FRAME_KINDS.memo
def classify_function(name: str) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """Return (lock kind, mode, other kind) for a frame function name: lock kind and
    mode ('reader'/'writer'/None) for a lock acquire path, or other kind
    ('completion'/'io') for other blocking waits; (None, None, None) otherwise."""
    base = CLONE_SUFFIX.sub("", name or "")
    for rx, kind, mode in _LOCK_RES:
        if rx.match(base):
            return kind, mode, None
    for rx, other in _OTHER:
        if rx.match(base):
            return None, None, other
    return None, None, None


def classify_stack(frames):
    """Return (lock frame, lock kind, mode, other) for a task's frames, innermost first.

    The innermost lock slow-path frame names the lock kind (and the first mode any frame
    of that path tells); when there is none, ``other`` is (kind, frame) of the first
    completion/io wait, or ('other', frame) of the first non-scheduler frame, or None.
    """
    lock, kind, mode, first = None, None, None, None
    for f in frames:
        k, m, o = classify_function(f.function)
        if k is not None:
            if lock is None:
                lock, kind = f, k
            elif kind == "rt_mutex" and k != kind:
                kind = k        # a sleeping lock built on rt_mutex (PREEMPT_RT)
            if m is not None and mode is None and k == kind:
                mode = m
            continue
        if lock is not None:
            break          # first frame above the lock path: the caller
        if o is not None:
            return None, None, None, (o, f)
        if f.function in SCHED_FUNCS or CLONE_SUFFIX.sub("", f.function) in SCHED_FUNCS:
            continue
        if first is None:
            first = ("other", f)
    if lock is not None:
        return lock, kind, mode, None
    return None, None, None, first
