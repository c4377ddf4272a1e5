"""The verbs inside a real crash with the real pykdump, on the lab's 6.1 seed dump.

mpykdump.so is the user's own (``make test-incrash MPYKDUMP=/path/to/mpykdump.so``; without
it every test here is skipped, saying so): crash must load it (``tests/incrash.py``
``check_mpykdump``: a file crash cannot load fails the run with crash's own words).
``install.sh`` runs in a temporary HOME and crash starts
right after it with no ``PYKDUMPPATH`` (a shell that just ran install.sh).  Commands go to
``crash -s VMLINUX VMCORE`` on stdin, its output to a file, as the runbooks do.  Every
verb's output is compared with the same verb run by ``crash-ext``'s adapter on the same dump
(pids and addresses from the dump's truth.json).
"""

import io
import json
import os
import re
import subprocess
import sys

import pytest

from crash_ext.verbs import registry
from tests import incrash

pytestmark = pytest.mark.skipif(not incrash.mpykdump(), reason=incrash.SKIP_REASON)

#: crash's own error lines ("bt: invalid task or pid value: 999999") must not appear
#: as lines of their own; these must not appear at all
CRASH_ERROR_LINE = re.compile(r"^(bt|sym|rd|struct|dis|gdb|crash|task|foreach): ", re.M)
NEVER = ("Traceback", "Cannot find the program", "command not found", "No module named",
         "internal error")


def _cli(crash, argv):
    """What crash-ext prints for ``argv`` (its adapter on the lab's crash session)."""
    if argv[0] == "help":
        return registry.help_text(argv[1])
    buf = io.StringIO()
    registry.load(argv[0]).main(argv[1:], crash, out=buf)
    return buf.getvalue()


def _commands(truth):
    lock = truth["locks"][0]
    waiter = lock["waiters"][-1]["pid"]
    owner = lock["owners"][0]["pid"]
    return [
        ["deadlock"],
        ["deadlock", "--json"],
        ["whoholds", "-p", str(waiter)],
        ["whoholds", lock["address"]],
        ["whoholds", "--json", lock["address"]],
        ["whoholds", "--held", str(owner)],
        ["argrecover", str(waiter), "vfs_unlink"],
        ["argrecover", str(owner)],
        ["help", "whoholds"],
        ["help", "argrecover"],
        ["help", "deadlock"],
    ]


BAD = [["argrecover", "999999"], ["whoholds", "ffffffffffffffff"],
       ["whoholds", "-p", "999999"], ["deadlock", "--no-such-option"]]


@pytest.fixture(scope="module")
def seed(lab):
    return lab("seed")


@pytest.fixture(scope="module")
def mp(seed):
    """$MPYKDUMP, once crash has loaded it on the seed dump (else the run fails, saying
    why in one line)."""
    path = incrash.mpykdump()
    try:
        incrash.check_mpykdump(path, seed[0])
    except incrash.MpykdumpError as e:
        pytest.fail(str(e), pytrace=False)
    return path


@pytest.fixture(scope="module")
def home(mp, tmp_path_factory):
    return incrash.installed_home(tmp_path_factory.mktemp("pykdump"), mp)


@pytest.fixture(scope="module")
def in_crash(seed, home):
    """One crash session with the real pykdump: every command's output, the start-up text,
    and the file written by ``deadlock > FILE``."""
    dump, _ = seed
    cmds = [" ".join(c) for c in _commands(dump.truth) + BAD]
    redirected = os.path.join(home, "deadlock.txt")
    cmds += ["deadlock > %s" % redirected, "deadlock | head -3",
             "whoholds -p %d" % dump.truth["locks"][0]["waiters"][-1]["pid"]]
    errors = []
    outs, startup = incrash.run_script(dump, cmds, home, stderr=errors)
    with open(redirected) as f:
        return (dict(zip(cmds, outs)), startup, f.read(), "deadlock > %s" % redirected,
                errors[0])


def test_install_then_crash_has_the_verbs(in_crash):
    outs, startup = in_crash[:2]
    assert "crash-ext: registered whoholds, argrecover, deadlock" in startup
    for text in [startup] + list(outs.values()):
        for bad in NEVER:
            assert bad not in text
        assert not CRASH_ERROR_LINE.search(text), CRASH_ERROR_LINE.search(text).group(0)


@pytest.mark.parametrize("i", range(11))
def test_verb_output_same_as_crash_ext(seed, in_crash, i):
    dump, crash = seed
    assert len(_commands(dump.truth)) == 11      # each command has its index above
    argv = _commands(dump.truth)[i]
    got = in_crash[0][" ".join(argv)]
    want = _cli(crash, argv)
    assert want.strip(), argv
    assert got == want, argv
    if "--json" in argv:
        doc = json.loads(got)
        assert doc
    if argv[0] == "help":
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES"):
            assert got.splitlines().count(section) == 1, (argv, section)


def test_same_facts_as_the_truth(seed, in_crash):
    """The in-crash answers hold the truth's owner and waiters (not only "the same")."""
    dump, _ = seed
    lock = dump.truth["locks"][0]
    from tests.truthcheck import check_lock_doc
    doc = json.loads(in_crash[0]["whoholds --json %s" % lock["address"]])
    assert doc["mode"] == "lock"
    check_lock_doc(doc["lock"], lock)


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(b) for b in BAD])
def test_bad_input_one_line_no_crash_error_lines(in_crash, argv):
    """Inside crash as with crash-ext (the one verb shell): a bad input prints nothing
    on the output (a pipe or a file gets no error text) and one line on stderr."""
    got = in_crash[0][" ".join(argv)]
    assert got == "", got
    said = [l for l in in_crash[4].splitlines()
            if re.match(r"(whoholds|argrecover|deadlock): error:", l)]
    assert [l.split(":")[0] for l in said] == [b[0] for b in BAD], in_crash[4]
    line = said[BAD.index(argv)]
    assert line.startswith(argv[0] + ": error:")
    assert not CRASH_ERROR_LINE.search(line)


def test_prompt_redirection_and_pipe(seed, in_crash):
    dump, crash = seed
    outs, _, redirected, redirect_cmd, _ = in_crash
    want = _cli(crash, ["deadlock"])
    assert redirected == want
    assert outs[redirect_cmd] == ""
    assert outs["deadlock | head -3"] == "".join(want.splitlines(True)[:3])
    # a verb after those still prints (nothing left unflushed or redirected)
    pid = dump.truth["locks"][0]["waiters"][-1]["pid"]
    assert outs["whoholds -p %d" % pid] == _cli(crash, ["whoholds", "-p", str(pid)])


def test_through_a_pipe_and_extend_by_hand(seed, home, mp, tmp_path):
    """crash's output through a pipe (``crash ... < cmds | ...``), in a HOME without
    ~/.crashrc: the README's two lines (extend, then the loader) give the verbs."""
    dump, crash = seed
    bare = str(tmp_path / "bare")
    os.makedirs(bare)
    load = os.path.join(incrash.prefix(home), "pykdump", "load.py")
    pid = dump.truth["locks"][0]["waiters"][-1]["pid"]
    cmds = ["deadlock", "whoholds -p %d" % pid]
    outs, startup = incrash.run_script(dump, cmds, bare, pipe=True,
                                       preamble=["extend " + mp, "epython " + load])
    assert "crash-ext: registered" in startup
    assert outs[0] == _cli(crash, ["deadlock"])
    assert outs[1] == _cli(crash, ["whoholds", "-p", str(pid)])


def test_crash_ext_console_script_prints_the_same(seed, in_crash):
    """The console script itself (its own crash process) against the in-crash output."""
    dump, _ = seed
    exe = os.path.join(os.path.dirname(sys.executable), "crash-ext")
    r = subprocess.run([exe, "deadlock", "--vmlinux", dump.vmlinux, "--vmcore", dump.vmcore,
                        "--crash", dump.crash, "--mod", "crashext_lab=%s" % dump.module_ko],
                       capture_output=True, text=True, timeout=900)
    assert r.stdout == in_crash[0]["deadlock"], r.stderr
    h = subprocess.run([exe, "help", "deadlock"], capture_output=True, text=True, timeout=60)
    assert h.returncode == 0 and h.stdout == in_crash[0]["help deadlock"]


@pytest.mark.parametrize("scenario", ["abba-mutex", "cycle3", "convoy", "readers",
                                      "semaphore"])
def test_every_small_scenario_same_as_crash_ext(lab, home, scenario):
    """Beyond seed: each small 6.1 scenario's deadlock (text and JSON), a lock report
    and a waiter's chain, inside real crash and through crash-ext, byte for byte; the
    locks and pids come from the module's truth."""
    dump, crash = lab(scenario)
    lock = dump.truth["locks"][0]
    argvs = [["deadlock"], ["deadlock", "--json"], ["whoholds", lock["address"]]]
    if lock["waiters"]:
        argvs.append(["whoholds", "-p", str(lock["waiters"][-1]["pid"])])
    outs, _ = incrash.run_script(dump, [" ".join(a) for a in argvs], home)
    for argv, got in zip(argvs, outs):
        assert got == _cli(crash, argv), (scenario, argv)
        assert not CRASH_ERROR_LINE.search(got) and "Traceback" not in got
    assert json.loads(outs[1])
