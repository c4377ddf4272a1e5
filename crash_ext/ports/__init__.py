"""Adapters: implementations of :class:`crash_ext.core.port.Port`.

``crashproc.CrashProcess`` drives a ``crash`` process from outside.  This module holds
what every adapter shares: :func:`check_command`, the guard that keeps a command line
read-only before it reaches crash.
"""

import re

from ..core.errors import BadArgument

__all__ = ["check_command", "MAX_COMMAND_LEN"]

#: crash reads a command line with ``fgets(buf, 1499)``; anything longer would be cut
#: and its tail run as a second command.  Stay well below.
MAX_COMMAND_LEN = 1024

# Commands that write, leave crash, change how crash prints (our parsers depend on the
# defaults), run other programs, or read files / commands from the host.
_DENY_FIRST = {
    "wr": "writes memory",
    "q": "ends crash", "quit": "ends crash", "exit": "ends crash",
    "extend": "loads code into crash",
    "set": "changes crash's settings or context",
    "alias": "redefines commands",
    "repeat": "runs forever",
    "input": "changes input handling",
    # crash runs these through system(): host programs, not dump commands
    "vi": "runs a host program", "pwd": "runs a host program", "grep": "runs a host program",
    "cat": "runs a host program", "more": "runs a host program", "less": "runs a host program",
    "echo": "runs a host program", "ls": "runs a host program", "clear": "runs a host program",
    "sh": "runs a host program", "shell": "runs a host program",
    "epython": "runs a program", "source": "runs a script",
}

# The only commands crash-ext sends (and a few more that only read): anything else is
# refused even when no rule above names it, so a command crash adds later, or one that
# writes under another name, never reaches a live system.
_ALLOW_FIRST = {"bt", "dis", "foreach", "gdb", "help", "kmem", "list", "log", "mod",
                "mount", "p", "print", "px", "pd", "ps", "rd", "search", "struct", "union",
                "sym", "sys", "task", "whatis", "tree", "runq", "waitq", "files", "vm",
                "dev", "irq", "mach", "net", "sig", "timer", "ptov", "vtop", "eval"}
# what foreach may run per task: only looks (foreach set would change the context)
_FOREACH_ALLOWED = {"bt", "task", "files", "vm", "net", "sig", "ps"}
# mod: list, load or drop debuginfo (-s/-S/-d/-D/-t/-r); -o/-g and others are refused
_MOD_ALLOWED = {"-s", "-S", "-d", "-D", "-t", "-r"}

# gdb sub-commands that only look: anything else after ``gdb`` is refused.
_GDB_ALLOWED = {"whatis", "ptype", "print", "p", "output", "info", "list", "x",
                "disassemble", "disas"}

_BAD_CHARS = re.compile(r"[|<;`\x00-\x08\x0a-\x1f\x7f]")
# ">" redirects output; only the C member operator "->name" is let through.
_REDIRECT = re.compile(r"(?<!-)>|->(?![A-Za-z_])")
_BANG = re.compile(r"!(?!=)")
_ASSIGN = re.compile(r"(?<![=!<>])=(?!=)")


def check_command(cmd: str) -> str:
    """Return ``cmd`` stripped if it is a read-only crash command line.

    Only commands of ``_ALLOW_FIRST`` pass (``foreach`` only with a command that looks,
    ``mod`` only with its debuginfo options).  Raises BadArgument for: empty or
    over-long lines; newlines or control characters;
    pipes ``|``, redirections ``>``/``<`` (``->member`` is allowed), ``;``, backquotes; ``!`` (shell escape; ``!=``
    is allowed); commands that write, quit, load code or change settings (``wr``, ``q``,
    ``extend``, ``set``, ``alias`` ...) and host programs crash would ``system()``;
    ``rd -r`` (writes a file); ``sys -panic``; ``gdb`` other than look-only sub-commands; assignments in
    ``p``/``print``/``gdb`` expressions (``set var``-like writes, ``=`` alone).
    """
    if not isinstance(cmd, str):
        raise BadArgument("command must be a string: %r" % (cmd,))
    c = cmd.strip()
    if not c:
        raise BadArgument("empty command")
    if len(c) > MAX_COMMAND_LEN:
        raise BadArgument("command longer than %d characters" % MAX_COMMAND_LEN)
    if _BAD_CHARS.search(c):
        raise BadArgument("refused (pipe, redirection, separator or control character): %r"
                          % (cmd,))
    if _REDIRECT.search(c):
        raise BadArgument("refused (output redirection): %r" % (cmd,))
    if _BANG.search(c):
        raise BadArgument("refused (shell escape): %r" % (cmd,))
    words = c.split()
    first = words[0].lstrip("\\")
    if first in _DENY_FIRST:
        raise BadArgument("refused %r: %s" % (first, _DENY_FIRST[first]))
    if first not in _ALLOW_FIRST:
        raise BadArgument("refused %r: not one of the read-only commands crash-ext sends"
                          % first[:40])
    if first == "foreach":
        cmds = [w for w in words[1:] if w.isalpha() and w.islower() and w not in
                ("UN", "IN", "RU", "ID", "ST", "TR", "ZO", "DE", "SW", "PA", "WA", "NE",
                 "user", "kernel", "active")]
        if not cmds or cmds[0] not in _FOREACH_ALLOWED:
            raise BadArgument("refused foreach %r: only %s per task" % (
                (cmds or ["(no command)"])[0][:40], ", ".join(sorted(_FOREACH_ALLOWED))))
    if first == "mod" and len(words) > 1 and words[1] not in _MOD_ALLOWED:
        raise BadArgument("refused 'mod %s': only %s" % (words[1][:20],
                                                          " ".join(sorted(_MOD_ALLOWED))))
    if first == "rd" and any(w.startswith("-") and "r" in w for w in words[1:]):
        raise BadArgument("refused 'rd -r': writes a file")
    if first == "sys" and any(w.startswith("-p") for w in words[1:]):
        raise BadArgument("refused 'sys -panic'")
    if first == "gdb":
        sub = words[1] if len(words) > 1 else ""
        if sub not in _GDB_ALLOWED:
            raise BadArgument("refused gdb sub-command %r (only %s)"
                              % (sub, ", ".join(sorted(_GDB_ALLOWED))))
    if first in ("p", "print", "gdb", "px", "pd", "call") and _ASSIGN.search(c):
        raise BadArgument("refused: assignment in expression: %r" % (cmd,))
    if first == "call":
        raise BadArgument("refused 'call': runs code")
    return c
