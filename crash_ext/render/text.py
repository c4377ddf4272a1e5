"""Text the verbs share: how a task is introduced, how a lock is named in a sentence,
and lines wrapped to the terminal.

* :func:`task_header` -- crash's own ``PID: N  TASK: ADDR  CPU: N  COMMAND: "comm"``
  (the ``bt``/``set`` header), wherever a task is introduced;
* :func:`task_short` -- ``rm 98``, for one-line answers;
* :func:`width` / :func:`wrap` / :func:`bullets` -- the terminal's columns when output
  goes to a terminal, :data:`DEFAULT_WIDTH` otherwise (files, pipes, crash's
  redirections), so that inside and outside crash the bytes are the same.
"""

import os
import sys
import textwrap
from ..compat import List, Optional

from ..core.results import TaskRef

__all__ = ["DEFAULT_WIDTH", "width", "wrap", "bullets", "task_header", "header_lines",
           "task_short", "wait_address"]

#: columns when the output is not a terminal
DEFAULT_WIDTH = 80
_MIN_WIDTH = 40


def width(out=None) -> int:
    """Return the columns to wrap to: the terminal's when ``out`` (default stdout) is a
    terminal, else :data:`DEFAULT_WIDTH`.  Never raises."""
    out = out if out is not None else sys.stdout
    try:
        if out.isatty():
            return max(_MIN_WIDTH, os.get_terminal_size(out.fileno()).columns)
    except (AttributeError, OSError, ValueError):
        pass
    return DEFAULT_WIDTH


def wrap(text: str, cols: int, indent: str = "", hang: Optional[str] = None) -> List[str]:
    """Return ``text`` as lines of at most ``cols`` characters (a word longer than a
    line is kept whole), the first prefixed by ``indent``, the rest by ``hang``
    (default: ``indent`` + 2 spaces)."""
    if hang is None:
        hang = indent + "  "
    cols = max(cols, len(hang) + 20)
    if text and len(indent) + len(text) <= cols and text.isprintable() \
            and not text[-1].isspace():
        return [indent + text]        # what textwrap returns for a line that fits
    lines = textwrap.wrap(text, width=cols, initial_indent=indent,
                          subsequent_indent=hang, break_long_words=False,
                          break_on_hyphens=False)
    return lines or [indent.rstrip()]


def bullets(items, cols: int, indent: str = "  ") -> List[str]:
    """Return ``items`` (strings) as a bullet list (``- item``), each wrapped to ``cols``
    under its own text."""
    out = []  # type: List[str]
    for it in items:
        out.extend(wrap(it, cols, indent + "- ", indent + "  "))
    return out


def task_header(t: TaskRef, state: bool = True) -> str:
    """Return crash's task header ``PID: 98  TASK: ffff...  CPU: 0  COMMAND: "ruby"``
    (``?`` for what is unknown), with ``  [UN]`` and the time since it last ran when
    ``state`` and they are known."""
    s = 'PID: %s  TASK: %x  CPU: %s  COMMAND: "%s"' % (
        t.pid if t.pid is not None else "?", t.task, t.cpu if t.cpu is not None else "?",
        t.comm or "?")
    if state and t.state:
        s += "  [%s]" % t.state
    if state and t.last_ran:
        s += "  last ran %s ago" % t.last_ran
    return s


def header_lines(t: TaskRef, cols: int, indent: str = "", tail: str = "") -> List[str]:
    """Return crash's task header (:func:`task_header`, with state and last ran) after
    ``indent`` and followed by ``tail``, as one line when it fits ``cols``, else crash's
    header on its own line and the rest under it (2 columns in from where ``indent``
    starts, wrapped)."""
    full = indent + task_header(t) + tail
    if len(full) <= cols:
        return [full]
    rest = (task_header(t)[len(task_header(t, state=False)):].strip() + tail).strip()
    under = " " * (len(indent) - len(indent.lstrip())) + "  "   # under the label
    return [indent + task_header(t, state=False)] + (
        wrap(rest, cols, under, under + "  ") if rest else [])


def task_short(t: TaskRef) -> str:
    """Return ``comm pid`` (``rm 98``), or ``task ADDR`` when the pid is unknown."""
    if t.pid is None:
        return "task %x" % t.task
    return "%s %d" % (t.comm or "?", t.pid)


def wait_address(b) -> Optional[int]:
    """Return the address of what the :class:`~crash_ext.core.results.Blocked`
    ``b`` waits on when it is known: the lock's, or for a wait that is not a lock (a
    completion...) its :class:`~crash_ext.core.results.Wait`'s completion, else the
    first ``*_address`` field an analysis filled in.  None when
    unknown (or ``b`` is None)."""
    if b is None:
        return None
    if b.lock_address is not None:
        return b.lock_address
    w = getattr(b, "wait", None)
    if w is not None and w.completion is not None:
        return w.completion
    for name in sorted(vars(b)):
        v = getattr(b, name, None)
        if name.endswith("_address") and isinstance(v, int) and not isinstance(v, bool):
            return v
    return None
