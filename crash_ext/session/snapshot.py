"""A read-once view of the tasks of a dump: ``ps`` and back traces, each fetched once.

Analyses that look at many tasks (deadlock, ``argrecover -u``, candidate holders in
whoholds) share one Snapshot so that every stack is read from crash once.
"""

import contextlib
import gc
from ..compat import Dict, Iterable, List, Optional

from ..models.btlazy import parse_backtraces_lazy
from ..models.btstream import BacktraceStream, StackText, count_headers, stack_span
from ..models.ps import PsEntry, parse_ps
from ..models.stack import Backtrace, parse_backtraces
from ..core.errors import CrashCommandError
from ..core.port import Port
from ..core.results import TaskRef


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


def _ref_of(e: PsEntry) -> TaskRef:
    return TaskRef(task=e.task, pid=e.pid, comm=e.comm, state=e.state, cpu=e.cpu)


class Snapshot:
    """Tasks and their stacks, read lazily from ``port`` and cached.

    The whole task list (``ps``) is read only when something needs all tasks; the tasks
    of a state come from the headers of ``foreach STATE bt -f`` when every header line
    of its text was read, and single tasks are looked up with ``ps ADDR ...``.
    """

    #: task addresses per ``ps ADDR ...`` command
    LOOKUP_CHUNK = 64

    def __init__(self, port: Port):
        self.port = port
        self._tasks = None  # type: Optional[List[PsEntry]]
        self._by_pid = {}  # type: Dict[int, PsEntry]
        self._by_task = {}  # type: Dict[int, PsEntry]
        self._refs = {}  # type: Dict[int, TaskRef]
        self._not_tasks = set()  # type: set
        self._in_state = {}  # type: Dict[str, List[PsEntry]]
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
        e = self._by_task.get(addr)
        if e is None and self._tasks is None and addr not in self._not_tasks:
            self.look_up([addr])
            e = self._by_task.get(addr)
        return e

    def look_up(self, addrs: Iterable[int]) -> None:
        """Learn the ``ps`` rows of the task addresses in ``addrs`` not known yet, with
        ``ps ADDR ...`` (several addresses per command); an address crash rejects is
        remembered as not a task."""
        todo = sorted({int(a) for a in addrs if a not in self._by_task and
                       a not in self._not_tasks and 0 < a < 1 << 64})
        if not todo or self._tasks is not None:
            return
        cmds = ["ps " + " ".join("%x" % a for a in todo[i:i + self.LOOKUP_CHUNK])
                for i in range(0, len(todo), self.LOOKUP_CHUNK)]
        outs = self.port.batch(cmds, check=False) if self.port.batches_commands \
            and len(cmds) > 1 else None
        if outs is None:
            outs = []
            for c in cmds:
                try:
                    outs.append(self.port.command(c))
                except CrashCommandError as e:     # some address was not a task
                    outs.append(getattr(e, "output", "") or "")
        for out in outs:
            for e in parse_ps(out if isinstance(out, str) else ""):
                self._by_task.setdefault(e.task, e)
        self._not_tasks.update(a for a in todo if a not in self._by_task)

    def ref(self, addr: int) -> TaskRef:
        """Return a TaskRef for task_struct ``addr`` (pid/comm None when ps lacks it):
        the same object each time for a task ps lists, so callers must not change it."""
        r = self._refs.get(addr)
        if r is not None:
            return r
        e = self.by_task(addr)
        if e is None:
            return TaskRef(task=addr)
        r = self._refs[addr] = _ref_of(e)
        return r

    def in_state(self, states: Iterable[str]) -> List[PsEntry]:
        """Return the tasks whose ps state is one of ``states`` (e.g. 'UN')."""
        want = list(states)
        if self._tasks is None and all(s in self._in_state for s in want):
            return [e for s in want for e in self._in_state[s]]
        return [t for t in self.tasks() if t.state in set(want)]

    def _header_entry(self, bt: Backtrace, state: str) -> PsEntry:
        """Return the ps row of ``bt``'s task: the one known, else one made from its
        header (``ppid``, ``mem_pct``, ``vsz`` and ``rss`` None)."""
        return self._by_task.get(bt.task) or PsEntry(
            pid=bt.pid, ppid=None, cpu=bt.cpu, task=bt.task, state=state, mem_pct=None,
            vsz=None, rss=None, comm=bt.command or "")

    def _learn_headers(self, state: str, bts: List[Backtrace], text: str,
                       made: Dict[int, PsEntry], headers: Optional[int] = None) -> bool:
        """Know the tasks of ``state`` from back-trace headers (:meth:`_header_entry`;
        ``made``: those already made) when each header line of ``text`` (the
        ``foreach`` answer they were read from; ``headers``: how many, when counted
        already) gave one.  Returns whether they did.

        crash's ``foreach STATE`` prints a header for every task of the state before
        its back trace, even when the back trace then fails (``print_task_header`` in
        its task.c), so those headers list the state's tasks -- what ``ps`` would."""
        entries = []  # type: List[PsEntry]
        seen = set()
        for bt in bts:
            if bt.task is None or bt.pid is None or bt.task in seen:
                continue
            seen.add(bt.task)
            e = made.get(bt.task)
            entries.append(e if e is not None else self._header_entry(bt, state))
        if headers is None:
            headers = count_headers(text)
        if headers != len(entries):
            return False        # some header was not read: ps will tell the tasks
        for e in entries:
            self._by_task.setdefault(e.task, e)
        self._in_state[state] = entries
        return True

    def backtrace(self, addr: int) -> Backtrace:
        """Return ``bt -f`` of task ``addr`` (cached); raises CrashCommandError."""
        bt = self._bt.get(addr)
        if bt is None:
            bt = parse_backtraces(self.port.command("bt -f %#x" % addr))[0]
            self._bt[addr] = bt
        return bt

    def backtraces(self, state: str = "UN", on_task=None) -> Dict[int, Backtrace]:
        """Return {task address: Backtrace} for every task in ``state``, from one
        ``foreach STATE bt -f``; an empty dict when no task is in that state.

        ``on_task``: called once with each back trace of the state -- while crash is
        still printing the next ones when the port can stream -- before this returns."""
        told = set()  # type: set
        if state not in self._states_read:
            cmd = "foreach %s bt -f" % state
            stream = self.port.command_stream if self.port.streams_commands else None
            made = {}  # type: Dict[int, PsEntry]
            refs = {}  # type: Dict[int, TaskRef]   # their TaskRefs (see ref)
            spans = []  # type: List[Optional[tuple]]   # for StackText, of the same
            headers = None  # type: Optional[int]

            def read_header(bt):    # and on_task, while crash prints the next tasks
                if bt.task is not None and bt.pid is not None and bt.task not in made:
                    e = made[bt.task] = self._header_entry(bt, state)
                    refs[bt.task] = _ref_of(e)
                spans.append(stack_span(bt))
                if on_task is not None:
                    on_task(bt)
            with no_gc():
                if stream is not None:
                    # read each task while crash prints the next ones
                    reader = BacktraceStream(read_header)
                    try:
                        text = stream(cmd, reader.feed)
                    except CrashCommandError:
                        text = ""   # crash says so when no task is in that state
                    bts = reader.finish(text)
                    told = reader.told
                    headers = reader.headers
                else:
                    try:
                        text = self.port.command(cmd)
                    except CrashCommandError:
                        text = ""
                    bts = parse_backtraces_lazy(text)
            for bt in bts:
                if bt.task is not None:
                    self._bt[bt.task] = bt
            same = len(spans) == len(bts) and all(
                sp is None or sp[2] is bt for sp, bt in zip(spans, bts))
            self._stack_texts.append(StackText(bts, spans if same else None))
            self._states_read.add(state)
            if self._tasks is None and self._learn_headers(state, bts, text, made,
                                                            headers):
                for t, r in refs.items():
                    self._refs.setdefault(t, r)
        res = {t.task: self._bt[t.task] for t in self.in_state([state]) if t.task in self._bt}
        if on_task is not None:
            for bt in res.values():
                if id(bt) not in told:
                    on_task(bt)
        return res

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
        self._base = port.base_port
        self._port = port
        self._snap = snapshot
        self._blocks = {}  # type: Dict[int, bytes]

    def _printed(self, addr: int, size: int) -> Optional[bytes]:
        """Return the bytes at ``addr`` when the back traces print all of them."""
        start = addr & ~7
        n = (addr + size - start + 7) // 8
        words = self._snap.stack_word_reads(start, n)
        if words is None:
            return None
        data = b"".join(w.to_bytes(8, "little") for w in words)
        return data[addr - start:addr - start + size]

    def _blocks_of(self, addr: int, size: int) -> List[int]:
        """Return the BLOCK-aligned blocks a range covers (at most two, else [])."""
        first = addr & ~(self.BLOCK - 1)
        last = (addr + size - 1) & ~(self.BLOCK - 1)
        return [first] if first == last else ([first, last] if last == first +
                                                self.BLOCK else [])

    def read(self, addr: int, size: int) -> bytes:
        addr, size = int(addr), int(size)
        if size > 0 and 0 <= addr and addr + size <= 1 << 64:
            got = self._printed(addr, size)
            if got is not None:
                return got
            blks = self._blocks_of(addr, size)
            if blks:
                missing = [b for b in blks if b not in self._blocks]
                if missing:
                    self._fetch(missing)
                data = b"".join(self._blocks[b] for b in blks)
                if len(data) == self.BLOCK * len(blks):
                    off = addr - blks[0]
                    return data[off:off + size]
        return self._port.read(addr, size)

    def _fetch(self, blocks: List[int]) -> None:
        """Read ``blocks`` (one exchange when the port can); an unreadable block is
        kept empty (reads in it then go to the port one by one)."""
        got = self._port.read_many([(b, self.BLOCK) for b in blocks])
        for b, data in zip(blocks, got):
            self._blocks[b] = data or b""

    def read_many(self, ranges):
        """Return :meth:`read` of each range (None where unreadable); the blocks none of
        the printed stacks hold are fetched together first."""
        need = []  # type: List[int]
        for addr, size in ranges:
            addr, size = int(addr), int(size)
            if size <= 0 or addr < 0 or self._printed(addr, size) is not None:
                continue
            need.extend(b for b in self._blocks_of(addr, size)
                        if b not in self._blocks and b not in need)
        if need:
            self._fetch(need)
        return Port.read_many(self, ranges)

    def read_u64(self, addr: int) -> int:
        words = self._snap.stack_word_reads(addr, 1) if addr % 8 == 0 else None
        if words is not None:
            return words[0]
        return int.from_bytes(self.read(addr, 8), "little")

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

    # the optional capabilities: the port underneath's

    @property
    def base_port(self) -> Port:
        return self._base

    @property
    def batches_commands(self) -> bool:  # type: ignore[override]
        return self._port.batches_commands

    @property
    def streams_commands(self) -> bool:  # type: ignore[override]
        return self._port.streams_commands

    @property
    def session_identity(self):  # type: ignore[override]
        return self._port.session_identity

    @property
    def vmlinux(self):  # type: ignore[override]
        return self._port.vmlinux

    @property
    def vmcore(self):  # type: ignore[override]
        return self._port.vmcore

    @property
    def module_files(self):  # type: ignore[override]
        return self._port.module_files

    @property
    def startup_output(self):  # type: ignore[override]
        return self._port.startup_output

    def batch(self, cmds, check=True, timeout=None, on_text=None):
        return self._port.batch(cmds, check=check, timeout=timeout, on_text=on_text)

    def command_stream(self, cmd, on_text, check=True, timeout=None):
        return self._port.command_stream(cmd, on_text, check=check, timeout=timeout)

    def prefetch_structs(self, type_names) -> None:
        self._port.prefetch_structs(type_names)

    def prefetch_symbols(self, addrs) -> None:
        self._port.prefetch_symbols(addrs)

    def enum_value(self, name: str):
        return self._port.enum_value(name)

    def memory_fixed(self) -> bool:
        return self._port.memory_fixed()

    def crash_version(self):
        return self._port.crash_version()
