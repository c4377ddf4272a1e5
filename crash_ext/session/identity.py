"""Which dump this session reads: the identity every JSON document names, and the files
crash-ext must never write."""

import re
from ..compat import Dict, List, Optional

from ..core.caches import DUMP_IDENTITY
from .taskview import is_live

__all__ = ["dump_identity", "protected_files"]

_SYS = re.compile(r"^\s*(KERNEL|DUMPFILE|RELEASE):\s+(\S+)", re.M)
_VERSION = re.compile(r"^\s*program_version:\s+(\S+)", re.M)


def dump_identity(port) -> Dict[str, Optional[str]]:
    """Return the session's identity: ``kernel_release`` (``sys`` RELEASE),
    ``crash_version`` (``help -p`` program_version), ``vmcore`` and ``vmlinux`` (the
    files crash opened, ``sys`` DUMPFILE and KERNEL), ``live`` (True when crash reads the
    running kernel: answers may change between two reads).  Asked of crash once per port;
    a value crash does not print is None.  Never raises for a crash error."""
    got = DUMP_IDENTITY.peek(port)
    if got is not None:
        return dict(got)
    sys_text = ver_text = ""
    try:
        sys_text = port.command("sys")
    except Exception:   # noqa: BLE001 - an identity crash cannot give is null, not fatal
        pass
    try:
        ver_text = port.command("help -p")
    except Exception:   # noqa: BLE001
        pass
    found = dict(m.group(1, 2) for m in _SYS.finditer(sys_text))
    v = _VERSION.search(ver_text)
    got = {"kernel_release": found.get("RELEASE"),
           "crash_version": v.group(1) if v else None,
           "vmcore": found.get("DUMPFILE"), "vmlinux": found.get("KERNEL"),
           "live": is_live(sys_text) if sys_text else None}
    DUMP_IDENTITY.put(port, got)    # a port that cannot be held weakly asks again
    return dict(got)


def live_system(port) -> bool:
    """Return True when crash reads a running kernel (``sys`` names no dump file, or a
    device or ``/proc`` file as its dump: :func:`dump_identity`'s ``live``); False on a
    dump or when crash does not say."""
    return bool(dump_identity(port)["live"])


def protected_files(port) -> List[str]:
    """Return the paths crash-ext must never write for ``port``'s session: its vmlinux
    and vmcore (adapter attributes), the KERNEL and DUMPFILE lines of crash's ``sys``
    and the object files ``mod`` lists.  Best effort; never raises."""
    out = []  # type: List[str]
    for v in (port.vmlinux, port.vmcore):
        if isinstance(v, str) and v:
            out.append(v)
    out.extend(p for p in port.module_files or () if isinstance(p, str))
    for cmd, rx in (("sys", r"^\s*(?:KERNEL|DUMPFILE):\s+(\S+)"),
                    ("mod", r"\s(/\S+\.ko(?:\.debug)?)\s*$")):
        try:
            text = port.command(cmd)
        except Exception:   # noqa: BLE001 - a session without them protects the rest
            continue
        for line in text.splitlines():
            m = re.search(rx, line)
            if m:
                out.append(m.group(1))
    return out
