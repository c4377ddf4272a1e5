"""crash-ext on damaged copies of the convoy lab dump (issue 17).

The copy's bytes are patched where crash says the mutex, its wait-list nodes and a
waiter's stack page live (tests/lab/damage.py): a wait list looped back on itself,
``next`` set to garbage or to an unmapped address, the mutex's own list head broken,
random bytes over a blocked task's stack page, the owner field pointing at a non-task;
then the file cut at 60% and 95%, a compressed dump and a wrong vmlinux given to
crash-ext.  Every verb runs on each (one crash session per damaged copy) and must
answer without a traceback, with an exit code in {0, 1, 2, 3}, no cycle (the convoy
has none), no lock address the truth does not list, every waiter filed under the real
lock or as unknown, and the damage named; the original dump, vmlinux and module and
the damaged copy itself are unchanged by the verbs (sha256).
"""

import contextlib
import glob
import os
import subprocess
import sys

import pytest

from tests.lab.damage import Damager, check, run_verb, sha256, verb_plan
from tests.lab.labdumps import get_dump

LIST_DAMAGE = ["loop", "garbage", "unmapped", "head"]
VARIANTS = LIST_DAMAGE + ["stack", "owner"]


@pytest.fixture(scope="module")
def dm(tmp_path_factory):
    d = get_dump("convoy")
    with Damager(d, str(tmp_path_factory.mktemp("damaged"))) as dm:
        yield dm
    assert dm.changed() == []


@pytest.fixture(scope="module")
def results(dm):
    """{variant: (variant, outcomes, copy unchanged by the verbs)}: one crash session
    per damaged copy, every verb of verb_plan in it."""
    res = {}
    for v in dm.variants():
        with dm.applied(v):
            before = sha256(dm.copy)
            with contextlib.closing(dm.session(dm.copy)) as cp:
                outs = [run_verb(cp, verb, argv) for verb, argv in verb_plan(dm)]
            res[v[0]] = (v, outs, sha256(dm.copy) == before)
    return res


@pytest.mark.parametrize("name", VARIANTS)
def test_damaged_copy(results, dm, name):
    v, outs, unchanged = results[name]
    assert unchanged, "a verb wrote to the dump"
    wrong = [(o, check(dm, o)) for o in outs if check(dm, o)]
    assert not wrong, "%s (%s): %s" % (name, v[2], wrong)
    dl, lock, typed = outs[0], outs[3], outs[5]
    assert dl.rc in (0, 1) and dl.doc is not None, dl.text[-2000:]
    assert typed.rc in (0, 1) and typed.doc is not None, typed.text[-2000:]
    if lock.rc == 2:                        # detection may fail on a broken list head,
        assert name == "head", lock.text    # and then says so: no lock named, exit 2,
        assert lock.doc is None and "lock type not detected" in lock.text  # no JSON
    else:
        assert lock.rc in (0, 1) and lock.doc is not None, lock.text[-2000:]
        assert lock.doc["lock"]["type"] != "unknown"
    tlk = typed.doc["lock"]
    problems = " ".join(tlk.get("problems", []))
    if name in LIST_DAMAGE:
        # the damage is named as such, on the real lock
        assert "wait list of mutex %x is corrupt after" % dm.lock_addr in problems, problems
    if name == "owner":
        assert "not a task" in problems, problems


@pytest.mark.parametrize("name", ["garbage", "unmapped", "loop"])
def test_waiters_before_the_damage_keep_their_lock(results, dm, name):
    """The list is intact up to the damage: those waiters are still the real lock's
    (expected from the truth's queue order and where the patch went)."""
    v, outs, _ = results[name]
    patched = v[1][0][0]                       # the node whose next was overwritten
    upto = dm.nodes.index(patched) + 1
    by_pid = {t["task"]["pid"]: t for t in outs[0].doc["tasks"]}
    for pid in dm.waiter_pids[:upto]:
        assert by_pid[pid]["lock_address"] is not None and \
            int(by_pid[pid]["lock_address"], 16) == dm.lock_addr, (pid, by_pid[pid])


# ------------------------------------------------------------------ crash-ext's exit 3

def _cli(dm, *args, vmlinux=None, vmcore=None):
    d = dm.dump
    cmd = [sys.executable, "-m", "crash_ext.verbs.cli"] + list(args) + [
        "--vmlinux", vmlinux or d.vmlinux, "--vmcore", vmcore or dm.copy,
        "--crash", d.crash, "--mod", "crashext_lab=" + dm.module_ko]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def _one_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    assert len(lines) == 1, text
    assert len(lines[0]) < 600, lines[0]
    return lines[0]


@pytest.mark.parametrize("fraction", [0.6, 0.95])
def test_truncated_dump(dm, fraction):
    path = dm.truncated(fraction)
    try:
        before = sha256(path)
        r = _cli(dm, "deadlock", "--json", vmcore=path)
        assert sha256(path) == before
    finally:
        os.unlink(path)
    assert "Traceback" not in r.stderr + r.stdout
    if r.returncode == 3:
        line = _one_line(r.stderr)
        assert "truncated" in line and 'crash: "' in line, line
    else:
        # crash opened it: the verb answers, and crash-ext warns it is incomplete
        assert r.returncode in (0, 1), r.stderr
        assert "truncated" in r.stderr, r.stderr


def test_compressed_dump_given_as_vmcore(dm):
    """crash reads no zstd: crash-ext decompresses the dump once into the cache and
    answers on it (the convoy dump: a convoy, exit 1), leaving the .zst unchanged."""
    zst = os.path.join(dm.dump.directory, dm.dump.meta["vmcore_zst"])
    before = sha256(zst)
    r = _cli(dm, "deadlock", vmcore=zst)
    assert r.returncode == 1, r.stderr
    assert "error" not in r.stderr and "convoy" in r.stdout.lower()
    assert sha256(zst) == before


def test_wrong_vmlinux(dm):
    others = [v for v in glob.glob(os.path.join(os.path.dirname(os.path.dirname(
        dm.dump.vmlinux)), "*", "vmlinux")) if os.path.realpath(v) !=
        os.path.realpath(dm.dump.vmlinux)]
    if not others:
        pytest.skip("no second kernel's vmlinux in the lab cache")
    r = _cli(dm, "deadlock", vmlinux=others[0], vmcore=dm.dump.vmcore)
    assert r.returncode == 3, r.stderr[-2000:]
    line = _one_line(r.stderr)
    assert "does not match" in line and "do not match" in line, line


def test_dot_refuses_the_dump_and_the_vmlinux(dm):
    for target in (dm.copy, dm.dump.vmlinux, dm.module_ko):
        before = sha256(target)
        r = _cli(dm, "deadlock", "--force", "--dot", target)
        assert r.returncode == 2, r.stderr
        line = _one_line(r.stderr)
        assert "refusing" in line, line
        assert sha256(target) == before
