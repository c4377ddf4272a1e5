"""Waits that are not locks, on the lab's real dumps, checked against the module's truth.

``flush-work``: a task holds a device's mutex and flushes the device's work item, whose
function, on a kworker, blocks on that mutex; ``flush-wq``: the same through
``flush_workqueue`` of the device's workqueue.  ``kthread-stop``: a task holds the mutex
and stops the device's poll thread, which blocks on it.  The module publishes who waits
on what, which task must act (the kworker it saw run the work function, the poll
thread) and the mutex's holder; every expected value below is computed from that truth.

Completion waits of the other scenarios: the module records, for each task it makes wait
on an event, the event's completion address, and, for each event, the kmalloc'ed object
holding it and that object's size; the analysis must name that completion and its slab
object.
"""

import io
import re
import shutil

import pytest

from crash_ext.models.ps import parse_ps
from crash_ext.waits.collection import collect
from crash_ext.render import deadlock as RD
from crash_ext.verbs import deadlock as D
from crash_ext.verbs import whoholds as W
from tests.lab import labdumps

KERNELS = [k for k in ("6.1", "6.12") if k in labdumps.selected_kernels()]
TARGETS = labdumps.targets(KERNELS) if KERNELS else []    # targets([]) would be all
WAITS = [(s, t) for t in TARGETS for s in labdumps.WAITS]
# completion waiters of the scenarios that have them, and scale's roots on 6.1
COMPLETIONS = [(s, t) for t in TARGETS for s in ("convoy", "readers", "semaphore")] \
    + [("scale", t) for t in TARGETS if t.startswith("6.1@")]

_RESULTS = {}


def _analyse(lab, scenario, target):
    key = (scenario, target)
    if key not in _RESULTS:
        dump, crash = lab(scenario, target=target)
        _RESULTS[key] = (dump, collect(crash))
    return _RESULTS[key]


def _func(name):
    """The work function as the module printed it (``%ps``: ``NAME [MODULE]``)."""
    return name.split(" ")[0]


def _truth_edges(truth):
    """{pid: (next pid, truth entry)}: who each waiting task of the truth waits for."""
    out = {}
    for w in truth["waits"]:
        nxt = w.get("must_act_pid", w.get("holder_pid"))
        out[w["pid"]] = (nxt, w)
    return out


def _truth_cycle(truth):
    """The set of pids on the truth's one cycle (walked from its first waiter)."""
    edges = _truth_edges(truth)
    start = truth["waits"][0]["pid"]
    seen, p = [], start
    while p not in seen:
        seen.append(p)
        p = edges[p][0]
    return frozenset(seen[seen.index(p):])


@pytest.mark.parametrize("scenario,target", WAITS)
def test_cycle_through_the_wait_matches_truth(lab, scenario, target):
    dump, res = _analyse(lab, scenario, target)
    edges = _truth_edges(dump.truth)
    assert len(res.cycles) == 1, [c.steps for c in res.cycles]
    (c,) = res.cycles
    assert frozenset(s.task.pid for s in c.steps) == _truth_cycle(dump.truth)
    assert not c.inferred
    for s in c.steps:
        nxt, t = edges[s.task.pid]
        assert s.held_by.task.pid == nxt
        if t["waits"] == "mutex":
            assert s.lock.wait is None and s.lock.type == "mutex"
            assert s.lock.address == int(t["object"], 16)
            assert s.held_by.relation == "holds" and not s.held_by.inferred
            continue
        # the wait that is not a lock: its object and the task that must act
        w = s.blocked.wait
        assert s.lock.wait is w and s.held_by.relation == "must act"
        assert w.object == int(t["object"], 16)
        assert [m.pid for m in w.must_act] == [t["must_act_pid"]]
        assert w.must_act[0].comm == t["must_act_comm"]
        assert w.completion is not None and w.evidence
        if t["waits"] == "flush_work":
            assert w.kind == "work" and _func(t["work_func"]) in w.what
            assert (dump.truth["devices"][0]["workqueue_name"]) in w.what
            assert w.where.startswith("on the stack of PID %d " % t["pid"])
            assert "wq_barrier" in w.container
        elif t["waits"] == "flush_workqueue":
            assert w.kind == "workqueue" and "wq_flusher" in w.container
            assert w.object == int(dump.truth["devices"][0]["workqueue"], 16)
            assert "workqueue %s" % dump.truth["devices"][0]["workqueue_name"] in w.what
            assert w.where.startswith("on the stack of PID %d " % t["pid"])
        else:
            assert w.kind == "kthread" and "to exit" in w.what
            assert w.object == int(dump.truth["devices"][0]["poller_task"], 16)


@pytest.mark.parametrize("scenario,target", WAITS)
def test_deadlock_text_names_the_worker_and_work(lab, scenario, target):
    dump, crash = lab(scenario, target=target)
    out, err = io.StringIO(), io.StringIO()
    assert D.main([], crash, out=out, err=err) == 1
    text = out.getvalue()
    (t,) = [w for w in dump.truth["waits"] if "must_act_pid" in w]
    # a cycle through a wait that is not a lock is no lock order: not "ABBA"
    assert "DEADLOCK 1: 2-task cycle;" in text and "ABBA" not in text
    assert "must act: %s %d: " % (t["must_act_comm"], t["must_act_pid"]) in text
    assert "held by %s %d: " % (t["comm"], t["pid"]) in text
    assert "DEADLOCK 2" not in text
    if scenario == "flush-work":
        assert "work item %s" % _func(t["work_func"]) in text
    assert "1 cycle (2 tasks in cycles" in text
    js = RD.to_json(_analyse(lab, scenario, target)[1])
    (step,) = [s for s in js["cycles"][0]["steps"] if s["held_by"]["relation"] == "must act"]
    assert step["lock"]["address"] == t["object"]
    assert step["held_by"]["task"]["pid"] == t["must_act_pid"]


@pytest.mark.parametrize("scenario,target", WAITS)
def test_whoholds_follows_the_task_that_must_act(lab, scenario, target):
    dump, crash = lab(scenario, target=target)
    (t,) = [w for w in dump.truth["waits"] if "must_act_pid" in w]
    out = io.StringIO()
    assert W.main(["-p", str(t["pid"])], crash, out=out) == 1
    text = out.getvalue()
    assert re.search(r"MUST ACT: PID: %d  TASK: [0-9a-f]+  CPU: \S+  COMMAND: \"%s\"" % (
        t["must_act_pid"], re.escape(t["must_act_comm"])), text)
    answer = " ".join(text.split("HOP 1 of")[0].split())
    me, actor = "%s %d" % (t["comm"], t["pid"]), "%s %d" % (t["must_act_comm"],
                                                           t["must_act_pid"])
    assert answer.startswith("ANSWER: DEADLOCK: %s -> %s -> %s: " % (me, actor, me)), answer
    assert "or for what the next must do" in answer
    assert "must act: %s (recorded by the kernel)" % actor in answer
    assert "following the task that MUST ACT" in text
    # under MUST ACT each evidence line names whose record it is: the waiter's, by its
    # PID (the truth's), never "this task" or "its own", which would read as the actor's
    block = text.split("  MUST ACT: ")[1].split("  -> following")[0]
    bullets = [" ".join(b.split()) for b in re.split(r"\n    - ", block)[1:]]
    assert bullets
    for b in bullets:
        assert "this task" not in b and "its own" not in b, b
        if "record" in b or "task = " in b:
            assert "PID %d (%s)" % (t["pid"], t["comm"]) in b, b


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz not installed")
@pytest.mark.parametrize("scenario,target", WAITS)
def test_dot_draws_the_cycle_closed(lab, scenario, target, tmp_path):
    """deadlock --dot: the cycle through the wait that is not a lock is a closed loop of
    red edges: each truth task -> what it waits on (the truth's object: a lock, a work
    item, a workqueue, a kthread) -> the next task (its holder, or the task that must
    act); following the red edges from any node comes back to it through every node."""
    dump, crash = lab(scenario, target=target)
    dot = tmp_path / "g.dot"
    assert D.main(["--dot", str(dot)], crash, out=io.StringIO()) == 1
    text = dot.read_text()
    task_of = {r.pid: r.task for r in parse_ps(crash.command("ps")) if r.pid}
    want = set()
    for pid, (nxt, t) in _truth_edges(dump.truth).items():
        obj = "l%x" % int(t["object"], 16)
        want |= {("t%x" % task_of[pid], obj), (obj, "t%x" % task_of[nxt])}
    red = set(re.findall(r"(?m)^  ([tl][0-9a-f]+) -> ([tl][0-9a-f]+) \[.*color=red", text))
    assert red == want, (red, want)
    succ = dict(red)
    assert len(succ) == len(red)                  # one red edge out of each node
    start = next(iter(succ))
    node, seen = succ[start], [start]
    while node != start:
        assert node not in seen, (node, seen)
        seen.append(node)
        node = succ[node]
    assert len(seen) == len(succ)
    (t,) = [w for w in dump.truth["waits"] if "must_act_pid" in w]
    assert re.search(r'(?m)^  l%x -> t%x \[label="must act"' % (
        int(t["object"], 16), task_of[t["must_act_pid"]]), text)


@pytest.mark.parametrize("scenario,target", COMPLETIONS)
def test_completion_waiters_name_their_completion(lab, scenario, target):
    dump, res = _analyse(lab, scenario, target)
    events = {int(e["address"], 16): e for e in dump.truth["events"]}
    by_pid = {b.task.pid: b for b in res.graph.blocked.values()}
    waiting = [t for t in dump.truth["tasks"] if t["blocked_kind"] == "completion"]
    assert waiting, "the scenario has no completion waiter"
    for t in waiting:
        b = by_pid[t["pid"]]
        addr = int(t["blocked_address"], 16)
        w = b.wait
        assert w is not None and w.completion == addr, (t, w)
        assert w.kind == "completion" and not w.must_act
        e = events[addr]
        cont = int(e["container"], 16)
        m = re.match(r"slab cache (\S+), object ([0-9a-f]+)\+(0x[0-9a-f]+)$", w.where)
        assert m, w.where
        assert m.group(1).endswith("-%d" % e["container_size"]), (m.group(1), e)
        assert int(m.group(2), 16) == cont and int(m.group(3), 16) == addr - cont
    # the convoy roots say which completion they wait on and where it lives: every
    # completion waiter holding a lock others wait on (the truth's) is such a root
    want = {t["pid"] for t in waiting} & {o["pid"] for lk in dump.truth["locks"]
                                          if lk["waiters"] for o in lk["owners"]}
    assert want
    seen = set()
    for cv in res.convoys:
        for r in cv.roots:
            if r.pid in want:
                t = [x for x in waiting if x["pid"] == r.pid][0]
                assert "completion %x (slab cache " % int(t["blocked_address"], 16) \
                    in cv.what, cv.what
                seen.add(r.pid)
    assert seen == want
