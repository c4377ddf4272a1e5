"""What ``deadlock`` says about the panic that made the dump (analyses/panic.py): a
header line naming the panic and the panic task, the hung-task detector's report as
evidence on each task it named, and the same in JSON (``panic``; ``hung_task`` on
tasks).  Nothing on a dump without a panic (QEMU's snapshot, a live kernel)."""

from ..compat import List

from ..analyses.panic import PanicFacts, panic_facts
from ..render.text import wrap


def attach_panic(port, res) -> None:
    """Read the dump's panic facts once and keep them on ``res`` (a WaitFor)."""
    res.panic = panic_facts(port)


def _facts(res) -> PanicFacts:
    return getattr(res, "panic", None) or PanicFacts()


def panic_header(res, cols: int) -> List[str]:
    """Return the header lines about the panic (none without one)."""
    out = []  # type: List[str]
    for line in _facts(res).header_lines():
        out.extend(wrap(line, cols, "", "  "))
    return out


def panic_notes(res, task, cols: int, indent: str) -> List[str]:
    """Return the lines under a task's header: the hung-task detector's report of it."""
    ev = _facts(res).hung_evidence(task.pid) if task.pid is not None else None
    return wrap(ev, cols, indent, indent + "  ") if ev else []


def panic_task_json(res, entry: dict) -> None:
    """Add ``hung_task`` (the detector's report, or None) to a task's JSON entry."""
    pid = entry.get("task", {}).get("pid")
    entry["hung_task"] = _facts(res).hung_evidence(pid) if pid is not None else None


def panic_json(res):
    """Return the ``panic`` object of the JSON document (None without a panic)."""
    f = _facts(res)
    return f.to_json() if f.reason else None
