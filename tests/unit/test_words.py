"""User words (crash_ext/words.py) and every verb's argument parser under hostile input.

Two kinds of test: the words issue 17 found (Unicode digits, ``1_0``, 5,000-digit
numbers, ``nan``/``inf`` timeouts, 300-character hex words), and property-based runs
(hypothesis) of whoholds, argrecover, deadlock and crash-ext's own options on arbitrary
text and integers against a port that answers like an empty crash session: no
traceback, an exit code in {0, 1, 2, 3}, and a usage error is one short line.
"""

import io
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crash_ext.verbs import cli
from crash_ext.core import words
from crash_ext.core.errors import BadArgument, CrashCommandError
from tests.unit.fakecrash import TextOnlyPort
from crash_ext.verbs import argrecover as A
from crash_ext.verbs import deadlock as D
from crash_ext.verbs import whoholds as W
from crash_ext.core.words import (check_address_word, check_count_word, check_frame_word,
                                  check_hex_word, check_member_word, check_module_spec,
                                  check_path_word, check_pid_word, check_timeout_word,
                                  check_type_word, pid_or_task_word, shown)

UNICODE_DIGITS = ["\u00b2", "\u0663", "\u06f3", "\u0969", "\uff13", "\U0001d7d1", "1\u00b2"]
HOSTILE = UNICODE_DIGITS + [
    "1_0", "0_1", "+1", "-1", " 1", "1 ", "1\n", "\t7", "0x10", "1e3", "1.0", "", " ",
    "9" * 5000, "0x" + "f" * 300, "f" * 17, "nan", "NaN", "inf", "-inf", "infinity",
    "1e309", "-0", "0", "\x00", "\udcff", "a\x1b[2J", "$(id)", "`id`", "a;b", "a|b",
    "../../etc/passwd", "%s%n", "#", "##1", "#-1", "#99999", "\u202e1", "\u0661\u0660"]


# ------------------------------------------------------------------ the words

def _id(w):
    return shown(w)


@pytest.mark.parametrize("w", HOSTILE, ids=_id)
def test_pid_refuses_all_but_ascii_digits(w):
    core = w.strip(" \t")
    ok = core.isascii() and core.isdigit() and len(core) <= 7 and \
        int(core) <= words.PID_MAX
    if ok:
        assert check_pid_word(w) == int(w.strip(" \t"))
    else:
        with pytest.raises(BadArgument) as e:
            check_pid_word(w)
        msg = str(e.value)
        assert "\n" not in msg and len(msg) < 120, msg


def test_issue_17_words():
    for w in UNICODE_DIGITS + ["1_0", "9" * 5000]:
        with pytest.raises(BadArgument):
            check_pid_word(w)
        with pytest.raises(BadArgument):
            check_frame_word(w)
        with pytest.raises(BadArgument):
            check_count_word(w)
    with pytest.raises(BadArgument):
        pid_or_task_word("1_0")        # was answered for pid 16 (int("1_0", 16))
    with pytest.raises(BadArgument):
        check_hex_word("1_0")
    for w in ["nan", "inf", "-1", "0", "1e3", "-inf", "1e309", "9" * 5000]:
        with pytest.raises(BadArgument):
            check_timeout_word(w)
    for v in [float("nan"), float("inf"), -1.0, 0, True]:
        with pytest.raises(BadArgument):
            check_timeout_word(v)
    assert check_timeout_word("2.5") == 2.5 and check_timeout_word("600") == 600.0
    assert check_timeout_word(".5") == 0.5
    with pytest.raises(BadArgument) as e:
        check_address_word("0x" + "f" * 300)
    assert len(str(e.value)) < 100
    assert pid_or_task_word("97") == ("pid", 97)
    assert pid_or_task_word("ffff8d7ec2826c58") == ("address", "ffff8d7ec2826c58")
    assert check_frame_word("#4") == 4 and check_frame_word("4") == 4
    assert check_frame_word("vfs_unlink") == "vfs_unlink"
    assert check_frame_word("__mutex_lock.constprop.0") == "__mutex_lock.constprop.0"
    assert check_count_word("0") == 0 and check_count_word(5) == 5
    with pytest.raises(BadArgument):
        check_count_word(-1)
    assert check_hex_word("0xffffffff81000000") == 0xffffffff81000000
    assert check_module_spec("crashext_lab=/tmp/x.ko") == ("crashext_lab", "/tmp/x.ko")
    for w in ["x", "=x.ko", "a b=x.ko", "m=/tmp/x;rd.ko", "m="]:
        with pytest.raises(BadArgument):
            check_module_spec(w)
    for w in ["", "a\x00b", "a\nb", "x" * 5000, "\udcff"]:
        with pytest.raises(BadArgument):
            check_path_word(w)


def test_shown_is_short_and_printable():
    s = shown("\u00b2" * 100)
    assert s.isascii() and s.endswith("...") and len(s) < 6 * 40 + 10
    assert shown("9" * 5000) == "'" + "9" * 40 + "'..."
    assert shown("abc") == "'abc'"
    assert shown("\udcff").isascii()


def _examples(n):
    """``n`` examples, the same ones each run (tests/conftest.py's "ci" profile); 20x
    as many, new each run, under ``make explore``."""
    return n * (20 if os.environ.get("CRASH_EXT_HYPOTHESIS") == "explore" else 1)


TEXT = st.text(max_size=60) | st.sampled_from(HOSTILE) | \
    st.integers(min_value=-10 ** 30, max_value=10 ** 30).map(str)


@settings(max_examples=_examples(400), deadline=None)
@given(TEXT)
def test_validators_accept_only_what_they_say(w):
    for check in (check_pid_word, check_hex_word, check_address_word, check_type_word,
                  check_member_word, check_frame_word, check_count_word,
                  check_timeout_word, check_path_word, pid_or_task_word):
        try:
            v = check(w)
        except BadArgument as e:
            msg = str(e)
            assert "\n" not in msg and len(msg) < 200, (check.__name__, msg)
            assert msg.isascii(), msg
            continue
        if check in (check_pid_word, check_count_word):
            core = w.strip(" \t")
            assert core.isascii() and core.isdigit() and v == int(core)
        if check is check_timeout_word:
            assert math.isfinite(v) and v > 0
        if check in (check_address_word, check_type_word, check_member_word):
            assert v.isascii() and " " not in v.replace("struct ", "").replace(
                "union ", "").replace("enum ", "")


@settings(max_examples=_examples(200), deadline=None)
@given(st.integers(min_value=0, max_value=words.PID_MAX))
def test_pid_round_trip(n):
    assert check_pid_word(str(n)) == n == check_pid_word(n)


# ------------------------------------------------------------------ verbs' parsers

PS_HDR = "      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM\n"
PS = PS_HDR + ("      1       0   0  ffff8d7ec0250000  IN   0.0     1000      100  init\n"
               "     97       1   1  ffff8d7ec0251000  UN   0.0     1000      100  rm\n")


class EmptyCrash(TextOnlyPort):
    """A crash session with two tasks, no stacks, no symbols, no readable memory: every
    command other than ps/foreach gets crash's error line.  Records the commands."""

    def __init__(self):
        self.commands = []

    def command(self, cmd):
        self.commands.append(cmd)
        if cmd == "ps":
            return PS
        if cmd.startswith("ps -m"):
            return ""
        if cmd.startswith("foreach"):
            return ""
        raise CrashCommandError("%s: invalid argument" % cmd.split()[0])


OPTS = ["-p", "--pid", "-t", "--type", "--json", "--max-waiters", "--no-candidates",
        "--args", "--limit", "--dot", "--svg", "--force", "--include-in", "--all",
        "--candidates", "-u", "--uninterruptible", "--no-decode", "97", "1", "#2",
        "mutex", "inode.i_rwsem", "ffff8d7ec0251000", "init_task", "-h"]
WORD = st.sampled_from(OPTS) | TEXT
ARGV = st.lists(WORD, max_size=6)


@pytest.fixture(autouse=True)
def _no_files_written(monkeypatch, tmp_path):
    """Nothing a generated argv names is ever written: outputs are recorded instead,
    and Graphviz is absent."""
    import crash_ext.render.outputs as O
    import crash_ext.render.dot as R
    written = []
    monkeypatch.setattr(O, "write_output", lambda path, data: written.append(path))
    monkeypatch.setattr(R, "dot_available", lambda: None)
    monkeypatch.chdir(tmp_path)
    return written


def _one_line_error(text, prog):
    lines = [l for l in text.splitlines() if l.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith(prog + ": error: "), text
    assert len(lines[0]) < 400 and lines[0].isascii(), lines[0]


def _run_verb(main, prog, argv):
    """Run a verb through its shell; an error is one line on err and nothing on out
    (issue 27: errors go to stderr, for every verb)."""
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, EmptyCrash(), out=out, err=err)
    assert rc in (0, 1, 2, 3), rc
    if rc == 2 and "-h" not in argv and "--help" not in argv:
        _one_line_error(err.getvalue(), prog)
        if "--json" in argv:
            assert out.getvalue() == "", out.getvalue()
    return rc


@settings(max_examples=_examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ARGV)
def test_whoholds_parser_never_raises(argv):
    _run_verb(W.main, "whoholds", argv)


@settings(max_examples=_examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ARGV)
def test_argrecover_parser_never_raises(argv):
    _run_verb(A.main, "argrecover", argv)


@settings(max_examples=_examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ARGV)
def test_deadlock_parser_never_raises(argv):
    _run_verb(D.main, "deadlock", argv)


@pytest.mark.parametrize("verb,main,prog", [("whoholds", W.main, "whoholds"),
                                            ("argrecover", A.main, "argrecover"),
                                            ("deadlock", D.main, "deadlock")])
@pytest.mark.parametrize("w", UNICODE_DIGITS + ["1_0", "9" * 5000, "0x" + "f" * 300],
                         ids=_id)
def test_issue_17_words_exit_2_and_ask_crash_nothing(verb, main, prog, w):
    argv = {"whoholds": ["-p", w], "argrecover": [w], "deadlock": ["-p", w]}[verb]
    port = EmptyCrash()
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, port, out=out, err=err)
    assert rc == 2
    _one_line_error(err.getvalue(), prog)
    assert out.getvalue() == ""
    assert port.commands == [], port.commands       # refused before crash is asked


def test_argrecover_frame_word_refused_before_crash():
    for w in ["\u00b2", "9" * 5000, "1_0", "#\u0663"]:
        port = EmptyCrash()
        out, err = io.StringIO(), io.StringIO()
        assert A.main(["97", w], port, out=out, err=err) == 2
        _one_line_error(err.getvalue(), "argrecover")
        assert out.getvalue() == "" and port.commands == [], port.commands


# ------------------------------------------------------------------ crash-ext's options

class FakeProcess(EmptyCrash):
    """Stands in for CrashProcess in cli.main: never starts a crash."""
    instances = []

    def __init__(self, vmlinux, vmcore, crash="crash", timeout=60.0, **kw):
        super().__init__()
        self.vmlinux, self.vmcore, self.crash, self.timeout = vmlinux, vmcore, crash, timeout
        self.startup_output = ""
        FakeProcess.instances.append(self)

    def close(self):
        pass


CLI_WORDS = st.sampled_from(["--vmlinux", "--vmcore", "--crash", "--timeout", "--mod",
                             "--timeout=nan", "--timeout=inf", "--timeout=-1",
                             "--mod=x", "whoholds", "argrecover", "deadlock", "-h"]) | WORD


@settings(max_examples=_examples(400), deadline=None)
@given(st.lists(CLI_WORDS, max_size=7))
def test_crash_ext_options_never_raise(argv):
    import contextlib
    real = cli.CrashProcess
    cli.CrashProcess = FakeProcess
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = cli.main(list(argv))
    finally:
        cli.CrashProcess = real
    assert rc in (0, 1, 2, 3)
    assert "internal error" not in err.getvalue()
    for p in FakeProcess.instances:
        assert p.timeout > 0 and math.isfinite(p.timeout)
    FakeProcess.instances.clear()
    if rc == 2 and "-h" not in argv and "--help" not in argv:
        lines = [l for l in (err.getvalue() + out.getvalue()).splitlines() if l.strip()]
        assert len(lines) == 1, lines
        assert len(lines[0]) < 400 and lines[0].isascii(), lines


@pytest.mark.parametrize("argv", [["--timeout", "nan", "deadlock"],
                                  ["--timeout", "inf", "deadlock"],
                                  ["--timeout", "-5", "deadlock"],
                                  ["--timeout", "9" * 5000, "deadlock"],
                                  ["--vmcore", "a\x00b", "deadlock"],
                                  ["--mod", "nameonly", "deadlock"],
                                  ["n" * 500], ["deadlock", "--vmcore"]], ids=_id)
def test_crash_ext_bad_options_exit_2(argv, capsys):
    real = cli.CrashProcess
    cli.CrashProcess = FakeProcess
    try:
        rc = cli.main(argv)
    finally:
        cli.CrashProcess = real
    cap = capsys.readouterr()
    assert rc == 2
    lines = [l for l in cap.err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("crash-ext: error: "), cap.err
    assert len(lines[0]) < 200


# ------------------------------------------------------------------ output files

def test_outputs_refuse_what_is_not_ours(tmp_path):
    from crash_ext.render.outputs import check_output_path, dot_header, is_our_output, mark_svg
    dump = tmp_path / "vmcore"
    dump.write_bytes(b"\x7fELF" + b"\0" * 60)
    other = tmp_path / "notes.txt"
    other.write_text("mine\n")
    link = tmp_path / "link.dot"
    os.symlink(str(dump), str(link))
    hard = tmp_path / "hard.dot"
    os.link(str(dump), str(hard))
    ours = tmp_path / "old.dot"
    ours.write_text(dot_header() + "digraph x {}\n")
    svg = tmp_path / "old.svg"
    svg.write_bytes(mark_svg(b'<?xml version="1.0"?>\n<svg></svg>\n'))
    prot = [str(dump)]
    for p, force in [(dump, True), (link, True), (hard, True), (other, True),
                     (ours, False), (tmp_path, True)]:
        with pytest.raises(BadArgument) as e:
            check_output_path(str(p), prot, force)
        assert "\n" not in str(e.value)
    assert is_our_output(str(ours)) and is_our_output(str(svg))
    assert not is_our_output(str(dump)) and not is_our_output(str(other))
    assert check_output_path(str(ours), prot, True) == str(ours)
    assert check_output_path(str(svg), prot, True) == str(svg)
    assert check_output_path(str(tmp_path / "new.dot"), prot, False)


def test_deadlock_dot_never_overwrites_the_dump(tmp_path, monkeypatch):
    import crash_ext.render.outputs as O
    monkeypatch.undo()              # the real write_output here
    dump = tmp_path / "vmcore"
    dump.write_bytes(b"\x7fELF" + b"\1" * 60)
    before = dump.read_bytes()
    port = EmptyCrash()
    port.vmcore = str(dump)
    err = io.StringIO()
    assert D.main(["--dot", str(dump)], port, out=io.StringIO(), err=err) == 2
    assert dump.read_bytes() == before
    _one_line_error(err.getvalue(), "deadlock")
    assert not any(c.startswith("foreach") for c in port.commands)  # refused first
    new = tmp_path / "wf.dot"
    assert D.main(["--dot", str(new)], EmptyCrash(), out=io.StringIO()) == 0
    assert O.is_our_output(str(new))
    err = io.StringIO()
    assert D.main(["--dot", str(new)], EmptyCrash(), out=io.StringIO(), err=err) == 2
    assert "--force" in err.getvalue()
    assert D.main(["--dot", str(new), "--force"], EmptyCrash(), out=io.StringIO()) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
