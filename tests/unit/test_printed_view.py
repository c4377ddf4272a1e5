"""LazyBacktrace.printed_view (a plain stack's view from its text's skeleton, words found
when asked for) gives what plain_stack gives, on texts that share a skeleton and on
texts where the quick path must not be trusted (duplicate or falling addresses, three
words a line, lines of other kinds)."""

from crash_ext.models.btlazy import parse_backtraces_lazy
from crash_ext.models.btstream import BacktraceStream

HDR = 'PID: %d  TASK: ffff8b58021d%04x  CPU: 0  COMMAND: "t%d"\n'


def _task(pid, base, words=None, extra=""):
    """A plain bt -f text of three frames at stack ``base``; ``words``: the values."""
    w = words or ["%016x" % (0x1000 * pid + i) for i in range(7)]
    return (HDR % (pid, pid, pid) +
            " #0 [%016x] __schedule at ffffffffa8a5271d\n" % base +
            "    %016x: %s %s \n" % (base + 8, w[0], w[1]) +
            "    %016x: %s \n" % (base + 24, w[2]) +
            " #1 [%016x] schedule at ffffffffa8a52e2a\n" % (base + 24) +
            "    %016x: %s %s \n" % (base + 32, w[3], w[4]) + extra +
            " #2 [%016x] lab_wait at ffffffffc03f6367 [crashext_lab]\n" % (base + 48) +
            "    %016x: %s %s \n" % (base + 56, w[5], w[6]))


def _old_view(bt):
    got = bt.plain_stack(hex_words=True)
    if got is None:
        return None
    frames = sorted(got[0], key=lambda f: f[0])
    sp0 = frames[0][1]
    return (tuple((i, fn, r, m, sp - sp0) for i, sp, fn, r, m in frames), sp0, got[1])


def _check(text):
    st = BacktraceStream()
    for i in range(0, len(text), 97):
        st.feed(text[i:i + 97])
    for bts in (parse_backtraces_lazy(text), st.finish(text)):
        for bt in bts:
            old, new = _old_view(bt), bt.printed_view()
            assert (old is None) == (new is None), bt.pid
            if old is None:
                continue
            assert old[:2] == new[:2]
            probe = set(old[2]) | {a + d for a in old[2] for d in (-16, -8, 4, 8, 16)}
            for a in probe:
                assert new[2].get(a) == old[2].get(a), (bt.pid, hex(a))
            assert new[2].get(-8) is None and new[2].get(1 << 64) is None


def test_same_skeleton_many_tasks():
    text = "".join(_task(p, 0xffffce1c003d0000 + 0x4000 * p) for p in range(1, 40))
    _check(text)
    bts = parse_backtraces_lazy(text)
    assert bts[0].printed_view()[0] is bts[5].printed_view()[0]


def test_texts_the_quick_path_must_not_trust():
    base = 0xffffce1c003d0000
    dup = _task(7, base).replace("    %016x: " % (base + 56), "    %016x: " % (base + 8))
    fall = _task(8, base + 0x4000).replace("    %016x: " % (base + 0x4000 + 32),
                                           "    %016x: " % (base + 0x4000 - 64))
    three = _task(9, base + 0x8000, extra="    %016x: %s %s %s \n" % (
        base + 0x8000 + 40, "1" * 16, "2" * 16, "3" * 16))
    gap = _task(12, base + 0x14000).replace("    %016x: " % (base + 0x14000 + 56),
                                            "    %016x: " % (base + 0x14000 + 64))
    regs = _task(10, base + 0xc000, extra="    RIP: ffffffffa8a5271d  RSP: 0\n")
    bad_index = _task(11, base + 0x10000).replace(" #1 [", " #a [")
    ordinary = [_task(p, base + 0x4000 * p) for p in range(13, 17)]
    _check("".join(ordinary + [dup, fall, gap, three, regs, bad_index] + ordinary))
