"""render reads nothing from the kernel: with every port's reads and commands made to
raise, each verb's recorded result still renders (text and JSON), and render's modules
take no port.  argrecover still decodes pointers while it prints (docs/design.md)."""

import inspect
import json

import pytest

from crash_ext.core import jsontext
from crash_ext.core.port import Port
from crash_ext.ports.commandport import CommandTypes
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


def test_render_takes_no_port():
    for mod in (RD, RW, dot, shape):
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ == mod.__name__:
                assert "port" not in inspect.signature(fn).parameters, (mod, name)
