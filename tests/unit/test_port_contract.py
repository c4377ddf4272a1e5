"""The port contract: every optional capability is declared on Port with its default,
each adapter says which it provides, and nothing probes a port with getattr/hasattr."""

import ast
import os

from crash_ext.ports.crashproc import CrashProcess
from crash_ext.ports.pykdump import PykdumpPort
from crash_ext.session.snapshot import StackReadPort
from crash_ext.core.port import Port
from tests.unit.test_incrash_imports import ROOT

#: the optional capabilities of a port (Port gives each a default)
CAPABILITIES = ("base_port", "batch", "batches_commands", "command_stream",
                "crash_version", "enum_value", "memory_fixed", "module_files",
                "prefetch_structs", "prefetch_symbols", "session_identity",
                "startup_output", "streams_commands", "vmcore", "vmlinux")

#: what each adapter provides beyond Port's defaults (class attributes; instance
#: attributes set in __init__ are listed by the adapter's own tests)
PROVIDED = {
    CrashProcess: {"batch", "batches_commands", "command_stream", "crash_version",
                   "enum_value", "memory_fixed", "prefetch_structs", "prefetch_symbols",
                   "streams_commands"},
    PykdumpPort: {"crash_version", "enum_value", "memory_fixed", "prefetch_structs",
                  "prefetch_symbols"},
    # a wrapper: every capability is the port underneath's
    StackReadPort: set(CAPABILITIES),
}


def _overrides(cls):
    return {n for n in CAPABILITIES
            if any(n in vars(k) for k in cls.__mro__ if k is not Port and k is not object)}


def test_every_capability_has_a_default_on_port():
    assert all(n in vars(Port) for n in CAPABILITIES)


def test_the_capabilities_each_adapter_provides():
    assert {cls.__name__: _overrides(cls) for cls in PROVIDED} == \
        {cls.__name__: got for cls, got in PROVIDED.items()}


def test_a_bare_port_answers_every_capability_with_its_default():
    class Bare(Port):
        def command(self, cmd):
            raise AssertionError("not asked: %s" % cmd)
    p = Bare()
    assert p.base_port is p and not p.batches_commands and not p.streams_commands
    assert p.session_identity is None and p.memory_fixed() is False
    assert p.crash_version() is None and p.module_files == () and p.startup_output == ""
    assert p.vmlinux is None and p.vmcore is None
    assert p.prefetch_structs(["mutex"]) is None and p.prefetch_symbols([1]) is None
    assert p.batch([]) == []


def test_the_default_batch_is_one_command_at_a_time():
    from crash_ext.core.errors import CrashCommandError

    class Echo(Port):
        def command(self, cmd):
            if cmd == "bad":
                e = CrashCommandError("no")
                e.output = "crash: no"
                raise e
            return cmd.upper()
    got = Echo().batch(["a", "bad"])
    assert got[0] == "A" and isinstance(got[1], CrashCommandError)
    assert Echo().batch(["a", "bad"], check=False) == ["A", "crash: no"]
    pieces = []
    assert Echo().command_stream("x", pieces.append) == "X" and pieces == ["X"]


def _probes(path):
    """Return the getattr/hasattr/setattr calls of ``path`` whose object is a port."""
    bad = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "hasattr", "setattr") and node.args:
            obj = node.args[0]
            name = obj.id if isinstance(obj, ast.Name) else \
                obj.attr if isinstance(obj, ast.Attribute) else ""
            if name.lstrip("_").endswith("port"):
                bad.append("%s:%d %s" % (os.path.relpath(path, ROOT), node.lineno,
                                         node.func.id))
    return bad


def test_nothing_probes_a_port():
    bad = []
    for d, _, files in os.walk(os.path.join(ROOT, "crash_ext")):
        if os.path.basename(d) in ("adapters", "ports"):
            continue
        for f in sorted(files):
            if f.endswith(".py"):
                bad.extend(_probes(os.path.join(d, f)))
    assert bad == []
