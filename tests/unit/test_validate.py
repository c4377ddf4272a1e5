"""Validators (core.words.check_*_word, ports.check_command) and the adapter's text parsing."""

import pytest

from crash_ext.ports import check_command
from crash_ext.ports.crashproc import CrashProcess, find_error
from crash_ext.core.errors import BadArgument
from crash_ext.core.words import (check_address_word, check_member_word, check_pid_word,
                                  check_type_word)


@pytest.mark.parametrize("w", ["ffffffff81000000", "0xffff8807ef98aae0", "init_task",
                               "schedule+23", "schedule+0x17", "__mutex_lock.constprop.0",
                               "  init_task  "])
def test_address_ok(w):
    assert check_address_word(w) == w.strip()


@pytest.mark.parametrize("w", ["", "ffff; !sh", "a|b", "x > /tmp/f", "init_task extra",
                               "$(id)", "`id`", "a\nwr", "0x12zz!", "sym+", "sym+0xg",
                               "-r", "../etc/passwd"])
def test_address_bad(w):
    with pytest.raises(BadArgument):
        check_address_word(w)


def test_pid():
    assert check_pid_word("4723") == 4723
    assert check_pid_word(0) == 0
    for w in ["-1", "12a", "1 2", "1;q", "", "0x10"]:
        with pytest.raises(BadArgument):
            check_pid_word(w)


def test_type_and_member():
    assert check_type_word("task_struct") == "task_struct"
    assert check_type_word("struct mutex") == "struct mutex"
    assert check_type_word("atomic_long_t") == "atomic_long_t"
    for w in ["struct  mutex", "task_struct *", "a;b", "union x y", "1abc"]:
        with pytest.raises(BadArgument):
            check_type_word(w)
    assert check_member_word("owner") == "owner"
    assert check_member_word("d_name.name") == "d_name.name"
    assert check_member_word("numbers[0].nr") == "numbers[0].nr"
    for w in ["", "a..b", "a.", "a[x]", "a->b", "a b", "a)|sh"]:
        with pytest.raises(BadArgument):
            check_member_word(w)


@pytest.mark.parametrize("cmd", ["bt -f 4723", "rd -64 -x ffffffff81000000 4", "sym init_task",
                                 "p sizeof(struct task_struct)", "p a != b", "p a == b",
                                 "gdb whatis ((struct mutex *)0)->owner", "foreach UN bt",
                                 "struct task_struct.pid ffff9b5a40250000", "ps",
                                 "dis -r do_unlinkat+355", "  ps  ", "p init_task.tasks.next",
                                 "p ((struct task_struct *)0xffff9b5a40250000)->pid",
                                 "mod -s crashext_lab /tmp/lab/crashext_lab.ko", "sys",
                                 "foreach UN bt -f", "foreach RU IN task -R nvcsw", "mod",
                                 "log", "kmem -s ffff9b5a40250000", "search -t ffff8f51"])
def test_command_ok(cmd):
    assert check_command(cmd) == cmd.strip()


@pytest.mark.parametrize("cmd", [
    "", "   ", "wr ffff 0", "q", "quit", "exit", "!sh", "sym ffff; !sh", "rd ffff; !sh",
    "ps | grep x", "sym a|b", "bt > /tmp/f", "log >> /tmp/f", "< /tmp/cmds", "extend x.so",
    "set scroll on", "set 1", "alias ls ps", "gdb set var x = 1", "gdb shell id", "gdb",
    "p x = 1", "p init_task.pid=2", "print $x = 3", "rd -r /tmp/out ffff 8", "echo hi",
    "cat /etc/passwd", "ls /", "vi x", "ps\nwr x 1", "ps\rq", "sym `id`", "call f()",
    "sys -panic", "gdb explore init_task", "gdb python print(1)", "p a->/tmp/f", "p a -> b",
    "eval 3 >out", "\\wr ffff 1",
    # not on the allowlist, though no rule names them; foreach/mod that would change things
    "kill 1", "restart", "fork", "bpf -p 1", "foreach set", "foreach UN set -c",
    "foreach", "mod -o", "sbitmapq x", "crashext_new_writer ffff",
    "x" * 2000,
])
def test_command_refused(cmd):
    with pytest.raises(BadArgument):
        check_command(cmd)


def test_find_error_final_line():
    out = ("ffffffff81000000:  0000000000000001 0000000000000002\n"
           'rd: seek error: kernel virtual address: ffffffff81000010  type: "64-bit KVADDR"\n')
    msg, partial = find_error("rd -64 -x ffffffff81000000 4", out)
    assert msg.startswith("rd: seek error")
    assert partial.startswith("ffffffff81000000:")
    assert find_error("rd 0", 'rd: invalid kernel virtual address: 0  type: "64-bit KVADDR"\n')
    assert find_error("sym foo", "sym: foo: symbol not found\n")[0] == "sym: foo: symbol not found"
    assert find_error("p nosuch", 'No symbol "nosuch" in current context.\n')
    assert find_error("p x", "p: gdb request failed: p x\n")
    assert find_error("zz", "crash: command not found: zz\n")


def test_find_error_long_answer_same_as_whole():
    # a long answer is checked on its tail first; the verdict must be the whole text's
    from crash_ext.ports.commandport import _find_error
    body = "".join("    ffffb2a8c%07x: 0000000000000001 ffffffff81000000\n" % i
                   for i in range(0, 40000, 16))
    assert len(body) > 1 << 16
    err = 'foreach: invalid kernel virtual address: 10  type: "stack contents"\n'
    for text in (body, body + err, body + err + "\n\n", err + body, body + "\r\n" + err):
        assert find_error("foreach UN bt -f", text) == _find_error("foreach UN bt -f", text)
    msg, partial = find_error("foreach UN bt -f", body + err)
    assert msg.startswith("foreach: invalid kernel virtual address") and partial == body.rstrip("\n")
    # sym's "possible alternatives:" list may be longer than any tail looked at
    alts = "symbol not found: foo\npossible alternatives:\n" + "".join(
        "  ffffffff8%07x (T) foo_%d\n" % (i, i) for i in range(3000))
    assert len(alts) > 1 << 16
    assert find_error("sym foo", alts)[0] == "symbol not found: foo"


def test_find_error_glued_to_partial_line():
    # crash prints the read error right after the words it could read, on the same line
    out = ('ffffffffc033bff0:  0000000000000000 0000000000000000 rd: invalid kernel virtual '
           'address: ffffffffc033c000  type: "64-bit KVADDR"\n')
    msg, partial = find_error("rd -64 -x ffffffffc033bff0 4", out)
    assert msg.startswith("rd: invalid kernel virtual address: ffffffffc033c000")
    assert partial.rstrip() == "ffffffffc033bff0:  0000000000000000 0000000000000000"
    # ordinary text mentioning another command is not an error
    assert find_error("log", "[    1.0] audit: rd: invalid kernel virtual address\n") is None


def test_find_error_symbol_not_found_block():
    out = "symbol not found: no_such\npossible alternatives:\n  (none found)\n"
    assert find_error("sym no_such", out) == ("symbol not found: no_such", "")
    out = "symbol not found: xyz\npossible alternatives:\n  ffffffff81000000 (T) xyz1\n"
    assert find_error("dis xyz", out)[0] == "symbol not found: xyz"


def test_find_error_not_final_or_other_prefix():
    # an error for one task in the middle of foreach output is not a failed command
    out = ("bt: cannot determine starting stack frame for task ffff\n"
           "PID: 1 TASK: ffff CPU: 0 COMMAND: \"init\"\n #0 [ffffa] schedule at ffffffff81\n")
    assert find_error("foreach bt", out) is None
    # lines that merely look like "word: text" are output, not errors
    assert find_error("ps -t 1", "    PID: 1  TASK: ffff  CPU: 0\n    RUN TIME: 00:01:02\n") is None
    assert find_error("sys", "WARNING: something odd\n") is None
    assert find_error("ps", "") is None


def test_parse_rd64():
    out = ("ffffffff81000000:  0807060504030201 100f0e0d0c0b0a09\n"
           "ffffffff81000010:  0000000000000011\n")
    data = CrashProcess._parse_rd64(out, 0xffffffff81000000, 3)
    assert data == bytes(range(1, 18)) + bytes(7)
    assert CrashProcess._parse_rd64(out, 0xffffffff81000000, 4) is None
    assert CrashProcess._parse_rd64(out, 0xffffffff81000008, 3) is None
    assert CrashProcess._parse_rd64("garbage: zz\n", 0, 1) is None


def test_norm_symoff():
    assert CrashProcess._norm_symoff("schedule+23") == "schedule+0x17"
    assert CrashProcess._norm_symoff("schedule+0") == "schedule"
    assert CrashProcess._norm_symoff("init_task") == "init_task"
    assert CrashProcess._norm_symoff("f+0x10") == "f+0x10"


def test_adapter_refuses_before_starting():
    # a crash that does not exist is never run: the refusal comes first
    cp = CrashProcess("/nonexistent/vmlinux", "/nonexistent/vmcore", crash="/nonexistent/crash")
    for bad in ["wr ffff 1", "sym a|b", "bt > /tmp/f", "!sh"]:
        with pytest.raises(BadArgument):
            cp.command(bad)
    with pytest.raises(BadArgument):
        cp.batch(["ps", "q"])
    with pytest.raises(BadArgument):
        cp.symbol_address("ffff; !sh")
    with pytest.raises(BadArgument):
        cp.member_offset("task_struct", "pid; q")
    with pytest.raises(BadArgument):
        cp.type_size("struct x|y")
    with pytest.raises(BadArgument):
        cp.read(-1, 8)
    assert cp.pid is None
    cp.close()
