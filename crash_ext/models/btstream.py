"""Back traces read while crash prints them (:class:`BacktraceStream`: each task's header
and frame lines cut as they arrive), the searches over a whole text of back traces
(:func:`text_search`, :func:`count_headers`) and the stacks as text spans
(:class:`StackText`, :func:`stack_span`)."""

import bisect
import operator
from ..compat import Callable, Dict, List, Optional, Sequence, Set

from .btlazy import (EXOTIC_CHARS, HEADER_START, LINE_BREAKS, STRICT_WORD_LINE, LazyBacktrace,
                     SharedText, parse_backtraces_lazy, plain_ascii)
from .stack import FRAME_LINE, TASK_LINE, Backtrace, parse_backtraces

__all__ = ["BacktraceStream", "StackText", "count_headers", "stack_span", "text_search"]


class BacktraceStream:
    """:func:`parse_backtraces_lazy` for text that arrives in pieces: :meth:`feed` each
    piece as crash prints it (each task is read as soon as the next header shows it is
    complete), then :meth:`finish` with the whole text returns what
    ``parse_backtraces_lazy(text)`` returns.  Never raises from :meth:`feed`; whatever
    it could not follow is read again from the whole text at the end."""

    def __init__(self, on_task: Optional[Callable[[Backtrace], None]] = None):
        # ``on_task``: called with each back trace as soon as it is cut (while crash
        # prints the next ones); its exceptions are ignored; ``told`` holds the ids of
        # the back traces it was called with
        self._on_task = on_task
        self.told = set()  # type: set
        self._shared = SharedText("", [])
        self._buf = ""          # text from absolute position _base on, not yet cut
        self._base = 0
        self._seen = 0          # characters fed so far
        self._starts = []  # type: List[int]
        self._bts = []  # type: List[Backtrace]
        self._ok = True
        #: after :meth:`finish`: how many header lines the text has, when it counted them
        self.headers = None  # type: Optional[int]
        self._exotic = []  # type: List[int]

    def feed(self, piece: str) -> None:
        if not self._ok or not piece:
            self._seen += len(piece or "")
            return
        try:
            self._feed(piece)
        except Exception:   # noqa: BLE001 - finish() reads the whole text instead
            self._ok = False
        self._seen += len(piece)

    def _cut(self, upto: int) -> None:
        """Read the chunk from the last start to absolute ``upto`` (the next start)."""
        s = self._starts[-1]
        local = self._buf
        eol = local.find("\n", s - self._base, upto - self._base)
        hm = TASK_LINE.match(local[s - self._base:eol if eol >= 0 else upto - self._base]
                         .strip())
        if hm is None:
            raise ValueError("not a header")
        cpu = hm.group("cpu")
        self._bts.append(LazyBacktrace(
            self._shared, s, upto, len(self._starts) - 1, int(hm.group("pid")),
            int(hm.group("task"), 16), int(cpu) if cpu.lstrip("-").isdigit() else None,
            hm.group("comm"), local=local, off=self._base))
        if self._on_task is not None:
            bt = self._bts[-1]
            try:
                self._on_task(bt)
                self.told.add(id(bt))
            except Exception:   # noqa: BLE001 - it is asked again after finish()
                pass

    def _feed(self, piece: str) -> None:
        # the whole-text checks of parse_backtraces_lazy, piece by piece (skipped for
        # the usual piece: printable ASCII, tabs and newlines only)
        if not plain_ascii(piece):
            if LINE_BREAKS.search(piece):
                raise ValueError("other line breaks")
            self._exotic.extend(self._seen + m.start() for m in EXOTIC_CHARS.finditer(piece))
        old = self._buf
        buf = old + piece
        self._buf = buf
        base = self._base
        if self._seen == 0 and buf.lstrip(" \t").startswith("PID:"):
            self._starts.append(0)      # a header first (finish() checks the rest)
        scan = max(0, old.rfind("\n"))
        for m in HEADER_START.finditer(buf, scan):
            s = base + m.start() + 1
            if self._starts and s <= self._starts[-1]:
                continue
            if not self._starts:
                if buf[:s - base].strip():
                    raise ValueError("text before the first header")
                self._starts.append(s)
                continue
            self._cut(s)
            self._starts.append(s)
        # keep only the incomplete chunk
        if self._starts and self._starts[-1] > base:
            cut = self._starts[-1] - base
            self._buf = buf[cut:]
            self._base = base + cut

    def finish(self, text: str) -> List[Backtrace]:
        """Return the back traces of ``text``, the whole text fed."""
        if (not self._ok or self._seen != len(text) or not self._starts or
                not text.endswith(self._buf)):
            return parse_backtraces_lazy(text)
        first_end = text.find("\n")
        if text[:first_end if first_end >= 0 else len(text)].strip() and \
                self._starts[0] != 0:
            return parse_backtraces_lazy(text)
        try:
            self._cut(len(text))
        except ValueError:
            return parse_backtraces_lazy(text)
        sh = self._shared
        sh.text = text
        sh.starts = self._starts
        self.headers = len(self._starts)
        out = list(self._bts)
        exotic = sorted({bisect.bisect_right(self._starts, p) - 1 for p in self._exotic})
        for i in reversed(exotic):
            e = self._starts[i + 1] if i + 1 < len(self._starts) else len(text)
            out[i:i + 1] = parse_backtraces(text[self._starts[i]:e])
        return out


def count_headers(text: str) -> int:
    """Return how many task header lines (``PID: ...``) ``text`` has."""
    return len(HEADER_START.findall(text)) + text.lstrip(" \t").startswith("PID:")


def text_search(bts) -> Optional[Callable[..., Set[int]]]:
    """Return a function giving, for a value, the set of ``bts``' task addresses whose
    printed back trace holds its hex digits -- every task with the value among its stack
    words is in it -- from one search of the text (``others``: values to search in the
    same pass, asked for next); None when some back trace is not lazy."""
    by_text = {}  # type: Dict[int, tuple]   # id(text) -> (text, {chunk: task})
    for bt in bts:
        if not isinstance(bt, LazyBacktrace):
            return None
        sh = bt._shared
        by_text.setdefault(id(sh), (sh, {}))[1][bt._chunk] = bt.task

    def containing(value: int, others: Sequence[int] = ()) -> Set[int]:
        # ``others``: values that will be asked next, searched in the same pass
        out = set()  # type: Set[int]
        for sh, tasks in by_text.values():
            sh.search([value] + list(others))
            out.update(tasks[c] for c in sh.chunks_with(value) if c in tasks)
        return out
    return containing


def stack_span(bt: Backtrace) -> Optional[tuple]:
    """Return (lowest, past highest stack address, ``bt``) of the words a lazy back
    trace prints between its frames, None for another back trace or one without
    frames."""
    r = bt.sp_range() if isinstance(bt, LazyBacktrace) else None
    if r is None:
        return None
    lo, hi = r
    return (lo, hi + 8, bt) if lo <= hi else (hi, lo + 8, bt)


class StackText:
    """Stack words printed by ``bt -f``, readable as memory.

    ``read_words(addr, n)`` returns the ``n`` 8-byte words from ``addr`` (8-aligned)
    when all of them are printed in one task's back trace, else None (ask crash)."""

    #: words read into the cache per look-up, at least
    READ_AHEAD = 6

    def __init__(self, backtraces: Sequence[Backtrace], spans: Optional[List[tuple]] = None):
        # ``spans``: :func:`stack_span` of each of ``backtraces``, when already made
        self._bts = backtraces
        self._unsorted = spans
        self._spans = None  # type: Optional[List[tuple]]   # made on the first read
        self._cache = {}  # type: Dict[int, int]

    def _index(self) -> List[tuple]:
        """Return [(lowest, past highest stack address, back trace)] by address."""
        if self._spans is None:
            spans = self._unsorted
            if spans is None:
                spans = [stack_span(bt) for bt in self._bts]
            spans = [sp for sp in spans if sp is not None]
            spans.sort(key=operator.itemgetter(0))
            self._lo = [s[0] for s in spans]
            self._spans = spans
        return self._spans

    def _line_at(self, bt: LazyBacktrace, addr: int) -> int:
        """Return the text position of the word line holding ``addr``, or -1."""
        text = bt._shared.text
        for line_addr in (addr, addr - 8):
            pos = text.find("\n    %016x:" % line_addr, bt._start, bt._end)
            if pos >= 0:
                return pos + 1
        return -1

    def read_words(self, addr: int, n: int) -> Optional[List[int]]:
        if addr % 8 or n <= 0:
            return None
        cache = self._cache
        if addr in cache:
            got = [cache.get(addr + 8 * k) for k in range(n)]
            if None not in got:
                return got
        spans = self._index()
        i = bisect.bisect_right(self._lo, addr) - 1
        if i < 0:
            return None
        lo, hi, bt = spans[i]
        if not (lo <= addr and addr + 8 * n <= hi):
            return None
        pos = self._line_at(bt, addr)
        if pos < 0:
            return None
        text = bt._shared.text
        out = []  # type: List[int]
        want = addr
        stop = addr + 8 * n
        # read on past what was asked, to the end of the frame or READ_AHEAD words: the
        # rest of a record is usually asked for next
        ahead = max(stop, addr + 8 * self.READ_AHEAD)
        while want < stop or pos < bt._end:
            eol = text.find("\n", pos, bt._end)
            line = text[pos:eol if eol >= 0 else bt._end]
            pos = eol + 1 if eol >= 0 else bt._end
            m = STRICT_WORD_LINE.match(line)
            if m is None:
                if want >= stop:
                    break
                if line.lstrip().startswith("#") and FRAME_LINE.match(line):
                    continue        # the next frame's words follow on
                return None
            a = int(m.group(1), 16)
            if a > want and want < stop:
                return None         # a gap: not printed
            for v in m.group(2).split():
                val = int(v, 16)
                cache[a] = val
                if want <= a < stop:
                    out.append(val)
                    want = a + 8
                a += 8
            if want >= stop and a >= ahead:
                break
            if eol < 0:
                if want < stop:
                    return None
                break
        return out
