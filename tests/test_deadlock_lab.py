"""``deadlock`` on the lab's real dumps, checked against the truth the lab module wrote.

Every expected value is computed here from ``truth.json`` (owners and waiters of each
lock, what each task is blocked on): the cycles, the tasks behind them, the convoys and
their roots and counts.  Nothing is copied from our own output.
"""

import io
import json
import re
import shutil
import subprocess

import pytest

from crash_ext.waits.collection import collect
from crash_ext.models.ps import parse_ps
from crash_ext.verbs import deadlock as D
from tests.lab import labdumps

# (scenario, KERNEL@CRASH): the small scenarios over the kernel matrix, scale on 6.1
MATRIX = labdumps.matrix() + [("scale", t) for t in labdumps.targets() if t.startswith("6.1@")]
SEEDS = [t for s, t in MATRIX if s == "seed"]
NO_OWNER_FIELD = {"semaphore"}     # lock types that record no owner on the lab's kernels


def _records_no_owner(lock):
    """True for a truth lock whose holder the lock itself does not record: a semaphore,
    or an rw_semaphore its owners hold for read (reader-owned: only a count)."""
    return lock["type"] in NO_OWNER_FIELD or (
        lock["owners"] and all(o["mode"] == "r" for o in lock["owners"]))


# ---------------------------------------------------------------- truth model

class Truth:
    """The truth's wait-for graph, task level: pid -> pids holding what it waits on."""

    def __init__(self, truth):
        self.truth = truth
        self.locks = {int(l["address"], 16): l for l in truth["locks"]}
        self.tasks = {t["pid"]: t for t in truth["tasks"]}
        self.comm = {t["pid"]: t["comm"] for t in truth["tasks"]}
        self.waits_on = {}      # pid -> lock address
        for a, l in self.locks.items():
            for w in l["waiters"]:
                self.waits_on[w["pid"]] = a
        self.succ = {p: sorted({o["pid"] for o in self.locks[a]["owners"]})
                     for p, a in self.waits_on.items()}

    def cycles(self):
        """Return {(frozenset(pids), frozenset(lock addresses))} of elementary cycles,
        by plain enumeration (the truth graphs are tiny, or chains of out-degree 1)."""
        found = set()
        for start in sorted(self.succ):
            stack = [(start, [start])]
            while stack:
                p, path = stack.pop()
                for q in self.succ.get(p, []):
                    if q == start:
                        found.add((frozenset(path), frozenset(self.waits_on[x]
                                                              for x in path)))
                    elif q not in path and q > start:
                        stack.append((q, path + [q]))
        return found

    def reaches(self, pid, targets):
        seen, todo = set(), [pid]
        while todo:
            p = todo.pop()
            for q in self.succ.get(p, []):
                if q in targets:
                    return True
                if q not in seen:
                    seen.add(q)
                    todo.append(q)
        return False

    def upstream(self, pids):
        """pids that wait, directly or through others, on any of ``pids``."""
        return {p for p in self.succ if p not in pids and self.reaches(p, set(pids))}


_RESULTS = {}


def _analyse(lab, scenario, target=None):
    """(dump, collect() of it), computed once per scenario and target for the whole run."""
    key = (scenario, target)
    if key not in _RESULTS:
        dump, crash = lab(scenario, target=target)
        _RESULTS[key] = (dump, collect(crash))
    return _RESULTS[key]


def _check_outside_truth(lab, scenario, target, res, tr, pid):
    """A task the analysis puts behind a cycle that the truth does not know: allowed only
    as a waiter on a kernel rt_mutex (not a scenario lock) whose owner field, read by
    crash itself, is a task of the truth (PREEMPT_RT boosting an RCU reader there)."""
    assert pid not in tr.tasks
    (b,) = [x for x in res.graph.blocked.values() if x.task.pid == pid]
    assert b.kind == "lock" and b.lock_type == "rt_mutex", b
    assert b.lock_address not in tr.locks
    _, crash = lab(scenario, target=target)
    owner = crash.read_u64(b.lock_address + crash.member_offset("rt_mutex", "rtmutex.owner"))
    pids = {t.task: t.pid for t in parse_ps(crash.command("ps"))}
    assert pids.get(owner & ~1) in tr.tasks


def _pids_of_cycle(c):
    return frozenset(s.task.pid for s in c.steps), frozenset(s.lock.address for s in c.steps)


# ---------------------------------------------------------------- every scenario

@pytest.mark.parametrize("scenario,target", MATRIX)
def test_cycles_match_truth(lab, scenario, target):
    dump, res = _analyse(lab, scenario, target)
    tr = Truth(dump.truth)
    assert dump.truth["verified"], "the lab did not verify this scenario"
    want = tr.cycles()
    got = {_pids_of_cycle(c) for c in res.cycles}
    assert got == want, "cycles %s, truth %s" % (got, want)
    assert len(res.cycles) == len(want)          # each reported once
    for c in res.cycles:
        pids = [s.task.pid for s in c.steps]
        for i, s in enumerate(c.steps):
            t = tr.locks[s.lock.address]
            # the lock each task waits on, and its holder, are the truth's
            assert tr.waits_on[s.task.pid] == s.lock.address
            assert s.held_by.task.pid in {o["pid"] for o in t["owners"]}
            assert s.held_by.task.pid == pids[(i + 1) % len(pids)]
            # inferred exactly where the lock records no owner
            assert s.held_by.inferred == _records_no_owner(t), (
                s.lock.address, s.held_by)
            assert s.held_by.evidence
            assert s.lock.type == t["type"]
        assert c.inferred == any(_records_no_owner(tr.locks[s.lock.address])
                                 for s in c.steps)
        # the tasks behind this cycle: the truth's, and on PREEMPT_RT the kernel's own
        # RCU booster (rcub/N), queued on an rt_mutex the cycle's spinlock_t holder owns
        cyc = {s.task.pid for s in c.steps}
        behind = {b.task.pid for b in c.behind}
        assert behind >= tr.upstream(cyc)
        if not target.split("@")[0].endswith("-rt"):
            assert behind == tr.upstream(cyc)       # no booster outside PREEMPT_RT
        for pid in behind - tr.upstream(cyc):
            _check_outside_truth(lab, scenario, target, res, tr, pid)


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_every_truth_task_is_tied_to_its_lock(lab, scenario, target):
    dump, res = _analyse(lab, scenario, target)
    tr = Truth(dump.truth)
    by_pid = {b.task.pid: b for b in res.graph.blocked.values()}
    for pid, t in tr.tasks.items():
        b = by_pid.get(pid)
        assert b is not None, "pid %d (%s) not analysed" % (pid, t["comm"])
        if t["blocked_kind"] == "lock":
            assert b.kind == "lock" and b.lock_address == int(t["blocked_address"], 16)
        else:
            assert b.kind == t["blocked_kind"], (pid, b)


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_convoys_match_truth(lab, scenario, target):
    dump, res = _analyse(lab, scenario, target)
    tr = Truth(dump.truth)
    cyc_pids = set()
    for pids, _ in tr.cycles():
        cyc_pids |= pids
    stuck = cyc_pids | tr.upstream(cyc_pids)
    # truth convoys: per group of root owners (tasks not waiting on a lock), the tasks
    # behind them
    roots = {}
    for a, l in tr.locks.items():
        owners = frozenset(o["pid"] for o in l["owners"])
        if owners & stuck or any(o in tr.succ for o in owners):
            continue
        behind = frozenset(tr.upstream(set(owners)))
        roots[owners] = behind
    got = {}
    for cv in res.convoys:
        behind = frozenset(b.task.pid for b in cv.behind)
        if (not cv.roots and "-rt@" in target and cv.root_lock not in tr.locks
                and not behind & set(tr.tasks)):
            # PREEMPT_RT's own sleeping locks outside the scenario: a QEMU snapshot can
            # catch one while its owner hands it to a waiter (no owner recorded at that
            # instant).  Only the kernel's tasks, only an rt_mutex-based lock, and told as
            # a chain whose holder is unknown, never as a cycle
            ln = res.graph.locks.get(cv.root_lock)
            assert ln is not None and ln.type in ("rt_mutex", "spinlock", "mutex"), cv
            assert not any(p in behind for c in res.cycles for p in
                           (s.task.pid for s in c.steps))
            continue
        # every root is the holder task (inferred from its stack for ownerless locks)
        assert cv.roots, "convoy without a root task at %x" % (cv.root_lock or 0)
        got[frozenset(r.pid for r in cv.roots)] = behind
    assert got == roots
    # longest first
    counts = [len(cv.behind) for cv in res.convoys]
    assert counts == sorted(counts, reverse=True)
    # inferred holders are never wrong
    for a, ln in res.graph.locks.items():
        if a not in tr.locks:       # a kernel rt_mutex outside the scenario (RT's RCU boost)
            assert ln.type == "rt_mutex" and all(not h.inferred for h in ln.holders)
            continue
        truth_owners = {o["pid"] for o in tr.locks[a]["owners"]}
        for h in ln.holders:
            assert h.task.pid in truth_owners, (a, h)


@pytest.mark.parametrize("scenario,target", [(s, t) for s, t in MATRIX
                                             if s in ("readers", "semaphore", "convoy")])
def test_small_convoys_name_their_root_tasks(lab, scenario, target):
    """Where the dump allows it, the root is the holder task, not an unknown."""
    dump, res = _analyse(lab, scenario, target)
    tr = Truth(dump.truth)
    assert res.cycles == []
    assert len(res.convoys) == 1
    cv = res.convoys[0]
    (lk,) = tr.truth["locks"]
    assert {r.pid for r in cv.roots} == {o["pid"] for o in lk["owners"]}
    assert {b.task.pid for b in cv.behind} == {w["pid"] for w in lk["waiters"]}
    kinds = {tr.tasks[o["pid"]]["blocked_kind"] for o in lk["owners"]}
    assert kinds == {"completion"} and "completion" in cv.what


# ---------------------------------------------------------------- the verb

@pytest.mark.parametrize("scenario,target", [m for m in MATRIX if m[0] != "scale"])
def test_exit_code_matches_truth(lab, scenario, target):
    """``deadlock`` exits 1 exactly when the truth has a cycle or a task waiting on a
    lock every holder of which is itself blocked, else 0."""
    dump, crash = lab(scenario, target=target)
    tr = Truth(dump.truth)
    stuck = {t["pid"] for t in dump.truth["tasks"]
             if t["blocked_kind"] not in (None, "running")}
    behind_blocked = any(l["waiters"] and l["owners"] and
                         all(o["pid"] in stuck for o in l["owners"])
                         for l in dump.truth["locks"])
    want = 1 if tr.cycles() or behind_blocked else 0
    out = io.StringIO()
    assert D.main(["--json"], crash, out=out) == want
    json.loads(out.getvalue())


@pytest.mark.parametrize("target", SEEDS)
def test_seed_text_story(lab, target):
    dump, crash = lab("seed", target=target)
    tr = Truth(dump.truth)
    out = io.StringIO()
    rc = D.main([], crash, out=out)
    text = out.getvalue()
    assert rc == 1
    fire = [l for l in dump.truth["locks"] if l["container"].get("type") == "inode"][0]
    path = fire["container"]["path"]
    assert "DEADLOCK 1: ABBA, 2 tasks" in text and "DEADLOCK 2" not in text
    assert "inode.i_rwsem of %s" % path in text
    assert "%x" % int(fire["address"], 16) in text
    rubies = sorted(p for p, c in tr.comm.items() if c == "ruby")
    for p in rubies:
        assert re.search(r"PID: %d  TASK: [0-9a-f]+  CPU: \d+  COMMAND: \"ruby\"" % p, text)
    assert "back to the start" in text and "ABBA" in text
    rm = [p for p, c in tr.comm.items() if c == "rm"][0]
    # the answer comes first, in the victims' order: rm, fire.js's lock, its owner,
    # the other lock, its owner, back to fire.js's lock (owners from the truth)
    iolock = [l for l in dump.truth["locks"] if l is not fire][0]
    answer = " ".join(text.split("EVIDENCE")[0].split())
    # a kdump-made dump: the panic comes first (tests/test_kdump_lab.py), then the answer
    assert text[text.index("ANSWER\n"):].startswith("ANSWER\nDEADLOCK 1: rm %d in vfs_unlink "
                                                     "-> " % rm)
    assert re.search(r"rm %d in vfs_unlink -> rw_semaphore %x \(inode.i_rwsem of %s\) -> "
                     r"held by ruby %d -> waits in \S+ for rw_semaphore %x .* -> held by "
                     r"ruby %d -> waits in \S+ for inode.i_rwsem of %s: DEADLOCK \(ABBA\)" % (
                         rm, int(fire["address"], 16), re.escape(path),
                         fire["owners"][0]["pid"], int(iolock["address"], 16),
                         iolock["owners"][0]["pid"], re.escape(path)), answer), answer
    behind = text.split("Stuck behind this cycle: 1 task")[1]
    assert " rm " in behind.splitlines()[3] and str(rm) in behind.splitlines()[3]
    assert "vfs_unlink" in behind
    for line in text.splitlines():
        assert len(line) <= 80, line        # not a terminal: 80 columns
    # the summary: last, from "deadlock: ", wrapped as every line
    assert text[text.rindex("\ndeadlock: ") + 1:].startswith("deadlock: 3 tasks analysed "
                                                             "(UN): 1 cycle")


@pytest.mark.parametrize("target", SEEDS)
def test_seed_json_and_pid_filter(lab, target):
    dump, crash = lab("seed", target=target)
    out = io.StringIO()
    assert D.main(["--json"], crash, out=out) == 1
    js = json.loads(out.getvalue())
    (c,) = js["cycles"]
    addrs = {int(l["address"], 16) for l in dump.truth["locks"]}
    assert {int(s["lock"]["address"], 16) for s in c["steps"]} == addrs
    assert all(not s["held_by"]["inferred"] for s in c["steps"])
    assert [b["task"]["comm"] for b in c["behind"]] == ["rm"]
    rm = [t["pid"] for t in dump.truth["tasks"] if t["comm"] == "rm"][0]
    out = io.StringIO()
    assert D.main(["-p", str(rm), "--json"], crash, out=out) == 1
    assert len(json.loads(out.getvalue())["cycles"]) == 1
    # one task word: the same part of the graph by command name and by task address
    task = [r.task for r in parse_ps(crash.command("ps")) if r.pid == rm][0]
    for word in ("rm", "%x" % task):
        again = io.StringIO()
        assert D.main(["-p", word, "--json"], crash, out=again) == 1
        assert again.getvalue() == out.getvalue(), word
    for word, said in (("99999", "no task with pid 99999"), ("ruby", "2 tasks are named"),
                       ("\u00b2", "not a pid")):
        err, out = io.StringIO(), io.StringIO()
        assert D.main(["-p", word, "--json"], crash, out=out, err=err) == 2
        assert out.getvalue() == "" and err.getvalue().count("\n") == 1
        assert err.getvalue().startswith("deadlock: error: ") and said in err.getvalue()


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz not installed")
@pytest.mark.parametrize("scenario", ["seed", "cycle3"])
def test_dot_and_svg(lab, scenario, tmp_path):
    dump, crash = lab(scenario)
    dot, svg = tmp_path / "g.dot", tmp_path / "g.svg"
    assert D.main(["--dot", str(dot), "--svg", str(svg)], crash, out=io.StringIO()) == 1
    r = subprocess.run(["dot", "-Tsvg", str(dot)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    text = dot.read_text()
    # red: exactly the truth's cycles, each task -> the lock it waits on -> its holder,
    # the holder being the next task of the cycle, the last edge closing it
    tr = Truth(dump.truth)
    task_of = {r.pid: r.task for r in parse_ps(crash.command("ps")) if r.pid}
    red_nodes = set(re.findall(r"(?m)^  ([tl][0-9a-f]+) \[.*color=red", text))
    red_edges = set(re.findall(r"(?m)^  ([tl][0-9a-f]+) -> ([tl][0-9a-f]+) \[.*color=red",
                               text))
    want_nodes, want_edges = set(), set()
    for pids, _ in tr.cycles():
        for p in pids:
            t, lk = "t%x" % task_of[p], "l%x" % tr.waits_on[p]
            (q,) = set(tr.succ[p]) & pids
            want_nodes |= {t, lk}
            want_edges |= {(t, lk), (lk, "t%x" % task_of[q])}
    assert want_nodes and red_nodes == want_nodes, (red_nodes, want_nodes)
    assert red_edges == want_edges, (red_edges, want_edges)
    inferred = set(re.findall(r"(?m)^  (l[0-9a-f]+) -> t[0-9a-f]+ \[label=\"held by "
                              r"\(inferred\)\"", text))
    assert inferred == {"l%x" % a for a, l in tr.locks.items() if l["type"] in NO_OWNER_FIELD
                        and l["owners"]}
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_include_in_keeps_the_cycle(lab):
    """--include-in adds the IN tasks to the graph: the cycle stays the truth's, each
    step's lock and holder the truth's."""
    dump, crash = lab("abba-mutex")
    tr = Truth(dump.truth)
    out = io.StringIO()
    assert D.main(["--include-in", "--json"], crash, out=out) == 1
    js = json.loads(out.getvalue())
    assert js["states"] == ["UN", "IN"]
    assert {(frozenset(c["pids"]), frozenset(int(s["lock"]["address"], 16)
                                             for s in c["steps"])) for c in js["cycles"]} \
        == tr.cycles()
    for c in js["cycles"]:
        for s, nxt in zip(c["steps"], c["pids"][1:] + c["pids"][:1]):
            assert tr.waits_on[s["task"]["pid"]] == int(s["lock"]["address"], 16)
            assert s["held_by"]["task"]["pid"] == nxt
    assert js["counts"]["cycles"] == len(js["cycles"]) == 1


# ---------------------------------------------------------------- what a reader sees

def _unrecorded(lock):
    """True when the truth's lock keeps no owner field naming its holder: a semaphore,
    or a rw_semaphore held by readers."""
    return lock["type"] in NO_OWNER_FIELD or any(o["mode"] == "r" for o in lock["owners"])


def _items(answer):
    """{"DEADLOCK 1": text, "CONVOY 1": text, ...}: the ANSWER's items, lines joined."""
    out, key = {}, None
    for line in answer.splitlines()[1:]:
        m = re.match(r"(DEADLOCK|CONVOY) (\d+): ", line)
        if m:
            key = "%s %s" % (m.group(1), m.group(2))
            out[key] = line[m.end():]
        elif key and line.startswith(" "):
            out[key] += " " + line.strip()
        else:
            key = None
    return out


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_text_tags_every_inferred_edge_names_members_and_fits(lab, scenario, target):
    """The ANSWER, checked against the truth: each cycle item tags exactly as many
    'held by' as the truth's cycle has locks that record no owner; each convoy item
    tags its root holder(s) when the lock records none, names the tasks behind it
    (the first few, then "and N more": as many as the truth puts behind the root), and
    says "1 task waits"; items are numbered as the evidence numbers them; no line is
    wider than 80 columns (not a terminal)."""
    dump, crash = lab(scenario, target=target)
    tr = Truth(dump.truth)
    out = io.StringIO()
    D.main([], crash, out=out)
    text = out.getvalue()
    for line in text.splitlines():
        assert len(line) <= 80, line
    if "ANSWER\n" not in text:
        return
    answer = text[text.index("ANSWER\n"):text.index("\nEVIDENCE")]
    evidence = text[text.index("\nEVIDENCE"):]
    items = _items(answer)
    cycles = tr.cycles()
    for key, item in items.items():
        if key.startswith("DEADLOCK"):
            (pids, locks), = [c for c in cycles
                              if all(re.search(r"\b%s %d\b" % (re.escape(tr.comm[p]), p), item)
                                     for p in c[0])]
            want = sum(1 for a in locks if _unrecorded(tr.locks[a]))
            assert item.count("(INFERRED)") == want, item
            assert "\n  %s: " % key in evidence           # DEADLOCK N of the evidence
            continue
        # a convoy: the truth's lock it names first is the one its root holds
        named = [a for a in tr.locks if "%x" % a in item.split(", held by")[0]]
        if not named:
            continue                                   # RT's own locks (see above)
        lk = tr.locks[named[0]]
        owners = {o["pid"] for o in lk["owners"]}
        behind = tr.upstream(owners)
        m = re.match(r"(\d+) tasks? \((.*?)\) (waits?|behind) ", item)
        assert m, item
        n = int(m.group(1))
        assert n == len(behind), (item, behind)
        assert m.group(3) in ("behind", "waits" if n == 1 else "wait"), item
        shown = re.findall(r"(\S+) (\d+)(?:,| and|$)", m.group(2))
        assert {int(p) for _, p in shown} <= behind
        assert all(tr.comm[int(p)] == c for c, p in shown)
        more = re.search(r" and (\d+) more$", m.group(2))
        assert len(shown) + (int(more.group(1)) if more else 0) == n, item
        roots = item.split(", held by ")[1] if ", held by " in item else ""
        for p in owners:
            tag = "%s %d (INFERRED)" % (tr.comm[p], p)
            if "%s %d" % (tr.comm[p], p) in roots:
                assert (tag in roots) == _unrecorded(lk), (item, p)
        # the same number in the evidence names the same tasks
        who = re.search(r"(?m)^      %s: (.*(?:\n        .*)*)" % key,
                        evidence[evidence.index("Who waits in each convoy:"):])
        assert who and " ".join(who.group(1).split()) == m.group(2), key
