"""render.table against tabulate 0.9.0, render.jsontext against json: the same text.

Both modules exist so that crash-ext needs neither package inside crash (pykdump's
embedded standard library has no json, and tabulate imports html and dataclasses); the
verbs' output must stay what tabulate and json printed.
"""

import json
import math
import random

import pytest
from tabulate import tabulate

from crash_ext.core.record import asdict, dataclass, field, fields, replace
from crash_ext.core import jsontext
from crash_ext.render.table import table

CELLS = [0, 1, -7, 123456, "42", " 17 ", "-3", "0x1f", "ffff8cfcc22919b0", "?", "-", "",
         None, 1.5, "2.50", "1e5", "inf", "nan", "infinity", True, "False", "kworker/0:1",
         "  padded  ", "UN", "rwsem(write)", 3.0, "12:00:01.5"]


def _random_table(seed):
    rnd = random.Random(seed)
    ncol = rnd.randint(1, 7)
    col_cells = [rnd.sample(CELLS, rnd.randint(1, 4)) for _ in range(ncol)]
    rows = [[rnd.choice(c) for c in col_cells] for _ in range(rnd.randint(0, 9))]
    headers = rnd.choice([["#", "PID", "COMM", "TASK", "ST", "WAITS AS", "LAST RAN"][:ncol],
                          ["h%d" % i for i in range(ncol)], ["x"] * max(1, ncol - 1)])
    return rows, headers


@pytest.mark.parametrize("fmt", ["simple", "plain"])
@pytest.mark.parametrize("seed", range(40))
def test_table_is_tabulates_text(fmt, seed):
    rows, headers = _random_table(seed)
    assert table(rows, headers, fmt) == _tabulated(rows, headers, fmt)


def _tabulated(rows, headers, fmt):
    """tabulate's text; where tabulate cannot print the word "False" in a numeric column
    (it raises ValueError), its text for that table with the word replaced by a number
    of the same width (99999), the word put back: the column stays numeric and the word
    stands where tabulate would put such a number.  (8 of the 80 random tables.)"""
    try:
        return tabulate(rows, headers=headers, tablefmt=fmt)
    except ValueError:
        pass
    bad = set()
    for c in range(len(rows[0])):
        try:
            tabulate([[r[c]] for r in rows], tablefmt=fmt)
        except ValueError:
            bad.add(c)
    assert bad
    assert not any("99999" in str(v) for r in rows for v in r)
    sub = [[99999 if c in bad and v == "False" else v for c, v in enumerate(r)] for r in rows]
    return tabulate(sub, headers=headers, tablefmt=fmt).replace("99999", "False")


def test_tabulate_fails_on_some_random_tables():
    """The stand-in above is used, and only where tabulate itself cannot print."""
    n = 0
    for seed in range(40):
        rows, _ = _random_table(seed)
        try:
            tabulate(rows, tablefmt="plain")
        except ValueError:
            n += 1
    assert n == 4


def test_table_without_headers_and_bad_format():
    rows = [[1, "a"], [22, "bb"]]
    assert table(rows, (), "simple") == tabulate(rows, tablefmt="simple")
    assert table(rows, (), "plain") == tabulate(rows, tablefmt="plain")
    with pytest.raises(ValueError):
        table(rows, (), "grid")


VALUES = [None, True, False, 0, -1, 2 ** 70, 1.5, 1e-7, 1e300, float("inf"), -float("inf"),
          "", "plain", 'q"uote\\back', "tab\tnl\ncr\r\x00\x1f\x7f", "é ü", "\u2603",
          "\U0001f600", [], {}, [1, [2, [3, {}]]], {"a": {"b": []}, "c": [None, {"d": 1}]},
          {1: "int key", 2.5: "float key", True: "bool", None: "none"}, (1, 2)]


@pytest.mark.parametrize("indent", [None, 0, 1, 2, "\t"])
@pytest.mark.parametrize("i", range(len(VALUES)))
def test_dumps_is_jsons_text(indent, i):
    v = VALUES[i]
    assert jsontext.dumps(v, indent=indent) == json.dumps(v, indent=indent)
    assert jsontext.dumps(v, separators=(",", ":")) == json.dumps(v, separators=(",", ":"))


def test_dumps_errors():
    with pytest.raises(TypeError):
        jsontext.dumps({"a": object()})
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError):
        jsontext.dumps(loop)


@pytest.mark.parametrize("i", range(len(VALUES)))
def test_loads_reads_what_json_writes(i):
    text = json.dumps(VALUES[i], indent=1)
    got, want = jsontext.loads(text), json.loads(text)
    if isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == want and type(got) is type(want)


@pytest.mark.parametrize("bad", ["", "{", "[1,]", '{"a" 1}', '"\\x"', "01", "1 2", '"a\nb"',
                                 "tru", "[1 2]"])
def test_loads_rejects_what_json_rejects(bad):
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(ValueError):
        jsontext.loads(bad)


@dataclass
class Base:
    a: int
    b: list = field(default_factory=list)


@dataclass
class Child(Base):
    c: str = "x"
    d: dict = field(default_factory=dict)


def test_record_behaves_like_a_dataclass():
    x, y = Child(1), Child(1)
    assert x == y and x is not y and x.b is not y.b
    assert [f.name for f in fields(x)] == ["a", "b", "c", "d"]
    assert repr(x) == "Child(a=1, b=[], c='x', d={})"
    assert asdict(Child(2, [Base(3)], "y")) == {"a": 2, "b": [{"a": 3, "b": []}], "c": "y",
                                                "d": {}}
    z = replace(x, c="z")
    assert z.c == "z" and z.a == 1 and x.c == "x"
    assert Child.__hash__ is None and x != Base(1)
    with pytest.raises(TypeError):
        replace(x, nope=1)
    with pytest.raises(TypeError):
        @dataclass
        class Bad:
            a: int = 0
            b: int


def _textwrap_wrap(text, cols, indent="", hang=None):
    """render.text.wrap as textwrap alone gives it (the reference for its short cut)."""
    import textwrap
    hang = indent + "  " if hang is None else hang
    lines = textwrap.wrap(text, width=max(cols, len(hang) + 20), initial_indent=indent,
                          subsequent_indent=hang, break_long_words=False,
                          break_on_hyphens=False)
    return lines or [indent.rstrip()]


def test_wrap_short_cut_is_textwrap():
    from crash_ext.render.text import wrap
    rnd = random.Random(16)
    alphabet = ["a", "b", "x", "%rbx", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2028",
                "\u00e9", "-", "=", "[weak]", "ffff8cfcc22919b0"]
    for _ in range(20000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 30)))
        cols = rnd.choice([1, 20, 30, 40, 60, 80, 120])
        indent = rnd.choice(["", "  ", "    ", " #"])
        hang = rnd.choice([None, "", "        "])
        assert wrap(text, cols, indent, hang) == _textwrap_wrap(text, cols, indent, hang), \
            (text, cols, indent, hang)


def test_at_fdcwd_is_named():
    """dfd = -100 is AT_FDCWD (include/uapi/linux/fcntl.h); another int is not."""
    from crash_ext.core.results import Arg
    from crash_ext.render.argrecover import _arg_lines
    a = Arg(name="dfd", type="int", register="rdi", status="recovered", value=0xffffff9c)
    (line,) = _arg_lines(a, None, False, 80)
    assert "dfd (int) %rdi = ffffff9c (-100 = AT_FDCWD)" in line
    b = Arg(name="count", type="int", register="rdi", status="recovered", value=0xffffff9c)
    assert "AT_FDCWD" not in _arg_lines(b, None, False, 80)[0]


def test_table_fits_its_width():
    """A table wider than its width wraps its widest text cells onto more lines."""
    rows = [[1, "PID 101 (mm_reader_1), PID 102 (mm_reader_2), PID 103 (mm_reader_3)", 2,
             "rw_semaphore ffff892fbfface50"]]
    text = table(rows, ["#", "ROOT", "BEHIND", "VIA"], "simple", 60)
    assert max(len(l) for l in text.splitlines()) <= 60
    assert "mm_reader_3" in text and text == table(rows, ["#", "ROOT", "BEHIND", "VIA"],
                                                   "simple", 60)
    assert table(rows, ["#", "ROOT", "BEHIND", "VIA"], "simple") == _tabulated(
        rows, ["#", "ROOT", "BEHIND", "VIA"], "simple")
