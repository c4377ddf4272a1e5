"""Unit tests of the wait-for graph (crash_ext.waits.graph, .build) and the deadlock verb's
renderers, on hand-built Blocked / LockReport records and recorded crash text."""

import io
import json
import shutil
import subprocess

import pytest

from crash_ext.waits import graph as W
from crash_ext.waits.build import build_graph
from crash_ext.core.results import Blocked, Candidate, LockReport, TaskRef, Waiter, short_lock_name
from crash_ext.models.stack import parse_backtraces
from crash_ext.core.errors import CrashCommandError
from crash_ext.render.dot import to_dot
from tests.unit.fakecrash import TextOnlyPort, ps_lookup
from crash_ext.render import deadlock as RD
from crash_ext.verbs import deadlock as D


def T(pid, comm=None, state="UN"):
    return TaskRef(task=0xffff000000000000 + pid * 0x1000, pid=pid,
                   comm=comm or "t%d" % pid, state=state)


def waits(t, lock, ltype="mutex", func="__mutex_lock.constprop.0", frame=3):
    return Blocked(task=t, kind="lock", lock_address=lock, lock_type=ltype,
                   function=func, frame=frame, evidence=["test"])


def other(t, kind="completion", func="__wait_for_common"):
    return Blocked(task=t, kind=kind, function=func, frame=3, evidence=["test"])


def lock(addr, ltype="mutex", owner=None, waiters=(), readers=None, candidates=(),
         locked=True, where=None):
    return LockReport(address=addr, type=ltype, owner=owner,
                      owner_source="%s.owner" % ltype if owner else None,
                      waiters=[Waiter(task=w) for w in waiters], readers=readers,
                      candidates=list(candidates), locked=locked,
                      where=where or "slab cache kmalloc-256, object %x+0x58" % (addr - 0x58))


LA, LB, LC = 0xffff100000000058, 0xffff200000000058, 0xffff300000000058


def run(blocked, reports, bts=None):
    g = build_graph(blocked, {r.address: r for r in reports}, backtraces=bts)
    return W.analyse(g)


# ------------------------------------------------------------------- algorithms

def test_tarjan_is_iterative_at_depth():
    n = 20000                       # a chain far deeper than Python's recursion limit
    succ = {i: [i + 1] for i in range(n)}
    succ[n] = [0]                   # closes one big cycle
    comps = W.tarjan_scc(list(range(n + 1)), lambda v: succ.get(v, []))
    assert len(comps) == 1 and len(comps[0]) == n + 1


def test_tarjan_separates_components():
    succ = {"a": ["b"], "b": ["a"], "c": ["a"], "d": []}
    comps = sorted(sorted(c) for c in W.tarjan_scc(list(succ), lambda v: succ[v]))
    assert comps == [["a", "b"], ["c"], ["d"]]


def test_simple_cycles_lists_every_cycle_and_is_bounded():
    # two cycles sharing node 0: 0-1-0 and 0-2-0
    succ = {0: [1, 2], 1: [0], 2: [0]}
    cyc, complete = W.simple_cycles([0, 1, 2], lambda v: succ[v])
    assert complete and sorted(cyc) == [[0, 1], [0, 2]]
    # complete graph on 8 nodes has thousands of cycles: the listing stops, says so
    k = list(range(8))
    cyc, complete = W.simple_cycles(k, lambda v: [w for w in k if w != v], limit=50)
    assert not complete and len(cyc) == 50


# ------------------------------------------------------------------- cycles

def test_reaching_cycles_keeps_every_cycle_and_drops_chains_into_sinks():
    # 1 -> 2 -> 3 -> 1 is a cycle with 4 -> 1 behind it; 5 -> 6 -> 7 ends at a sink;
    # 8 loops on itself; 9 leads to both a sink and the cycle
    adj = {1: [2], 2: [3], 3: [1], 4: [1], 5: [6], 6: [7], 7: [], 8: [8], 9: [7, 4]}
    rev = W._reverse(adj)
    assert W._reaching_cycles(list(adj), adj, rev) == [1, 2, 3, 4, 8, 9]


def test_adjacency_is_successors_of_every_node():
    a, b, c, d = T(1), T(2), T(3), T(4)
    g = build_graph([waits(a, LA), waits(b, LB), other(c), waits(d, 0xdead)],
                      {r.address: r for r in [lock(LA, owner=b, waiters=[a]),
                                              lock(LB, ltype="rw_semaphore", readers=2,
                                                   waiters=[b], candidates=[])]})
    adj = g.adjacency()
    assert list(adj) == g.nodes()
    assert adj == {n: g.successors(n) for n in g.nodes()}
    assert adj[("t", a.task)] == [("l", LA)] and adj[("t", d.task)] == []


def test_abba_recorded_owners_one_cycle_with_task_behind():
    a, b, rm = T(97, "ruby"), T(98, "ruby"), T(99, "rm")
    res = run([waits(a, LB), waits(b, LA), waits(rm, LA)],
              [lock(LA, owner=a, waiters=[b, rm]), lock(LB, owner=b, waiters=[a])])
    assert len(res.cycles) == 1
    c = res.cycles[0]
    assert [s.task.pid for s in c.steps] == [97, 98]          # starts at lowest pid
    assert [s.lock.address for s in c.steps] == [LB, LA]
    assert [s.held_by.task.pid for s in c.steps] == [98, 97]
    assert not c.inferred and all(not s.held_by.inferred for s in c.steps)
    assert c.orders == [(LA, LB), (LB, LA)]                    # 97 holds A wants B...
    assert [x.task.pid for x in c.behind] == [99] and c.behind[0].depth == 1
    assert res.convoys == [] and res.alone == []


def test_three_cycle_with_inferred_semaphore_edge_from_candidates():
    m, r, s = T(1, "cyc_mutex"), T(2, "cyc_rwsem"), T(3, "cyc_sem")
    sem = lock(LC, "semaphore", waiters=[r], candidates=[
        Candidate(task=s, score=7, evidence=["waits for another lock (weak)"]),
        Candidate(task=m, score=3, evidence=["shares a path"])])
    res = run([waits(m, LB, "rw_semaphore"), waits(r, LC, "semaphore"), waits(s, LA)],
              [lock(LA, owner=m, waiters=[s]), lock(LB, "rw_semaphore", owner=r,
                                                    waiters=[m]), sem])
    assert len(res.cycles) == 1
    c = res.cycles[0]
    assert [x.task.pid for x in c.steps] == [1, 2, 3]
    assert [x.lock.type for x in c.steps] == ["rw_semaphore", "semaphore", "mutex"]
    assert c.inferred
    inferred = [x for x in c.steps if x.held_by.inferred]
    assert len(inferred) == 1 and inferred[0].lock.address == LC
    assert inferred[0].held_by.task.pid == 3
    assert any("ranked first" in e for e in inferred[0].held_by.evidence)


def test_tied_candidates_make_no_edge_and_no_false_cycle():
    a, b, c = T(1), T(2), T(3)
    sem = lock(LC, "semaphore", waiters=[a], candidates=[
        Candidate(task=b, score=7, evidence=["x"]), Candidate(task=c, score=7,
                                                              evidence=["y"])])
    res = run([waits(a, LC, "semaphore"), waits(b, LA), other(c)],
              [sem, lock(LA, owner=a, waiters=[b])])
    # b and c are both blocked tasks that are not waiters, and neither records a lock:
    # elimination finds two, so nothing is inferred -> no cycle
    assert res.cycles == []
    ln = res.graph.locks[LC]
    assert ln.holders == [] and "tie" in ln.unresolved


def test_elimination_single_candidate_semaphore_convoy():
    holder = T(96, "sem_holder")
    ws = [T(97 + i, "sem_wait_%d" % (i + 1)) for i in range(4)]
    res = run([other(holder)] + [waits(w, LC, "semaphore") for w in ws],
              [lock(LC, "semaphore", waiters=ws)])
    assert res.cycles == []
    assert len(res.convoys) == 1
    cv = res.convoys[0]
    assert [r.pid for r in cv.roots] == [96] and len(cv.behind) == 4
    assert "completion" in cv.what
    h = res.graph.locks[LC].holders[0]
    assert h.inferred and "elimination" in h.evidence[0]


def test_stack_evidence_infers_holder():
    # the holder's live frame above its blocking frame holds the lock address
    text = """PID: 5  TASK: ffff000000005000  CPU: 0  COMMAND: "holder"
 #0 [ffffc90000010e00] __schedule at ffffffff81000000
 #1 [ffffc90000010e40] schedule at ffffffff81000100
 #2 [ffffc90000010e60] __wait_for_common at ffffffff81000200
    ffffc90000010e68: 0000000000000000 ffff000000005000
 #3 [ffffc90000010e80] my_func at ffffffff81000300
    ffffc90000010e88: %016x 0000000000000000
""" % LC
    bts = {b.task: b for b in parse_backtraces(text)}
    h, w1, w2 = T(5, "holder"), T(6), T(7)
    res = run([Blocked(task=h, kind="completion", function="__wait_for_common", frame=2),
               waits(w1, LC, "semaphore"), waits(w2, LC, "semaphore"), other(T(8))],
              [lock(LC, "semaphore", waiters=[w1, w2])], bts=bts)
    hb = res.graph.locks[LC].holders
    assert [x.task.pid for x in hb] == [5] and hb[0].inferred
    assert "frame #3 my_func" in hb[0].evidence[0]


def test_readers_elimination_by_reader_count():
    readers = [T(96 + i, "reader_%d" % (i + 1)) for i in range(3)]
    writer, r4 = T(99, "writer"), T(100, "reader_4")
    rep = lock(LA, "rw_semaphore", waiters=[writer, r4], readers=3)
    res = run([other(r) for r in readers] + [waits(writer, LA, "rw_semaphore"),
                                             waits(r4, LA, "rw_semaphore")], [rep])
    assert res.cycles == []
    assert len(res.convoys) == 1
    cv = res.convoys[0]
    assert sorted(r.pid for r in cv.roots) == [96, 97, 98]
    assert sorted(b.task.pid for b in cv.behind) == [99, 100]


def test_unknown_holder_is_a_lock_rooted_convoy():
    ws = [T(10 + i) for i in range(3)]
    others = [T(20), T(21)]
    res = run([waits(w, LC, "semaphore") for w in ws] + [other(o) for o in others],
              [lock(LC, "semaphore", waiters=ws)])
    assert res.cycles == []
    cv = res.convoys[0]
    assert cv.roots == [] and cv.root_lock == LC and len(cv.behind) == 3
    assert "holder unknown" in cv.what
    assert sorted(t.pid for t in res.alone) == [20, 21]


def test_owner_running_is_root_not_analysed():
    runner = T(50, "busy", state="RU")
    w = T(51)
    res = run([waits(w, LA)], [lock(LA, owner=runner, waiters=[w])])
    cv = res.convoys[0]
    assert [r.pid for r in cv.roots] == [50]
    assert "running" in cv.what and "not analysed" in cv.what


def test_convoys_sorted_longest_first_and_chain_depth():
    # chain: w2 -> LB (held by w1) ; w1 -> LA (held by root) ; root on completion
    root, w1, w2 = T(1, "root"), T(2), T(3)
    small_root, s1 = T(10, "small"), T(11)
    res = run([other(root), waits(w1, LA), waits(w2, LB), other(small_root),
               waits(s1, LC)],
              [lock(LA, owner=root, waiters=[w1]), lock(LB, owner=w1, waiters=[w2]),
               lock(LC, owner=small_root, waiters=[s1])])
    assert [c.roots[0].pid for c in res.convoys] == [1, 10]
    assert len(res.convoys[0].behind) == 2 and res.convoys[0].depth == 3
    assert {b.task.pid: b.depth for b in res.convoys[0].behind} == {2: 1, 3: 2}


def test_self_deadlock_is_a_cycle():
    t = T(7)
    res = run([waits(t, LA)], [lock(LA, owner=t, waiters=[t])])
    assert len(res.cycles) == 1 and len(res.cycles[0].steps) == 1


def test_scale_shape_2000_tasks_exact():
    blocked, reports = [], []
    pid = 100
    for i in range(20):
        own = T(pid); pid += 1
        blocked.append(other(own))
        addr = 0xffff500000000000 + i * 0x1000
        ws = []
        for _ in range(99):
            w = T(pid); pid += 1
            ws.append(w)
            blocked.append(waits(w, addr))
        reports.append(lock(addr, owner=own, waiters=ws))
    a, b = T(5000), T(5001)
    blocked += [waits(a, LB), waits(b, LA)]
    reports += [lock(LA, owner=a, waiters=[b]), lock(LB, owner=b, waiters=[a])]
    res = run(blocked, reports)
    assert len(res.cycles) == 1 and {s.task.pid for s in res.cycles[0].steps} == {5000,
                                                                                 5001}
    assert len(res.convoys) == 20 and all(len(c.behind) == 99 for c in res.convoys)


def test_restrict_to_pid():
    a, b, c = T(1), T(2), T(3)
    res = run([waits(a, LB), waits(b, LA), other(c)],
              [lock(LA, owner=a, waiters=[b]), lock(LB, owner=b, waiters=[a])])
    sub = W.restrict_to_pid(res, 3)
    assert sub.cycles == [] and [t.pid for t in sub.alone] == [3]
    assert len(W.restrict_to_pid(res, 2).cycles) == 1
    assert W.restrict_to_pid(res, 999) is None


def test_short_lock_name():
    r = LockReport(address=0x10, type="rw_semaphore",
                   state={"inode": {"path": "/tmp/js/fire.js"},
                          "container": {"type": "inode", "member": "i_rwsem"}})
    assert short_lock_name(r) == "inode.i_rwsem of /tmp/js/fire.js"
    r = LockReport(address=0x10, type="mutex", where="symbol cgroup_mutex")
    assert short_lock_name(r) == "cgroup_mutex"
    r = LockReport(address=0x10, type="mutex",
                   where="slab cache kmalloc-256, object ffff1+0x58")
    assert short_lock_name(r) == "kmalloc-256 object +0x58"


# ------------------------------------------------------------------- renderers

def _abba():
    a, b, rm = T(97, "ruby"), T(98, "ruby"), T(99, "rm")
    return run([waits(a, LB, "rw_semaphore", "rwsem_down_write_slowpath"),
                waits(b, LA, "rw_semaphore", "rwsem_down_write_slowpath"),
                waits(rm, LA, "rw_semaphore", "rwsem_down_write_slowpath")],
               [lock(LA, "rw_semaphore", owner=a, waiters=[b, rm]),
                lock(LB, "semaphore", waiters=[a], candidates=[
                    Candidate(task=b, score=50, evidence=["frame #5 holds it"])])])


def test_text_tells_the_story():
    text = RD.format_text(_abba())
    assert "DEADLOCK 1: ABBA, 2 tasks; at least one 'held by' is INFERRED" in text
    assert 'PID: 97  TASK: ' in text and 'COMMAND: "ruby"' in text
    assert "held by ruby 98: INFERRED (not recorded by the lock), because:" in text
    assert "\n        - frame #5 holds it" in text
    assert "score" not in text
    # the answer first: rm, behind the cycle, then the cycle from the holder of its lock
    assert text.startswith("ANSWER\nDEADLOCK 1: rm 99 in ")
    assert "recorded by the lock (rw_semaphore.owner)" in text
    assert "back to the start" in text and "ABBA" in text
    assert "Stuck behind this cycle: 1 task" in text and " rm " in text
    # the summary comes last, wrapped to 80 columns as every line
    summary = " ".join(text[text.rindex("\ndeadlock: ") + 1:].split())
    assert summary == RD.summary_line(_abba())
    assert summary.startswith("deadlock: 3 tasks analysed (UN): 1 cycle [1 inferred]")
    assert all(len(line) <= 80 for line in text.splitlines())


def test_json_carries_the_same_facts():
    js = RD.to_json(_abba())
    json.dumps(js)
    c = js["cycles"][0]
    assert [s["task"]["pid"] for s in c["steps"]] == [97, 98]
    assert [s["held_by"]["inferred"] for s in c["steps"]] == [True, False]
    assert c["behind"][0]["task"]["pid"] == 99
    assert js["summary"].startswith("deadlock: 3 tasks")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz not installed")
def test_dot_is_accepted_by_graphviz():
    text = to_dot(_abba())
    assert "color=red" in text and "style=dashed" in text
    r = subprocess.run(["dot", "-Tsvg"], input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    assert b"<svg" in r.stdout


def test_dot_folds_long_queues():
    own = T(1)
    ws = [T(10 + i) for i in range(50)]
    res = run([other(own)] + [waits(w, LA) for w in ws], [lock(LA, owner=own,
                                                               waiters=ws)])
    text = to_dot(res)
    assert "+45 more waiting" in text
    assert text.count(" -> l") <= 8


# ------------------------------------------------------------------- verb on fake ports

class FakePort(TextOnlyPort):
    """Answers ``ps`` and ``foreach UN bt -f`` from recorded text; nothing else."""

    def __init__(self, ps, bt, fail_bt=False):
        self.ps, self.bt, self.fail_bt = ps, bt, fail_bt

    def command(self, cmd):
        if cmd == "ps":
            return self.ps
        if cmd.startswith("foreach"):
            if self.fail_bt:
                raise CrashCommandError("foreach: read error")
            return self.bt
        if cmd.startswith("ps -m"):
            return ""
        if cmd.startswith("ps ") and not cmd.startswith("ps -"):
            return ps_lookup(self.ps, cmd)
        raise CrashCommandError("%s: not recorded" % cmd)


PS_HDR = "      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM\n"


def test_state_tasks_from_foreach_headers_unless_one_is_unread():
    # the tasks of a state come from foreach's headers (crash prints one per task of the
    # state); when a header line cannot be read, ps is asked instead
    from crash_ext.session.snapshot import Snapshot
    ps = PS_HDR + (
        "     10       1   0  ffff00000000a000  UN   0.1     1000      100  one\n"
        "     11       1   1  ffff00000000b000  UN   0.1     1000      100  two\n"
        "     12       1   1  ffff00000000c000  IN   0.1     1000      100  three\n")
    bt = ('PID: 10  TASK: ffff00000000a000  CPU: 0  COMMAND: "one"\n'
          ' #0 [ffffc90000010e00] __schedule at ffffffff81000000\n'
          '\nPID: 11  TASK: ffff00000000b000  CPU: 1  COMMAND: "two"\n'
          ' #0 [ffffc90000020e00] __schedule at ffffffff81000000\n')

    class Asked(FakePort):
        def command(self, cmd):
            self.asked = getattr(self, "asked", []) + [cmd]
            return FakePort.command(self, cmd)
    port = Asked(ps, bt)
    snap = Snapshot(port)
    snap.backtraces("UN")
    assert [(e.pid, e.comm, e.cpu) for e in snap.in_state(["UN"])] == [
        (10, "one", 0), (11, "two", 1)]
    assert "ps" not in port.asked
    port = Asked(ps, bt.replace("PID: 11  TASK: ffff00000000b000", "PID: 11  TASK: ?"))
    snap = Snapshot(port)
    snap.backtraces("UN")
    assert [e.pid for e in snap.in_state(["UN"])] == [10, 11]
    assert "ps" in port.asked


def test_no_blocked_tasks_clear_report():
    ps = PS_HDR + "      1       0   0  ffff000000001000  IN   0.1     1000      100  init\n"
    out = io.StringIO()
    rc = D.main([], FakePort(ps, ""), out=out)
    assert rc == 0
    assert "No task in UN state: nothing is blocked." in out.getvalue()


def test_unreadable_and_garbage_stacks_are_reported_not_raised():
    ps = PS_HDR + (
        "     10       1   0  ffff00000000a000  UN   0.1     1000      100  garbage\n"
        "     11       1   0  ffff00000000b000  UN   0.1     1000      100  nostack\n")
    bt = ('PID: 10  TASK: ffff00000000a000  CPU: 0  COMMAND: "garbage"\n'
          ' #0 [ffffc90000010e00] __schedule at ffffffff81000000\n'
          ' #1 [ffffc90000010e40] __mutex_lock.constprop.0 at ffffffff81000100\n'
          '    ffffc90000010e48: ffffffffffffffff deadbeefdeadbeef\n'
          ' #2 [ffffc90000010e60] ????????? at 0\n'
          'PID: 11  TASK: ffff00000000b000  CPU: 0  COMMAND: "nostack"\n'
          'bt: read of stack at ffffc90000020000 failed\n')
    out = io.StringIO()
    rc = D.main([], FakePort(ps, bt), out=out)
    text = out.getvalue()
    assert rc == 0, text
    assert "PID 11 (nostack): back trace unreadable" in text
    assert "garbage" in text          # listed, with what could (not) be found
    assert "Traceback" not in text


def test_crash_dying_is_one_line_error_exit_3():
    ps = PS_HDR + "     10       1   0  ffff00000000a000  UN   0.1     1000      100  x\n"

    class Dead(FakePort):
        def command(self, cmd):
            from crash_ext.core.errors import CrashDied
            raise CrashDied("crash exited with status 1")
    # crash itself failing is not an input error: the verb shell says so in one line
    # on stderr and exits 3, for crash-ext and the prompt alike (verbs/shell.py)
    err, out = io.StringIO(), io.StringIO()
    assert D.main([], Dead(ps, ""), out=out, err=err) == 3
    assert out.getvalue() == ""
    assert err.getvalue().count("\n") == 1
    assert err.getvalue().startswith("deadlock: error: crash exited with status 1")


def test_usage_errors():
    err = io.StringIO()
    assert D.main(["--bogus"], FakePort("", ""), out=io.StringIO(), err=err) == 2
    assert err.getvalue().startswith("deadlock: error:")
    err = io.StringIO()
    assert D.main(["-p", "abc"], FakePort(PS_HDR, ""), out=io.StringIO(), err=err) == 2
    err = io.StringIO()
    assert D.main(["--all", "--include-in"], FakePort("", ""), out=io.StringIO(),
                  err=err) == 2
