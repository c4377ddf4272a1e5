"""gdb's ``disassemble`` renamed with crash's symbol table reads as crash's own ``dis``.

Recorded on the lab's cycle3 dump of the pinned 6.1 kernel by tests/lab/record_fixtures.py
(tests/unit/data/lab61_gdbdis.json; its ``source`` says which crash and dump): for each case gdb's answer, crash's ``dis -r ADDR`` and ``dis -f ADDR``, and the
``sym -l`` lines the addresses in them need.  The cases: a module function and one
called at +32, a function with a ``.cold`` part (gdb's "Address range"), an assembly
label inside a function (entry_SYSCALL_64_after_hwframe), a call to ``__memcpy`` (gdb
says ``memcpy``), two functions at one address (an address inside them), and a call to
a function at the same address as ``__noinstr_text_start``.
"""

import json

import pytest

from crash_ext.models.disasm import gdb_as_dis, join_dis, parse_dis
from crash_ext.models.symtab import SymbolTable
from tests.unit.data import fixture

with open(fixture("lab61_gdbdis.json")) as f:
    DATA = json.load(f)
TABLE = SymbolTable("\n".join(DATA["symbols"]))


def _view(text):
    return [(i.addr, i.func, i.offset, i.mnemonic,
             [(o.kind, o.text, o.target, o.target_sym) for o in i.operands], i.comment)
            for i in parse_dis(text)]


@pytest.mark.parametrize("case", DATA["cases"], ids=[
    "%s@%s" % (c["name"], c["addr"][-4:]) for c in DATA["cases"]])
def test_same_instructions_and_names_as_crash_dis(case):
    got = gdb_as_dis(case["gdb"], int(case["addr"], 16), TABLE)
    assert got is not None
    want = _view(join_dis(case["dis_r"], case["dis_f"]))
    assert want and _view(got) == want


def test_gdb_names_differ_from_crash_in_the_recording():
    """The renaming is needed: gdb's own names are not crash's in these cases."""
    raw = {c["name"]: c["gdb"] for c in DATA["cases"]}
    assert "<memcpy>" in raw["sk_get_filter"] and "<__memcpy>" not in raw["sk_get_filter"]
    assert "Address range" in raw["tpm1_get_timeouts"]
    assert raw["entry_SYSCALL_64_after_hwframe"].startswith(
        "Dump of assembler code for function entry_SYSCALL_64:")


def test_no_function_is_none():
    assert gdb_as_dis("No function contains specified address.\n", 0xffffffff81000000,
                      TABLE) is None
    assert gdb_as_dis("", 0xffffffff81000000, TABLE) is None


def test_symbol_table_rules():
    tab = SymbolTable("ffffffff81000000 (T) __noinstr_text_start\n"
                      "ffffffff81000000 (t) xen_hypercall_hvm\n"
                      "ffffffff81000100 (T) __memcpy\n"
                      "ffffffff81000100 (W) memcpy\n"
                      "ffffffff81000200 (t) b_down\n"
                      "ffffffff81000200 (t) a_up\n"
                      "ffffffffc0000000 MODULE START: m\n")
    assert tab.name_at(0xffffffff81000000) == "xen_hypercall_hvm"
    assert tab.name_at(0xffffffff81000100) == "__memcpy"
    assert tab.name_at(0xffffffff81000104) == "memcpy+4"
    assert tab.name_at(0xffffffff81000205) == "a_up+5"
    assert tab.name_at(0xffffffff80000000) is None
    assert tab.name_at(0xffffffff81000200 + (2 << 20)) is None
    assert len(tab) == 6
