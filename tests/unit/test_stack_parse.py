"""parse_backtraces / parse_backtrace on real crash output.

Sources: the seed article (RHEL6 2.6.32, crash 7.x), crash 8.0.6's own `help bt`
examples, and crash 8.0.6 on the lab's Debian 6.1 dump (tests/unit/data/*.json).
Expected values are read off the text by eye, not from the parser.
"""

import json
import os
import re

import pytest

from crash_ext.models.stack import parse_backtrace, parse_backtraces
from tests.unit.data import seed_rhel6 as S

from tests.unit.data import DIR as DATA     # the lab61_* recordings

# crash 8.0.6 `help bt`: `bt -c 0,1` (NMI exception frame, stack marker after the
# register block, two tasks, help-text indentation kept).
HELP_BT_C = """\
    crash> bt -c 0,1
    PID: 0      TASK: ffffffff81a8d020  CPU: 0   COMMAND: "swapper"
     #0 [ffff880002207e90] crash_nmi_callback at ffffffff8102fee6
     #1 [ffff880002207ea0] notifier_call_chain at ffffffff8152d525
     #2 [ffff880002207ee0] atomic_notifier_call_chain at ffffffff8152d58a
     #3 [ffff880002207ef0] notify_die at ffffffff810a155e
     #4 [ffff880002207f20] do_nmi at ffffffff8152b1eb
     #5 [ffff880002207f50] nmi at ffffffff8152aab0
        [exception RIP: native_safe_halt+0xb]
        RIP: ffffffff8103eacb  RSP: ffffffff81a01ea8  RFLAGS: 00000296
        RAX: 0000000000000000  RBX: 0000000000000000  RCX: 0000000000000000
        RDX: 0000000000000000  RSI: 0000000000000001  RDI: ffffffff81de5228
        RBP: ffffffff81a01ea8   R8: 0000000000000000   R9: 0000000000000000
        R10: 0012099429a6bea3  R11: 0000000000000000  R12: ffffffff81c066c0
        R13: 0000000000000000  R14: ffffffffffffffff  R15: ffffffff81de1000
        ORIG_RAX: ffffffffffffffff  CS: 0010  SS: 0018
    --- <NMI exception stack> ---
     #6 [ffffffff81a01ea8] native_safe_halt at ffffffff8103eacb
     #7 [ffffffff81a01eb0] default_idle at ffffffff810167bd
     #8 [ffffffff81a01ed0] cpu_idle at ffffffff81009fc6

    PID: 38     TASK: ffff88003eaae040  CPU: 1   COMMAND: "khungtaskd"
     #0 [ffff88003ad97ce8] machine_kexec at ffffffff81038f3b
     #1 [ffff88003ad97d48] crash_kexec at ffffffff810c5da2
     #2 [ffff88003ad97e18] panic at ffffffff8152721a
     #3 [ffff88003ad97e98] watchdog at ffffffff810e6346
     #4 [ffff88003ad97ee8] kthread at ffffffff8109af06
     #5 [ffff88003ad97f48] kernel_thread at ffffffff8100c20a
"""

# crash 8.0.6 `help bt`: `bt -sx` (symbol+offset in frame lines).
HELP_BT_SX = """\
    PID: 1499   TASK: ffff88006af43cc0  CPU: 2   COMMAND: "su"
     #0 [ffff8800664a1c90] machine_kexec+0x167 at ffffffff810327b7
     #1 [ffff8800664a1ce0] crash_kexec+0x60 at ffffffff810a9ec0
     #2 [ffff8800664a1db0] oops_end+0xb0 at ffffffff81504160
     #3 [ffff8800664a1dd0] general_protection+0x25 at ffffffff81503435
        [exception RIP: kmem_cache_alloc+120]
        RIP: ffffffff8113cf88  RSP: ffff8800664a1e88  RFLAGS: 00010086
        RAX: 0000000000000000  RBX: ff88006ef56840ff  RCX: ffffffff8114e9e4
        ORIG_RAX: ffffffffffffffff  CS: 0010  SS: 0018
     #4 [ffff8800664a1ed0] get_empty_filp+0x74 at ffffffff8114e9e4
"""

# crash 8.0.6 `help bt`: -F prints symbolic stack words.
HELP_BT_F_SYMBOLIC = """\
     #4 [ffff810072b47f10] vfs_write at ffffffff800789d8
        ffff810072b47f18: [files_cache]    [filp]
        ffff810072b47f28: 0000000000000002 fffffffffffffff7
        ffff810072b47f38: 00002b141825d000 sys_write+69
     #5 [ffff810072b47f40] sys_write at ffffffff80078f75
"""


def test_article_plain_bt():
    bt = parse_backtrace(S.BT_5109)
    assert (bt.pid, bt.task, bt.cpu, bt.command) == (5109, 0xffff8802d0e5a080, 18, "rm")
    assert [f.index for f in bt.frames] == list(range(7))
    f3 = bt.frame(3)
    assert (f3.sp, f3.function, f3.ret_addr) == (0xffff88057f85be40, "vfs_unlink",
                                                 0xffffffff811979bc)
    assert not f3.words
    assert bt.regs["RIP"] == 0x33b36dc68d
    assert bt.regs["R8"] == 3
    assert bt.regs["ORIG_RAX"] == 0x107
    assert bt.regs["SS"] == 0x2b
    assert bt.frame(6).regs is bt.regs


def test_article_module_and_two_digit_frames():
    bt = parse_backtraces(S.BT_4723)[0]
    assert bt.frame(4).module == "xfs"
    assert bt.frame(4).function == "xfs_ilock"
    assert bt.frame(7).module is None
    assert bt.frame(11).sp == 0xffff88076b78df70
    assert bt.messages == ["..."]


def test_article_bt_l_source_lines():
    bt = parse_backtrace(S.BT_L_5109)
    assert bt.frame(3).source == "/fs/namei.c: 2810"
    assert bt.frame(2).source == "/arch/x86/include/asm/thread_info.h: 216"


def test_article_bt_f_words_belong_to_the_frame_above():
    bt = parse_backtrace(S.BT_F_5109)
    # the line printed before "#4" is frame #3's last words: the saved %rbp and the
    # slot holding #4's return address
    assert bt.frame(3).words == {0xffff88057f85be68: 0xffff88057f85bf68,
                                 0xffff88057f85be70: 0xffffffff8119aac3}
    assert bt.frame(4).words[0xffff88057f85be88] == 0xffff8809c6c82a40
    assert bt.words[0xffff88057f85bd00] == 0xffffffffa0230da4
    assert len(bt.words) == 10


def test_help_bt_exception_and_marker():
    bts = parse_backtraces(HELP_BT_C)
    assert [b.pid for b in bts] == [0, 38]
    a = bts[0]
    f5 = a.frame(5)
    assert f5.exception_rip == "native_safe_halt+0xb"
    assert f5.regs["RIP"] == 0xffffffff8103eacb
    assert f5.regs["R14"] == 0xffffffffffffffff
    assert a.frame(6).stack == "NMI exception stack"
    assert a.frame(7).stack is None
    assert bts[1].command == "khungtaskd" and len(bts[1].frames) == 6
    assert bts[1].regs == {}


def test_help_bt_symbol_offsets():
    bt = parse_backtrace(HELP_BT_SX)
    f = bt.frame(0)
    assert (f.function, f.func_offset, f.ret_addr) == ("machine_kexec", 0x167,
                                                       0xffffffff810327b7)
    assert bt.frame(3).exception_rip == "kmem_cache_alloc+120"
    assert bt.frame(3).regs["RBX"] == 0xff88006ef56840ff
    assert bt.frame(4).function == "get_empty_filp"


def test_symbolic_words_are_skipped_not_misread():
    bt = parse_backtraces(HELP_BT_F_SYMBOLIC)[0]
    w = bt.frame(4).words
    assert 0xffff810072b47f18 not in w
    assert w[0xffff810072b47f28] == 2
    assert w[0xffff810072b47f38] == 0x2b141825d000
    assert 0xffff810072b47f40 not in w


def test_crash806_debian61_bt_f():
    """crash 8.0.6's ``bt -f`` of the lab seed's rm (recorded by
    tests/lab/record_fixtures.py): what the parser reads against crash's own ``ps`` line,
    the frame lines' text and the lab module's truth."""
    with open(os.path.join(DATA, "lab61_seed_rm.json")) as f:
        rec = json.load(f)
    text, truth = rec["bt"], rec["truth"]
    bt = parse_backtrace(text)
    ps = rec["ps"].splitlines()[-1].split()      # PID PPID CPU TASK ST %MEM VSZ RSS COMM
    assert (bt.pid, bt.command) == (truth["pid"], "rm") and bt.pid == int(ps[0].lstrip(">"))
    assert bt.task == int(ps[3], 16) and bt.cpu == int(ps[2])
    names = [f.function for f in bt.frames]
    assert names[:5] == ["__schedule", "schedule", "rwsem_down_write_slowpath",
                         "vfs_unlink", "do_unlinkat"]
    f3 = bt.frame(3)
    sp, ret = re.search(r"#3 \[([0-9a-f]+)\] vfs_unlink at ([0-9a-f]+)", text).groups()
    assert f3.sp == int(sp, 16) and f3.ret_addr == int(ret, 16)
    # vfs_unlink's six words (its pushes, %r15 last: the dentry) and the slot of #4's
    # return address
    assert sorted(f3.words) == [f3.sp + 8 + 8 * i for i in range(7)]
    assert f3.words[f3.sp + 48] == int(truth["dentry"], 16)
    assert f3.words[f3.sp + 56] == bt.frame(4).ret_addr
    last = bt.frames[-1]
    assert last.function == "entry_SYSCALL_64_after_hwframe"
    assert last.regs["ORIG_RAX"] == 0x57 and bt.regs is last.regs      # unlink(2)
    assert last.regs["RDX"] == int(re.search(r"RDX: ([0-9a-f]+)", text).group(1), 16)


def test_foreach_with_module_frames():
    with open(os.path.join(DATA, "lab61_seed_ruby.json")) as f:
        rec = json.load(f)
    pid = rec["truth"]["pid"]
    text = rec["bt"]
    assert "PID: %d " % pid in text
    bts = parse_backtraces(text + "\n" + text.replace("PID: %d " % pid, "PID: %d " % (pid + 100)))
    assert [b.pid for b in bts] == [pid, pid + 100]
    f3 = bts[0].frame(3)
    assert (f3.function, f3.module) == ("lab_inode_lock", "crashext_lab")


def test_no_frames_raises():
    with pytest.raises(ValueError):
        parse_backtrace("bt: invalid task or pid value: 77777\n")


def test_text_search_one_pass_finds_what_single_searches_find():
    # several values searched in one pass give the tasks each would alone
    from crash_ext.models.btlazy import parse_backtraces_lazy
    from crash_ext.models.btstream import text_search
    a, b, c = 0xffff88a6c2a0e058, 0xffff88a6c2a0e258, 0xffff88a6c2a0eb58
    words = {1: [a, b], 2: [0, b], 3: [0xffffffff81000000, 1], 4: [c, a], 5: [0x1234, 0]}
    text = ""
    for pid, (w0, w1) in words.items():
        text += ('%sPID: %d  TASK: ffff8880000%02d000  CPU: 0  COMMAND: "t%d"\n'
                 ' #0 [ffffc900000%02d0e00] __schedule at ffffffff81000000\n'
                 '    ffffc900000%02d0e08: %016x %016x \n'
                 ' #1 [ffffc900000%02d0e20] schedule at ffffffff81000100\n' % (
                     "\n" if pid > 1 else "", pid, pid, pid, pid, pid, w0, w1, pid))
    task = {pid: 0xffff888000000000 + pid * 0x1000 for pid in words}

    def tasks_with(v):
        return {task[p] for p, w in words.items() if v in w}
    for values in ([a, b, c], [b, 0x1234], [c]):
        single = text_search(parse_backtraces_lazy(text))
        together = text_search(parse_backtraces_lazy(text))
        for v in values:
            assert single(v) == tasks_with(v)
            assert together(v, values) == tasks_with(v)
