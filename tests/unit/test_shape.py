"""render.shape (the JSON every verb shares) and models.btf (parameter names)."""

import struct

import pytest

from crash_ext.core.results import Blocked, TaskRef
from crash_ext.models import btf
from crash_ext.render import shape
from crash_ext.render.text import task_header, wait_address, wrap
from crash_ext.session.identity import dump_identity


def test_last_ran_ns_reads_ps_m():
    assert shape.last_ran_ns("[0 00:00:00.258]") == 258000000
    assert shape.last_ran_ns("[1 02:03:04.005]") == ((26 * 60 + 3) * 60 + 4) * 10 ** 9 + 5 * 10 ** 6
    assert shape.last_ran_ns(None) is None
    assert shape.last_ran_ns("soon") is None


def test_one_task_object_and_hex_addresses():
    t = TaskRef(task=0xffff8d58c27e3080, pid=98, comm="ruby", state="UN", cpu=0,
                last_ran="[0 00:00:00.258]")
    b = Blocked(task=t, kind="lock", lock_address=0xffff8d58c2766c10, frame=2)
    d = shape.to_json(b)
    assert d["task"] == {"pid": 98, "task": "0xffff8d58c27e3080", "comm": "ruby",
                         "state": "UN", "cpu": 0, "last_ran_ns": 258000000}
    assert d["lock_address"] == "0xffff8d58c2766c10" and d["frame"] == 2


class _Port:
    def __init__(self):
        self.asked = []

    def command(self, cmd):
        self.asked.append(cmd)
        return {"sys": "      KERNEL: /k/vmlinux  [TAINTED]\n    DUMPFILE: /d/vmcore\n"
                       "     RELEASE: 6.1.0-57-amd64\n",
                "help -p": "     program_name: crash\n  program_version: 8.0.6\n"}[cmd]


def test_document_names_its_dump_once_per_port():
    p = _Port()
    d = shape.document("deadlock", dump_identity(p), {"cycles": []})
    assert list(d)[:3] == ["schema_version", "verb", "dump"]
    assert d["dump"] == {"kernel_release": "6.1.0-57-amd64", "crash_version": "8.0.6",
                         "vmcore": "/d/vmcore", "vmlinux": "/k/vmlinux", "live": False}
    shape.document("whoholds", dump_identity(p), {})
    assert p.asked == ["sys", "help -p"]


def test_document_says_live_when_crash_reads_the_running_kernel():
    p = _Port()
    p.command = lambda cmd: {"sys": "      KERNEL: /k/vmlinux\n    DUMPFILE: /proc/kcore\n"
                                    "     RELEASE: 6.1.0-57-amd64\n",
                             "help -p": "  program_version: 8.0.6\n"}[cmd]
    assert shape.document("deadlock", dump_identity(p), {})["dump"]["live"] is True


def test_task_header_is_crashs():
    t = TaskRef(task=0xffff8d58c27e3080, pid=98, comm="ruby", cpu=0, state="UN")
    assert task_header(t, state=False) == \
        'PID: 98  TASK: ffff8d58c27e3080  CPU: 0  COMMAND: "ruby"'


def test_wrap_keeps_long_words_and_indents():
    lines = wrap("a " * 50 + "x" * 90, 40, "  ", "    ")
    assert all(len(l) <= 40 for l in lines[:-1]) and lines[-1] == "    " + "x" * 90


def test_wait_address_of_a_wait_that_is_not_a_lock():
    b = Blocked(task=TaskRef(task=1), kind="completion")
    assert wait_address(b) is None
    b.completion_address = 0xffff0000dead0000        # an analysis may add such a field
    assert wait_address(b) == 0xffff0000dead0000


def _btf(funcs):
    """A BTF blob: an int type, then for each (name, [params]) a FUNC_PROTO and FUNC."""
    strings = b"\0"
    offs = {}

    def s(name):
        nonlocal strings
        if name not in offs:
            offs[name] = len(strings)
            strings += name.encode() + b"\0"
        return offs[name]
    types = struct.pack("<IIII", s("int"), 1 << 24, 4, 32)     # id 1: INT
    tid = 2
    for name, params in funcs:
        types += struct.pack("<III", 0, (13 << 24) | len(params), 1)
        for p in params:
            types += struct.pack("<II", s(p), 1)
        types += struct.pack("<III", s(name), 12 << 24, tid)
        tid += 2
    hdr = struct.pack("<HBBIIIII", 0xeB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


def test_btf_parameter_names():
    b = btf.parse_btf(_btf([("vfs_unlink", ["mnt_userns", "dir", "dentry", "di"]),
                            ("schedule", []), ("dup", ["a"]), ("dup", ["b"])]))
    assert b.params("vfs_unlink") == ("mnt_userns", "dir", "dentry", "di")
    assert b.params("schedule") == ()
    assert b.params("dup") is None                # two static functions disagree
    assert b.params("nosuch") is None
    assert btf.param_names(b, "vfs_unlink.constprop.0", 4)[2] == "dentry"
    assert btf.param_names(b, "vfs_unlink", 3) is None          # not the prototype's
    with pytest.raises(ValueError):
        btf.parse_btf(b"\0" * 40)
