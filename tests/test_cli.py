"""crash-ext outside crash: the console script end to end on lab dumps, with the exit
codes a runbook tests (0 answered, nothing alarming; 1 a deadlock or a task blocked behind
a blocked holder; 2 usage or input error; 3 crash itself failed), how it finds crash, --lab, compressed dumps, and the refusal of a
crash that cannot read the kernel."""

import json
import os
import subprocess
import sys

import pytest

from crash_ext.verbs import registry

from tests.lab import mklab
from tests.lab.labdumps import get_dump

CLI = [sys.executable, "-m", "crash_ext.verbs.cli"]


def _run(args, env=None, timeout=600):
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout,
                          env=full)


def _cli(*args, crash=None):
    d = get_dump("seed")
    return d, _run(list(args) + ["--vmlinux", d.vmlinux, "--vmcore", d.vmcore,
                                 "--crash", crash or d.crash,
                                 "--mod", "crashext_lab=" + d.module_ko])


def _one_line_error(r):
    text = (r.stdout + r.stderr).strip()
    assert text.count("\n") == 0, text
    assert "error" in text and "Traceback" not in text
    return text


def test_deadlock_json_exit_1_with_the_cycle():
    d, r = _cli("deadlock", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    rubies = sorted(t["pid"] for t in d.truth["tasks"] if t["comm"] == "ruby")
    assert len(doc["cycles"]) == 1
    assert sorted(s["task"]["pid"] for s in doc["cycles"][0]["steps"]) == rubies


def test_report_exit_1_when_its_holder_is_blocked():
    """fire.js's i_rwsem: tasks wait on it and its owner ruby is itself blocked (the
    truth), so the answer exits 1; the unlocked lab_create_mutex exits 0."""
    d = get_dump("seed")
    fire = next(l for l in d.truth["locks"] if l["name"].startswith("i:"))
    owner = fire["owners"][0]["pid"]
    assert fire["waiters"] and any(t["pid"] == owner and t["blocked_kind"] == "lock"
                                   for t in d.truth["tasks"])
    _, r = _cli("whoholds", "inode.i_rwsem", fire["container"]["address"])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "OWNER: PID: %d " % owner in r.stdout and r.stderr == ""
    _, r = _cli("whoholds", "lab_create_mutex")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "unlocked" in r.stdout


def test_run_time_errors_go_to_stderr_json_stays_parseable():
    """Errors found once crash runs (no such pid, no such frame, a task_struct given
    as a lock) go to stderr: stdout is empty, so ``--json | json.tool`` never parses an
    error; a good answer is one JSON document."""
    d = get_dump("seed")
    task = next(t for t in d.truth["tasks"] if t["comm"] == "rm")
    for argv, said in ((["whoholds", "-p", "99999", "--json"], "no task with pid 99999"),
                       (["argrecover", "rm", "no_such_function", "--json"],
                        "no frame of function"),
                       (["deadlock", "-p", "ruby", "--json"], "2 tasks are named 'ruby'")):
        _, r = _cli(*argv)
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stdout == "", (argv, r.stdout)
        assert r.stderr.count("\n") == 1 and said in r.stderr, (argv, r.stderr)
    _, r = _cli("whoholds", "-p", "rm", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["chain"][0]["blocked"]["task"]["pid"] == task["pid"]


def test_usage_errors_are_found_before_crash_starts(tmp_path):
    """Words checked without the dump fail before crash starts: with a crash that does
    not exist (its start would exit 3), a usage error still exits 2 naming the word."""
    d = get_dump("seed")
    notes = tmp_path / "notes.dot"
    notes.write_text("somebody's\n")
    for argv, said in ((["deadlock", "--limit", "abc"], "--limit"),
                       (["deadlock", "--bogus"], "--bogus"),
                       (["deadlock", "--dot", str(notes)], "refusing"),
                       (["whoholds", "-p", "1\u00b2"], "not a pid")):
        r = _run(argv + ["--vmlinux", d.vmlinux, "--vmcore", d.vmcore,
                         "--crash", "/nonexistent/crash"], timeout=60)
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stdout == "" and said in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert notes.read_text() == "somebody's\n"


def test_help_examples_work_on_this_lab_build():
    """The --lab examples of crash-ext --help name tasks by command, not by a pid of one
    build: each runs and answers (exit 0 or 1, no error on stderr)."""
    r = _run(["--help"], timeout=60)
    examples = [l.split("#")[0].split()[1:] for l in r.stdout.splitlines()
                if l.strip().startswith("crash-ext ") and "--lab seed" in l]
    assert len(examples) >= 3, r.stdout
    for argv in examples:
        r = _run(argv)
        assert r.returncode in (0, 1) and "error" not in r.stderr, (argv, r.stderr[-500:])
        assert r.stdout.strip(), argv


def test_input_error_exit_2_one_line():
    _, r = _cli("whoholds", "0")
    assert r.returncode == 2
    _one_line_error(r)


def test_usage_errors():
    r = _run(["nosuchverb"], timeout=60)
    assert r.returncode == 2 and "unknown verb" in r.stderr
    r = _run([], timeout=60)
    assert r.returncode == 2 and "no verb" in r.stderr
    r = _run(["--help"], timeout=60)
    assert r.returncode == 0 and "deadlock" in r.stdout and "--crash" in r.stdout


def test_help_verb():
    r = _run(["help", "deadlock"], timeout=60)
    assert r.returncode == 0 and "--json" in r.stdout


@pytest.mark.parametrize("verb", ["whoholds", "argrecover", "deadlock"])
def test_verb_help_is_crash_help_with_examples(verb):
    """``crash-ext help VERB`` and ``crash-ext VERB --help`` print the same text as
    crash's ``help VERB`` (registry.help_text): sections once each, EXAMPLES included,
    no argparse usage line left at the top of DESCRIPTION."""
    a = _run(["help", verb], timeout=60)
    b = _run([verb, "--help"], timeout=60)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout == registry.help_text(verb)
    lines = a.stdout.splitlines()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES"):
        assert lines.count(section) == 1, section
    desc = lines[lines.index("DESCRIPTION") + 1]
    assert not desc.strip().startswith((verb, "[", "usage")), desc


def test_crash_ext_help_describes_every_option():
    r = _run(["--help"], timeout=60)
    assert r.returncode == 0
    for opt in ("--vmlinux", "--vmcore", "--lab", "--crash", "--timeout", "--mod"):
        line = [l for l in r.stdout.splitlines() if l.strip().startswith(opt)][0]
        block = r.stdout.split(line, 1)[1].split("\n  -", 1)[0]
        assert "default" in line + block, opt
    assert "examples:" in r.stdout


def test_install_sh_help_prints_only_help():
    sh = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "install.sh")
    r = subprocess.run(["bash", sh, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "./install.sh" in r.stdout
    for bad in ("#!", "set -", "fi\n", "esac", "$(", "\n#"):
        assert bad not in r.stdout, bad


def test_missing_crash_exit_3_names_the_options():
    d = get_dump("seed")
    r = _run(["deadlock", "--vmlinux", d.vmlinux, "--vmcore", d.vmcore,
              "--crash", "/nonexistent/crash"])
    assert r.returncode == 3
    line = _one_line_error(r)
    assert "--crash" in line and "CRASH=" in line
    env = {"PATH": "/nonexistent", "CRASH": ""}
    r = _run(["deadlock", "--vmlinux", d.vmlinux, "--vmcore", d.vmcore], env=env)
    assert r.returncode == 3
    line = _one_line_error(r)
    assert "--crash" in line and "CRASH=" in line and "PATH" in line


def test_crash_from_env_then_path(tmp_path):
    d = get_dump("seed")
    base = ["deadlock", "--json", "--vmlinux", d.vmlinux, "--vmcore", d.vmcore,
            "--mod", "crashext_lab=" + d.module_ko]
    r = _run(base, env={"CRASH": d.crash})
    assert r.returncode == 1, r.stdout + r.stderr
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(d.crash, str(bindir / "crash"))
    r = _run(base, env={"CRASH": "", "PATH": "%s:%s" % (bindir, os.environ["PATH"])})
    assert r.returncode == 1, r.stdout + r.stderr


def test_lab_shortcut_matches_the_truth():
    get_dump("seed")
    # --lab opens the newest seed dump of the shared cache (another checkout may have
    # staged a newer one): its own truth is the one to hold the answer to
    from crash_ext.ports.dumpfiles import find_lab_dump
    with open(os.path.join(find_lab_dump("seed").directory, "truth.json")) as f:
        truth = json.load(f)
    r = _run(["deadlock", "--json", "--lab", "seed"])
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    rubies = sorted(t["pid"] for t in truth["tasks"] if t["comm"] == "ruby")
    assert sorted(s["task"]["pid"] for s in doc["cycles"][0]["steps"]) == rubies
    r = _run(["deadlock", "--lab", "nosuchscenario"], timeout=60)
    assert r.returncode == 2
    assert "mklab.py" in _one_line_error(r)


def test_compressed_dump_is_read_once():
    d = get_dump("seed", made="snapshot")      # zstd at rest (labdumps.SNAPSHOT_ONLY)
    zst = os.path.join(d.directory, d.meta["vmcore_zst"])
    args = ["whoholds", "-p", "rm",
            "--vmlinux", d.vmlinux, "--vmcore", zst, "--crash", d.crash,
            "--mod", "crashext_lab=" + d.module_ko]
    r = _run(args)
    assert r.returncode == 1, r.stdout + r.stderr
    from crash_ext.ports.dumpfiles import decompressed_copies
    copies = decompressed_copies(zst)
    assert len(copies) == 1
    # the copy in the cache is said on stderr: where, how big, how to remove it
    assert copies[0] in r.stderr and "rm " in r.stderr, r.stderr
    before = os.stat(copies[0]).st_mtime_ns
    r = _run(args)
    assert r.returncode == 1
    assert os.stat(copies[0]).st_mtime_ns == before
    assert "decompressed copy %s" % copies[0] in r.stderr, r.stderr


@pytest.fixture(scope="module")
def debian12_crash():
    """Debian 12's packaged crash (8.0.2), unpacked, not installed: the copy ``make lab``
    fetched (the test downloads nothing)."""
    r = subprocess.run([os.path.join(mklab.HERE, "fetch-crash-deb.sh"), "--cached",
                        "bookworm"], stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        pytest.fail("Debian 12's crash package is not in the cache: run make lab")
    return r.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("verb", [["deadlock"], ["deadlock", "--json"], ["whoholds", "-p", "1"],
                                  ["argrecover", "1"]])
def test_crash_that_cannot_list_tasks_is_refused(debian12_crash, verb):
    """crash 8.0.2 lists 2 tasks on Debian 12's 6.1 kernels: never 'nothing is blocked'."""
    d, r = _cli(*verb, crash=debian12_crash)
    assert r.returncode == 3, r.stdout + r.stderr
    line = _one_line_error(r)
    assert "crash 8.0.2" in line and "cannot read this kernel" in line
    assert "nothing" not in line.lower()
