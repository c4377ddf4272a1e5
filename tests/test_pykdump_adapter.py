"""The pykdump adapter against a stand-in for pykdump's ``crash`` module (quick checks).

``tests/pykdump_standin.py`` follows pykdump's behaviour, answering from a crash process on
a lab dump.  The verbs inside a real crash with the real mpykdump.so, compared with
``crash-ext``, are in ``tests/test_real_pykdump.py``.
"""

import io
import contextlib

import pytest

from crash_ext.ports.pykdump import PykdumpPort
from crash_ext.verbs.incrash import register_verbs, run_verb
from crash_ext.core.errors import CrashCommandError, MemoryReadError
from crash_ext.verbs import registry
from tests.pykdump_standin import CrashModuleStandIn


@pytest.fixture
def standin(lab):
    def make(scenario):
        dump, crash = lab(scenario)
        return dump, crash, CrashModuleStandIn(crash)
    return make


def _run(verb, argv, port):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = registry.load(verb).main(argv, port)
    return rc, out.getvalue()


def test_port_answers_like_the_crash_process(standin):
    dump, crash, mod = standin("seed")
    port = PykdumpPort(mod)
    fire = next(l for l in dump.truth["locks"] if l["name"].startswith("i:"))
    addr = int(fire["address"], 16)
    assert port.read(addr, 40) == crash.read(addr, 40)
    assert port.member_offset("inode", "i_rwsem") == crash.member_offset("inode", "i_rwsem")
    assert port.member_offset("rw_semaphore", "wait_list.next") == \
        crash.member_offset("rw_semaphore", "wait_list.next")
    assert port.member_offset("inode", "no_such_member") is None
    assert port.member_type("rw_semaphore", "owner") == "atomic_long_t"
    assert port.type_size("task_struct") == crash.type_size("task_struct")
    assert port.symbol_address("init_task") == crash.symbol_address("init_task")
    assert port.symbol_address("no_such_symbol_xyz") is None


def test_errors_map_to_port_exceptions(standin):
    _, _, mod = standin("seed")
    port = PykdumpPort(mod)
    with pytest.raises(MemoryReadError):
        port.read(0, 8)
    with pytest.raises(MemoryReadError):
        port.read(0xffffffffffff0000, 8)
    with pytest.raises(CrashCommandError):
        port.command("struct no_such_struct_xyz")
    # pykdump raises crash.error on empty output too: that is not an error for us
    assert port.command("foreach RU bt -f") is not None


def test_run_verb_never_raises(standin, capfd):
    _, _, mod = standin("seed")
    assert run_verb("whoholds", ["-p", "99999"], crash_module=mod) == 2
    assert run_verb("whoholds", ["0"], crash_module=mod) == 2
    assert run_verb("deadlock", ["--no-such-option"], crash_module=mod) == 2

    class Broken(CrashModuleStandIn):
        def exec_crash_command(self, cmd):
            raise RuntimeError("simulated bug")

    rc = run_verb("deadlock", [], crash_module=Broken(mod._proc))
    # errors go to the process's stderr (fd 2: inside crash sys.stderr is crash's output)
    out, err = capfd.readouterr()
    assert rc == 3 and "internal error" in err and "Traceback" not in out + err
    assert "error" not in out, out
    for line in err.strip().splitlines():
        assert line.startswith(("whoholds:", "deadlock:", "usage:")), line


def test_register_verbs_with_crash_style_help(standin):
    _, _, mod = standin("seed")
    assert register_verbs(crash_module=mod) == list(registry.VERBS)
    for name, (description, shorthelp, longhelp) in mod.registered.items():
        assert description == registry.VERBS[name][1]
        assert shorthelp.startswith("[-h]"), shorthelp
        # crash prints NAME, SYNOPSIS and DESCRIPTION itself: the text holds the rest
        assert "EXAMPLES" in longhelp.splitlines()
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION"):
            assert section not in longhelp.splitlines(), (name, section)


def test_type_facts_kept_across_verb_calls(standin, monkeypatch, capsys):
    """A second verb call in the same crash session asks no type question the first one
    had answered (no store on disk, as with CRASH_EXT_TYPE_CACHE=0)."""
    monkeypatch.setenv("CRASH_EXT_TYPE_CACHE", "0")
    dump, crash, _ = standin("seed")

    class Counting(CrashModuleStandIn):
        def struct_size(self, sname):
            self.commands.append("<struct_size %s>" % sname)
            return CrashModuleStandIn.struct_size(self, sname)

        def member_offset(self, sname, member):
            self.commands.append("<member_offset %s %s>" % (sname, member))
            return CrashModuleStandIn.member_offset(self, sname, member)

    mod = Counting(crash)
    typeq = ("<", "struct -o", "whatis", "gdb ptype", "gdb whatis", "ptype")
    waiter = dump.truth["locks"][0]["waiters"][-1]["pid"]
    assert run_verb("whoholds", ["-p", str(waiter)], crash_module=mod) in (0, 1)
    first = [c for c in mod.commands if c.startswith(typeq)]
    mod.commands.clear()
    assert run_verb("whoholds", ["-p", str(waiter)], crash_module=mod) in (0, 1)
    again = [c for c in mod.commands if c.startswith(typeq)]
    assert first, "the first call asked no type question: nothing to check"
    assert again == [], again
    capsys.readouterr()
