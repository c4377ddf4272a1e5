"""Whether crash reads the running kernel: the one rule every layer asks.

crash reads a live system when it is given no dump file, a device (``/dev/crash``,
``/dev/mem``) or ``/proc/kcore``; its ``sys`` then prints no ``DUMPFILE:`` or that file.
(pykdump's own ``sys_info.livedump`` looks for ``/dev/`` only, so it calls a session on
``/proc/kcore`` a dump: we do not take its answer.)
"""

from ..compat import Optional

#: where a "dump file" is the running kernel's memory
LIVE_PREFIXES = ("/dev/", "/proc/")


def reads_running_kernel(dumpfile: Optional[str]) -> bool:
    """Return True when ``dumpfile`` (the file crash reads memory from; None when it was
    given none) is the running kernel's memory, False for a dump file."""
    return dumpfile is None or dumpfile.startswith(LIVE_PREFIXES)
