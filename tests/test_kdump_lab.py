"""The verbs on dumps made the way users get them (issue 24): the guest panicked by
itself and its kdump capture kernel wrote a filtered (-d 31), compressed dump.

Expected values come from the guest's own console (``console.log``, saved by mklab as
the kernel printed it: the panic line, ``CPU: N PID: P Comm: C``, the hung-task
detector's ``INFO: task NAME:PID blocked ...`` reports), from the lab module's truth, and from crash's own commands (``bt`` of the
panic task, ``ps``, ``vtop``) -- never from crash-ext's output.  One scenario per panic kind
(labdumps.panic_kinds), on every target of the kdump kernels (6.1, 6.12, 5.10, 6.12-rt).
"""

import io
import json
import re

import pytest

from crash_ext.core.excluded import EXCLUDED
from crash_ext.ports.crashproc import CrashProcess
from crash_ext.verbs import argrecover, deadlock, whoholds
from tests.lab import labdumps
from tests.lab.kdump_exclude import exclude_pages

CASES = [(kind, s, t) for t in labdumps.targets(labdumps.kdump_kernels())
         for kind, s in sorted(labdumps.panic_kinds(t.split("@")[0]).items())]
#: what the kernel's panic() says for each kind, and the task that panics
PANIC_WORDS = {"hung_task": "hung_task: blocked tasks", "sysrq": "sysrq triggered crash"}


def _console(dump):
    """Return the guest's console facts: (panic text, panic pid, comm, {pid: comm}
    of the hung-task reports), read line by line from console.log."""
    with open(dump.directory + "/console.log", errors="replace") as f:
        lines = f.read().splitlines()
    reason = pid = comm = None
    hung = {}
    for i, line in enumerate(lines):
        if "INFO: task " in line and " blocked for more than " in line:
            who = line.split("INFO: task ", 1)[1].split(" blocked for more than ")[0]
            name, _, p = who.rpartition(":")
            hung[int(p)] = name
        if "Kernel panic - not syncing: " in line and reason is None:
            reason = line.split("Kernel panic - not syncing: ", 1)[1].strip()
            for nxt in lines[i + 1:i + 6]:
                words = nxt.split()
                if "PID:" in words and "Comm:" in words:
                    pid = int(words[words.index("PID:") + 1])
                    comm = words[words.index("Comm:") + 1]
                    break
    return reason, pid, comm, hung


def _run(verb, argv, crash):
    """Return (exit code, what the verb printed: its answer, or its error line)."""
    out = io.StringIO()
    rc = verb.main(argv, crash, out=out, err=out)
    return rc, out.getvalue()


@pytest.mark.parametrize("kind,scenario,target", CASES)
def test_dump_is_kdump_made(lab, kind, scenario, target):
    dump, crash = lab(scenario, target=target)
    assert dump.made == "kdump" and dump.meta["panic"] == kind
    with open(dump.vmcore, "rb") as f:
        assert f.read(8) == b"KDUMP   "          # makedumpfile's kdump-compressed file
    reason, pid, comm, _ = _console(dump)
    assert reason == PANIC_WORDS[kind]
    assert comm == ("khungtaskd" if kind == "hung_task" else "sh")


@pytest.mark.parametrize("kind,scenario,target", CASES)
def test_deadlock_header_names_the_panic(lab, kind, scenario, target):
    dump, crash = lab(scenario, target=target)
    reason, pid, comm, _ = _console(dump)
    rc, text = _run(deadlock, [], crash)
    assert rc == 1, text[-2000:]
    lines = text.splitlines()
    first = " ".join(x.strip() for x in lines[:lines.index("ANSWER")])     # unwrapped
    assert first.startswith("PANIC: ") and reason in first, first
    assert "panic task: PID %d (%s)" % (pid, comm) in first, first
    rc, out = _run(deadlock, ["--json"], crash)
    doc = json.loads(out)
    assert doc["panic"]["pid"] == pid and doc["panic"]["comm"] == comm
    assert reason in doc["panic"]["reason"]


@pytest.mark.parametrize("kind,scenario,target", CASES)
def test_hung_task_reports_are_evidence(lab, kind, scenario, target):
    """Every task the detector reported (per the console) that deadlock analyses carries
    the report; no other does; the panic task and the tasks crash shows active on a CPU
    are not among the blocked ones."""
    dump, crash = lab(scenario, target=target)
    _, pid, _, hung = _console(dump)
    if kind == "hung_task":
        assert hung, "the hung-task detector reported nothing on the console"
    else:
        assert not hung
    rc, out = _run(deadlock, ["--json"], crash)
    doc = json.loads(out)
    analysed = {t["task"]["pid"]: t for t in doc["tasks"]}
    assert set(hung) <= set(analysed), (sorted(hung), sorted(analysed))
    for p, t in analysed.items():
        if p in hung:
            assert t["hung_task"] and ("%s:%d" % (hung[p], p)) in t["hung_task"], t
        else:
            assert t["hung_task"] is None, t
    active = set()
    for line in crash.command("ps").splitlines():
        if line.startswith(">"):
            active.add(int(line[1:].split()[0]))
    assert pid in active                    # crash's own view: the panic task ran
    assert not active & set(analysed), sorted(active & set(analysed))
    rc, text = _run(deadlock, [], crash)
    for p in hung:
        if any(p == s["task"]["pid"] for c in doc["cycles"] for s in c["steps"]):
            assert "task %s:%d blocked for more than" % (hung[p], p) in text


def _bt_functions(text):
    return re.findall(r"^\s*#\d+ \[[0-9a-f]+\] (\S+) at ", text, re.M)


@pytest.mark.parametrize("kind,scenario,target", CASES)
def test_argrecover_on_the_panic_task(lab, kind, scenario, target):
    """argrecover answers for the panic task (crash has its registers) with crash's own
    frames of ``bt``, in order."""
    dump, crash = lab(scenario, target=target)
    _, pid, _, _ = _console(dump)
    rc, out = _run(argrecover, [str(pid), "--json"], crash)
    assert rc == 0, out[-2000:]
    doc = json.loads(out)
    ours = [f["function"] for f in doc["tasks"][0]["frames"]]
    theirs = _bt_functions(crash.command("bt %d" % pid))
    assert theirs and ours == theirs
    assert "panic" in theirs


def _excluded_address(crash, truth):
    """Return the kernel (direct-map) address of a user stack page of a truth task,
    found with crash's own ``bt`` (the task's user RSP in its exception frame), ``vtop``
    and ``ptov``: -d 31 leaves user pages out of the dump."""
    for t in truth["tasks"]:
        m = re.search(r"RSP: ([0-9a-f]+)", crash.command("bt %d" % t["pid"]))
        if not m or int(m.group(1), 16) >= 1 << 47:
            continue
        user = "%x" % int(m.group(1), 16)
        v = crash.command("vtop -c %d %s" % (t["pid"], user))
        phys = re.search(r"^\s*%s\s+([0-9a-f]+)\s*$" % user, v, re.M)
        if phys:
            p = crash.command("ptov %s" % phys.group(1))
            return re.search(r"^\s*([0-9a-f]{16})\s+%s\s*$" % phys.group(1), p,
                             re.M).group(1)
    raise AssertionError("no truth task with a user stack page")


def _crash_reads_excluded(crash, addr, target):
    """Read ``addr`` (a page left out of the dump) with crash's own ``rd``: crash 8.0.6
    refuses it (``rd: page excluded: ...``: returns None); crash 9.0.2 prints nothing at
    all for such a read (no error line, no words: returns ""), so the page is as
    unreadable, but crash no longer says why, and neither can crash-ext."""
    try:
        said = crash.command("rd -64 %s 1" % addr)
    except Exception as e:   # noqa: BLE001 - crash 8.0.6: rd: page excluded: ...
        said = None
        assert "page excluded" in str(e)
    assert said is None or (said == "" and target.endswith("@9.0.2")), said
    return said


@pytest.mark.parametrize("kind,scenario,target", CASES)
def test_excluded_page_is_said_to_be_not_in_the_dump(lab, kind, scenario, target):
    """A user stack page (makedumpfile's -d 31 leaves user pages out): crash itself
    cannot read it, and whoholds says so in those words, exit code 2, one line, no
    traceback (crash 9.0.2 answers such a read with no text at all: whoholds then says
    the address is not readable, without the reason crash did not give).  The module's
    zero page, by contrast, reads as zeros: makedumpfile keeps zero pages as one shared
    zero page."""
    dump, crash = lab(scenario, target=target)
    addr = "0x" + _excluded_address(crash, dump.truth)
    said = _crash_reads_excluded(crash, addr, target)
    for argv in ([addr], ["inode.i_rwsem", addr], ["-t", "semaphore", addr]):
        rc, out = _run(whoholds, argv, crash)
        assert rc == 2, (argv, out)
        if said is None:
            assert "not in the dump (excluded by makedumpfile)" in out, (argv, out)
        else:
            assert "is not readable in this dump" in out, (argv, out)
        assert out.count("\n") == 1 and "Traceback" not in out, (argv, out)
    assert crash.read(int(dump.truth["zero_page"], 16), 8) == bytes(8)


def _physical(crash, addr):
    """Return the physical address crash's ``vtop`` gives for kernel ``addr``."""
    v = crash.command("vtop %x" % addr)
    return int(re.search(r"^\s*%x\s+([0-9a-f]+)\s*$" % addr, v, re.M).group(1), 16)


@pytest.fixture
def lock_left_out(lab, tmp_path):
    """Return (dump, crash session on a copy with one lock's page left out, the lock
    (truth), its waiters' pids): the first lock of the truth with waiters, its page
    dropped from the copy as makedumpfile drops the pages -d 31 filters
    (tests/lab/kdump_exclude.py)."""
    opened = []

    def make(scenario, target):
        dump, crash = lab(scenario, target=target)
        lock = next(lk for lk in dump.truth["locks"] if lk["waiters"])
        addr = int(lock["address"], 16)
        copy = str(tmp_path / "left-out.kdump")
        assert exclude_pages(dump.vmcore, copy, [_physical(crash, addr) >> 12])
        c = CrashProcess(dump.vmlinux, copy, crash=dump.crash, timeout=600)
        opened.append(c)
        c.command("mod -s crashext_lab %s" % dump.module_ko)
        return dump, c, addr, [w["pid"] for w in lock["waiters"]]
    yield make
    for c in opened:
        c.close()


@pytest.mark.parametrize("kind,scenario,target", CASES)
def test_each_verb_says_a_left_out_page_is_not_in_the_dump(lock_left_out, kind, scenario,
                                                           target):
    """The page of a lock its waiters are blocked on, left out of a copy of the dump:
    crash 8.0.6 says ``page excluded`` and each verb says "not in the dump (excluded by
    makedumpfile)" where the read failed: whoholds LOCK (one line, exit 2), whoholds -p
    and deadlock (text and JSON) on its waiters (the lock may be on that page: the
    answer is still given from what is there), argrecover on a waiter (the lock
    argument's decode).  crash 9.0.2 prints nothing for such a read (see
    test_excluded_page_is_said_to_be_not_in_the_dump): the verbs then cannot say why,
    and must still answer in one line, exit 2, where the address was asked for."""
    dump, crash, addr, waiters = lock_left_out(scenario, target)
    said = _crash_reads_excluded(crash, "%#x" % addr, target)
    why = None if said is None else "is not readable in this dump"
    rc, out = _run(whoholds, ["0x%x" % addr], crash)
    assert rc == 2 and out.count("\n") == 1 and "Traceback" not in out, out
    assert (why or EXCLUDED) in out, out
    if why:
        return               # crash gave no reason: none to pass on (whoholds -p etc.)
    for pid in waiters:
        rc, out = _run(whoholds, ["-p", str(pid)], crash)
        assert rc in (0, 1) and "Traceback" not in out, out
        assert EXCLUDED in " ".join(out.split()), out      # wrapped: one line again
        rc, out = _run(argrecover, [str(pid), "--json"], crash)
        assert rc == 0, out
        args = [a for f in json.loads(out)["tasks"][0]["frames"] for a in f["args"]
                if a.get("value") == "0x%x" % addr]
        decodes = {a["decoded"] for a in args}       # untyped guesses decode nothing
        assert EXCLUDED in decodes and decodes <= {EXCLUDED, None}, args
        rc, out = _run(argrecover, [str(pid)], crash)
        assert rc == 0 and "%x -> %s" % (addr, EXCLUDED) in " ".join(out.split()), out
    rc, text = _run(deadlock, [], crash)
    assert rc in (0, 1) and "Traceback" not in text
    assert EXCLUDED in " ".join(text.split()), text
    rc, out = _run(deadlock, ["--json"], crash)
    tasks = {t["task"]["pid"]: t for t in json.loads(out)["tasks"]}
    for pid in waiters:
        assert EXCLUDED in json.dumps(tasks[pid]), tasks[pid]
