"""The verbs on a LIVE kernel: crash-ext run inside the lab's guest, on ``/proc/kcore``.

``tests/lab/live.py`` boots the lab's 6.1 kernel, the module stages the scenario and
prints its truth (as for a dump), then the guest mounts the host's root read-only over 9p
and runs crash-ext there, on its own running kernel (``crash VMLINUX``, no dump file: the
way ``crash-ext`` without ``--vmcore`` runs).  Two guests, every verb of each in one crash
session: the seed's ABBA (the story's scenario), and abba-mutex under churn: 5*CHURN busy
loops of real lock traffic in real kernel code (appends to one tmpfs file, mkdir/rmdir in
one directory, writers and readers of one FIFO; ``guest/live.sh``) beside one ABBA that
never resolves.  Every expected value comes from the module's truth of that boot (pids
and addresses differ from boot to boot: the guest resolves ``{lock:0}``-style words from
it, ``live_runner.resolve``).  With ``MPYKDUMP`` set (a user's pykdump build, as for
``tests/test_real_pykdump.py``) the seed's verbs also run inside crash on the same running
kernel, and their answers pass the same checks.
"""

import json
import re

import pytest

from tests import incrash
from tests.lab import labdumps
from tests.lab.live import run_live, truth_cycle
from tests.lab.mklab import LabError

pytestmark = pytest.mark.skipif("6.1" not in labdumps.selected_kernels(),
                                reason="the live lab boots the 6.1 kernel (CRASH_EXT_KERNELS)")

CHURN = 2
SEED = [["deadlock", "--json"], ["whoholds", "--json", "{lock:0}"],
        ["whoholds", "--json", "-p", "{pid:rm}"], ["argrecover", "{pid:rm}", "vfs_unlink"],
        ["deadlock"], ["argrecover", "{owner:0}"]]
CHURNED = [["deadlock", "--json"], ["whoholds", "--json", "{lock:0}"],
           ["whoholds", "--json", "-p", "{waiter:0}"]]

_RUNS = {}


def _run(scenario, argvs, churn=0, mpykdump=None):
    """The live guest of ``scenario`` (booted once per test session)."""
    key = (scenario, churn)
    if key not in _RUNS:
        try:
            _RUNS[key] = run_live(scenario, argvs, churn=churn, mpykdump=mpykdump)
        except LabError as e:
            pytest.fail(str(e), pytrace=False)
    return _RUNS[key]


def _out(run, i, label="live"):
    """(rc, text) of the i-th argv on the live kernel (rc None inside crash)."""
    rc, text, _ = run.outputs[label][i]
    return rc, text


def _check_deadlock(run, doc):
    pids, locks = truth_cycle(run.truth)
    assert doc["dump"]["live"] is True and doc["dump"]["vmcore"] in (None, "/proc/kcore",
                                                                     "/dev/crash"), doc["dump"]
    assert len(doc["cycles"]) == 1, doc["summary"]
    c = doc["cycles"][0]
    assert set(c["pids"]) == pids
    assert {int(s["lock"]["address"], 16) for s in c["steps"]} == locks
    owners = {int(l["address"], 16): l["owners"][0]["pid"] for l in run.truth["locks"]}
    for s in c["steps"]:
        assert s["held_by"]["task"]["pid"] == owners[int(s["lock"]["address"], 16)]
    assert c["confirmed"].startswith("confirmed twice, ") and c["confirmed"].endswith(" ms apart")
    assert any(n.startswith("live system: every reported wait was read twice")
               for n in doc["notes"])


def _seed_run():
    return _run("seed", SEED, mpykdump=incrash.mpykdump())


def _rc(rc, want):
    """An exit code as the verbs define it; inside crash (rc None) there is none."""
    return rc is None or rc == want


def test_seed_live(lab):
    run = _seed_run()
    assert run.start["live"] > 0
    _check_seed(run, "live")


@pytest.mark.skipif(not incrash.mpykdump(), reason=incrash.SKIP_REASON)
def test_seed_live_inside_crash(lab):
    """The same verbs typed at crash's prompt with the real pykdump, on the same running
    kernel: the same checks against the truth (each verb's answer read in its own moment:
    on a live kernel two sessions' texts differ in their timings, not in their facts)."""
    run = _seed_run()
    assert len(run.outputs.get("incrash", [])) == len(SEED), run.console[-3000:]
    for _, text in (_out(run, i, "incrash") for i in range(len(SEED))):
        assert "Traceback" not in text and not text.startswith("crash: ")
    _check_seed(run, "incrash")
    # the stuck tasks' stacks do not move: their argument recovery is byte for byte the CLI's
    for i in (3, 5):
        assert _out(run, i, "incrash")[1] == _out(run, i, "live")[1], SEED[i]


def _check_seed(run, label):
    rc, text = _out(run, 0, label)
    doc = json.loads(text)
    _check_deadlock(run, doc)
    # rm, behind the cycle, as the truth says: it waits on the lock ruby 2 holds
    rm = [t["pid"] for t in run.truth["tasks"] if t["comm"] == "rm"][0]
    assert [b["task"]["pid"] for b in doc["cycles"][0]["behind"]] == [rm]
    assert doc["convoys"] == [] and _rc(rc, 1)
    # whoholds on the first lock: the truth's owner and waiters, in order, and "live"
    lock = run.truth["locks"][0]
    rc, text = _out(run, 1, label)
    rep = json.loads(text)["lock"]
    assert rep["owner"]["pid"] == lock["owners"][0]["pid"]
    assert [w["task"]["pid"] for w in rep["waiters"]] == [w["pid"] for w in lock["waiters"]]
    assert any(p.startswith("live system: read once") for p in rep["problems"])
    # whoholds -p rm: ends in the cycle; rm did not run meanwhile (it is stuck)
    rc, text = _out(run, 2, label)
    outcome = json.loads(text)["outcome"]
    assert outcome["kind"] == "cycle" and set(outcome["pids"]) == truth_cycle(run.truth)[0]
    assert outcome["live_moved"] is False and "did not run meanwhile" in outcome["text"]
    assert _rc(rc, 1)
    # argrecover on rm's vfs_unlink: its dentry is fire.js's, decoded from the dump
    rc, text = _out(run, 3, label)
    assert _rc(rc, 0) and "vfs_unlink" in text and "fire.js" in text
    # argrecover on the first lock's owner: the pointers the module noted passing to each
    # of its functions whose frame is still on the stack (the function's last call)
    owner = run.truth["locks"][0]["owners"][0]["pid"]
    rc, text = _out(run, 5, label)
    assert _rc(rc, 0)
    last = {}
    for c in run.truth["calls"]:
        if c["pid"] == owner:
            group = last.setdefault(c["function"], [{}])
            if c["arg"] in group[-1]:
                group.append({})
            group[-1][c["arg"]] = int(c["value"], 16)
    on_stack = [f for f in last if re.search(r"^ #\d+ %s( \[\w+\])?$" % f, text, re.M)]
    assert "lab_take" in on_stack and "lab_hold" in on_stack, text[:2000]
    for f in on_stack:
        for arg, value in last[f][-1].items():
            assert "%x" % value in text, (f, arg, text)
    # the text form says so too
    rc, text = _out(run, 4, label)
    assert "(live system: confirmed twice, " in text and _rc(rc, 1)


def test_churn_finds_the_abba_and_nothing_else(lab):
    run = _run("abba-mutex", CHURNED, churn=CHURN)
    assert "LIVE-CHURN: %d loops" % (5 * CHURN) in run.console
    rc, text = _out(run, 0)
    doc = json.loads(text)
    _check_deadlock(run, doc)
    assert doc["convoys"] == [], [c["what"] for c in doc["convoys"]]
    assert rc == 1
    rc, text = _out(run, 1)
    rep = json.loads(text)["lock"]
    lock = run.truth["locks"][0]
    assert rep["owner"]["pid"] == lock["owners"][0]["pid"]
    assert [w["task"]["pid"] for w in rep["waiters"]] == [w["pid"] for w in lock["waiters"]]
    rc, text = _out(run, 2)
    outcome = json.loads(text)["outcome"]
    assert outcome["kind"] == "cycle" and outcome["live_moved"] is False
