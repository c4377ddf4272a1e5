"""Completion waits on recorded crash output: the lab's flush-work dump on the pinned 6.1.

The port answers only from what crash printed (``tests/unit/data/lab61_flushwork.json``,
recorded by tests/lab/record_fixtures.py): the stack words of the waiter's ``bt -f``,
``rd`` of the kworker's struct worker and of its kthread.data, ``struct -o`` layouts,
``sym`` and ``ps``.  A read of anything else fails, as crash would for an address it
cannot read, and the analysis must cope.  Expected values are the recording's truth: the
module's (waiter, kworker, work item, work function) and crash's (the worker, the
wq_barrier on its ``scheduled`` list, that barrier's completion, the sleeper's
swait_queue record on it).
"""

import json
import re

from crash_ext.waits import completions as WT
from crash_ext.waits.blockedon import blocked_on
from crash_ext.session.snapshot import Snapshot
from crash_ext.models.stack import parse_backtrace
from crash_ext.core.errors import CrashCommandError, MemoryReadError
from crash_ext.core.port import Port
from tests.unit.data import fixture
from tests.unit.fakecrash import ps_lookup

with open(fixture("lab61_flushwork.json")) as _f:
    R = json.load(_f)
T = R["truth"]
RESET, KWORKER = int(T["waiter_task"], 16), int(T["worker_task"], 16)


def _structs(text):
    """{type: (size, {member: (offset, type)})} from ``struct -o`` output."""
    out, cur, members = {}, None, {}
    for line in text.splitlines():
        m = re.match(r"^struct (\w+) \{$", line)
        if m:
            cur, members = m.group(1), {}
            continue
        m = re.match(r"^\s*\[(\d+)\]\s+(.*?)\s*\**(\w+)(\[\d+\])?;$", line)
        if m and cur:
            ctype = m.group(2) + (" *" if "*" in line.split("]", 1)[1] else "")
            members[m.group(3)] = (int(m.group(1)), ctype.strip())
        m = re.match(r"^SIZE: (\d+)$", line)
        if m and cur:
            out[cur] = (int(m.group(1)), members)
            cur = None
    return out


def _words(*texts):
    """{address: u64} from ``bt -f`` and ``rd -64`` word lines."""
    w = {}
    for text in texts:
        for line in text.splitlines():
            m = re.match(r"^\s*([0-9a-f]{16}):\s+((?:[0-9a-f]{16}\s*)+)", line)
            if not m:
                continue
            a = int(m.group(1), 16)
            for v in m.group(2).split():
                w[a] = int(v, 16)
                a += 8
    return w


class RecordedPort(Port):
    def __init__(self):
        self.types = _structs(R["structs"] + R["task_struct_o"])
        self.words = _words(R["bt"], R["rd"])
        for line in R["worker_task_struct"].splitlines():  # struct task_struct.M,... KWORKER
            m = re.match(r"^\s*(\w+) = 0x([0-9a-f]+),$", line)
            self.words[KWORKER + self.member_offset("task_struct", m.group(1))] = \
                int(m.group(2), 16)
        self.syms = {}
        for line in R["syms"].splitlines():
            t = line.split()
            self.syms[t[2]] = int(t[0], 16)

    def command(self, cmd):
        if cmd == "ps":
            return R["ps"]
        if cmd.startswith("ps ") and cmd.split()[1][0] != "-":
            return ps_lookup(R["ps"], cmd)
        if cmd == "help -m":
            return R["help_m"]
        if cmd.startswith("bt -f "):
            return R["bt"]
        raise CrashCommandError("%s: not recorded" % cmd.split()[0])

    def read(self, addr, size):
        out, a = b"", addr & ~7
        while a < addr + size:
            if a not in self.words:
                raise MemoryReadError("cannot read %#x" % a)
            out += self.words[a].to_bytes(8, "little")
            a += 8
        return out[addr & 7:(addr & 7) + size]

    def symbol_address(self, name):
        return self.syms.get(name)

    def address_symbol(self, addr):
        for k, v in self.syms.items():
            if v == addr:
                return k
        return None

    def member_offset(self, t, m):
        d = self.types.get(t.replace("struct ", ""))
        return d[1][m][0] if d and m in d[1] else None

    def member_type(self, t, m):
        d = self.types.get(t.replace("struct ", ""))
        return d[1][m][1] if d and m in d[1] else None

    def type_size(self, t):
        d = self.types.get(t.replace("struct ", ""))
        return d[0] if d else None


def test_struct_o_is_read_as_recorded():
    types = _structs(R["structs"])
    assert types["completion"][1]["wait"] == (8, "struct swait_queue_head")
    assert types["wq_barrier"][1]["done"][0] == 32
    assert types["worker"][1]["scheduled"][0] == 48


def test_completion_found_from_the_sleepers_own_record():
    port = RecordedPort()
    snap = Snapshot(port)
    bt = parse_backtrace(R["bt"])
    comp, how = WT.find_completion(port, snap, RESET, bt, 3)
    # the barrier on its stack (the one on the worker's scheduled list), its done
    assert comp == int(T["completion"], 16)
    assert "swait_queue record at %x" % int(T["swait_record"], 16) in how


def test_flush_work_resolves_to_the_kworker_running_the_item():
    port = RecordedPort()
    snap = Snapshot(port)
    w = WT.completion_wait(port, snap, RESET, parse_backtrace(R["bt"]), 3)
    assert w.kind == "work" and w.container == "wq_barrier %x" % int(T["wq_barrier"], 16)
    assert w.object == int(T["work"], 16)                  # the module's work item
    assert [t.pid for t in w.must_act] == [T["worker_pid"]]  # the module's kworker
    assert w.what.startswith("work item %s" % T["work_func"])
    assert "the kworker's kthread.data, through task_struct.worker_private, is this " \
        "worker" in w.evidence[-1]
    # each line names whose record it is: the waiter's, never "this task", which under
    # MUST ACT would read as the kworker
    waiter = "the waiter PID %d (%s)" % (T["waiter_pid"], T["waiter_comm"])
    assert w.evidence[0].startswith(waiter + "'s own swait_queue record")
    assert "task = " + waiter in w.evidence[1]
    assert not any("this task" in e or "its own" in e for e in w.evidence)
    # the waiter's task_struct.stack is not recorded (the kworker's is, and does not
    # hold it):
    # where says so, it does not claim the completion is nowhere
    assert w.where == ("not in a slab object or at a symbol, and on none of the task "
                       "stacks read (1 could not be read)")


def test_blocked_on_fills_the_wait():
    port = RecordedPort()
    b = blocked_on(port, RESET)
    assert b.kind == "completion" and b.function == "__wait_for_common"
    assert b.wait is not None and [t.pid for t in b.wait.must_act] == [T["worker_pid"]]


def test_unreadable_worker_leaves_the_item_unknown_not_a_guess():
    port = RecordedPort()
    worker = int(T["worker"], 16)
    for a in [a for a in port.words if worker <= a < worker + T["worker_size"]]:
        del port.words[a]
    w = WT.completion_wait(port, Snapshot(port), RESET, parse_backtrace(R["bt"]), 3)
    assert w.kind == "work" and not w.must_act and w.object is None
    assert "neither a worker's scheduled list nor a work item" in w.evidence[-1]
