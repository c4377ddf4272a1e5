"""The on-disk type store: a second crash session on the same vmlinux asks gdb no type
question and prints the same report; the store never keeps symbols or missing types."""

import io
import json
import os

from crash_ext.ports.crashproc import CrashProcess
from crash_ext.ports.typestore import TypeStore, build_id, session_files
from crash_ext.verbs import deadlock
from tests.lab.labdumps import get_dump

# the commands through which gdb answers type questions
TYPE_COMMANDS = ("struct -o", "p sizeof", "p (unsigned long)&", "p/d ", "gdb whatis")


def _run(dump, store_dir, monkeypatch):
    monkeypatch.setenv("CRASH_EXT_TYPES", store_dir)
    crash = CrashProcess(dump.vmlinux, dump.vmcore, crash=dump.crash, timeout=600)
    asked = []
    orig = crash._exchange

    def spy(cmds, *a, **k):
        asked.extend(cmds)
        return orig(cmds, *a, **k)
    crash._exchange = spy
    try:
        crash.command("mod -s crashext_lab %s" % dump.module_ko)
        out = io.StringIO()
        rc = deadlock.main([], crash, out=out)
    finally:
        crash.close()
    return rc, out.getvalue(), asked


def test_second_session_asks_gdb_nothing(tmp_path, monkeypatch):
    dump = get_dump("seed")
    rc1, out1, asked1 = _run(dump, str(tmp_path), monkeypatch)
    files = sorted(f for f in os.listdir(str(tmp_path)) if f != "code")
    assert files == [build_id(dump.vmlinux) + ".json"]
    first_types = [c for c in asked1 if c.startswith(TYPE_COMMANDS)]
    assert first_types, "the first session must ask gdb (store was empty)"
    rc2, out2, asked2 = _run(dump, str(tmp_path), monkeypatch)
    assert (rc2, out2) == (rc1, out1)
    assert [c for c in asked2 if c.startswith(TYPE_COMMANDS)] == []
    doc = json.load(open(os.path.join(str(tmp_path), files[0])))
    kinds = {k[0] for k, _ in doc["facts"]}
    assert "sym" not in kinds and "addr" not in kinds
    assert not [k for k, v in doc["facts"] if k[0] == "ctype" and v is None]


def test_store_is_off_for_live_systems_and_by_switch(tmp_path, monkeypatch):
    dump = get_dump("seed")
    monkeypatch.setenv("CRASH_EXT_TYPES", str(tmp_path))
    assert TypeStore.for_vmlinux(dump.vmlinux, live=True) is None
    monkeypatch.setenv("CRASH_EXT_TYPE_CACHE", "0")
    assert TypeStore.for_vmlinux(dump.vmlinux) is None
    monkeypatch.delenv("CRASH_EXT_TYPE_CACHE")
    assert TypeStore.for_vmlinux(dump.vmlinux) is not None
    assert TypeStore.for_vmlinux(str(tmp_path / "missing")) is None


def test_session_files_from_sys():
    text = ("      KERNEL: /x/vmlinux  [TAINTED]\n    DUMPFILE: /d/vmcore\n"
            "        CPUS: 2\n")
    assert session_files(text) == ("/x/vmlinux", False)
    assert session_files(text + "   DEBUGINFO: /x/vmlinux.debug\n") == (
        "/x/vmlinux.debug", False)
    assert session_files("      KERNEL: /x/vmlinux\n    DUMPFILE: /proc/kcore\n")[1]
    assert session_files("      KERNEL: /x/vmlinux\n")[1]


def test_unreadable_store_is_empty(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    assert TypeStore(str(p)).load() == {}
    p.write_text(json.dumps({"version": 999, "facts": [[["size", "struct a"], 8]]}))
    assert TypeStore(str(p)).load() == {}
