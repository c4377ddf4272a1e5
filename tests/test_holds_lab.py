"""The holds analysis on the lab's held-lock scenarios, checked against the module's truth.

``global-sems`` (ABBA over two global semaphores taken RIP-relative/immediate), ``wrapper``
(ABBA over semaphores inside kmalloc'ed objects, taken through a noinline wrapper, plus a
waiter) and ``rwsem-readers`` (an rw_semaphore held for read by three tasks through a
wrapper, a writer and a reader queued): in none of them does a holder keep the lock's
address in a register or a stack slot, so the holders must come from their code.

Expected values come from ``truth.json`` only (each lock's owners and waiters).
"""

import io
import json
import re

import pytest

from crash_ext.waits.lockreport import lock_report
from crash_ext.session.snapshot import Snapshot
from crash_ext.waits.collection import collect
from crash_ext.verbs import whoholds
from tests.truthcheck import CODE, top_candidates_from_code
from tests.lab import labdumps
from tests.test_deadlock_lab import Truth, _pids_of_cycle

HELD = ("global-sems", "wrapper", "rwsem-readers")
KERNELS = [k for k in ("6.1", "6.12") if k in labdumps.selected_kernels()]
MATRIX = labdumps.matrix(HELD, kernels=KERNELS) if KERNELS else []


def _truth_holds(truth):
    """{pid: set of lock addresses} the truth says each task owns."""
    holds = {}
    for lk in truth["locks"]:
        for o in lk["owners"]:
            holds.setdefault(o["pid"], set()).add(int(lk["address"], 16))
    return holds


def _ownerless(truth):
    return [lk for lk in truth["locks"] if lk["owners"] and lk["waiters"]]


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_every_holder_named_first_and_alone_from_its_code(lab, scenario, target):
    dump, crash = lab(scenario, target=target)
    snap = Snapshot(crash)
    locks = _ownerless(dump.truth)
    assert locks
    for lk in locks:
        rep = lock_report(crash, int(lk["address"], 16), lk["type"], snapshot=snap)
        assert rep.owner is None, lk["name"]        # the scenario's point: no owner field
        top = top_candidates_from_code(rep, lk)
        for c in top:
            assert "acquired by" in c.evidence[0], (lk["name"], c.evidence)
        for c in rep.candidates[len(top):]:
            assert c.score < min(x.score for x in top), lk["name"]
            assert not any(e.startswith(CODE) for e in c.evidence), (lk["name"], c)


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_deadlock_edges_from_code(lab, scenario, target):
    dump, crash = lab(scenario, target=target)
    tr = Truth(dump.truth)
    res = collect(crash)
    assert {_pids_of_cycle(c) for c in res.cycles} == tr.cycles()
    for lk in _ownerless(dump.truth):
        ln = res.graph.locks[int(lk["address"], 16)]
        assert sorted(h.task.pid for h in ln.holders) == sorted(
            o["pid"] for o in lk["owners"]), lk["name"]
        for h in ln.holders:
            assert h.inferred and h.evidence[0].startswith("its code holds it: frame #")
    for c in res.cycles:
        assert c.inferred
        for s in c.steps:
            assert s.held_by.evidence[0].startswith("its code holds it"), s.held_by


def _held_rc(truth, pid):
    """The exit code ``whoholds --held PID`` owes by the truth: 1 when the task is
    blocked and holds a lock others wait on (they are blocked behind a blocked holder),
    else 0."""
    me = [t for t in truth["tasks"] if t["pid"] == pid]
    stuck = bool(me) and me[0]["blocked_kind"] not in (None, "running")
    waited = any(lk["waiters"] for lk in truth["locks"]
                 if pid in [o["pid"] for o in lk["owners"]])
    return 1 if stuck and waited else 0


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_held_pid_lists_what_the_truth_says(lab, scenario, target):
    dump, crash = lab(scenario, target=target)
    holds = _truth_holds(dump.truth)
    pids = sorted({t["pid"] for t in dump.truth["tasks"]})
    assert pids
    for pid in pids:
        buf = io.StringIO()
        assert whoholds.main(["--held", str(pid), "--json"], crash, out=buf) == \
            _held_rc(dump.truth, pid)
        js = json.loads(buf.getvalue())
        got = {int(h["address"], 16) for h in js["held"]}
        assert got == holds.get(pid, set()), (pid, js)
        for h in js["held"]:
            assert h["source"] == "code" and h["evidence"] and "acquired by" in h["evidence"][0]
    owner = min(holds)
    buf = io.StringIO()
    assert whoholds.main(["--held", str(owner)], crash, out=buf) == _held_rc(dump.truth,
                                                                             owner)
    text = buf.getvalue()
    assert "HOLDS (inferred from its frames' code" in text
    for a in holds[owner]:
        assert "%x" % a in text


SEEDS = [("seed", t) for t in labdumps.targets(KERNELS)] if KERNELS else []


@pytest.mark.parametrize("scenario,target", SEEDS)
def test_held_pid_on_the_seed_names_each_rubys_lock(lab, scenario, target):
    """The seed's decisive step, from code: each ruby took its lock through ``lab_take``,
    a dispatcher that switches on the lock's kind (as ``xfs_ilock(ip, flags)`` does on
    its flags), so no single path says which lock.  --held lists, for each task the
    truth says owns a lock, exactly the truth's locks in the truth's mode, each from its
    frames' code (the dispatcher's one path the dump's lock states allow)."""
    dump, crash = lab(scenario, target=target)
    holds = _truth_holds(dump.truth)
    modes = {(o["pid"], int(lk["address"], 16)): o["mode"]
             for lk in dump.truth["locks"] for o in lk["owners"]}
    assert sorted(holds) == sorted(t["pid"] for t in dump.truth["tasks"]
                                   if t["comm"] == "ruby")
    for pid, want in holds.items():
        buf = io.StringIO()
        assert whoholds.main(["--held", str(pid), "--json"], crash, out=buf) == \
            _held_rc(dump.truth, pid) == 1          # a ruby of the cycle: others wait
        held = json.loads(buf.getvalue())["held"]
        assert {int(h["address"], 16) for h in held} == want, (pid, held)
        for h in held:
            assert h["source"] == "code" and h["path_dependent"], h
            assert h["mode"] == {"w": "writer", "r": "reader"}[
                modes[(pid, int(h["address"], 16))]], h
            assert "acquired by lab_take" in h["evidence"][0], h
            assert "locked in the dump" in h["evidence"][0], h
        buf = io.StringIO()
        assert whoholds.main(["--held", str(pid)], crash, out=buf) == 1
        text = buf.getvalue()
        assert re.match(r'PID: %d  TASK: [0-9a-f]+  CPU: \d+  COMMAND: "ruby"' % pid, text)
        for a in want:
            assert "%x" % a in text
        assert max(len(l) for l in text.splitlines()[1:]) <= 80, text
