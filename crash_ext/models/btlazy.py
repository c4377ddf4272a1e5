"""Many back traces at once (``foreach STATE bt -f``), read lazily.

:func:`parse_backtraces_lazy` returns what :func:`~.stack.parse_backtraces` returns --
same back traces, frames, words, registers, messages -- but does only the cheap part up
front: it cuts the text at the ``PID:`` headers and reads each task's frame lines.  The
rest of a task (the words printed under a frame, register blocks, markers, messages) is
read when first asked for: a frame whose words are plain ``ADDR: WORD WORD`` lines is
read on its own with a split; anything else reads the whole task with
:func:`~.stack.parse_backtraces` (so the answer is always that parser's answer).

Two helpers make the text useful without reading it all:

* :func:`text_search` -- the tasks whose text holds a value's hex digits (every task
  with that value among its stack words is one), from one search of the text.
* :class:`StackText` -- the stack words printed by ``bt -f`` as memory: a read that
  falls on printed stack words is answered from the text (a dump does not change, so
  they are what ``rd`` would print); everything else is left to crash.
"""

import bisect
import operator
import re
from ..compat import Dict, List, Optional

from ..core.caches import PRINTED_LAYOUTS, PRINTED_VIEWS
from .stack import FRAME_LINE, TASK_LINE, Backtrace, Frame, parse_backtraces, split_func_offset

__all__ = ["parse_backtraces_lazy", "LazyBacktrace", "LazyFrame", "PrintedWords"]

# anything but printable ASCII, tab and newline: such text is read by the full parser
# (other line breaks and white space would change how lines are cut)
EXOTIC_CHARS = re.compile(r"[^\x20-\x7e\t\n]")
LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
HEADER_START = re.compile(r"\n[ \t]*PID:")
# a frame line as stack.FRAME_LINE reads it, on ASCII text where a line's white space is
# only spaces and tabs ("^\s*" becomes "\n[ \t]*", "." becomes "[^\n]")
_FLINE = re.compile(r"\n[ \t]*#(\d+)[ \t]+\[[ \t]*([0-9a-fA-F]+)\][ \t]+(\S+)"
                    r"(?:[ \t]+at[ \t]+([0-9a-fA-F]+))?([^\n]*)")
STRICT_WORD_LINE = re.compile(r"^    ([0-9a-f]{16}):((?: [0-9a-f]{16})+) ?$")
_WORD_LINE = re.compile(r"\n    ([0-9a-f]{16}):((?: [0-9a-f]{16})+) ?(?=\n|$)")
_MOD = re.compile(r"\[(?P<mod>[A-Za-z0-9_\-]+)\]")
_SKEL = bytes.maketrans(b"0123456789abcdef", b"x" * 16)
# caches.PRINTED_LAYOUTS and PRINTED_VIEWS keep what plain_view learned per shape
# the text after a header when every line is a frame line (as _FLINE reads one), a word
# line of one or two words, or blank, the first non-blank one a frame line: what
# plain_stack accepts, with at most two words a line (crash's bt -f prints two)
_FRAME_TEXT = r"[ \t]*#\d+[ \t]+\[[ \t]*[0-9a-fA-F]+\][ \t]+\S[^\n]*"
_PLAIN_BODY = re.compile(r"(?:[ \t]*\n)*%s(?:\n(?:%s|    [0-9a-f]{16}:(?: [0-9a-f]{16}){1,2} ?"
                         r"|[ \t]*))*" % (_FRAME_TEXT, _FRAME_TEXT))


_PLAIN = bytes(range(0x20, 0x7f)) + b"\t\n"


def plain_ascii(text: str) -> bool:
    """True when ``text`` holds only printable ASCII, tabs and newlines."""
    return text.isascii() and not text.encode("ascii").translate(None, _PLAIN)


class SharedText:
    """The whole text, shared by its back traces, and where each task starts.  Its
    searches for a value's hex digits look for lower case: crash prints stack words,
    frame addresses and task addresses with ``%lx``."""

    def __init__(self, text: str, starts: List[int]):
        self.text = text
        self.starts = starts
        self._hits = {}  # type: Dict[int, frozenset]

    def chunks_with(self, value: int) -> frozenset:
        """Return the chunks whose text holds ``value``'s hex digits (cached)."""
        hits = self._hits.get(value)
        if hits is None:
            hits = self._hits[value] = self._chunks_with(value)
        return hits

    def search(self, values) -> None:
        """Find the chunks holding each of ``values``' hex digits in one pass over the
        text, for :meth:`chunks_with` (a single value, or one below 2**60, is left to
        it).  The values searched together are 16 hex digits long, so two of them never
        match at one place, and a word standing alone is never skipped."""
        todo = sorted({int(v) for v in values if v >= 1 << 60 and v not in self._hits})
        if len(todo) < 2:
            return
        hexes = {"%x" % v: v for v in todo}
        found = {v: set() for v in todo}  # type: Dict[int, set]
        starts = self.starts
        for m in re.finditer("|".join(hexes), self.text):
            found[hexes[m.group()]].add(bisect.bisect_right(starts, m.start()) - 1)
        for v, chunks in found.items():
            self._hits[v] = frozenset(chunks)

    def _chunks_with(self, value: int) -> frozenset:
        h = "%x" % value
        low, starts = self.text, self.starts
        found = set()
        pos = low.find(h)
        while pos >= 0:
            i = bisect.bisect_right(starts, pos) - 1
            found.add(i)
            nxt = starts[i + 1] if i + 1 < len(starts) else len(low)
            pos = low.find(h, max(pos + 1, nxt))    # one hit is enough for a chunk
        return frozenset(found)


class LazyFrame(Frame):
    """A :class:`~.stack.Frame` whose words (and exception RIP, registers, marker,
    source line) are read on first use."""

    # built by LazyBacktrace._read_frames, which fills __dict__ in one go (no dataclass
    # __init__: the lazy fields are the properties below).  Own attributes: _bt (the
    # back trace), _pos (position in bt.frames), _line (start of the frame line), _seg
    # and _seg_end (the lines under it), _prev_seg (start of the lines before it),
    # _lazy (lazy fields read so far).

    def _full(self) -> Frame:
        return self._bt._materialize().frames[self._pos]

    def _plain(self, start: int, end: int) -> Optional[Dict[int, int]]:
        """Return the words of text[start:end] if every line there is blank or a plain
        word line, else None."""
        words = {}  # type: Dict[int, int]
        text = self._bt._shared.text
        for line in text[start:end].split("\n"):
            if not line.strip():
                continue
            m = STRICT_WORD_LINE.match(line)
            if m is None:
                return None
            a = int(m.group(1), 16)
            for v in m.group(2).split():
                words[a] = int(v, 16)
                a += 8
        return words

    def _get(self, name: str):
        d = self._lazy
        if name in d:
            return d[name]
        if name in ("stack",):
            plain = self._plain(self._prev_seg, self._line)
            val = None if plain is not None else self._full().stack
        else:
            w = self._plain(self._seg, self._seg_end)
            if w is None:
                f = self._full()
                w = f.words
                d.update(exception_rip=f.exception_rip, regs=f.regs, source=f.source)
            else:
                d.update(exception_rip=None, regs={}, source=None)
                # the next frame's "stack" reads these same lines: plain, so None
                frames = self._bt._lazy.get("frames")
                if frames is not None and self._pos + 1 < len(frames) and \
                        frames[self._pos + 1]._prev_seg == self._seg and \
                        frames[self._pos + 1]._line == self._seg_end:
                    frames[self._pos + 1]._lazy.setdefault("stack", None)
            d["words"] = w
            val = d[name]
        d[name] = val
        return val

    words = property(lambda self: self._get("words"),
                     lambda self, v: self._lazy.__setitem__("words", v))
    exception_rip = property(lambda self: self._get("exception_rip"),
                             lambda self, v: self._lazy.__setitem__("exception_rip", v))
    regs = property(lambda self: self._get("regs"),
                    lambda self, v: self._lazy.__setitem__("regs", v))
    stack = property(lambda self: self._get("stack"),
                     lambda self, v: self._lazy.__setitem__("stack", v))
    source = property(lambda self: self._get("source"),
                      lambda self, v: self._lazy.__setitem__("source", v))


class LazyBacktrace(Backtrace):
    """A :class:`~.stack.Backtrace` read from a slice of a larger text: header and
    frame lines at once, everything else on first use."""

    def __init__(self, shared: SharedText, start: int, end: int, chunk: int, pid: int,
                 task: int, cpu: Optional[int], command: str, local: Optional[str] = None,
                 off: int = 0):
        # ``local``: the text from absolute position ``off`` on, when the shared text
        # is not complete yet (read while crash prints it)
        self._shared = shared
        self._start = start
        self._end = end
        self._chunk = chunk
        self._full_bt = None  # type: Optional[Backtrace]
        self._lazy = {}  # type: Dict[str, object]
        self.pid = pid
        self.task = task
        self.cpu = cpu
        self.command = command
        # the frame lines, found now (cheap); Frame objects are made on first use
        text = shared.text if local is None else local
        self._off = 0 if local is None else off
        hdr_end = text.find("\n", start - self._off, end - self._off)
        self._hdr_end = hdr_end
        fm = self._fm = [] if hdr_end < 0 else list(_FLINE.finditer(text, hdr_end,
                                                                    end - self._off))
        self._sp = (int(fm[0].group(2), 16), int(fm[-1].group(2), 16)) if fm else None

    def frame_heads(self):
        """Yield (index, function) of each frame, innermost first -- what
        ``[(f.index, f.function) for f in frames]`` gives, without making the frames
        (and only as far as the caller reads)."""
        for m in self._fm:
            yield int(m.group(1)), split_func_offset(m.group(3))[0]

    def words_through(self, index: int, first: int = 0) -> Dict[int, int]:
        """Return the stack words printed under the frames numbered ``first`` to
        ``index`` (plain word lines only), read from the text without making frames."""
        fm = self._fm
        if not fm:
            return {}
        text = fm[0].string
        start, end = None, self._end - self._off
        for m in fm:
            n = int(m.group(1))
            if n > index:
                end = m.start()
                break
            if start is None and n >= first:
                start = m.end()
        if start is None:
            return {}
        words = {}  # type: Dict[int, int]
        for m in _WORD_LINE.finditer(text, start, end):
            a = int(m.group(1), 16)
            for v in m.group(2).split():
                words[a] = int(v, 16)
                a += 8
        return words

    def plain_stack(self, hex_words: bool = False) -> Optional[tuple]:
        """Return (frames, words) when every line after the header is a frame line, a
        plain word line (``    ADDR: WORD WORD``) or blank, the first non-blank one a
        frame line; None otherwise.  Then no frame has an exception RIP, registers, a
        stack marker or a source line, ``frames`` is [(index, sp, function, ret_addr,
        module)] as printed and ``words`` the union of the frames' words (their values
        as printed, 16 hex digits, with ``hex_words``).  Reads only the text, so it also
        works while the stream is being read."""
        fm = self._fm
        if not fm:
            return None
        text = fm[0].string
        end = self._end - self._off
        words = {}  # type: Dict[int, int]
        lines = _WORD_LINE.findall(text, fm[0].end(), end)
        n = len(fm) + len(lines)
        for addr, vals in lines:
            a = int(addr, 16)
            for v in vals.split():
                words[a] = v if hex_words else int(v, 16)
                a += 8
        body = text[self._hdr_end + 1:end].rstrip("\n")
        if body.count("\n") + 1 != n:
            # blank lines are allowed: count the non-blank ones
            if sum(1 for line in body.split("\n") if line.strip()) != n:
                return None
        frames = []
        for m in fm:
            idx, sp, func, ret, tail = m.groups()
            mod = _MOD.search(tail) if "[" in tail else None
            frames.append((int(idx), int(sp, 16), split_func_offset(func)[0],
                           int(ret, 16) if ret else None, mod.group("mod") if mod else None))
        return frames, words

    def printed_view(self) -> Optional[tuple]:
        """Return (frames, sp0, words) when :meth:`plain_stack` would return frames:
        ``frames`` ((index, function, ret_addr, module, sp - sp0), ...) by index,
        ``sp0`` the stack slot of the lowest-numbered frame, ``words`` a
        :class:`PrintedWords` over the text (each word found when asked for, as the
        hex text ``plain_stack(hex_words=True)`` gives); None otherwise.  Tasks of one
        stack shape get the same ``frames`` object."""
        fm = self._fm
        if not fm:
            return None
        text = fm[0].string
        lo, end = self._hdr_end + 1, self._end - self._off
        body = text[lo:end]
        if not body.isascii():
            return self._view_of(self.plain_stack(hex_words=True))
        # the text with every hex digit made an 'x' is the same for every task of a
        # stack shape: checked once by _PLAIN_BODY, then known by heart
        skel = body.encode("ascii").translate(_SKEL)
        known = PRINTED_LAYOUTS.peek(skel)
        if known is None:
            if _PLAIN_BODY.fullmatch(text, lo, end) is None:
                return self._view_of(self.plain_stack(hex_words=True))
            known = (len(fm), _Layout(body))
            PRINTED_LAYOUTS.put(skel, known)
        elif known[0] != len(fm):
            # a line the valid one's skeleton had as a frame line is not one here
            return self._view_of(self.plain_stack(hex_words=True))
        groups = [m.groups() for m in fm]
        sps = [int(g[1], 16) for g in groups]
        sp = sps[0]
        # (index, function, return address, rest of the line) of each frame line
        key = (tuple([g[0] + " " + g[2] + " " + (g[3] or "-") + "\n" + g[4]
                      for g in groups]),
               tuple([x - sp for x in sps]))
        got = PRINTED_VIEWS.peek(key)
        if got is None:
            frames = []
            for (idx, _sp, func, ret, tail), sp in zip(groups, sps):
                mod = _MOD.search(tail) if "[" in tail else None
                frames.append((int(idx), sp, split_func_offset(func)[0],
                               int(ret, 16) if ret else None,
                               mod.group("mod") if mod else None))
            frames.sort(key=lambda f: f[0])
            first = sps.index(frames[0][1])
            got = (tuple((i, fn, r, md, sp - frames[0][1]) for i, sp, fn, r, md in frames),
                   first)
            PRINTED_VIEWS.put(key, got)
        return got[0], sps[got[1]], PrintedWords(text, lo, end, known[1])

    @staticmethod
    def _view_of(got: Optional[tuple]) -> Optional[tuple]:
        """Return :meth:`printed_view`'s answer from :meth:`plain_stack`'s ``got``."""
        if got is None:
            return None
        frames = sorted(got[0], key=lambda f: f[0])
        sp0 = frames[0][1]
        return (tuple((i, fn, r, md, sp - sp0) for i, sp, fn, r, md in frames), sp0,
                got[1])

    def frame_sp(self, index: int) -> Optional[int]:
        """Return the stack address of the frame numbered ``index``, or None."""
        for m in self._fm:
            if int(m.group(1)) == index:
                return int(m.group(2), 16)
        return None

    def has_frames(self) -> bool:
        """True when crash printed at least one frame line."""
        return bool(self._fm)

    def sp_range(self) -> Optional[tuple]:
        """Return (innermost, outermost) frame stack address, None without frames."""
        return self._sp

    def _read_frames(self) -> List[Frame]:
        if self._hdr_end < 0:
            return []
        off = self._off
        frames = []  # type: List[Frame]
        prev = self._hdr_end + 1
        pending = None
        new = object.__new__
        end = self._end
        prev += off
        for m in self._fm:
            ls, le = m.span()
            ls += off
            le += off
            idx, sp, func, ret, tail = m.groups()
            if pending is not None:
                pending._seg_end = ls + 1
            func, foff = split_func_offset(func)
            mod = _MOD.search(tail) if "[" in tail else None
            pending = new(LazyFrame)
            pending.__dict__ = {
                "_bt": self, "_pos": len(frames), "_line": ls + 1, "_seg": le + 1,
                "_seg_end": end, "_prev_seg": prev, "_lazy": {},
                "index": int(idx), "sp": int(sp, 16), "function": func,
                "ret_addr": int(ret, 16) if ret else None,
                "module": mod.group("mod") if mod else None, "func_offset": foff,
                "notes": tail.strip()}
            frames.append(pending)
            prev = le + 1
        return frames

    def _materialize(self) -> Backtrace:
        if self._full_bt is None:
            bts = parse_backtraces(self._shared.text[self._start:self._end])
            self._full_bt = bts[0]
        return self._full_bt

    def _get(self, name: str):
        if name not in self._lazy:
            self._lazy[name] = getattr(self._materialize(), name)
        return self._lazy[name]

    def _frames(self) -> List[Frame]:
        fr = self._lazy.get("frames")
        if fr is None:
            fr = self._lazy["frames"] = self._read_frames()
        return fr

    frames = property(_frames, lambda self, v: self._lazy.__setitem__("frames", v))
    regs = property(lambda self: self._get("regs"),
                    lambda self, v: self._lazy.__setitem__("regs", v))
    words = property(lambda self: self._get("words"),
                     lambda self, v: self._lazy.__setitem__("words", v))
    messages = property(lambda self: self._get("messages"),
                        lambda self, v: self._lazy.__setitem__("messages", v))


_LAYOUT_LINE = re.compile(r"(?m)^    ([0-9a-f]{16}):((?: [0-9a-f]{16})+) ?$")


class _Layout:
    """Where the word lines are in a back trace's text after its header, the same for
    every text of one skeleton (see :meth:`LazyBacktrace.printed_view`), read from the
    first text of that skeleton: ``addresses(body)`` gives the address texts of the
    word lines of a body of that skeleton; ``where`` maps an address (less the first
    line's) to the offset of the word printed for it; ``quick`` is False when that
    first text's addresses do not rise strictly (its words are then read as a dict)."""

    __slots__ = ("addresses", "where", "quick", "base", "number", "ones", "span")

    def __init__(self, body: str):
        ms = list(_LAYOUT_LINE.finditer(body))
        starts = [m.start(1) for m in ms]
        getter = operator.itemgetter(*[slice(s, s + 16) for s in starts]) \
            if len(ms) > 1 else None
        self.addresses = getter if getter is not None else (
            (lambda b: (b[starts[0]:starts[0] + 16],)) if ms else (lambda b: ()))
        addrs = [int(m.group(1), 16) for m in ms]
        self.quick = bool(ms) and all(a < b for a, b in zip(addrs, addrs[1:]))
        self.where = {}  # type: Dict[int, int]
        if not self.quick:
            return
        self.base = addrs[0]
        self.span = addrs[-1] - addrs[0]
        # the addresses' digits as one number, and what adding d to each one adds
        self.number = int("".join(m.group(1) for m in ms), 16)
        self.ones = sum(1 << (64 * k) for k in range(len(ms)))
        for m, a in zip(ms, addrs):
            for k in range(len(m.group(2)) // 17):
                # a word printed twice: the later one (as a dict filled line by line)
                self.where[a + 8 * k - self.base] = m.start(1) + 18 + 17 * k


class PrintedWords:
    """The stack words of one back trace's text, every line after its first frame line
    a frame line, a word line of one or two words (``    ADDR: WORD WORD``) or blank
    (as :meth:`LazyBacktrace.printed_view` checked): ``get(addr)`` returns the word
    printed for ``addr`` as its 16 hex digits -- what the dict of
    ``plain_stack(hex_words=True)`` holds -- found in the text when asked for."""

    __slots__ = ("_text", "_lo", "_hi", "_layout", "_base", "_all")

    def __init__(self, text: str, lo: int, hi: int, layout: _Layout):
        # ``lo``: where the text after the header starts, ``hi``: where the task ends
        self._text = text
        self._lo = lo
        self._hi = hi
        self._layout = layout
        self._base = None  # type: Optional[int]
        self._all = None  # type: Optional[Dict[int, str]]

    def _index(self) -> None:
        """Read the word lines' addresses: when they are the layout's first text's,
        all moved by one amount, a word is found by its place in the layout (``_base``
        set); otherwise read them all into a dict (``_all``)."""
        lay = self._layout
        if lay.quick:
            addrs = lay.addresses(self._text[self._lo:self._hi])
            base = int(addrs[0], 16)
            # each address is the first text's plus (base - lay.base), with no carry
            # between them: the digits as one number say so at once
            if base + lay.span < 1 << 64 and \
                    int("".join(addrs), 16) == lay.number + (base - lay.base) * lay.ones:
                self._base = base
                return
        self._all = self._dict()

    def get(self, addr: int, default=None):
        """Return the word printed at ``addr`` (hex text), ``default`` when none is."""
        if self._base is None:
            if self._all is None:
                self._index()
            if self._all is not None:
                return self._all.get(addr, default)
        pos = self._layout.where.get(addr - self._base)
        if pos is None:
            return default
        pos += self._lo
        return self._text[pos:pos + 16]

    def _dict(self) -> Dict[int, str]:
        """Return every word printed ({address: hex text}), later lines winning."""
        words = {}  # type: Dict[int, str]
        for addr, vals in _WORD_LINE.findall(self._text, self._lo - 1, self._hi):
            a = int(addr, 16)
            for v in vals.split():
                words[a] = v
                a += 8
        return words

    def __contains__(self, addr) -> bool:
        return self.get(addr) is not None

    def __getitem__(self, addr: int) -> str:
        w = self.get(addr)
        if w is None:
            raise KeyError(addr)
        return w


def parse_backtraces_lazy(text: str) -> List[Backtrace]:
    """Return :func:`~.stack.parse_backtraces` of ``text``, reading lazily (see the
    module notes).  Text this reader does not take apart with confidence (lines before
    the first header, characters other than printable ASCII) is given to the full parser
    -- the whole text, or the tasks concerned."""
    plain = bool(text) and plain_ascii(text)
    if not text or (not plain and LINE_BREAKS.search(text)):
        return parse_backtraces(text)      # lines are cut at more than newlines
    starts = []  # type: List[int]
    first_end = text.find("\n")
    first = text[:first_end if first_end >= 0 else len(text)]
    if first.strip():
        if not TASK_LINE.match(first.strip()):
            return parse_backtraces(text)    # lines before the first header
        starts.append(0)
    for m in HEADER_START.finditer(text):
        s = m.start() + 1
        if not starts:
            if text[:s].strip():
                return parse_backtraces(text)
        starts.append(s)
    if not starts:
        return parse_backtraces(text)
    exotic = set()  # type: set
    shared = SharedText(text, starts)
    for m in (() if plain else EXOTIC_CHARS.finditer(text)):
        exotic.add(bisect.bisect_right(starts, m.start()) - 1)
    out = []  # type: List[Backtrace]
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else len(text)
        eol = text.find("\n", s, e)
        hm = TASK_LINE.match(text[s:eol if eol >= 0 else e].strip())
        if hm is None:
            return parse_backtraces(text)   # a "PID:" line that is not a header
        if i in exotic:
            out.extend(parse_backtraces(text[s:e]))
            continue
        cpu = hm.group("cpu")
        out.append(LazyBacktrace(shared, s, e, i, int(hm.group("pid")),
                                 int(hm.group("task"), 16),
                                 int(cpu) if cpu.lstrip("-").isdigit() else None,
                                 hm.group("comm")))
    return out
