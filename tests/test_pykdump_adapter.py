"""The pykdump adapter, run against a stand-in for pykdump's ``crash`` module.

pykdump is not in this machine's package registries, so CI cannot load it into crash.
These tests drive :class:`PykdumpPort` through ``tests/pykdump_standin.py``: an object
written to pykdump's documented behaviour that answers from a real crash session on a
lab dump (real command text, real memory).  They are labelled as such: they prove our
adapter against pykdump's documented contract, not against pykdump itself.
"""

import io
import contextlib

import pytest

from crash_ext.adapters.pykdump import PykdumpPort, register_verbs, run_verb
from crash_ext.port import CrashCommandError, MemoryReadError
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


@pytest.mark.parametrize("scenario,argv", [
    ("seed", ["deadlock"]),
    ("seed", ["deadlock", "--json"]),
    ("cycle3", ["deadlock"]),
    ("convoy", ["deadlock"]),
    ("readers", ["whoholds", "-p", "{waiter}"]),
    ("semaphore", ["whoholds", "{lock}"]),
    ("seed", ["whoholds", "-p", "{waiter}"]),
    ("seed", ["argrecover", "{waiter}", "vfs_unlink"]),
    ("abba-mutex", ["argrecover", "{waiter}"]),
])
def test_verbs_same_results_through_both_adapters(standin, scenario, argv):
    dump, crash, mod = standin(scenario)
    lock = dump.truth["locks"][0]
    argv = [a.format(waiter=lock["waiters"][-1]["pid"], lock=lock["address"]) for a in argv]
    via_process = _run(argv[0], argv[1:], crash)
    via_pykdump = _run(argv[0], argv[1:], PykdumpPort(mod))
    assert via_process[1].strip()
    assert via_pykdump == via_process


def test_run_verb_never_raises(standin, capsys):
    _, _, mod = standin("seed")
    assert run_verb("whoholds", ["-p", "99999"], crash_module=mod) == 2
    assert run_verb("whoholds", ["0"], crash_module=mod) == 2
    assert run_verb("deadlock", ["--no-such-option"], crash_module=mod) == 2

    class Broken(CrashModuleStandIn):
        def exec_crash_command(self, cmd):
            raise RuntimeError("simulated bug")

    rc = run_verb("deadlock", [], crash_module=Broken(mod._proc))
    out = capsys.readouterr().out
    assert rc == 3 and "internal error" in out and "Traceback" not in out
    for line in out.strip().splitlines():
        assert line.startswith(("whoholds:", "deadlock:", "usage:")), line


def test_register_verbs_with_crash_style_help(standin):
    _, _, mod = standin("seed")
    assert register_verbs(crash_module=mod) == list(registry.VERBS)
    for name, (description, shorthelp, longhelp) in mod.registered.items():
        assert description == registry.VERBS[name][1]
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES"):
            assert "\n%s\n" % section in "\n" + longhelp, (name, section)
