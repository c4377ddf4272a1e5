"""What a dump's kernel recorded about its own end: the panic, the panic task, and the
tasks its hung-task detector reported.

A dump a machine wrote itself (kdump) follows a panic: crash's ``sys`` prints its
``PANIC:`` line, and panic() printed ``CPU: N PID: P Comm: C`` (6.12: ``CPU: N UID: U
PID: P Comm: C``) to the kernel's log right after ``Kernel panic - not syncing``; the
hung-task detector, before panicking, logged ``INFO: task NAME:PID blocked for more than
N seconds.`` for each task it found (up to ``hung_task_warnings``).  A QEMU snapshot or
a live kernel has none of these: :func:`panic_facts` then says there was no panic.

Each fact is read from crash's own text (``sys``, ``log``), never inferred.  Inside crash
too: only ``re`` from the stdlib.
"""

import re

from ..core.errors import CrashCommandError

_PANIC = re.compile(r"^\s*PANIC:\s*(.*?)\s*$", re.M)
_KPANIC = re.compile(r"Kernel panic - not syncing: ?(.*)")
_CPU_LINE = re.compile(r"CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (.+?)"
                       r"(?: Kdump: \S+)?(?: (?:Not t|T)ainted\b.*)?$")
_HUNG = re.compile(r"INFO: task (.+):(\d+) blocked for more than (\d+) seconds\.")


class PanicFacts:
    """``reason`` (crash's PANIC line, without quotes; None: no panic), ``pid``,
    ``comm``, ``cpu`` of the panic task (from the log; None when not found), ``hung``:
    {pid: (comm, seconds)} of the hung-task detector's reports."""

    def __init__(self, reason=None, pid=None, comm=None, cpu=None, hung=None):
        self.reason = reason
        self.pid = pid
        self.comm = comm
        self.cpu = cpu
        self.hung = hung or {}

    def header_lines(self):
        """Return the lines a verb's header says about the panic (none without one)."""
        if not self.reason:
            return []
        who = ("PID %d (%s) on CPU %s" % (self.pid, self.comm, self.cpu)
               if self.pid is not None else "task not found in the log")
        out = ["PANIC: %s; panic task: %s" % (self.reason, who)]
        if self.hung:
            out.append("hung-task detector reported %d task%s: %s" % (
                len(self.hung), "" if len(self.hung) == 1 else "s",
                ", ".join("%d (%s)" % (p, c) for p, (c, _) in sorted(self.hung.items()))))
        return out

    def hung_evidence(self, pid):
        """Return the hung-task detector's report of ``pid`` as evidence, or None."""
        if pid not in self.hung:
            return None
        comm, secs = self.hung[pid]
        return "hung-task detector (kernel log): task %s:%d blocked for more than %d " \
               "seconds" % (comm, pid, secs)

    def to_json(self):
        return {"reason": self.reason, "pid": self.pid, "comm": self.comm, "cpu": self.cpu,
                "hung_tasks": [{"pid": p, "comm": c, "seconds": s}
                               for p, (c, s) in sorted(self.hung.items())]}


def parse_panic(sys_text, log_text):
    """Return the PanicFacts of crash's ``sys`` and ``log`` texts."""
    reason = None
    m = _PANIC.search(sys_text or "")
    if m and m.group(1) and m.group(1) not in ("(none)", '""'):
        reason = m.group(1).strip('"').strip()
    facts = PanicFacts(reason)
    lines = (log_text or "").splitlines()
    panic_at = None
    for i, line in enumerate(lines):
        h = _HUNG.search(line)
        if h:
            facts.hung[int(h.group(2))] = (h.group(1), int(h.group(3)))
        if _KPANIC.search(line):
            panic_at = i
    if panic_at is not None:
        if not facts.reason:
            facts.reason = _KPANIC.search(lines[panic_at]).group(1).strip()
        for line in lines[panic_at + 1:panic_at + 6]:
            c = _CPU_LINE.search(line)
            if c:
                facts.cpu, facts.pid = int(c.group(1)), int(c.group(2))
                facts.comm = c.group(3).strip()
                break
    return facts


def panic_facts(port):
    """Return the PanicFacts of ``port``'s dump (no panic: ``reason`` None).  A crash
    command that fails here leaves the facts empty: the verbs answer without them."""
    try:
        sys_text = port.command("sys")
    except CrashCommandError:
        sys_text = ""
    if "PANIC:" not in sys_text:
        return PanicFacts()
    try:
        log_text = port.command("log")
    except CrashCommandError:
        log_text = ""
    return parse_panic(sys_text, log_text)


def is_panic_task(port, pid):
    """Return True when ``pid`` is the panic task of ``port``'s dump (its registers are
    the ones the kernel saved at the panic, which crash reads from the dump)."""
    return pid is not None and panic_facts(port).pid == pid
