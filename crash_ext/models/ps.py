"""Parse crash's ``ps`` table into :class:`PsEntry` records.

Handles the crash 8 layouts (``"      PID    PPID  CPU       TASK        ST  %MEM ..."``
with 7-wide pid columns, and the narrower form older crash and the help text print)
and the RHEL6-era crash 5/6/7 layout (``"   PID  PPID  CPU       TASK        ST ..."``):
all are the same tokens separated by blanks, so rows are matched by shape, not by
column position.  A row may start with ``>`` (the task is active on its cpu) or ``-``
(active on an offline cpu).  Kernel threads print their comm in brackets.

Lines that are not task rows (headers, blank lines, crash errors, ``ps -t`` or
``ps -S`` output) are ignored.
"""

import re
from ..compat import Iterable, List, NamedTuple, Optional, Union

__all__ = ["PsEntry", "parse_ps", "parse_ps_line"]


class PsEntry(NamedTuple):
    """One row of ``ps``.

    ``cpu`` is None when crash printed ``?``; ``vsz``/``rss`` are KiB as crash prints
    them; ``comm`` is without the brackets crash puts around kernel threads' names,
    ``kthread`` says whether they were there; ``active`` is True for ``>`` / ``-`` rows
    (``offline`` True only for ``-``).  A row known only from a back trace's header
    (see :class:`~crash_ext.session.snapshot.Snapshot`) has ``ppid``, ``mem_pct``,
    ``vsz`` and ``rss`` None.
    """

    pid: int
    ppid: int
    cpu: Optional[int]
    task: int
    state: str
    mem_pct: float
    vsz: int
    rss: int
    comm: str
    active: bool = False
    kthread: bool = False
    offline: bool = False


_ROW = re.compile(
    r"^\s*(?P<mark>[>-])?\s*"
    r"(?P<pid>\d+)\s+(?P<ppid>\d+)\s+(?P<cpu>\d+|\?)\s+"
    r"(?P<task>(?:0x)?[0-9a-fA-F]+)\s+"
    r"(?P<state>[A-Z?]{2}|TASK_[A-Z_|]+|\(unknown\))\s+"
    r"(?P<mem>\d+(?:\.\d+)?)\s+(?P<vsz>\d+)\s+(?P<rss>\d+)"
    r"(?:\s(?P<comm>.*))?$"
)


def parse_ps_line(line: str) -> Optional[PsEntry]:
    """Return the :class:`PsEntry` for one ``ps`` row, or None if ``line`` is not one."""
    m = _ROW.match(line.rstrip("\r\n"))
    if not m:
        return None
    # crash separates RSS and COMM by two blanks (three in some versions' ps -A); keep
    # trailing blanks, which can be part of a comm.
    raw = (m.group("comm") or "").lstrip(" ")
    kthread = len(raw) >= 2 and raw.startswith("[") and raw.endswith("]")
    comm = raw[1:-1] if kthread else raw
    cpu = m.group("cpu")
    mark = m.group("mark")
    return PsEntry(
        pid=int(m.group("pid")),
        ppid=int(m.group("ppid")),
        cpu=None if cpu == "?" else int(cpu),
        task=int(m.group("task"), 16),
        state=m.group("state"),
        mem_pct=float(m.group("mem")),
        vsz=int(m.group("vsz")),
        rss=int(m.group("rss")),
        comm=comm,
        active=mark is not None,
        kthread=kthread,
        offline=mark == "-",
    )


def parse_ps(text: Union[str, Iterable[str]]) -> List[PsEntry]:
    """Return the task rows of ``ps`` output ``text`` (a string or lines), in order.

    Rows under a ``KSTACKP`` header (``ps -s``) are skipped: their address column is a
    stack pointer, not a task.  Never raises on odd input; unparseable lines are dropped.
    """
    lines = text.splitlines() if isinstance(text, str) else list(text)
    out = []  # type: List[PsEntry]
    kstackp = False
    for line in lines:
        if "PPID" in line and "COMM" in line:
            kstackp = "KSTACKP" in line
            continue
        if kstackp:
            continue
        e = parse_ps_line(line)
        if e is not None:
            out.append(e)
    return out
