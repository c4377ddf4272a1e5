"""A read-once view of the tasks of a dump: ``ps`` and back traces, each fetched once.

Analyses that look at many tasks (deadlock, ``argrecover -u``, candidate holders in
whoholds) share one Snapshot so that every stack is read from crash once.
"""

import contextlib
import gc
from typing import Dict, Iterable, List, Optional

from ..models.btlazy import BacktraceStream, StackText, parse_backtraces_lazy
from ..models.ps import PsEntry, parse_ps
from ..models.stack import Backtrace, parse_backtraces
from ..port import CrashCommandError, CrashExtError, Port
from .results import TaskRef


@contextlib.contextmanager
def no_gc():
    """Run the block with Python's cyclic garbage collector paused (as it was after).

    Reading thousands of back traces makes hundreds of thousands of objects and no
    garbage; the collector would walk all of them again and again for nothing."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Snapshot:
    """Tasks and their stacks, read lazily from ``port`` and cached."""

    def __init__(self, port: Port):
        self.port = port
        self._tasks = None  # type: Optional[List[PsEntry]]
        self._by_pid = {}  # type: Dict[int, PsEntry]
        self._by_task = {}  # type: Dict[int, PsEntry]
        self._bt = {}  # type: Dict[int, Backtrace]
        self._states_read = set()
        self._stack_texts = []  # type: List[StackText]

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
            cmd = "foreach %s bt -f" % state
            stream = getattr(self.port, "command_stream", None)
            with no_gc():
                if stream is not None:
                    # read each task while crash prints the next ones
                    reader = BacktraceStream()
                    try:
                        text = stream(cmd, reader.feed)
                    except CrashCommandError:
                        text = ""   # crash says so when no task is in that state
                    bts = reader.finish(text)
                else:
                    try:
                        text = self.port.command(cmd)
                    except CrashCommandError:
                        text = ""
                    bts = parse_backtraces_lazy(text)
            for bt in bts:
                if bt.task is not None:
                    self._bt[bt.task] = bt
            self._stack_texts.append(StackText(bts))
            self._states_read.add(state)
        return {t.task: self._bt[t.task] for t in self.in_state([state]) if t.task in self._bt}

    def stack_word_reads(self, addr: int, n: int) -> Optional[List[int]]:
        """Return the ``n`` 8-byte words at ``addr`` when the back traces read so far
        print all of them (``bt -f`` shows stack memory as it is in the dump), else
        None."""
        for st in self._stack_texts:
            got = st.read_words(addr, n)
            if got is not None:
                return got
        return None

    def reading_port(self) -> "StackReadPort":
        """Return a port that answers reads of printed stack words from the back traces
        already read and passes everything else to this snapshot's port."""
        return StackReadPort(self.port, self)


class StackReadPort(Port):
    """A :class:`Port` over another: ``read`` of stack words that a snapshot's back
    traces print is answered from that text (the same bytes crash's ``rd`` would show
    of a dump); every other call goes to the port underneath (``base_port``), so type
    and symbol answers are that port's cached ones."""

    #: other reads fetch the aligned block of this many bytes around them (never
    #: crossing a page) and keep it: a lock's fields are read one by one
    BLOCK = 128

    def __init__(self, port: Port, snapshot: Snapshot):
        self.base_port = getattr(port, "base_port", port)
        self._port = port
        self._snap = snapshot
        self._blocks = {}  # type: Dict[int, bytes]

    def read(self, addr: int, size: int) -> bytes:
        addr, size = int(addr), int(size)
        if size > 0 and 0 <= addr and addr + size <= 1 << 64:
            start = addr & ~7
            n = (addr + size - start + 7) // 8
            words = self._snap.stack_word_reads(start, n)
            if words is not None:
                data = b"".join(w.to_bytes(8, "little") for w in words)
                return data[addr - start:addr - start + size]
            blk = addr & ~(self.BLOCK - 1)
            if addr + size <= blk + self.BLOCK:
                data = self._blocks.get(blk)
                if data is None:
                    try:
                        data = self._port.read(blk, self.BLOCK)
                    except CrashExtError:
                        data = b""      # part of the block unreadable: exact reads only
                    self._blocks[blk] = data
                if data:
                    return data[addr - blk:addr - blk + size]
        return self._port.read(addr, size)

    def command(self, cmd: str) -> str:
        return self._port.command(cmd)

    def symbol_address(self, name: str):
        return self._port.symbol_address(name)

    def address_symbol(self, addr: int):
        return self._port.address_symbol(addr)

    def member_offset(self, type_name: str, member: str):
        return self._port.member_offset(type_name, member)

    def member_type(self, type_name: str, member: str):
        return self._port.member_type(type_name, member)

    def type_size(self, type_name: str):
        return self._port.type_size(type_name)

    def task_by_pid(self, pid: int):
        return self._port.task_by_pid(pid)

    def __getattr__(self, name):
        # anything else the port underneath offers (batch, ...)
        return getattr(self._port, name)
