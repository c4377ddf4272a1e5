"""whoholds on the lab's real dumps, checked against the truth the lab module published.

Every lock of every scenario: type, owner (recorded) or, for locks that record none,
the true holder(s) ranked first among the candidates; waiters and their order (and
reader/writer mode for rw_semaphores).  Every task the truth says is blocked on a lock:
blocked_on finds exactly that lock.  Bad inputs: one-line errors, no traceback.
"""

import io
import json
import re

import pytest

from crash_ext.waits.blockedon import blocked_on
from crash_ext.waits.lockreport import lock_report
from crash_ext.session.snapshot import Snapshot
from crash_ext.verbs import whoholds
from tests.lab import labdumps

# (scenario, KERNEL@CRASH) over the kernel matrix (tests/lab/labdumps.py)
MATRIX = labdumps.matrix()
MODE = {"w": "writer", "r": "reader", "-": None}

_SNAPS = {}


def _session(lab, scenario, target=None):
    dump, crash = lab(scenario, target=target)
    key = (scenario, target)
    if key not in _SNAPS or _SNAPS[key][0] is not crash:   # a session closed and reopened
        _SNAPS[key] = (crash, Snapshot(crash))
    return dump, crash, _SNAPS[key][1]


def _run(crash, argv):
    """Return (exit code, stdout) of ``whoholds ARGV``; stderr must stay empty."""
    rc, out, err = _run3(crash, argv)
    assert err == "", err
    return rc, out


def _run3(crash, argv):
    """Return (exit code, stdout, stderr) of ``whoholds ARGV``."""
    out, err = io.StringIO(), io.StringIO()
    rc = whoholds.main(argv, crash, out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def _truth_blocked(dump, pid):
    """True when the truth has task ``pid`` blocked (on a lock or anything else)."""
    return any(t["pid"] == pid and t["blocked_kind"] not in (None, "running")
               for t in dump.truth["tasks"])


def truth_lock_rc(dump, lk):
    """The exit code ``whoholds ADDR`` owes lock ``lk`` by the module's truth: 1 when
    tasks wait on it and every holder is itself blocked, else 0."""
    owners = [o["pid"] for o in lk["owners"]]
    return 1 if lk["waiters"] and owners and all(_truth_blocked(dump, p)
                                                 for p in owners) else 0


def _check_lock(crash, snap, lk, lock_type):
    addr = int(lk["address"], 16)
    rep = lock_report(crash, addr, lock_type, snapshot=snap)
    assert rep.type == lk["type"], (lk["name"], rep.problems)
    want_w = [(w["pid"], MODE[w["mode"]] if lk["type"] == "rw_semaphore" else None)
              for w in lk["waiters"]]
    got_w = [(w.task.pid, w.mode) for w in rep.waiters]
    assert got_w == want_w, lk["name"]
    owners = sorted(o["pid"] for o in lk["owners"])
    if rep.owner is not None:
        assert [rep.owner.pid] == owners, lk["name"]
        assert rep.owner_source
    else:
        # ownerless (semaphore, reader-owned rwsem): the true holder(s) rank first
        assert rep.type in ("semaphore", "rw_semaphore"), lk["name"]
        top = sorted(c.task.pid for c in rep.candidates[:len(owners)])
        assert top == owners, (lk["name"], [(c.task.pid, c.score) for c in rep.candidates])
        if len(owners) > 1 or len(rep.candidates) > len(owners):
            # a holder beyond the true ones must score strictly lower
            if len(rep.candidates) > len(owners):
                assert rep.candidates[len(owners)].score < rep.candidates[
                    len(owners) - 1].score, lk["name"]
        assert all(c.evidence for c in rep.candidates)
    return rep, len(want_w)


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_every_lock_matches_truth(lab, scenario, target):
    dump, crash, snap = _session(lab, scenario, target)
    n_w = 0
    for lk in dump.truth["locks"]:
        _, n = _check_lock(crash, snap, lk, lk["type"])
        n_w += n
    assert dump.truth["locks"]


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_every_lock_type_detected(lab, scenario, target):
    """Without -t: the type comes from a blocked task's frame or the lock's memory."""
    dump, crash, snap = _session(lab, scenario, target)
    for lk in dump.truth["locks"]:
        rep = lock_report(crash, int(lk["address"], 16), None, snapshot=snap)
        assert rep.type == lk["type"], (lk["name"], rep.problems)
        assert rep.state.get("type_from")


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_blocked_on_matches_truth(lab, scenario, target):
    dump, crash, snap = _session(lab, scenario, target)
    for t in dump.truth["tasks"]:
        e = snap.by_pid(t["pid"])
        assert e is not None, t
        b = blocked_on(crash, e.task, snapshot=snap)
        if t["blocked_kind"] == "lock":
            assert b.kind == "lock", (t, b)
            assert b.lock_address == int(t["blocked_address"], 16), (t, b)
            lk = [x for x in dump.truth["locks"] if x["name"] == t["blocked_on"]][0]
            assert b.lock_type == lk["type"]
        else:
            assert b.kind == t["blocked_kind"], (t, b)


@pytest.mark.parametrize("target", [t for s, t in MATRIX if s == "seed"])
def test_seed_chain_from_rm(lab, target):
    """whoholds -p rm: fire.js's i_rwsem, its owner ruby, that ruby's wait on
    r:i_iolock and its owner, then the cycle."""
    dump, crash, _ = _session(lab, "seed", target)
    tr = dump.truth
    rm = [t for t in tr["tasks"] if t["comm"] == "rm"][0]
    fire = [l for l in tr["locks"] if l["name"].startswith("i:")][0]
    iolock = [l for l in tr["locks"] if l["name"] == "r:i_iolock"][0]
    rc, out = _run(crash, ["-p", str(rm["pid"])])
    assert rc == 1, out
    assert "fire.js" in out and fire["container"]["path"] in out
    assert "%x" % int(fire["address"], 16) in out
    assert "inode.i_rwsem" in out
    o1 = fire["owners"][0]
    assert re.search(r"OWNER: PID: %d .*\"%s\"" % (o1["pid"], o1["comm"]), out)
    assert "%x" % int(iolock["address"], 16) in out
    o2 = iolock["owners"][0]
    assert re.search(r"OWNER: PID: %d .*\"%s\"" % (o2["pid"], o2["comm"]), out)
    assert out.startswith("ANSWER: DEADLOCK: ") and "`deadlock`" in out
    # order: rm's lock first, then the i_iolock
    assert out.index("%x" % int(fire["address"], 16)) < out.index(
        "%x" % int(iolock["address"], 16))
    rc, js = _run(crash, ["-p", str(rm["pid"]), "--json"])
    d = json.loads(js)
    assert [h["lock"]["address"] for h in d["chain"] if h["lock"]][:2] == [
        fire["address"], iolock["address"]]
    assert d["outcome"]["kind"] == "cycle"
    assert sorted(d["outcome"]["pids"]) == sorted(
        l["owners"][0]["pid"] for l in dump.truth["locks"])


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_exit_codes_match_truth(lab, scenario, target):
    """Exit codes a runbook branches on, against the module's truth: ``whoholds ADDR``
    is 1 exactly when tasks wait on the lock and every holder is itself blocked (else
    0); ``whoholds -p WAITER`` is 1 when the waiter's lock's holders are blocked (a
    cycle, or a holder stuck elsewhere: the readers that never finish included)."""
    dump, crash, _ = _session(lab, scenario, target)
    for lk in dump.truth["locks"]:
        rc, out = _run(crash, [lk["address"]])
        assert rc == truth_lock_rc(dump, lk), (lk["name"], out[-1500:])
        for w in lk["waiters"][-1:]:
            rc, out = _run(crash, ["-p", str(w["pid"])])
            assert rc == truth_lock_rc(dump, lk), (lk["name"], w, out[-1500:])


def test_readers_that_never_finish_exit_1(lab):
    """readers: a writer waits on an rw_semaphore three readers hold, each stuck on a
    completion; whoholds -p on the writer (by command name) exits 1, though the lock
    records no owner; with --no-candidates the answer says candidates were not
    searched (not that none was found)."""
    dump, crash, _ = _session(lab, "readers")
    lk = [l for l in dump.truth["locks"] if len(l["owners"]) > 1][0]
    writer = [t for t in dump.truth["tasks"] if t["comm"] == "writer"][0]
    assert writer["blocked_on"] == lk["name"]
    assert all(_truth_blocked(dump, o["pid"]) for o in lk["owners"])
    rc, out = _run(crash, ["-p", "writer"])
    assert rc == 1, out
    rc, out = _run(crash, ["-p", "writer", "--no-candidates"])
    assert "not searched" in out and "no candidate holder was found" not in out, out
    rc, js = _run(crash, ["-p", str(writer["pid"]), "--no-candidates", "--json"])
    d = json.loads(js)
    assert d["outcome"]["kind"] == "no_owner"
    assert d["outcome"]["candidates_searched"] is False
    # the lock itself: the same words, no candidate listed
    rc, out = _run(crash, ["--no-candidates", lk["address"]])
    assert "CANDIDATE HOLDERS: not searched (--no-candidates)" in out, out
    assert not re.search(r"(?m)^    \d+\. PID: ", out), out


def test_task_word_is_a_command_name(lab):
    """-p rm names the one task called rm; -p ruby names two: refused, both listed,
    exit 2; --held and -p take a task address as well (the truth's pids)."""
    dump, crash, snap = _session(lab, "seed")
    rm = [t for t in dump.truth["tasks"] if t["comm"] == "rm"][0]
    by_name = _run(crash, ["-p", "rm", "--json"])
    by_pid = _run(crash, ["-p", str(rm["pid"]), "--json"])
    addr = "%x" % snap.by_pid(rm["pid"]).task
    by_addr = _run(crash, ["-p", addr, "--json"])
    assert by_name == by_pid == by_addr and by_name[0] == 1
    rubies = sorted(t["pid"] for t in dump.truth["tasks"] if t["comm"] == "ruby")
    rc, out, err = _run3(crash, ["-p", "ruby"])
    assert rc == 2 and out == ""
    assert "2 tasks are named 'ruby'" in err and all(str(p) in err for p in rubies), err


def test_struct_member_form(lab):
    dump, crash, _ = _session(lab, "seed")
    fire = [l for l in dump.truth["locks"] if l["name"].startswith("i:")][0]
    rc, js = _run(crash, ["inode.i_rwsem", fire["container"]["address"], "--json"])
    assert rc == truth_lock_rc(dump, fire) == 1, js     # its owner ruby waits too
    d = json.loads(js)
    assert d["verb"] == "whoholds" and d["mode"] == "lock"
    d = d["lock"]
    assert d["address"] == fire["address"]
    assert d["type"] == "rw_semaphore"
    assert d["owner"]["pid"] == fire["owners"][0]["pid"]
    assert [w["task"]["pid"] for w in d["waiters"]] == [w["pid"] for w in fire["waiters"]]
    rc, out = _run(crash, ["inode.i_rwsem", fire["container"]["address"]])
    assert rc == 1 and "WAITERS: %d" % len(fire["waiters"]) in out


def test_symbol_address(lab):
    """A lock named by symbol: the lab module's static lab_create_mutex (unlocked)."""
    dump, crash, _ = _session(lab, "abba-mutex")
    rc, out = _run(crash, ["lab_create_mutex"])
    assert rc == 0, out
    assert "TYPE: mutex" in out and "symbol lab_create_mutex" in out
    assert "unlocked" in out and "WAITERS: 0" in out


def _free_object(crash, lk_addr):
    """Return a free object address in the slab cache of ``lk_addr``, or None."""
    out = crash.command("kmem -s %x" % lk_addr)
    cache = out.splitlines()[1].split()[0]
    out = crash.command("kmem -S %s" % cache)
    for line in out.splitlines():
        m = re.match(r"^\s+([0-9a-f]{16})\s+\(cpu \d+ cache\)\s*$", line)
        if m:
            return int(m.group(1), 16)
    return None


@pytest.mark.parametrize("argv,pattern", [
    (["0"], r"NULL"),
    (["-t", "mutex", "0"], r"NULL"),
    (["400000"], r"user-space"),
    (["-t", "mutex", "ffffffffff600000"], r"not readable|unmapped"),
    (["-t", "spaghetti", "ffff888000000000"], r"not a lock type"),
    (["-p", "99999"], r"no task with pid 99999"),
    (["-p", "ffff888000001000"], r"no task"),
    (["no_such_symbol_xyz"], r"no such symbol"),
    (["-p", "nosuchcommand"], r"no task named 'nosuchcommand'"),
    (["--held", "99999"], r"no task with pid 99999"),
    (["-p", "99999", "--json"], r"no task with pid 99999"),
    (["inode.i_size", "ffff888000000000"], r"not a lock type"),
    (["inode.no_member", "ffff888000000000"], r"no member"),
    (["inode.i_rwsem", "0"], r"NULL"),
    (["ffff;rm"], r"not an address"),
    ([], r"give a lock"),
])
def test_bad_inputs_one_line(lab, argv, pattern):
    """Bad input, found before or while reading the dump: one line on stderr, nothing
    on stdout (with --json too: stdout is one document or nothing), exit 2."""
    dump, crash, _ = _session(lab, "seed")
    rc, out, err = _run3(crash, argv)
    assert rc == 2, out + err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("whoholds: error: "), err
    assert re.search(pattern, err), err
    assert "Traceback" not in err


def test_not_a_lock_of_stated_type(lab):
    """A task_struct read as a mutex: a bounded report that says what is wrong."""
    dump, crash, snap = _session(lab, "seed")
    t = snap.by_pid(dump.truth["tasks"][0]["pid"]).task
    rc, out = _run(crash, ["-t", "mutex", "%x" % t])
    assert rc == 0, out
    assert "PROBLEM" in out, out


def test_freed_slab_object(lab):
    dump, crash, _ = _session(lab, "seed")
    lk = dump.truth["locks"][1]
    free = _free_object(crash, int(lk["address"], 16))
    if free is None:
        pytest.skip("no free object in that cache")
    rc, out = _run(crash, ["-t", "rw_semaphore", "%x" % (free + 0x58)])
    assert rc == 0, out
    assert "FREE" in out and "FREED" in out, out


def test_type_not_detected_says_what_was_tried(lab):
    dump, crash, snap = _session(lab, "seed")
    # the seed's first task's task_struct: readable, not a lock
    t = snap.by_pid(dump.truth["tasks"][0]["pid"]).task
    for extra in ([], ["--json"]):
        rc, out, err = _run3(crash, ["%x" % (t + 0x400)] + extra)
        assert rc == 2 and out == "", out      # the input named no lock: exit 2
        assert err.count("\n") == 1 and err.startswith("whoholds: error: no lock at ")
        assert "not detected" in err and "tried" in err and "-t TYPE" in err


def test_scale(lab):
    """2000 tasks, 22 locks.  Recorded owners and every waiter (in order) must match.

    The five semaphores s:scale_15..19 record no owner; their holders (kthreads that
    took one semaphore each and sleep on the same completion) differ only in the
    semaphore address their holding frame keeps for the release, so the true holder must
    be ranked first, alone.
    """
    dump, crash, snap = _session(lab, "scale")
    waiters = 0
    for lk in dump.truth["locks"]:
        addr = int(lk["address"], 16)
        rep = lock_report(crash, addr, lk["type"], snapshot=snap)
        assert rep.type == lk["type"]
        want = [(w["pid"], MODE[w["mode"]] if lk["type"] == "rw_semaphore" else None)
                for w in lk["waiters"]]
        assert [(w.task.pid, w.mode) for w in rep.waiters] == want, lk["name"]
        waiters += len(want)
        owner = lk["owners"][0]["pid"]
        if rep.owner is not None:
            assert rep.owner.pid == owner
            continue
        assert rep.candidates[0].task.pid == owner, lk["name"]
        assert len(rep.candidates) == 1 or rep.candidates[1].score < rep.candidates[0].score
    assert waiters == sum(len(l["waiters"]) for l in dump.truth["locks"])
    bad = []
    for t in dump.truth["tasks"]:
        b = blocked_on(crash, snap.by_pid(t["pid"]).task, snapshot=snap)
        if t["blocked_kind"] == "lock":
            if b.kind != "lock" or b.lock_address != int(t["blocked_address"], 16):
                bad.append(t["pid"])
        elif b.kind != t["blocked_kind"]:
            bad.append(t["pid"])
    assert not bad


# ------------------------------------------------- what the kernel itself records

def _blocker_targets():
    """sid's 7.x targets; while no crash of the lab reads 7.x (labdumps.UNREADABLE),
    whatever the kernels selected, one skipped entry per crash version saying so: the
    test waits on such a crash."""
    if all(("7", v) in labdumps.UNREADABLE for v in labdumps.CRASH_VERSIONS):
        return [pytest.param("seed", "7@" + v, marks=pytest.mark.skip(
            reason="blocked on a crash that reads 7.x: crash %s stops with %s" % (
                v, labdumps.UNREADABLE[("7", v)].split(" FILE:")[0])))
            for v in labdumps.CRASH_VERSIONS]
    return [(s, t) for s, t in MATRIX if t.startswith("7@")]


BLOCKER_TARGETS = _blocker_targets()
# the PREEMPT_RT scenarios with an rt_mutex-based lock (not those of semaphores only:
# `semaphore`, `global-sems`, `wrapper`; the test asserts the others have one)
RT_TARGETS = [(s, t) for s, t in MATRIX if t.split("@")[0].endswith("-rt")
              and s not in ("semaphore", "global-sems", "wrapper")]


@pytest.mark.parametrize("scenario,target", BLOCKER_TARGETS)
def test_blocker_field_is_the_evidence_on_7x(lab, scenario, target):
    """sid's 7.x records what a task blocks on (task_struct.blocker, hung-task blocker
    tracking, and semaphore.last_holder): blocked_on uses it first and agrees with the
    truth; a semaphore's last_holder is shown as a hint naming the truth's holder."""
    dump, crash, snap = _session(lab, scenario, target)
    assert crash.member_offset("task_struct", "blocker") is not None
    n = 0
    for t in dump.truth["tasks"]:
        if t["blocked_kind"] != "lock":
            continue
        b = blocked_on(crash, snap.by_pid(t["pid"]).task, snapshot=snap)
        assert b.lock_address == int(t["blocked_address"], 16), (t, b)
        assert b.evidence[0].startswith("task_struct.blocker = "), b.evidence
        n += 1
    assert n
    for lk in dump.truth["locks"]:
        if lk["type"] != "semaphore":
            continue
        rep = lock_report(crash, int(lk["address"], 16), "semaphore", snapshot=snap)
        assert "last_holder" in rep.layout
        assert rep.owner is None and rep.owner_hint.pid == lk["owners"][0]["pid"]


@pytest.mark.parametrize("scenario,target", RT_TARGETS)
def test_pi_blocked_on_is_the_evidence_on_rt(lab, scenario, target):
    """PREEMPT_RT: every task the truth has waiting on an rt_mutex-based lock (mutex,
    rw_semaphore, spinlock_t) is tied to it through its task_struct.pi_blocked_on record,
    and the layout named is the rt_mutex_base one."""
    dump, crash, snap = _session(lab, scenario, target)
    types = {l["name"]: l["type"] for l in dump.truth["locks"]}
    # a writer waiting for its readers is on no rbtree (tests/test_rt_rwsem_lab.py)
    draining = {l.get("writer_waits_for_readers") for l in dump.truth["locks"]}
    n = 0
    for t in dump.truth["tasks"]:
        if t["blocked_kind"] != "lock" or types[t["blocked_on"]] == "semaphore" or \
                t["pid"] in draining:
            continue
        b = blocked_on(crash, snap.by_pid(t["pid"]).task, snapshot=snap)
        assert b.lock_address == int(t["blocked_address"], 16), (t, b)
        assert b.lock_type == types[t["blocked_on"]]
        assert any(e.startswith("task_struct.pi_blocked_on = ") for e in b.evidence), b
        rep = lock_report(crash, b.lock_address, b.lock_type, snapshot=snap)
        assert "PREEMPT_RT" in rep.layout and "rbtree" in rep.layout
        n += 1
    assert n


# ---------------------------------------------------------------- what a reader sees

def _truth_owner_not_recorded(lk):
    """True when the truth's lock keeps no owner field naming its holder."""
    return lk["type"] == "semaphore" or any(o["mode"] == "r" for o in lk["owners"])


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_text_fits_and_lists_candidates_with_evidence(lab, scenario, target):
    """Every lock of the truth and every blocked task's chain: no line wider than 80
    columns (not a terminal).  A lock that records no owner lists its true holders as
    numbered candidates (from the truth), each with evidence that is not only weak;
    the rest are one line; with two or more shown, why #1 ranks above #2."""
    dump, crash, snap = _session(lab, scenario, target)
    for lk in dump.truth["locks"]:
        rc, text = _run(crash, [lk["address"]])
        for line in text.splitlines():
            assert len(line) <= 80, line
        if not _truth_owner_not_recorded(lk) or not lk["waiters"]:
            continue
        cands = text.split("CANDIDATE HOLDERS")[1].split("  WAITERS:")[0]
        numbered = [int(p) for p in re.findall(r"(?m)^    \d+\. PID: (\d+) ", cands)]
        assert {o["pid"] for o in lk["owners"]} <= set(numbered), (lk["name"], cands)
        for block in re.split(r"(?m)^    \d+\. ", cands)[1:]:
            bullets = re.findall(r"(?m)^       - (.*)", block)
            assert any(not b.endswith("(weak)") and not b.startswith("running on")
                       for b in bullets), block
        if len(numbered) > 1:
            assert re.search(r"#1 (ranks above #2: |and #2 tie)", cands), cands
        rest = re.search(r"(\d+) other tasks?: no evidence tying", cands)
        rep = lock_report(crash, int(lk["address"], 16), lk["type"], snapshot=snap)
        assert len(numbered) + (int(rest.group(1)) if rest else 0) == len(rep.candidates)
        # --all-candidates: every candidate numbered, none folded into the count line
        _, every = _run(crash, ["--all-candidates", lk["address"]])
        every = every.split("CANDIDATE HOLDERS")[1].split("  WAITERS:")[0]
        assert sorted(int(p) for p in re.findall(r"(?m)^    \d+\. PID: (\d+) ", every)) \
            == sorted(c.task.pid for c in rep.candidates), every
        assert "no evidence tying" not in every
    for t in dump.truth["tasks"]:
        if t["blocked_kind"] != "lock":
            continue
        rc, text = _run(crash, ["-p", str(t["pid"])])
        for line in text.splitlines():
            assert len(line) <= 80, line


@pytest.mark.parametrize("scenario", ["abba-mutex", "global-sems"])
def test_chain_of_a_two_task_abba_is_short(lab, scenario):
    """whoholds -p on a 2-task ABBA: the answer and two hops, each hop its task and its
    lock (no padding with candidates that have no evidence, or with weak reasons): at
    most 10 lines of answer and 30 a hop (it was 118 lines in all)."""
    dump, crash, _ = _session(lab, scenario)
    pid = dump.truth["locks"][0]["waiters"][0]["pid"]
    rc, text = _run(crash, ["-p", str(pid)])
    assert rc == 1 and "ANSWER: DEADLOCK" in text
    assert text.count("\nHOP ") == 2
    assert len(text.splitlines()) <= 70, text
    assert "(weak)" not in text
    for lk in dump.truth["locks"]:
        if _truth_owner_not_recorded(lk):
            (o,) = lk["owners"]
            assert re.search(r"held by %s %d \(INFERRED" % (re.escape(o["comm"]), o["pid"]),
                             " ".join(text.split()))
