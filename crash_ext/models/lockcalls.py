"""The kernel's lock primitives as calls: which function acquires or releases which kind
of lock, in which mode, and, for a conditional acquisition, which return value means
success.

Only exported, out-of-line entry points are listed (what a ``call`` in a caller's code
names); the inline wrappers (``inode_lock``, ``mmap_read_lock``, ``spin_lock``) compile to
calls of these.  The slow paths a blocked task sleeps in (``__mutex_lock``,
``rwsem_down_write_slowpath``) are :mod:`crash_ext.models.waitframes`' business.
"""

import re
from ..compat import Dict, NamedTuple, Optional


class Primitive(NamedTuple):
    """One lock call.  ``action``: 'acquire', 'release', 'try' (acquires only on its
    success path) or 'downgrade' (a held writer lock becomes a reader one); ``kind``:
    mutex, rw_semaphore, semaphore, spinlock, rwlock, rt_mutex; ``mode``: 'reader',
    'writer' or None; ``success``: for 'try', 'nonzero' or 'zero' (the return value that
    means the lock was taken); ``arg``: the argument index of the lock pointer."""
    name: str
    action: str
    kind: str
    mode: Optional[str] = None
    success: Optional[str] = None
    arg: int = 0


_TABLE = {}  # type: Dict[str, Primitive]


def _add(names, action, kind, mode=None, success=None):
    for n in names.split():
        _TABLE[n] = Primitive(n, action, kind, mode, success)


_add("mutex_lock mutex_lock_nested mutex_lock_io mutex_lock_io_nested "
     "_mutex_lock_nest_lock", "acquire", "mutex")
_add("mutex_lock_interruptible mutex_lock_interruptible_nested mutex_lock_killable "
     "mutex_lock_killable_nested ww_mutex_lock ww_mutex_lock_interruptible "
     "_mutex_lock_killable", "try", "mutex", success="zero")
_add("mutex_trylock _mutex_trylock_nest_lock", "try", "mutex", success="nonzero")
_add("mutex_unlock ww_mutex_unlock", "release", "mutex")
_add("down_read down_read_nested down_read_non_owner", "acquire", "rw_semaphore", "reader")
_add("down_read_killable down_read_killable_nested down_read_interruptible", "try",
     "rw_semaphore", "reader", "zero")
_add("down_read_trylock", "try", "rw_semaphore", "reader", "nonzero")
_add("down_write down_write_nested _down_write_nest_lock", "acquire", "rw_semaphore",
     "writer")
_add("down_write_killable down_write_killable_nested", "try", "rw_semaphore", "writer",
     "zero")
_add("down_write_trylock", "try", "rw_semaphore", "writer", "nonzero")
_add("up_read up_read_non_owner", "release", "rw_semaphore", "reader")
_add("up_write", "release", "rw_semaphore", "writer")
_add("downgrade_write", "downgrade", "rw_semaphore", "reader")
_add("down", "acquire", "semaphore")
# down_trylock returns 0 when it took the semaphore (the opposite of mutex_trylock)
_add("down_interruptible down_killable down_timeout down_trylock", "try", "semaphore",
     success="zero")
_add("up", "release", "semaphore")
_add("_raw_spin_lock _raw_spin_lock_nested _raw_spin_lock_irq _raw_spin_lock_irqsave "
     "_raw_spin_lock_irqsave_nested _raw_spin_lock_bh _raw_spin_lock_nest_lock "
     "rt_spin_lock rt_spin_lock_nested rt_spin_lock_nest_lock", "acquire", "spinlock")
_add("_raw_spin_trylock _raw_spin_trylock_bh rt_spin_trylock", "try", "spinlock",
     success="nonzero")
_add("_raw_spin_unlock _raw_spin_unlock_irq _raw_spin_unlock_irqrestore "
     "_raw_spin_unlock_bh rt_spin_unlock", "release", "spinlock")
_add("_raw_read_lock _raw_read_lock_irq _raw_read_lock_irqsave _raw_read_lock_bh "
     "rt_read_lock", "acquire", "rwlock", "reader")
_add("_raw_write_lock _raw_write_lock_irq _raw_write_lock_irqsave _raw_write_lock_bh "
     "_raw_write_lock_nested rt_write_lock", "acquire", "rwlock", "writer")
_add("_raw_read_trylock rt_read_trylock", "try", "rwlock", "reader", "nonzero")
_add("_raw_write_trylock rt_write_trylock", "try", "rwlock", "writer", "nonzero")
_add("_raw_read_unlock _raw_read_unlock_irq _raw_read_unlock_irqrestore "
     "_raw_read_unlock_bh rt_read_unlock", "release", "rwlock", "reader")
_add("_raw_write_unlock _raw_write_unlock_irq _raw_write_unlock_irqrestore "
     "_raw_write_unlock_bh rt_write_unlock", "release", "rwlock", "writer")
_add("rt_mutex_lock rt_mutex_lock_nested", "acquire", "rt_mutex")
_add("rt_mutex_lock_interruptible rt_mutex_lock_killable", "try", "rt_mutex",
     success="zero")
_add("rt_mutex_trylock", "try", "rt_mutex", success="nonzero")
_add("rt_mutex_unlock", "release", "rt_mutex")

#: the release calls of each kind, for evidence texts ("no up before ...")
RELEASES = {}  # type: Dict[str, str]
for _p in _TABLE.values():
    if _p.action == "release" and _p.kind not in RELEASES:
        RELEASES[_p.kind] = _p.name
RELEASES["rw_semaphore"] = "up_read/up_write"

_SUFFIX = re.compile(r"\+(0x[0-9a-fA-F]+|\d+)$")


def primitive(name: Optional[str]) -> Optional[Primitive]:
    """Return the Primitive a call target named ``name`` is (``down``,
    ``mutex_lock+0``), or None when it is no lock primitive."""
    if not name:
        return None
    return _TABLE.get(_SUFFIX.sub("", name))


def all_primitives():
    """Return every known Primitive (for tests and documentation)."""
    return list(_TABLE.values())
