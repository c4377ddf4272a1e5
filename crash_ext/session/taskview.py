"""Does crash see the kernel's tasks?  Checked before any verb answers.

A crash too old for the kernel it opens can start, print ``sys`` and answer commands,
yet list only a few tasks: Debian 12's packaged crash 8.0.2 lists 2 (the idle tasks) on
Debian 12's own 6.1 kernels, because it misreads ``struct pid``.  Every verb that walks
``ps``/``foreach`` would then say "nothing is blocked" about a dump full of deadlocked
tasks.  So the task count crash reports (``sys``: ``TASKS:``) is compared with the
kernel's own count, ``nr_threads`` (every thread with a pid; the per-CPU idle tasks,
which crash also lists, are not in it).  On a dump the two agree exactly (crash lists
``nr_threads`` + one idle task per CPU); a live system may move between the two reads,
so a few percent are allowed there.
"""

import re
from ..compat import Optional, Tuple

from ..core.caches import TASK_VIEW
from ..core.errors import CrashCannotRead, CrashCommandError, CrashExtError
from ..core.live import reads_running_kernel
from ..core.port import Port

_TASKS = re.compile(r"^\s*TASKS:\s*(\d+)\s*$", re.M)
_DUMPFILE = re.compile(r"^\s*DUMPFILE:\s*(\S+)", re.M)


def crash_task_count(sys_text: str) -> Optional[int]:
    """Return the ``TASKS:`` count of crash's ``sys`` output, None when it prints none."""
    m = _TASKS.search(sys_text)
    return int(m.group(1)) if m else None


def is_live(sys_text: str) -> bool:
    """Return True when ``sys`` names no dump file or a device / ``/proc`` file."""
    m = _DUMPFILE.search(sys_text)
    return reads_running_kernel(m.group(1) if m else None)


def kernel_task_count(port: Port) -> Optional[int]:
    """Return the kernel's ``nr_threads``, None when the symbol is missing or unreadable."""
    addr = port.symbol_address("nr_threads")
    if not addr:
        return None
    try:
        return port.read_u32(addr)
    except CrashExtError:
        return None


def task_view(port: Port) -> Tuple[Optional[int], Optional[int], bool]:
    """Return (tasks crash lists, tasks the kernel counts, live) for the port's session;
    the first is None when crash answers ``sys`` with an error.  Raises CrashDied or
    CrashTimeout when crash itself fails."""
    try:
        text = port.command("sys")
    except CrashCommandError:
        return None, None, False
    return crash_task_count(text), kernel_task_count(port), is_live(text)


def require_task_view(port: Port) -> None:
    """Return when crash sees every task the kernel counts (or when that cannot be told:
    ``sys`` fails or prints no ``TASKS:``, or ``nr_threads`` is unreadable); checked
    once per port.

    Raises CrashCannotRead naming the counts, the crash in use and what to use instead.
    """
    if TASK_VIEW.peek(port):
        return
    seen, counted, live = task_view(port)
    if seen is not None and counted is not None:
        # a live system's tasks come and go between crash's count and nr_threads (a
        # churning guest: 72 listed, 77 counted); a crash that cannot read the task
        # list misses nearly all (Debian 12's 8.0.2 on 6.1: 2 of 61)
        slack = max(8, counted // 4) if live else 0
        if seen + slack < counted:
            version = port.crash_version()
            raise CrashCannotRead(
                "%s lists %d tasks but the kernel counts %d (nr_threads): it cannot read "
                "this kernel's task list, so no answer would be trustworthy; use crash "
                ">= 8.0.4 for 6.x kernels (--crash PATH or CRASH=PATH)"
                % ("crash " + version if version else "this crash", seen, counted))
    TASK_VIEW.put(port, True)
