"""render reads nothing from the kernel: with every port's reads and commands made to
raise, each verb's recorded result still renders (text and JSON), and render's modules
take no port."""

import inspect
import json

import pytest

from crash_ext.core import jsontext
from crash_ext.core.port import Port
from crash_ext.ports.commandport import CommandTypes
from crash_ext.core.results import Arg, FrameArgs, TaskArgs, TaskRef
from crash_ext.render import argrecover as RA
from crash_ext.render import deadlock as RD
from crash_ext.render import dot, shape, whoholds as RW
from crash_ext.session.snapshot import Snapshot
from crash_ext.waits.lockreport import lock_report
from tests.unit.test_locks_recorded import seed_port
from tests.unit.test_waitfor import _abba


def _refuse(*_a, **_k):
    raise AssertionError("render asked the kernel")


@pytest.fixture
def no_kernel(monkeypatch):
    """Every port's way to the kernel raises from here on."""
    for cls in (Port, CommandTypes):
        for name in ("command", "read", "read_u64", "read_u32", "read_many", "batch",
                     "command_stream", "symbol_address", "address_symbol", "member_offset",
                     "member_type", "type_size", "enum_value", "task_by_pid"):
            if name in vars(cls):
                monkeypatch.setattr(cls, name, _refuse)


def test_deadlocks_record_renders_without_the_kernel(no_kernel):
    res = _abba()
    text = RD.format_text(res)
    assert "deadlock" in text.lower()
    body = RD.to_json(res)
    doc = shape.document("deadlock", {"kernel_release": None, "crash_version": None,
                                      "vmcore": None, "vmlinux": None}, body)
    assert json.loads(jsontext.dumps(doc))["verb"] == "deadlock"
    assert "digraph" in dot.to_dot(res)


def test_a_lock_report_renders_without_the_kernel(monkeypatch):
    port = seed_port()
    rep = lock_report(port, 0xffff8808a3dbf640, "mutex", snapshot=Snapshot(port),
                      candidates=False)
    for cls in (Port, CommandTypes, type(port)):
        for name in ("command", "read", "read_u64", "read_many"):
            if name in vars(cls):
                monkeypatch.setattr(cls, name, _refuse)
    text = RW.format_report(rep)
    assert "OWNER" in text
    assert shape.to_json(rep)["type"] == "mutex"


def test_recovered_arguments_render_without_the_kernel(no_kernel):
    a = Arg(name="dentry", type="struct dentry *", register="rsi",
            value=0xffff8d58c2766c00, status="recovered",
            provenance=["%rsi at the call <- %r15", "%r15 read [ffffcf84403fbb30] (bt -f)"])
    u = Arg(name="mode", type="int", register="rdx", reason="clobbered")
    ta = TaskArgs(pid=5109, task=0xffff8d58c27e3080, command="rm", frames=[
        FrameArgs(index=3, function="vfs_unlink", prototype="int vfs_unlink(...)",
                  args=[a, u])])
    ref = TaskRef(task=ta.task, pid=5109, comm="rm", state="UN")
    decoded = {id(a): "dentry \"fire.js\""}
    text = RA.task_text(ref, ta, ta.frames, decoded, False, 100)
    assert "dentry (struct dentry *) %rsi = ffff8d58c2766c00  -> dentry" in text
    assert "mode (int) %rdx = unknown" in text
    js = RA.frames_json(ref, ta, ta.frames, decoded)
    assert js["frames"][0]["args"][0]["decoded"] == 'dentry "fire.js"'


def test_render_takes_no_port():
    for mod in (RA, RD, RW, dot, shape):
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ == mod.__name__:
                assert "port" not in inspect.signature(fn).parameters, (mod, name)
