"""A read-once view of the tasks of a dump: ``ps`` and back traces, each fetched once.

Analyses that look at many tasks (deadlock, ``argrecover -u``, candidate holders in
whoholds) share one Snapshot so that every stack is read from crash once.
"""

from typing import Dict, Iterable, List, Optional

from ..models.ps import PsEntry, parse_ps
from ..models.stack import Backtrace, parse_backtraces
from ..port import CrashCommandError, Port
from .results import TaskRef


class Snapshot:
    """Tasks and their stacks, read lazily from ``port`` and cached."""

    def __init__(self, port: Port):
        self.port = port
        self._tasks = None  # type: Optional[List[PsEntry]]
        self._by_pid = {}  # type: Dict[int, PsEntry]
        self._by_task = {}  # type: Dict[int, PsEntry]
        self._bt = {}  # type: Dict[int, Backtrace]
        self._states_read = set()

    def tasks(self) -> List[PsEntry]:
        """Return every task ``ps`` lists (threads included), read once."""
        if self._tasks is None:
            self._tasks = parse_ps(self.port.command("ps"))
            for t in self._tasks:
                self._by_pid.setdefault(t.pid, t)
                self._by_task[t.task] = t
        return self._tasks

    def by_pid(self, pid: int) -> Optional[PsEntry]:
        """Return the task with ``pid`` (the thread-group leader's row for pid 0 aside)."""
        self.tasks()
        return self._by_pid.get(pid)

    def by_task(self, addr: int) -> Optional[PsEntry]:
        """Return the task whose task_struct is at ``addr``, or None."""
        self.tasks()
        return self._by_task.get(addr)

    def ref(self, addr: int) -> TaskRef:
        """Return a TaskRef for task_struct ``addr`` (pid/comm None when ps lacks it)."""
        e = self.by_task(addr)
        if e is None:
            return TaskRef(task=addr)
        return TaskRef(task=e.task, pid=e.pid, comm=e.comm, state=e.state, cpu=e.cpu)

    def in_state(self, states: Iterable[str]) -> List[PsEntry]:
        """Return the tasks whose ps state is one of ``states`` (e.g. 'UN')."""
        want = set(states)
        return [t for t in self.tasks() if t.state in want]

    def backtrace(self, addr: int) -> Backtrace:
        """Return ``bt -f`` of task ``addr`` (cached); raises CrashCommandError."""
        bt = self._bt.get(addr)
        if bt is None:
            bt = parse_backtraces(self.port.command("bt -f %#x" % addr))[0]
            self._bt[addr] = bt
        return bt

    def backtraces(self, state: str = "UN") -> Dict[int, Backtrace]:
        """Return {task address: Backtrace} for every task in ``state``, from one
        ``foreach STATE bt -f``; an empty dict when no task is in that state."""
        if state not in self._states_read:
            try:
                text = self.port.command("foreach %s bt -f" % state)
            except CrashCommandError:
                text = ""   # crash says so when no task is in that state
            for bt in parse_backtraces(text):
                if bt.task is not None:
                    self._bt[bt.task] = bt
            self._states_read.add(state)
        return {t.task: self._bt[t.task] for t in self.in_state([state]) if t.task in self._bt}
