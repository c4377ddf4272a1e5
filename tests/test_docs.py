"""The walkthrough can be pasted: every command in docs/walkthrough.md, run again on the
lab dump the document names, prints what the document shows.

On the very dump the document was made from (same lab key and build time) the output
must be the same to the byte: when an output format changes or the dump is rebuilt
here, this test fails until ``make docs`` is run.  A lab built elsewhere (a fresh
machine) boots anew: KASLR moves addresses and tasks may start in another order, so
there the commands' PIDs and addresses are taken from that dump's truth and the outputs
are compared number by number: each PID and address the document's commands name must
be, wherever the document prints it, this dump's own (from its truth, through the
commands); any other address the document prints twice must be one address here too;
only CPUs, times, stack words and other numbers that differ from boot to boot are
masked.  Also: every ``crash-ext ... --lab`` line in the README and docs names a verb
and a lab scenario that exist.
"""

import contextlib
import io
import os
import re

import pytest

from crash_ext.verbs import registry
from tests.lab import mklab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WALKTHROUGH = os.path.join(ROOT, "docs", "walkthrough.md")
_BLOCK = re.compile(r"^```\ncrash> (.*?)\n(.*?)\n?```$", re.M | re.S)


def _blocks():
    with open(WALKTHROUGH) as f:
        text = f.read()
    return text, [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]


def _run(crash, cmd):
    argv = cmd.split()
    if argv[0] in registry.VERBS:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            registry.load(argv[0]).main(argv[1:], crash)
        return buf.getvalue().rstrip("\n")
    return crash.command(cmd, check=False).rstrip("\n")


_NAMED = re.compile(r"dump \(kernel (\S+), lab key (\w+), built (\S+);")
_MASKS = [(re.compile(r"\b(0x)?[0-9a-f]{8,16}\b"), "ADDR"),
          (re.compile(r"\[\d+ \d\d:\d\d:\d\d\.\d+\]"), "[TIME]"),
          (re.compile(r"\b\d+\b"), "N")]


#: a run of ``bt -f`` stack-word lines: how a frame's words fall into lines of two
#: depends on the stack's alignment, which differs from boot to boot
_WORD_LINES = re.compile(r"(?m)^ ?ADDR:( ADDR)+ ?$(\n ?ADDR:( ADDR)+ ?$)*")


def _mask(text):
    for rx, repl in _MASKS:
        text = rx.sub(repl, text)
    return _WORD_LINES.sub("ADDR: WORDS", re.sub(r" +", " ", text))


def _named(text):
    m = _NAMED.search(text)
    assert m, "the walkthrough does not name the dump it was made from"
    return m.groups()


def _same_dump(dump, text):
    return _named(text)[1:] == (dump.meta["key"], dump.meta["built"])


def test_walkthrough_names_todays_seed_dump(lab):
    dump, _ = lab("seed")
    text, blocks = _blocks()
    kernel, key, built = _named(text)
    assert kernel == dump.meta["kernel_abi"], (
        "docs/walkthrough.md was made on %s, the lab's seed dump is on %s: run make docs"
        % (kernel, dump.meta["kernel_abi"]))
    assert len(blocks) >= 10
    if _same_dump(dump, text):
        rm = next(t for t in dump.truth["tasks"] if t["comm"] == "rm")["pid"]
        assert "crash> whoholds -p %d" % rm in text and "crash> argrecover %d " % rm in text


@pytest.mark.parametrize("index", range(len(_blocks()[1])))
def test_walkthrough_block_replays(lab, index):
    text, blocks = _blocks()
    dump, crash = lab("seed")
    same = _same_dump(dump, text)
    cmd, shown = blocks[index]
    if not same:                   # this machine's dump: its own PIDs and addresses
        here = _commands_here(dump, crash)
        assert len(here) == len(blocks)
        cmd = here[index]
        assert _mask(cmd) == _mask(blocks[index][0]), (cmd, blocks[index][0])
    got = _run(crash, cmd)
    if shown.startswith("...\n"):          # a block that shows only the tail
        shown = shown[4:]
        got = "\n".join(got.splitlines()[-len(shown.splitlines()):])
    if same:
        assert got == shown, "crash> %s prints something else now: run make docs" % cmd
    else:
        assert _mask(got) == _mask(shown), "crash> %s: output differs in shape" % cmd
        _same_values(shown, got, _value_map(blocks, here), cmd)


def _value(tok):
    """('x', int) for an address-like token, ('d', int) for a decimal one."""
    if tok.startswith("0x") or len(tok) >= 8:
        return ("x", int(tok, 16))
    return ("d", int(tok))


def _value_map(blocks, here):
    """{document's value: this dump's}: the PIDs and addresses of the document's
    commands and, in the same places, of this dump's (make_walkthrough's plan, from its
    truth), whether they differ or not (a boot may start the tasks with the same PIDs)."""
    m = {}
    for (doc_cmd, _), cmd in zip(blocks, here):
        for a, b in zip(doc_cmd.split(), cmd.split()):
            if _NUMBER.fullmatch(a):
                va, vb = _value(a), _value(b)
                assert m.setdefault(va, vb) == vb, (a, b, m[va])
    assert len(set(m.values())) == len(m), m       # one value here for one there
    return m


_NUMBER = re.compile(r"(?:0x)?[0-9a-f]{8,16}|\d+")
#: a log time, an address, or a decimal that is not a symbol's offset (``<vfs_unlink+105>``
#: is the same on every build of the kernel, whatever PIDs a boot gave the tasks)
_TOKEN = re.compile(r"\[\d+ \d\d:\d\d:\d\d\.\d+\]|\b(?:0x)?[0-9a-f]{8,16}\b|(?<!\+)\b\d+\b")
_WORDS = re.compile(r"(?m)^ *[0-9a-f]{16}:( [0-9a-f]{16})+ *$")


def _same_values(shown, got, m, cmd):
    """The numbers of two outputs of the same shape, pairwise: a value of ``m`` must be
    its image here wherever the document prints it; an address the document prints more
    than once is one address here too (stack words and times are left out)."""
    def toks(t):
        return [x for x in _TOKEN.findall(_WORDS.sub("", t)) if not x.startswith("[")]
    a, b = toks(shown), toks(got)
    assert len(a) == len(b), (cmd, len(a), len(b))
    seen = {}
    for x, y in zip(a, b):
        vx, vy = _value(x), _value(y)
        if vx in m:
            assert vy == m[vx], "crash> %s prints %s where the document's %s is %s here" % (
                cmd, y, x, "%x" % m[vx][1] if m[vx][0] == "x" else m[vx][1])
        elif vx[0] == "x":
            assert seen.setdefault(vx, vy) == vy, (
                "crash> %s: the document's %s is both %s and %x here" % (
                    cmd, x, y, seen[vx][1]))


def _commands_here(dump, crash):
    """The walkthrough's commands for this machine's seed dump (make_walkthrough's plan)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "make_walkthrough", os.path.join(ROOT, "docs", "make_walkthrough.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [cmd for _, cmd in mod.plan(dump, crash)]


def test_pasted_crash_ext_lines_name_real_verbs_and_scenarios():
    lines = []
    for rel in ("README.md", "docs/runbook.md", "docs/walkthrough.md"):
        path = os.path.join(ROOT, rel)
        if os.path.exists(path):
            with open(path) as f:
                lines += [l for l in f.read().splitlines() if "crash-ext " in l and "--lab" in l]
    assert lines, "no copy-paste crash-ext --lab line in README or docs"
    for line in lines:
        m = re.search(r"crash-ext (\w+) .*--lab ([\w@.-]+)", line)
        assert m, line
        assert m.group(1) in registry.VERBS, line
        assert m.group(2).split("@")[0] in mklab.SCENARIOS, line
