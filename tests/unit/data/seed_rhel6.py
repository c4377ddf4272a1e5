"""Recorded text from the seed article ("A short guide to kernel debugging", Square, 2015;
/work/shared/seed/000_73a9348b1728cdc4.txt), RHEL6 2.6.32-431.23.3.el6.x86_64, crash 7.x.

Every line marked ARTICLE below is copied from the article's transcripts (bold markers
removed).  The article elides parts of its transcripts with "..."; the few lines needed
to make a consistent fixture are marked SYNTHESIZED, with the reason.
"""

# ARTICLE: `crash> bt` of PID 5109 (complete as printed).
BT_5109 = """\
PID: 5109  TASK: ffff8802d0e5a080  CPU: 18  COMMAND: "rm"
 #0 [ffff88057f85bce8] schedule at ffffffff81528bc0
 #1 [ffff88057f85bdb0] __mutex_lock_slowpath at ffffffff8152a36e
 #2 [ffff88057f85be20] mutex_lock at ffffffff8152a20b
 #3 [ffff88057f85be40] vfs_unlink at ffffffff811979bc
 #4 [ffff88057f85be70] do_unlinkat at ffffffff8119aac3
 #5 [ffff88057f85bf70] sys_unlinkat at ffffffff8119adf2
 #6 [ffff88057f85bf80] system_call_fastpath at ffffffff8100b072
    RIP: 00000033b36dc68d  RSP: 00007ffff7f1ec48  RFLAGS: 00010202
    RAX: 0000000000000107  RBX: ffffffff8100b072  RCX: 0000000000000032
    RDX: 0000000000000000  RSI: 0000000001982a70  RDI: 0000000000000006
    RBP: 00007ffff7f1efa0   R8: 0000000000000003   R9: 0000000000000000
    R10: 0000000000000100  R11: 0000000000000246  R12: ffffffff8119adf2
    R13: ffff88057f85bf78  R14: 0000000000000000  R15: 0000000001979060
    ORIG_RAX: 0000000000000107  CS: 0033  SS: 002b
"""

# ARTICLE: `bt 4723` (the article cuts it after #11 with "...").
BT_4723 = """\
PID: 4723  TASK: ffff8807ef98aae0  CPU: 2   COMMAND: "ruby"
 #0 [ffff88076b78da08] schedule at ffffffff81528bc0
 #1 [ffff88076b78dad0] rwsem_down_failed_common at ffffffff8152b275
 #2 [ffff88076b78db30] rwsem_down_write_failed at ffffffff8152b3d3
 #3 [ffff88076b78db70] call_rwsem_down_write_failed at ffffffff8128f383
 #4 [ffff88076b78dbd0] xfs_ilock at ffffffffa02006fc [xfs]
 #5 [ffff88076b78dc00] xfs_setattr at ffffffffa021fdcd [xfs]
 #6 [ffff88076b78dcc0] xfs_vn_setattr at ffffffffa022c00b [xfs]
 #7 [ffff88076b78dcd0] notify_change at ffffffff811a7cf8
 #8 [ffff88076b78dd40] do_truncate at ffffffff81186f74
 #9 [ffff88076b78ddb0] do_filp_open at ffffffff8119c051
#10 [ffff88076b78df20] do_sys_open at ffffffff81185c39
#11 [ffff88076b78df70] sys_open at ffffffff81185d50
...
"""

# ARTICLE: `bt -l` excerpt.
BT_L_5109 = """\
PID: 5109  TASK: ffff8802d0e5a080  CPU: 18  COMMAND: "rm"
...
 #2 [ffff88057f85be20] mutex_lock at ffffffff8152a20b
    /arch/x86/include/asm/thread_info.h: 216
 #3 [ffff88057f85be40] vfs_unlink at ffffffff811979bc
    /fs/namei.c: 2810
...
"""

# The article shows `bt -f` twice, each time only an excerpt: the first words of #0,
# and the words around #4.  ARTICLE frame lines come from `bt` above; ARTICLE word
# lines from the two `bt -f` excerpts, placed under the frame whose words they are
# (crash prints frame N's words, RSP_N+8 .. RSP_{N+1}, after line #N).
BT_F_5109 = """\
PID: 5109  TASK: ffff8802d0e5a080  CPU: 18  COMMAND: "rm"
 #0 [ffff88057f85bce8] schedule at ffffffff81528bc0
    ffff88057f85bcf0: 0000000000000086 0000000000000000
    ffff88057f85bd00: ffffffffa0230da4 ffff88057f85bd18
...
 #1 [ffff88057f85bdb0] __mutex_lock_slowpath at ffffffff8152a36e
 #2 [ffff88057f85be20] mutex_lock at ffffffff8152a20b
 #3 [ffff88057f85be40] vfs_unlink at ffffffff811979bc
...
    ffff88057f85be68: ffff88057f85bf68 ffffffff8119aac3
 #4 [ffff88057f85be70] do_unlinkat at ffffffff8119aac3
    ffff88057f85be78: ffff88004b3d2248 ffff8808a3dbf588
    ffff88057f85be88: ffff8809c6c82a40 ffff880b92bd4000
...
 #5 [ffff88057f85bf70] sys_unlinkat at ffffffff8119adf2
 #6 [ffff88057f85bf80] system_call_fastpath at ffffffff8100b072
"""

# ARTICLE: `dis do_unlinkat` excerpt (the article elides the rest with "...").
DIS_DO_UNLINKAT = """\
...
0xffffffff8119aaa2 <do_unlinkat+322>:   mov    -0xc8(%rbp),%rax
0xffffffff8119aaa9 <do_unlinkat+329>:   mov    %rdx,%rsi
0xffffffff8119aaac <do_unlinkat+332>:   mov    0x10(%rax),%rdi
0xffffffff8119aab0 <do_unlinkat+336>:   mov    %rcx,-0xe8(%rbp)
0xffffffff8119aab7 <do_unlinkat+343>:   mov    %rdx,-0xe0(%rbp)
0xffffffff8119aabe <do_unlinkat+350>:   callq  0xffffffff81197960 <vfs_unlink>
0xffffffff8119aac3 <do_unlinkat+355>:   mov    -0xe0(%rbp),%rdx
...
"""

# SYNTHESIZED: the article never disassembles vfs_unlink.  Its entry address
# (0xffffffff81197960, from the call above) and the return address +92 (0x5c, from
# /proc/5109/stack "vfs_unlink+0x5c/0xf0" and bt #3) are ARTICLE facts; the prologue is
# the standard 2.6.32 frame-pointer one, sized to the article's frame geometry: entered
# with %rsp = RSP_4 = ffff88057f85be70, %rsp at its call = RSP_3 + 8 = ffff88057f85be48,
# i.e. push %rbp plus 0x20 bytes.  Its `push %rbp` is what put the article's "last
# frame's FP" ffff88057f85bf68 at ffff88057f85be68.  The body between +16 and the call
# at +87 is elided; the call target address is not known from the article.
DIS_VFS_UNLINK = """\
0xffffffff81197960 <vfs_unlink>:        push   %rbp
0xffffffff81197961 <vfs_unlink+1>:      mov    %rsp,%rbp
0xffffffff81197964 <vfs_unlink+4>:      sub    $0x20,%rsp
0xffffffff81197968 <vfs_unlink+8>:      mov    %rbx,-0x18(%rbp)
0xffffffff8119796c <vfs_unlink+12>:     mov    %r12,-0x10(%rbp)
0xffffffff81197970 <vfs_unlink+16>:     mov    %r13,-0x8(%rbp)
0xffffffff811979b7 <vfs_unlink+87>:     callq  0xffffffff8152a1f0 <mutex_lock>
0xffffffff811979bc <vfs_unlink+92>:     mov    0x30(%rbx),%rax
"""

# SYNTHESIZED from the article's source listing (fs/namei.c:2869
# "error = vfs_unlink(nd.path.dentry->d_inode, dentry);"): the 2.6.32 prototype as
# crash's `whatis` prints it.
WHATIS_VFS_UNLINK = "int vfs_unlink(struct inode *, struct dentry *);\n"

# ARTICLE facts the tests expect.
DENTRY = 0xffff8809c6c82a40          # vfs_unlink's 2nd argument ("fire.js")
DO_UNLINKAT_RBP = 0xffff88057f85bf68  # do_unlinkat's frame pointer
DENTRY_SLOT = 0xffff88057f85be88      # -0xe0(%rbp)
