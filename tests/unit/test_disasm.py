"""parse_dis and the x86 instruction effects, on real crash `dis` output.

Sources: the seed article (RHEL6 2.6.32: `callq`, spaces after the colon) and crash
8.0.6 on the lab's Debian 6.1 dump (tab after the colon, `call`, [FTRACE NOP],
`lock` prefixes, %gs: and %rip-relative operands, retpoline thunks).
"""

from crash_ext.code import flow as fl
from crash_ext.code import flowrun
from crash_ext.models import x86
from crash_ext.models.disasm import parse_dis, parse_operand, rip_target, split_symoff
from crash_ext.models.proto import parse_whatis
from tests.unit.data import seed_rhel6 as S

# crash 8.0.6, Debian 6.1 (lab dump), copied verbatim (tabs kept).
DIS_61 = (
    "0xffffffffc0337ca0 <lab_take>:\tnopl   0x0(%rax,%rax,1) [FTRACE NOP]\n"
    "0xffffffffc0337ca5 <lab_take+5>:\tpush   %r14\n"
    "0xffffffffc0337cab <lab_take+11>:\tmov    %esi,%r12d\n"
    "0xffffffffc0337cae <lab_take+14>:\tmovsbl %sil,%esi\n"
    "0xffffffffc0337cb7 <lab_take+23>:\tmov    %gs:0x1fb80,%rdi\n"
    "0xffffffffc0337cc0 <lab_take+32>:\tcall   0xffffffffc03370a0 <lab_ref_new>\n"
    "0xffffffffc0337cc8 <lab_take+40>:\tmov    $0xffffffffc0339124,%rsi\n"
    "0xffffffffc0337ce1 <lab_take+65>:\tje     0xffffffffc0337e82 <lab_take+482>\n"
    "0xffffffffc0337cee <lab_take+78>:\tlea    0xb0(%rbx),%r14\n"
    "0xffffffffc0337d22 <lab_take+130>:\tmov    %rbp,0x0(%r13)\n"
    "0xffffffffc0337d32 <lab_take+146>:\tcmpl   $0x2,0x50(%rbx)\n"
    "0xffffffffc0337dc0 <lab_take+288>:\tmovabs $0xdead000000000100,%rax\n"
    "0xffffffffc0337e09 <lab_take+361>:\taddl   $0x1,0xc0(%rbx)\n"
    "0xffffffffc0337e23 <lab_take+387>:\txor    %ecx,%ecx\n"
    "0xffffffffc0337e40 <lab_take+416>:\tret    \n"
    "0xffffffffc0337e41 <lab_take+417>:\tint3   \n"
    "0xffffffff91c0327a <__switch_to_asm+10>:\tmov    %rsp,0x1518(%rdi)\n"
    "0xffffffff91f7dd8c <do_unlinkat+44>:\tmovl   $0x0,0xc(%rsp)\n"
    "0xffffffff91f7ddc9 <do_unlinkat+105>:\tpush   $0x0\n"
    "0xffffffff91f7ddd4 <do_unlinkat+116>:\tlea    0x14(%rsp),%r9\n"
    "0xffffffff91f67222 <vfs_write+194>:\tcall   0xffffffff92a01580 <__indirect_thunk_start>\n"
    "0xffffffff92a015f5 <__x86_indirect_thunk_r11+21>:\tdata16 nopw %cs:0x0(%rax,%rax,1)\n"
    "0xffffffff81a54988 <__mutex_lock+88>:\tincl   %gs:0x7e5cb161(%rip)        "
    "# 0x1fb40 <__preempt_count>\n"
    "0xffffffff81a54a7d <__mutex_lock+253>:\tbt     %rax,0x11e755b(%rip)        "
    "# 0xffffffff82c3bfe0 <__cpu_online_mask>\n"
    "0xffffffff81a54998 <__mutex_lock.constprop.0+24>:\tand    $0xfffffffffffffff0,%rsp\n"
    "0xffffffff81a5499f <__mutex_lock.constprop.0+31>:\tlock cmpxchg %rcx,(%rbx)\n"
)


def _by_off(insns):
    return {(i.func, i.offset): i for i in insns}


def test_article_lines():
    ins = parse_dis(S.DIS_DO_UNLINKAT)
    assert [i.offset for i in ins] == [322, 329, 332, 336, 343, 350, 355]
    mov = ins[1]
    assert (mov.addr, mov.func, mov.mnemonic) == (0xffffffff8119aaa9, "do_unlinkat", "mov")
    assert [(o.kind, o.reg) for o in mov.operands] == [("reg", "rdx"), ("reg", "rsi")]
    spill = ins[4].operands[1]
    assert (spill.kind, spill.disp, spill.base) == ("mem", -0xe0, "rbp")
    call = ins[5]
    assert call.raw_mnemonic == "callq" and call.mnemonic == "call"
    assert call.branch_target() == 0xffffffff81197960
    assert call.branch_target_sym() == "vfs_unlink"
    assert call.size == 5 and call.next_addr == 0xffffffff8119aac3
    assert ins[-1].size is None


def test_crash806_lines():
    d = _by_off(parse_dis(DIS_61))
    nop = d[("lab_take", 0)]
    assert nop.mnemonic == "nop" and nop.offset == 0 and "FTRACE" not in nop.text
    assert d[("lab_take", 11)].operands[1].reg == "r12d"
    assert d[("lab_take", 14)].mnemonic == "movsx"
    gs = d[("lab_take", 23)].operands[0]
    assert (gs.kind, gs.seg, gs.disp, gs.base) == ("mem", "gs", 0x1fb80, None)
    je = d[("lab_take", 65)]
    assert x86.is_conditional_jump(je.mnemonic)
    assert je.branch_target() == 0xffffffffc0337e82
    assert je.branch_target_sym() == "lab_take+482"
    assert d[("lab_take", 40)].operands[0].imm == 0xffffffffc0339124
    assert d[("lab_take", 130)].operands[1].disp == 0 and \
        d[("lab_take", 130)].operands[1].base == "r13"
    assert d[("lab_take", 288)].mnemonic == "movabs"
    assert d[("lab_take", 416)].mnemonic == "ret"
    assert d[("do_unlinkat", 105)].operands[0].imm == 0
    pad = d[("__x86_indirect_thunk_r11", 21)]
    assert pad.prefixes == ["data16"] and pad.mnemonic == "nop"
    rip = d[("__mutex_lock", 88)]
    assert rip.operands[0].base == "rip" and rip.operands[0].seg == "gs"
    assert rip.comment.startswith("0x1fb40")
    bt = d[("__mutex_lock", 253)]
    assert rip_target(bt, bt.operands[1]) == 0xffffffff82c3bfe0   # from gdb's comment
    clone = d[("__mutex_lock.constprop.0", 24)]
    assert clone.func == "__mutex_lock.constprop.0"
    lock = d[("__mutex_lock.constprop.0", 31)]
    assert lock.prefixes == ["lock"] and lock.mnemonic == "cmpxchg"


def test_dis_l_source_lines_and_noise():
    text = ("/build/linux/fs/namei.c: 4271\n"
            "0xffffffff91f7dd60 <do_unlinkat>:\tnopl   0x0(%rax,%rax,1) [FTRACE NOP]\n"
            "dis: WARNING: something\n"
            "0xffffffff91f7dd65 <do_unlinkat+5>:\tpush   %r15\n")
    ins = parse_dis(text)
    assert len(ins) == 2
    assert ins[0].source == "/build/linux/fs/namei.c: 4271"
    assert ins[0].size == 5


def test_operand_forms():
    o = parse_operand("0xffffffff82a0f1c0(,%rax,8)")
    assert (o.disp, o.base, o.index, o.scale) == (0xffffffff82a0f1c0, None, "rax", 8)
    o = parse_operand("*0x10(%rax)", branch=True)
    assert o.kind == "mem" and o.indirect and o.disp == 0x10
    o = parse_operand("*%rax", branch=True)
    assert o.kind == "reg" and o.indirect
    o = parse_operand("(%rdi)")
    assert (o.kind, o.disp, o.base) == ("mem", 0, "rdi")
    o = parse_operand("%es:(%rdi)")
    assert o.seg == "es" and o.base == "rdi"
    assert split_symoff("foo.isra.0+0x1f") == ("foo.isra.0", 31)


def test_write_sets():
    d = _by_off(parse_dis(DIS_61))
    assert d[("lab_take", 11)].writes() == {"r12"}
    assert d[("lab_take", 32)].writes() == set(x86.CALLER_SAVED) | {"rsp"}
    assert d[("lab_take", 5)].writes() == {"rsp"}
    assert d[("lab_take", 146)].writes() == set()          # cmpl to memory
    assert d[("lab_take", 361)].writes() == set()          # addl to memory
    assert d[("__mutex_lock.constprop.0", 31)].writes() == {"rax"}
    assert d[("__switch_to_asm", 10)].writes() == set()    # store only


def test_symbolic_effects():
    text = ("0xffffffff81000000 <f>:\tpush   %rbp\n"
            "0xffffffff81000001 <f+1>:\tmov    %rsp,%rbp\n"
            "0xffffffff81000004 <f+4>:\tpush   %rbx\n"
            "0xffffffff81000005 <f+5>:\tmov    %rdi,%rbx\n"
            "0xffffffff81000008 <f+8>:\txor    %eax,%eax\n"
            "0xffffffff8100000a <f+10>:\tmov    %esi,%r12d\n"
            "0xffffffff8100000d <f+13>:\tlea    -0x30(%rbp),%rdi\n"
            "0xffffffff81000011 <f+17>:\tmov    %rdx,-0x18(%rbp)\n"
            "0xffffffff81000015 <f+21>:\tcmovne %rcx,%rdx\n"
            "0xffffffff81000019 <f+25>:\tcall   0xffffffff81000100 <g>\n"
            "0xffffffff8100001e <f+30>:\tpop    %rbx\n")
    flow = flowrun.run(fl.Flow("#1", "f", parse_dis(text)), 9)
    st = flow.state
    e = flow.entry
    assert st.regs["rbx"].node == e("rdi")
    assert st.regs["rax"] == fl.const(0) or st.regs["rax"].same(fl.const(0))
    assert st.regs["r12"].node.startswith("zx32:")
    assert st.regs["rdi"].node == e("rsp") and fl.signed(st.regs["rdi"].off) == -0x38
    assert st.regs["rbp"].node == e("rsp") and fl.signed(st.regs["rbp"].off) == -8
    assert fl.signed(st.regs["rsp"].off) == -16
    assert st.regs["rdx"].node not in (e("rdx"), e("rcx"))  # cmov: unknown
    assert st.mem[(e("rsp"), (-8) & fl.MASK)].node == e("rbp")      # push %rbp
    assert st.mem[(e("rsp"), (-16) & fl.MASK)].node == e("rbx")     # push %rbx
    assert st.mem[(e("rsp"), (-0x20) & fl.MASK)].node == e("rdx")   # spill


def test_whatis_prototypes():
    p = parse_whatis("int vfs_unlink(struct user_namespace *, struct inode *, "
                     "struct dentry *, struct inode **);\n")
    assert p.name == "vfs_unlink" and p.ret == "int"
    assert [x.type for x in p.params] == ["struct user_namespace *", "struct inode *",
                                          "struct dentry *", "struct inode **"]
    assert p.registers() == ["rdi", "rsi", "rdx", "rcx"]
    p = parse_whatis("int (struct mutex *, unsigned int, unsigned long, "
                     "struct lockdep_map *, unsigned int)\n")
    assert p.name is None and len(p.params) == 5 and p.params[1].name is None
    p = parse_whatis("struct rw_semaphore *rwsem_down_write_slowpath("
                     "struct rw_semaphore *, int);")
    assert p.name == "rwsem_down_write_slowpath" and p.ret == "struct rw_semaphore *"
    p = parse_whatis("void schedule(void);")
    assert p.params == []
    p = parse_whatis("int f(struct path, int *a, void (*cb)(int), ...);")
    assert p.variadic and p.params[1].name == "a" and p.params[2].name == "cb"
    assert p.registers() == [None, None, None]     # after a struct by value: uncertain
    assert parse_whatis("whatis: gdb request failed: whatis lab_take\n") is None


def test_whatis_name_crash_put_in_a_function_pointer_parameter():
    # crash 8.0.6 and 9.0.2, ``whatis __wait_for_common`` on Debian's 6.1 (gdb itself
    # says ``type = long (struct completion *, long (*)(long), long, int)``)
    text = "long (struct completion *, long (*__wait_for_common)(long), long, int);\n"
    p = parse_whatis(text, "__wait_for_common")
    assert p.name == "__wait_for_common" and p.ret == "long"
    assert [(x.type, x.name) for x in p.params] == [
        ("struct completion *", None), ("long (*)(long)", None), ("long", None),
        ("int", None)]
    assert p.text == ("long __wait_for_common(struct completion *, long (*)(long), long, "
                      "int);")
    assert p.registers() == ["rdi", "rsi", "rdx", "rcx"]
    # a parameter's own name is kept, and so is the text without the function's name
    p = parse_whatis("int f(struct path, int *a, void (*cb)(int), ...);", "cb")
    assert p.name == "f" and p.params[2].name == "cb"
    p = parse_whatis("void *(void *(*g)(int), int)", "g2")
    assert p.name is None and p.params[0].name == "g"
