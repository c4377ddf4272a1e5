"""Argument recovery on recorded crash output.

1. The seed article's frame-pointer case (recorded from the seed article, RHEL6 2.6.32;
   see tests/unit/data/seed_rhel6.py for which lines are the article's and which were
   synthesized): vfs_unlink's 2nd argument, the dentry, is ffff8809c6c82a40 -- the value
   the article's author read by hand from -0xe0(%rbp) with %rbp = ffff88057f85bf68.
2. Variants of that fixture that must *not* produce the article's value (a join point
   between the copy and the call) or must report a conflict.
3. A recorded Debian 6.1 (ORC, KASLR) lab dump (tests/unit/data/lab61_seed_rm.json,
   real crash 8.0.6 output, written by tests/lab/record_fixtures.py from today's lab):
   expected values come from the lab module's published truth.
"""

import json
import os

from crash_ext.code.templates import recover
from crash_ext.models.stack import parse_backtrace
from tests.unit.data import seed_rhel6 as S

from tests.unit.data import DIR as DATA     # the lab61_* recordings


def _dis_table(*texts):
    """dis_fn over recorded function texts: the text whose instructions include addr."""
    from crash_ext.models.disasm import parse_dis
    table = [(set(i.addr for i in parse_dis(t)), t) for t in texts]

    def dis(addr):
        for addrs, text in table:
            if addr in addrs:
                return text
        raise LookupError("no recorded disassembly for %#x" % addr)
    return dis


def _whatis(name):
    return S.WHATIS_VFS_UNLINK if name == "vfs_unlink" else ""


def _seed(dis_text=S.DIS_DO_UNLINKAT, bt_text=S.BT_F_5109):
    bt = parse_backtrace(bt_text)
    return recover(bt, _dis_table(dis_text, S.DIS_VFS_UNLINK), None, _whatis)


def test_seed_dentry_recovered_with_provenance():
    res = _seed()
    fr = res.frame(3)
    assert fr.function == "vfs_unlink"
    assert fr.prototype.startswith("int vfs_unlink(")
    dentry = fr.args[1]
    assert dentry.register == "rsi"
    assert dentry.status == "recovered", dentry.reason
    assert dentry.value == S.DENTRY
    text = " | ".join(dentry.provenance)
    # the article's chain: %rsi <- %rdx at +329, %rdx spilled to -0xe0(%rbp) at +343,
    # %rbp from vfs_unlink's saved frame pointer, the slot read from bt -f
    assert "%rsi ← %rdx at do_unlinkat+329" in text
    assert "-0xe0(%rbp) at do_unlinkat+343" in text
    assert "%x" % S.DENTRY_SLOT in text
    assert "%x" % S.DO_UNLINKAT_RBP in text


def test_seed_frame_pointer_recovered():
    res = _seed()
    # do_unlinkat's %rbp at its call, from vfs_unlink's push (the article's "last
    # frame's FP")
    assert res.frame(4).registers.get("rbp") == S.DO_UNLINKAT_RBP


def test_seed_first_argument_unknown_with_reason():
    res = _seed()
    arg0 = res.frame(3).args[0]
    assert arg0.status == "unknown" and arg0.value is None
    assert arg0.reason  # says why (a value loaded from 0x10(%rax) ...)


def test_seed_join_point_makes_it_unknown():
    # Modified fixture: a jump from later code lands at +336, between the copy to %rsi
    # (+329) and the call; on that path %rsi comes from %rbx.  Nothing proves the two
    # paths agree, so the dentry must not be reported.
    extra = (
        "0xffffffff8119aaca <do_unlinkat+362>:   mov    %rbx,%rsi\n"
        "0xffffffff8119aacd <do_unlinkat+365>:   jmp    0xffffffff8119aab0 "
        "<do_unlinkat+336>\n")
    res = _seed(S.DIS_DO_UNLINKAT + extra)
    dentry = res.frame(3).args[1]
    assert dentry.value is None
    assert dentry.status == "unknown"


def test_seed_join_point_with_agreeing_paths_still_recovered():
    # The other path also copies %rdx into %rsi: both paths agree, the value stands.
    extra = (
        "0xffffffff8119aaca <do_unlinkat+362>:   mov    %rdx,%rsi\n"
        "0xffffffff8119aacd <do_unlinkat+365>:   jmp    0xffffffff8119aab0 "
        "<do_unlinkat+336>\n")
    res = _seed(S.DIS_DO_UNLINKAT + extra)
    assert res.frame(3).args[1].value == S.DENTRY


def test_seed_conflict_reported():
    # Modified fixture: %rdx is also stored to -0xd8(%rbp) = ffff88057f85be90, where the
    # article's bt -f shows ffff880b92bd4000: two readings of one value disagree.
    dis = S.DIS_DO_UNLINKAT.replace(
        "0xffffffff8119aabe <do_unlinkat+350>:",
        "0xffffffff8119aabb <do_unlinkat+347>:   mov    %rdx,-0xd8(%rbp)\n"
        "0xffffffff8119aabe <do_unlinkat+350>:")
    res = _seed(dis)
    dentry = res.frame(3).args[1]
    assert dentry.status == "conflict"
    values = {dentry.value} | {v for v, _ in dentry.alternatives}
    assert values == {S.DENTRY, 0xffff880b92bd4000}


def test_seed_clone_warning():
    text = S.BT_F_5109.replace("vfs_unlink at", "vfs_unlink.isra.0 at")
    bt = parse_backtrace(text)
    res = recover(bt, _dis_table(S.DIS_DO_UNLINKAT, S.DIS_VFS_UNLINK.replace(
        "<vfs_unlink", "<vfs_unlink.isra.0")), None, _whatis)
    fr = res.frame(3)
    assert fr.clone == ".isra.0"
    assert any("clone" in w for w in fr.warnings)
    assert fr.args[1].name.endswith("?")


# --- recorded Debian 6.1 lab dump -------------------------------------------------

def _recorded(name):
    with open(os.path.join(DATA, name)) as f:
        rec = json.load(f)
    bt = parse_backtrace(rec["bt"])
    texts = list(rec["dis"].values())
    mem = {int(k, 16): v for k, v in rec["mem"].items()}
    whatis = rec["whatis"]
    res = recover(bt, _dis_table(*texts), lambda a: mem.get(a),
                  lambda n: whatis.get(n, ""))
    return rec, res


def test_lab61_rm_unlink():
    rec, res = _recorded("lab61_seed_rm.json")
    truth = rec["truth"]
    by_fn = {f.function: f for f in res.frames}
    vfs = by_fn["vfs_unlink"]
    # vfs_unlink(mnt_userns, dir, dentry, delegated): dentry from the module's truth
    assert vfs.args[2].status == "recovered"
    assert vfs.args[2].value == int(truth["dentry"], 16)
    slow = by_fn["rwsem_down_write_slowpath"]
    assert slow.args[0].value == int(truth["lock"], 16)
    # state: down_write() tail-jumps into the slow path with TASK_UNINTERRUPTIBLE (2)
    # (kernel/locking/rwsem.c __down_write_common); found by following the tail jump
    assert slow.args[1].value == 2
    assert "down_write" in " ".join(slow.args[1].provenance)
    # __schedule's callee-saved registers come from __switch_to_asm's pushes, which are
    # the task's inactive_task_frame at thread.sp (recorded separately)
    sched = by_fn["__schedule"]
    for reg, val in truth["inactive_task_frame"].items():
        assert sched.registers[reg] == int(val, 16), reg


def test_lab61_ruby_lab_functions():
    rec, res = _recorded("lab61_seed_ruby.json")
    truth = rec["truth"]
    by_fn = {f.function: f for f in res.frames}
    # every function the module names is on the stack, every argument it names checked
    assert set(truth["args"]) <= set(by_fn), (sorted(truth["args"]), sorted(by_fn))
    checked = []
    for fn, want in truth["args"].items():
        fr = by_fn[fn]
        for i, v in enumerate(want):
            if v is None:
                continue
            assert fr.args[i].status == "recovered", (fn, i, fr.args[i].reason)
            assert fr.args[i].value == int(v, 16), (fn, i)
            checked.append((fn, i))
    assert len(checked) == 4, checked    # lab_inode_lock 2, lab_take 1, the slow path 1


def test_no_value_without_chain():
    # every recovered value on the recorded stacks carries a provenance chain
    for name in ("lab61_seed_rm.json", "lab61_seed_ruby.json"):
        _rec, res = _recorded(name)
        for fr in res.frames:
            for a in fr.args:
                if a.value is not None:
                    assert a.provenance, (fr.function, a.name)
                else:
                    assert a.reason, (fr.function, a.name)


def test_seed_frame_geometry_mismatch_breaks_the_link():
    # Modified fixture: frame #3's slot moved by 8 bytes.  vfs_unlink's code (push %rbp,
    # sub $0x20) then puts its entry %rsp at ffff88057f85be68, not at #4's slot
    # ffff88057f85be70: a frame is missing or stale, so nothing is tied across.
    bt_text = S.BT_F_5109.replace("#3 [ffff88057f85be40]", "#3 [ffff88057f85be38]")
    res = _seed(bt_text=bt_text)
    assert any("frame geometry" in w for w in res.warnings)
    assert res.frame(3).args[1].value is None


def test_exception_frame_is_a_boundary():
    from tests.unit.test_stack_parse import HELP_BT_SX
    bt = parse_backtrace(HELP_BT_SX)

    def no_dis(addr):
        raise LookupError("not recorded")
    res = recover(bt, no_dis)
    f3 = res.frame(3)
    assert all(a.value is None for a in f3.args)
    assert "exception" in f3.args[0].reason
