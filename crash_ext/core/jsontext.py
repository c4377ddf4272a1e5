"""JSON text, written and read without the ``json`` package.

pykdump embeds only the standard-library files of its ``Extension/minpylib-3.N.lst``, none
of which is ``json``.  Both adapters print ``--json`` through :func:`dumps`, so inside and
outside crash the bytes are the same: those of ``json.dumps(obj, indent=...)`` (or with
``separators``) with its defaults (ASCII only, keys in insertion order).  :func:`loads`
reads JSON text (the type store's files).
"""

import re

__all__ = ["dumps", "loads"]

_ESCAPE = re.compile(r'([\\"]|[^\ -~])')
_SHORT = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
          "\t": "\\t"}


def _esc(m) -> str:
    c = m.group(0)
    s = _SHORT.get(c)
    if s is not None:
        return s
    n = ord(c)
    if n < 0x10000:
        return "\\u%04x" % n
    n -= 0x10000
    return "\\u%04x\\u%04x" % (0xd800 | (n >> 10), 0xdc00 | (n & 0x3ff))


def _string(s: str) -> str:
    return '"' + _ESCAPE.sub(_esc, s) + '"'


def _float(x: float) -> str:
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    return float.__repr__(x)


def _key(k) -> str:
    if isinstance(k, str):
        return k
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    if isinstance(k, float):
        return _float(k)
    raise TypeError("keys must be str, int, float, bool or None, not %s" % type(k).__name__)


def dumps(obj, indent=None, separators=None) -> str:
    """Return ``obj`` (dicts, lists, tuples, str, int, float, bool, None) as JSON text,
    the same as ``json.dumps(obj, indent=indent, separators=separators)``.  Raises
    TypeError for another type, ValueError for a container that contains itself."""
    if separators is None:
        separators = (", ", ": ") if indent is None else (",", ": ")
    if isinstance(indent, int):
        indent = " " * indent
    out = []
    _write(obj, out, indent, separators[0], separators[1], 0, set())
    return "".join(out)


def _write(obj, out, indent, item_sep, key_sep, level, active):
    if isinstance(obj, str):
        out.append(_string(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(_float(obj))
    elif isinstance(obj, (list, tuple, dict)):
        if id(obj) in active:
            raise ValueError("Circular reference detected")
        items = list(obj.items()) if isinstance(obj, dict) else list(obj)
        opener, closer = ("{", "}") if isinstance(obj, dict) else ("[", "]")
        if not items:
            out.append(opener + closer)
            return
        active.add(id(obj))
        if indent is None:
            sep, end = item_sep, closer
        else:
            pad = "\n" + indent * (level + 1)
            sep, end = item_sep + pad, "\n" + indent * level + closer
            opener += pad
        out.append(opener)
        for i, item in enumerate(items):
            if i:
                out.append(sep)
            if isinstance(obj, dict):
                out.append(_string(_key(item[0])) + key_sep)
                item = item[1]
            _write(item, out, indent, item_sep, key_sep, level + 1, active)
        out.append(end)
        active.discard(id(obj))
    else:
        raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_CHUNK = re.compile(r'[^"\\\x00-\x1f]*')
_UNESCAPE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
             "t": "\t"}
_CONSTANTS = {"true": True, "false": False, "null": None, "NaN": float("nan"),
              "Infinity": float("inf"), "-Infinity": float("-inf")}


def loads(text: str):
    """Return the value of JSON ``text``; raises ValueError when it is not JSON."""
    value, pos = _value(text, _WS.match(text, 0).end())
    pos = _WS.match(text, pos).end()
    if pos != len(text):
        raise ValueError("extra data at offset %d" % pos)
    return value


def _value(s: str, pos: int):
    if pos >= len(s):
        raise ValueError("expecting a value at offset %d" % pos)
    c = s[pos]
    if c == '"':
        return _str(s, pos + 1)
    if c == "{":
        return _object(s, pos + 1)
    if c == "[":
        return _array(s, pos + 1)
    for word, val in _CONSTANTS.items():
        if s.startswith(word, pos):
            return val, pos + len(word)
    m = _NUMBER.match(s, pos)
    if not m or m.end() == pos:
        raise ValueError("expecting a value at offset %d" % pos)
    if m.group(1) or m.group(2):
        return float(m.group(0)), m.end()
    return int(m.group(0)), m.end()


def _str(s: str, pos: int):
    parts = []
    while True:
        m = _CHUNK.match(s, pos)
        parts.append(m.group(0))
        pos = m.end()
        if pos >= len(s):
            raise ValueError("unterminated string")
        c = s[pos]
        if c == '"':
            return "".join(parts), pos + 1
        if c != "\\":
            raise ValueError("control character in string at offset %d" % pos)
        e = s[pos + 1:pos + 2]
        if e in _UNESCAPE:
            parts.append(_UNESCAPE[e])
            pos += 2
            continue
        if e != "u":
            raise ValueError("bad escape at offset %d" % pos)
        n = _hex4(s, pos + 2)
        pos += 6
        if 0xd800 <= n < 0xdc00 and s.startswith("\\u", pos):
            lo = _hex4(s, pos + 2)
            if 0xdc00 <= lo < 0xe000:
                n = 0x10000 + ((n - 0xd800) << 10) + (lo - 0xdc00)
                pos += 6
        parts.append(chr(n))


def _hex4(s: str, pos: int) -> int:
    h = s[pos:pos + 4]
    if len(h) != 4 or not all(c in "0123456789abcdefABCDEF" for c in h):
        raise ValueError("bad \\u escape at offset %d" % pos)
    return int(h, 16)


def _object(s: str, pos: int):
    out = {}
    pos = _WS.match(s, pos).end()
    if s.startswith("}", pos):
        return out, pos + 1
    while True:
        if not s.startswith('"', pos):
            raise ValueError("expecting a key at offset %d" % pos)
        key, pos = _str(s, pos + 1)
        pos = _WS.match(s, pos).end()
        if not s.startswith(":", pos):
            raise ValueError("expecting ':' at offset %d" % pos)
        value, pos = _value(s, _WS.match(s, pos + 1).end())
        out[key] = value
        pos = _WS.match(s, pos).end()
        if s.startswith("}", pos):
            return out, pos + 1
        if not s.startswith(",", pos):
            raise ValueError("expecting ',' or '}' at offset %d" % pos)
        pos = _WS.match(s, pos + 1).end()


def _array(s: str, pos: int):
    out = []
    pos = _WS.match(s, pos).end()
    if s.startswith("]", pos):
        return out, pos + 1
    while True:
        value, pos = _value(s, pos)
        out.append(value)
        pos = _WS.match(s, pos).end()
        if s.startswith("]", pos):
            return out, pos + 1
        if not s.startswith(",", pos):
            raise ValueError("expecting ',' or ']' at offset %d" % pos)
        pos = _WS.match(s, pos + 1).end()
