"""The verb shell (crash_ext/verbs/shell.py), without a dump: one parser, one error
channel (stderr) and one set of exit codes for every verb and both entry points; words
checked before crash starts; the one task word; the exit codes in each verb's help; a
compressed dump's copy said on stderr."""

import contextlib
import gzip
import io
import os

import pytest

from crash_ext.core.errors import BadArgument, CrashCommandError
from crash_ext.verbs import cli, incrash, registry, shell
from crash_ext.verbs.taskword import resolve_task
from crash_ext.session.snapshot import Snapshot
from tests.unit.fakecrash import TextOnlyPort

PS_HDR = "      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM\n"
PS = PS_HDR + ("      1       0   0  ffff8d7ec0250000  IN   0.0     1000      100  init\n"
               "     97       1   1  ffff8d7ec0251000  UN   0.0     1000      100  rm\n"
               "     98       1   1  ffff8d7ec0252000  UN   0.0     1000      100  ruby\n"
               "     99       1   0  ffff8d7ec0253000  UN   0.0     1000      100  ruby\n")


class Crash(TextOnlyPort):
    """Four tasks, nothing else: every other command gets crash's error line."""

    def __init__(self):
        self.commands = []

    def command(self, cmd):
        self.commands.append(cmd)
        if cmd == "ps":
            return PS
        if cmd.startswith(("ps -m", "foreach")):
            return ""
        if cmd.startswith("ps "):
            want = cmd.split()[1:]
            return PS_HDR + "".join(l + "\n" for l in PS.splitlines()[1:]
                                    if l.split()[3] in want)
        raise CrashCommandError("%s: invalid argument" % cmd.split()[0])


class NoCrash:
    """Stands in for CrashProcess: a test fails if crash-ext starts one."""
    started = []

    def __init__(self, *a, **kw):
        NoCrash.started.append(a)
        raise AssertionError("crash was started for a usage error")


def _cli(argv):
    out, err = io.StringIO(), io.StringIO()
    real = cli.CrashProcess
    cli.CrashProcess = NoCrash
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(list(argv))
    finally:
        cli.CrashProcess = real
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", [
    ["deadlock", "--limit", "abc"], ["deadlock", "--bogus"], ["whoholds", "--bogus"],
    ["argrecover"], ["whoholds"], ["argrecover", "97", "\u00b2"],
    ["deadlock", "-p", "\u0663"], ["whoholds", "-p", "1_0"],
    ["whoholds", "-p", "97", "ffff8d7ec0250000"], ["argrecover", "-u", "97"],
    ["deadlock", "--json", "--dot", "EXISTING"]])
def test_usage_errors_fail_before_crash_starts(argv, tmp_path):
    """Everything that needs no dump is refused before crash starts: exit 2, one line
    on stderr, nothing on stdout, no crash process."""
    existing = tmp_path / "notes.txt"
    existing.write_text("somebody's notes\n")
    argv = [str(existing) if a == "EXISTING" else a for a in argv]
    NoCrash.started.clear()
    rc, out, err = _cli(argv + ["--vmlinux", "/nonexistent/vmlinux",
                                "--vmcore", "/nonexistent/vmcore"])
    assert rc == 2, (rc, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(argv[0] + ": error: "), err
    assert NoCrash.started == []
    assert existing.read_text() == "somebody's notes\n"


def test_help_needs_no_crash_and_states_the_exit_codes():
    for verb in registry.VERBS:
        rc, out, err = _cli([verb, "--help"])
        assert rc == 0 and err == "" and out == registry.help_text(verb)
        assert "EXIT CODES" in out.splitlines()
        for code in ("  0  answered", "  1  the answer holds a deadlock",
                     "  2  the input named no lock or task", "  3  crash itself failed"):
            assert code in out, (verb, code)


def test_help_examples_name_no_lab_pid():
    """Lab pids differ between builds: the examples give tasks by command name."""
    rc, out, _ = _cli(["--help"])
    assert rc == 0
    lab_lines = [l for l in out.splitlines() if "--lab" in l and "crash-ext " in l]
    assert lab_lines
    for l in lab_lines:
        words = l.split("#")[0].split()
        assert not any(w.isdigit() for w in words), l


@pytest.mark.parametrize("word,pid", [("97", 97), ("rm", 97), ("ffff8d7ec0251000", 97),
                                      ("init", 1)])
def test_one_task_word(word, pid):
    port = Crash()
    snap = Snapshot(port)
    assert snap.by_task(resolve_task(port, snap, word)).pid == pid


def test_ambiguous_or_unknown_task_word():
    port = Crash()
    snap = Snapshot(port)
    with pytest.raises(BadArgument) as e:
        resolve_task(port, snap, "ruby")
    msg = str(e.value)
    assert "2 tasks are named 'ruby'" in msg and "98" in msg and "99" in msg
    for w in ["nosuch", "12345", "ffff8d7ec0259000"]:
        with pytest.raises(BadArgument):
            resolve_task(port, snap, w)
    for w in ["\u00b2", "1_0", "1\u00b2", "kworker 0"]:
        with pytest.raises(BadArgument) as e:
            resolve_task(port, snap, w)
        assert str(e.value).isascii()


@pytest.mark.parametrize("verb,argv", [("whoholds", ["-p", "ruby"]),
                                       ("deadlock", ["-p", "ruby", "--json"]),
                                       ("argrecover", ["ruby", "--json"]),
                                       ("whoholds", ["-p", "99999", "--json"]),
                                       ("argrecover", ["97", "no_such_function"])])
def test_run_time_errors_go_to_stderr(verb, argv):
    """Errors found at run time: one line on stderr, exit 2, stdout empty (with --json
    stdout is one document or nothing)."""
    out, err = io.StringIO(), io.StringIO()
    rc = registry.load(verb).main(argv, Crash(), out=out, err=err)
    assert rc == 2
    assert out.getvalue() == ""
    assert len(err.getvalue().splitlines()) == 1
    assert err.getvalue().startswith(verb + ": error: ")


def test_in_crash_entry_point_uses_the_same_shell(capfd, monkeypatch):
    """run_verb (inside crash) answers a usage error as crash-ext does: one line on the
    process's stderr (file descriptor 2: pykdump points sys.stderr at crash's output,
    which is the verb's > FILE or | pipe), exit 2, before any crash module is needed."""
    crash_output = io.StringIO()
    monkeypatch.setattr("sys.stderr", crash_output)       # as pykdump does
    rc = incrash.run_verb("deadlock", ["--limit", "abc"], crash_module=object())
    cap = capfd.readouterr()
    assert rc == 2 and cap.out == "" and crash_output.getvalue() == ""
    assert cap.err.startswith("deadlock: error: ") and cap.err.count("\n") == 1
    rc = incrash.run_verb("whoholds", ["--help"], crash_module=object())
    cap = capfd.readouterr()
    assert rc == 0 and cap.out == registry.help_text("whoholds")


def test_compressed_dump_copy_is_said(tmp_path, monkeypatch):
    from crash_ext.ports.dumpfiles import readable_dump
    monkeypatch.setenv("CRASH_EXT_CACHE", str(tmp_path / "cache"))
    gz = tmp_path / "vmcore.gz"
    with gzip.open(str(gz), "wb") as f:
        f.write(b"\x7fELF" + b"\0" * (3 << 20))
    said = []
    dest = readable_dump(str(gz), say=said.append)
    assert os.path.getsize(dest) == 4 + (3 << 20)
    assert len(said) == 2
    assert "gzip-compressed" in said[0] and dest in said[0]
    assert "3.0 MB" in said[1] and "rm %s" % dest in said[1]
    said.clear()
    assert readable_dump(str(gz), say=said.append) == dest
    assert len(said) == 1 and dest in said[0] and "rm" in said[0]
    # a large file: progress lines while it is decompressed (every PROGRESS_EVERY s)
    import crash_ext.ports.dumpfiles as DF
    monkeypatch.setattr(DF, "PROGRESS_EVERY", 0.0)
    os.utime(str(gz), (1, 1))                   # a changed file: decompressed again
    said.clear()
    readable_dump(str(gz), say=said.append)
    steps = [l for l in said if l.startswith("... ")]
    assert steps and all("written" in l and "% of the compressed file read" in l
                         for l in steps), said


def test_exit_code_of_errors():
    from crash_ext.core.errors import CrashDied
    assert shell.exit_code(CrashDied("x")) == 3
    assert shell.exit_code(BadArgument("x")) == 2
