"""The one task word every verb takes (``whoholds -p/--held``, ``argrecover``,
``deadlock -p``): a pid, a task_struct address (or symbol), or a command name that
matches exactly one task.

    whoholds -p 99             the task with pid 99
    whoholds -p ffff8d7e...    the task whose task_struct is there
    whoholds -p rm             the one task whose command is rm (several: listed, refused)
"""

from ..compat import List
from ..core.errors import BadArgument
from ..core.port import Port
from ..core.words import shown, task_word
from ..session.snapshot import Snapshot
from ..waits.lockreport import resolve_address

#: how many tasks an ambiguous command name lists before "and N more"
LIST_MAX = 8


def check_task_word(word) -> str:
    """Return ``word`` if it can name a task (:func:`~crash_ext.core.words.task_word`);
    raises BadArgument otherwise.  Needs no dump: the verbs call it before crash starts."""
    task_word(word)
    return word


def _named(snap: Snapshot, name: str) -> List:
    """Return the ``ps`` rows whose command is ``name``, one per task, by pid."""
    seen, rows = set(), []
    for e in snap.tasks():
        if e.comm == name and e.task not in seen:
            seen.add(e.task)
            rows.append(e)
    return sorted(rows, key=lambda e: e.pid)


def resolve_task(port: Port, snap: Snapshot, word) -> int:
    """Return the task_struct address ``word`` names: a pid, a command name that
    matches exactly one task, or a task address/symbol.

    Raises BadArgument when the word is none of these, no task has that pid or lives
    at that address, or several tasks have that command (the message lists them by pid
    and says to give one)."""
    kind, v = task_word(word)
    if kind == "pid":
        e = snap.by_pid(v)
        if e is None:
            raise BadArgument("no task with pid %d" % v)
        return e.task
    if kind == "name":
        rows = _named(snap, v)
        if len(rows) == 1:
            return rows[0].task
        if len(rows) > 1:
            shown_rows = ", ".join("%d (%x)" % (e.pid, e.task) for e in rows[:LIST_MAX])
            more = " and %d more" % (len(rows) - LIST_MAX) if len(rows) > LIST_MAX else ""
            raise BadArgument("%d tasks are named %s: pid %s%s; give one pid"
                              % (len(rows), shown(v), shown_rows, more))
        try:
            a = resolve_address(port, v)
        except BadArgument:
            raise BadArgument("no task named %s (not a pid, task address or command "
                              "name of any task)" % shown(v))
    else:
        a = resolve_address(port, v)
    if snap.by_task(a) is None:
        raise BadArgument("no task at %#x (not a pid, not a task_struct address)" % a)
    return a
