"""PREEMPT_RT rw_semaphores held by readers, with a writer waiting for them to leave.

On PREEMPT_RT a writer in ``rwbase_write_lock`` owns the rw_semaphore's inner rtmutex
and sleeps until the readers count drains: it is on no wait list and the lock records
none of its readers.  The lab stages ``readers`` and ``rwsem-readers`` (a
``mmap_lock``-style rw_semaphore in a kmalloc'ed object, taken through wrappers) and the
reader/writer ABBA ``rw-abba`` that way on the PREEMPT_RT kernels, with every crash
version that reads them.  Expected values come from ``truth.json`` only: each lock's
owners (the readers), its waiters in order (the writer first, ``writer_waits_for_readers``
naming it), what each task is blocked on, and the cycles its graph has.
"""

import io
import json

import pytest

from crash_ext.session.snapshot import Snapshot
from crash_ext.verbs import deadlock as D
from crash_ext.verbs import whoholds
from crash_ext.waits.blockedon import blocked_on
from crash_ext.waits.collection import collect
from crash_ext.waits.lockreport import lock_report
from crash_ext.waits.rtdrain import DRAIN_EVIDENCE
from tests.truthcheck import CODE, top_candidates_from_code
from tests.lab import labdumps, mklab
from tests.test_deadlock_lab import Truth, _pids_of_cycle
from tests.test_whoholds_lab import truth_lock_rc

SCENARIOS = ("readers", "rwsem-readers", "rw-abba")
MODE = {"w": "writer", "r": "reader", "-": None}


def _targets():
    """KERNEL@CRASH for the selected PREEMPT_RT kernels with every selected crash that
    reads them (not only the newest)."""
    out = []
    for k in labdumps.selected_kernels():
        if mklab.is_rt(k):
            out.extend("%s@%s" % (k, v) for v in labdumps.selected_crashes()
                       if (k, v) not in labdumps.UNREADABLE)
    return out


MATRIX = [(s, t) for t in _targets() for s in SCENARIOS]
_SNAPS = {}


def _session(lab, scenario, target):
    dump, crash = lab(scenario, target=target)
    key = (scenario, target)
    if key not in _SNAPS or _SNAPS[key][0] is not crash:
        _SNAPS[key] = (crash, Snapshot(crash))
    return dump, crash, _SNAPS[key][1]


def _draining(truth):
    """The truth's rw_semaphores with a writer waiting for their readers."""
    locks = [lk for lk in truth["locks"] if lk.get("writer_waits_for_readers")]
    assert locks and truth["verified"], truth.get("verify_message")
    return locks


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_readers_ranked_first_from_code_writer_first_waiter(lab, scenario, target):
    dump, crash, snap = _session(lab, scenario, target)
    for lk in _draining(dump.truth):
        rep = lock_report(crash, int(lk["address"], 16), "rw_semaphore", snapshot=snap)
        # the writer owns the rtmutex: neither the owner nor a hint of the rw_semaphore
        assert rep.owner is None and rep.owner_hint is None, lk["name"]
        assert "WRITER_WAITING" in rep.flags and rep.readers == len(lk["owners"])
        assert [(w.task.pid, w.mode) for w in rep.waiters] == [
            (w["pid"], MODE[w["mode"]]) for w in lk["waiters"]], lk["name"]
        assert rep.waiters[0].task.pid == lk["writer_waits_for_readers"]
        assert "not a holder" in rep.state["pending_writer"]
        top = top_candidates_from_code(rep, lk)
        for c in top:
            assert "for reading" in c.evidence[0], c.evidence[0]
        for c in rep.candidates[len(top):]:
            assert c.score < min(x.score for x in top), lk["name"]
            assert not any(e.startswith(CODE) for e in c.evidence), c


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_each_waiter_tied_to_its_rwsem(lab, scenario, target):
    """The writer is tied to the lock through the lock's own fields at an address of its
    frames; a reader behind it through its pi_blocked_on record on the rtmutex."""
    dump, crash, snap = _session(lab, scenario, target)
    for lk in _draining(dump.truth):
        addr = int(lk["address"], 16)
        for w in lk["waiters"]:
            b = blocked_on(crash, snap.by_pid(w["pid"]).task, snapshot=snap)
            assert (b.kind, b.lock_address, b.lock_type, b.mode) == (
                "lock", addr, "rw_semaphore", MODE[w["mode"]]), (w, b)
            if w["pid"] == lk["writer_waits_for_readers"]:
                ev = [e for e in b.evidence if e.startswith(DRAIN_EVIDENCE)]
                assert ev and "rtmutex.owner = this task" in ev[0], b.evidence
                assert "frame #" in ev[0] and "not a holder" in ev[0]
            else:
                assert any(e.startswith("task_struct.pi_blocked_on = ")
                           for e in b.evidence), b.evidence


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_whoholds_lists_the_writer_under_waiters(lab, scenario, target):
    dump, crash, _ = _session(lab, scenario, target)
    for lk in _draining(dump.truth):
        buf = io.StringIO()
        # the exit code the readers' own state owes (1 when every reader is itself blocked)
        want_rc = truth_lock_rc(dump, lk)
        assert whoholds.main([lk["address"]], crash, out=buf) == want_rc
        text = buf.getvalue()
        assert "OWNER HINT" not in text and "does not hold the rwsem yet" not in text
        assert "WAITERS: %d (queue order)" % len(lk["waiters"]) in text
        wline = [ln for ln in text.splitlines()
                 if ln.split()[1:2] == [str(lk["writer_waits_for_readers"])]]
        assert wline and "writer" in wline[0], text
        buf = io.StringIO()
        assert whoholds.main([lk["address"], "--json"], crash, out=buf) == want_rc
        js = json.loads(buf.getvalue())
        ws = js["lock"]["waiters"]
        assert [(w["task"]["pid"], w["mode"]) for w in ws] == [
            (w["pid"], MODE[w["mode"]]) for w in lk["waiters"]], js
        assert "not a holder" in js["lock"]["state"]["pending_writer"]


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_deadlock_cycles_match_truth(lab, scenario, target):
    """The reader/writer ABBA is found as a cycle whose rw_semaphore step is INFERRED
    from the reader's code; the readers scenarios have none (a convoy of the waiters
    behind the readers)."""
    dump, crash, _ = _session(lab, scenario, target)
    tr = Truth(dump.truth)
    res = collect(crash)
    want = tr.cycles()
    assert {_pids_of_cycle(c) for c in res.cycles} == want
    assert len(res.cycles) == len(want) == (1 if scenario == "rw-abba" else 0)
    rw = {int(lk["address"], 16) for lk in _draining(dump.truth)}
    for c in res.cycles:
        assert c.inferred
        for s in c.steps:
            owners = {o["pid"] for o in tr.locks[s.lock.address]["owners"]}
            assert s.held_by.task.pid in owners
            assert s.held_by.inferred == (s.lock.address in rw), s
            if s.held_by.inferred:
                assert s.held_by.evidence[0].startswith("its code holds it: frame #")
    for a in rw:
        ln = res.graph.locks[a]
        assert sorted(h.task.pid for h in ln.holders) == sorted(
            o["pid"] for o in tr.locks[a]["owners"])
    buf = io.StringIO()
    rc = D.main([], crash, out=buf)
    text = buf.getvalue()
    if want:
        assert rc == 1 and "(INFERRED)" in text and "DEADLOCK" in text, text
    else:
        assert "No deadlock cycle" in text, text
