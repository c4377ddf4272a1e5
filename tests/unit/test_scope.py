"""gdb's ``info scope`` as crash 8.0.6 printed it on the lab's 6.1.0-57 seed dump (kdump),
with the module's debuginfo loaded (``mod -s crashext_lab``): the module function's
parameter names, in order, come before its locals (``models.proto.parse_scope``)."""

from crash_ext.models.proto import parse_scope

# `gdb info scope *lab_hold` (multi-location bodies cut to their first range)
LAB_HOLD = """\
Scope for *lab_hold:
Symbol l is multi-location:
  Base address 0xffffffffc03fc770  Range 0xffffffffc03fc770-0xffffffffc03fc799: a variable in $rdi
  Range 0xffffffffc03fc7e1-0xffffffffc03fc7ec: a complex DWARF expression:
     0: DW_OP_entry_value
       2: DW_OP_reg5 [$rdi]
     3: DW_OP_stack_value

, length 8.
Symbol lock is multi-location:
  Base address 0xffffffffc03fc770  Range 0xffffffffc03fc770-0xffffffffc03fc78e: a variable in $rsi
, length 8.
Symbol mode is multi-location:
  Base address 0xffffffffc03fc770  Range 0xffffffffc03fc770-0xffffffffc03fc782: a variable in $rdx
, length 1.
Symbol rest is multi-location:
  Base address 0xffffffffc03fc770  Range 0xffffffffc03fc770-0xffffffffc03fc79e: a variable in $rcx
, length 8.
Symbol err is multi-location:
  Base address 0xffffffffc03fc7d9  Range 0xffffffffc03fc7d9-0xffffffffc03fc7dd: a variable in $rax
, length 4.
Symbol __func__ is in static storage at address 0xffffffffc03fec48, length 9.
"""

# `gdb info scope *vfs_unlink` (the vmlinux's DWARF; locations cut), a goto label last
VFS_UNLINK = """\
Scope for *vfs_unlink:
Symbol mnt_userns is multi-location:
Symbol dir is multi-location:
Symbol dentry is multi-location:
Symbol delegated_inode is multi-location:
Symbol target is optimized out.
Symbol error is multi-location:
Symbol out is optimized out.
"""


def test_parameters_first_in_their_order():
    # crashext_lab.c: int lab_hold(struct lab_lock *l, void *lock, char mode, char *rest)
    assert parse_scope(LAB_HOLD)[:4] == ["l", "lock", "mode", "rest"]
    assert parse_scope(LAB_HOLD)[4:] == ["err", "__func__"]
    # fs/namei.c (6.1): vfs_unlink(mnt_userns, dir, dentry, delegated_inode)
    assert parse_scope(VFS_UNLINK)[:4] == ["mnt_userns", "dir", "dentry",
                                           "delegated_inode"]


def test_no_debuginfo_lists_nothing():
    assert parse_scope("Scope for *0x1 contains no locals or arguments.\n") == []
    assert parse_scope("No function contains specified address.\n") == []
    assert parse_scope("") == []
    # a continuation line that happens to start with "Symbol" is never indented text
    assert parse_scope("Scope for *f:\n  Symbol x is inside a range\n") == []
