"""Pieces of fake ports for unit tests: what crash answers to ``ps ADDR ...`` from a
recorded ``ps`` table, and a port that knows no symbol, type or memory."""

from crash_ext.models.ps import parse_ps, parse_ps_line
from crash_ext.core.errors import CrashCommandError, MemoryReadError
from crash_ext.core.port import Port


class TextOnlyPort(Port):
    """A port whose subclasses answer commands from recorded text; it knows no symbol,
    member or type (None) and reads no memory (MemoryReadError, as crash's adapters
    raise for an unreadable address)."""

    def read(self, addr, size):
        raise MemoryReadError("invalid kernel virtual address: %x" % addr)

    def symbol_address(self, name):
        return None

    def address_symbol(self, addr):
        return None

    def member_offset(self, t, m):
        return None

    def member_type(self, t, m):
        return None

    def type_size(self, t):
        return None


def ps_lookup(ps_text, cmd):
    """Return crash's answer to ``cmd`` (``ps ADDR ...``) from ``ps_text``; raises
    CrashCommandError, as the adapters do, when the answer ends in an error line."""
    want = [int(w, 16) for w in cmd.split()[1:]]
    lines = ps_text.splitlines()
    out = [lines[0]] if lines else []
    errors = []
    by_task = {}
    for line in lines:
        e = parse_ps_line(line)
        if e is not None:
            by_task.setdefault(e.task, line)
    for a in want:
        if a in by_task:
            out.append(by_task[a])
        else:
            errors.append("ps: invalid task or pid value: %x" % a)
    text = "\n".join(errors + out) + "\n"
    if not parse_ps(text):
        raise CrashCommandError(errors[-1] if errors else "ps: no tasks")
    return text
