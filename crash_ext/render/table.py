"""Text tables: the same text as ``tabulate`` 0.9.0's ``simple`` and ``plain`` formats.

The verbs' tables are printed by this module both inside crash and outside it, so the two
print the same bytes, and inside crash nothing is needed beyond pykdump's own standard
library (``tabulate`` imports ``html`` and ``dataclasses``, which pykdump's stock
``minpylib`` lists lack).  The rules are tabulate's, for one-line cells without terminal
escape codes:

- a column is numeric when every cell is an int, a float or a string that ``int()`` or
  ``float()`` reads (None cells are ignored; ``True``/``False`` make it text);
  numeric columns are right-aligned (on the decimal point), text columns left-aligned
  and stripped;
- int cells print as they are, float cells with ``format(x, "g")``, None as "";
- a column is at least its header's width + 2; columns are joined by two spaces and
  lines right-stripped; ``simple`` puts a dashed line under the headers.

Given ``cols``, a table wider than that has its widest text columns' cells wrapped onto
continuation lines (the other cells of those lines empty) until it fits, or no text
column can be narrowed further (a column keeps at least its header's width and 8).
"""

import itertools
import math
import textwrap

__all__ = ["table"]

_NONE, _BOOL, _INT, _FLOAT, _BYTES, _TEXT = range(6)


def _converts(conv, value) -> bool:
    try:
        conv(value)
        return True
    except (ValueError, TypeError):
        return False


def _is_int(value) -> bool:
    return type(value) is int or (isinstance(value, (bytes, str)) and _converts(int, value))


def _is_number(value) -> bool:
    if not _converts(float, value):
        return False
    if isinstance(value, (str, bytes)):
        f = float(value)
        if math.isinf(f) or math.isnan(f):
            return value.lower() in ("inf", "-inf", "nan")
    return True


def _kind(value) -> int:
    if value is None:
        return _NONE
    if hasattr(value, "isoformat"):
        return _TEXT
    if type(value) is bool or (isinstance(value, (bytes, str)) and value in ("True", "False")):
        return _BOOL
    if _is_int(value):
        return _INT
    if _is_number(value):
        return _FLOAT
    if isinstance(value, bytes):
        return _BYTES
    return _TEXT


def _format(value, kind: int) -> str:
    if value is None:
        return ""
    if kind == _INT:
        return format(value, "")
    if kind == _FLOAT:
        try:
            return format(float(value), "g")
        except ValueError:      # "True"/"False" in a numeric column (tabulate raises)
            return "%s" % (value,)
    if kind == _BYTES:
        try:
            return str(value, "ascii")
        except (TypeError, UnicodeDecodeError):
            return str(value)
    return "%s" % (value,)


def _after_point(s: str) -> int:
    if not _is_number(s) or _is_int(s):
        return -1
    pos = s.rfind(".")
    if pos < 0:
        pos = s.lower().rfind("e")
    return len(s) - pos - 1 if pos >= 0 else -1


def _column(cells, numeric: bool, minwidth: int):
    if numeric:
        after = [_after_point(s) for s in cells]
        most = max(after)
        cells = [s + (most - a) * " " for s, a in zip(cells, after)]
        width = max(max(len(s) for s in cells), minwidth)
        return [s.rjust(width) for s in cells], width
    cells = [s.strip() for s in cells]
    width = max(max(len(s) for s in cells), minwidth)
    return [s.ljust(width) for s in cells], width


#: the narrowest a wrapped text column becomes
_MIN_WRAP = 8


def table(rows, headers=(), fmt: str = "simple", cols: int = 0) -> str:
    """Return ``rows`` (a list of cell lists) as a table under ``headers`` in tabulate's
    ``fmt`` (``"simple"`` or ``"plain"``), no wider than ``cols`` where wrapping text
    cells can make it so (``cols`` 0: as wide as it comes); raises ValueError for
    another format."""
    if fmt not in ("simple", "plain"):
        raise ValueError("table format %r: only 'simple' and 'plain'" % (fmt,))
    text = _table(rows, headers, fmt)
    tried = set()
    while cols and max([len(x) for x in text.split("\n")] or [0]) > cols:
        widest = _widest_text_column(rows, headers, tried)
        if widest is None:
            break
        col, width = widest
        over = max(len(x) for x in text.split("\n")) - cols
        target = max(width - over, _MIN_WRAP, len(str(headers[col])) if col < len(headers)
                     else 0)
        if target >= width:
            tried.add(col)
            continue
        rows = _wrapped(rows, col, target)
        tried.add(col)
        text = _table(rows, headers, fmt)
    return text


def _widest_text_column(rows, headers, skip):
    """Return (index, width of its widest cell) of the text column with the widest
    cell among those not in ``skip``, or None."""
    best = None
    for c, col in enumerate(itertools.zip_longest(*[list(r) for r in rows])):
        if c in skip:
            continue
        kind = max([_BOOL] + [_kind(v) for v in col])
        if kind in (_INT, _FLOAT):
            continue
        w = max(len(_format(v, kind).strip()) for v in col)
        if best is None or w > best[1]:
            best = (c, w)
    return best


def _wrapped(rows, col: int, width: int):
    """Return ``rows`` with column ``col``'s cells wrapped to ``width``: each extra
    line a row of its own whose other cells are None."""
    out = []
    for r in rows:
        r = list(r)
        cell = r[col] if col < len(r) else None
        if cell is None or len(str(cell).strip()) <= width:
            out.append(r)
            continue
        parts = textwrap.wrap(str(cell).strip(), width=width, break_long_words=True,
                              break_on_hyphens=False) or [""]
        out.append(r[:col] + [parts[0]] + r[col + 1:])
        for p in parts[1:]:
            out.append([None] * col + [p] + [None] * (len(r) - col - 1))
    return out


def _table(rows, headers, fmt: str) -> str:
    """tabulate's text of ``rows`` under ``headers`` (:func:`table` without a width)."""
    rows = [list(r) for r in rows]
    headers = [str(h) for h in headers]
    if headers and rows and len(headers) < len(rows[0]):
        headers = [""] * (len(rows[0]) - len(headers)) + headers
    cols = list(itertools.zip_longest(*rows))
    minwidths = [len(h) + 2 for h in headers] if headers else [0] * len(cols)
    out_cols, widths, numeric = [], [], []
    for col, minw in zip(cols, minwidths):
        kind = max([_BOOL] + [_kind(v) for v in col])
        num = kind in (_INT, _FLOAT)
        cells, width = _column([_format(v, kind) for v in col], num, minw)
        out_cols.append(cells)
        widths.append(width)
        numeric.append(num)
    lines = []
    if headers:
        if not cols:
            widths = [len(h) + 2 for h in headers]
            numeric = [False] * len(headers)
        lines.append(_row([h.rjust(w) if n else h.ljust(w)
                           for h, w, n in zip(headers, widths, numeric)]))
    dashes = _row(["-" * w for w in widths])
    if fmt == "simple" and (headers or rows):
        lines.insert(1 if headers else 0, dashes)
    lines.extend(_row(list(r)) for r in zip(*out_cols))
    if fmt == "simple" and not headers and rows:
        lines.append(dashes)
    return "\n".join(lines)


def _row(cells) -> str:
    return "  ".join(cells).rstrip()
