"""Validators for every word a user types: the one place that says what is accepted.

Each validator takes the word as typed (a ``str``; an ``int`` where noted) and returns
it parsed, or raises :class:`~crash_ext.core.port.BadArgument` with a one-line message that
echoes at most :data:`ECHO_MAX` characters of the word (control and non-ASCII
characters escaped).  Shared by every verb, ``crash-ext``'s own options and both
adapters.

Rules kept throughout (issue 17):

* digits are ASCII ``0-9`` only: ``str.isdigit()`` and ``int()`` accept ``²``, Arabic-
  Indic digits and ``1_0``; nothing here calls ``int()`` on a word before an explicit
  ASCII check;
* every number has a bound on its length and value (no 5,000-digit words, no
  ``int()`` digit-limit errors);
* timeouts are finite and positive; counts are non-negative.

Plain ``re`` and explicit character sets only (no ``unicodedata``): this runs inside
pykdump's embedded interpreter too.
"""

import re
from ..compat import Optional, Tuple, Union

from .errors import BadArgument

__all__ = ["ECHO_MAX", "PID_MAX", "shown", "shorten_message", "check_pid_word",
           "check_hex_word", "check_address_word", "check_type_word", "check_member_word",
           "check_frame_word", "check_count_word", "check_timeout_word", "check_path_word",
           "check_module_spec", "pid_or_task_word", "argtype"]

#: characters of a refused word echoed back in an error message
ECHO_MAX = 40
#: the kernel's PID_MAX_LIMIT (4M): no pid is larger on any kernel
PID_MAX = 4194304
#: longest symbol/type/member name accepted (kernel symbols are < 128 characters)
NAME_MAX = 200
#: the deepest frame number accepted (crash prints fewer frames per stack)
FRAME_MAX = 9999
#: the longest timeout accepted (seconds): about 11 days
TIMEOUT_MAX = 1000000.0
#: the longest path accepted
PATH_MAX = 4096

_ASCII_DIGITS = re.compile(r"[0-9]+\Z")
_HEX = re.compile(r"(0[xX])?([0-9a-fA-F]{1,16})\Z")
_NAME = r"[A-Za-z_.$][A-Za-z0-9_.$]{0,%d}" % (NAME_MAX - 1)
_SYMBOL = re.compile(r"(%s)(\+(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20}))?\Z" % _NAME)
_TYPE = re.compile(r"((struct|union|enum) )?[A-Za-z_][A-Za-z0-9_]{0,%d}\Z" % (NAME_MAX - 1))
_MEMBER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]{1,6}\])*\Z")
_FRAME_NUM = re.compile(r"#?([0-9]{1,4})\Z")
_TIMEOUT = re.compile(r"([0-9]{1,7})(\.[0-9]{0,6})?\Z|\.[0-9]{1,6}\Z")
_MODNAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
# the ASCII blanks str.strip() would also take, without the Unicode ones
_BLANKS = " \t"


def shown(word) -> str:
    """Return ``word`` quoted for an error message: control and non-ASCII characters as
    escapes, at most :data:`ECHO_MAX` characters of the result between the quotes
    (``...`` after them when cut).  Never raises."""
    try:
        s = word if isinstance(word, str) else str(word)
    except Exception:   # noqa: BLE001 - a word whose str() fails is still shown
        s = "<%s>" % type(word).__name__
    out, n, cut = [], 0, False
    for ch in s:
        o = ord(ch)
        if ch == "'" or ch == "\\":
            e = "\\" + ch
        elif 0x20 <= o < 0x7f:
            e = ch
        elif o < 0x100:
            e = "\\x%02x" % o
        elif o < 0x10000:
            e = "\\u%04x" % o
        else:
            e = "\\U%08x" % o
        if n + len(e) > ECHO_MAX:
            cut = True
            break
        out.append(e)
        n += len(e)
    return "'%s'%s" % ("".join(out), "..." if cut else "")


#: the longest message a refused word list makes (argparse lists every extra word)
MESSAGE_MAX = 300


def shorten_message(msg) -> str:
    """Return ``msg`` as one printable ASCII line of at most :data:`MESSAGE_MAX`
    characters in which every word longer than :data:`ECHO_MAX` is cut and unprintable
    characters are escaped (argparse echoes whole words in its messages).  Never
    raises."""
    try:
        text = str(msg)
    except Exception:   # noqa: BLE001
        text = "<%s>" % type(msg).__name__
    parts = []
    for w in text.split():
        if len(w) > ECHO_MAX or any(not 0x20 < ord(c) < 0x7f for c in w):
            q = shown(w)                   # 'escaped'  or  'escaped'...
            parts.append(q[1:-1] if q.endswith("'") else q[1:-4] + "...")
        else:
            parts.append(w)
    line = " ".join(parts)
    if len(line) > MESSAGE_MAX:
        line = line[:MESSAGE_MAX - 3] + "..."
    return line


def _text(word, what: str) -> str:
    """Return ``word`` with surrounding ASCII blanks removed; raises BadArgument for a
    non-string or an empty word."""
    if not isinstance(word, str):
        raise BadArgument("not a %s: %s" % (what, shown(word)))
    w = word.strip(_BLANKS)
    if not w:
        raise BadArgument("empty %s" % what)
    return w


def check_pid_word(word) -> int:
    """Return ``word`` (ASCII decimal, or an ``int``) as a pid in 0..:data:`PID_MAX`.

    Raises BadArgument for anything else: other digits (``²``, ``٣``), ``_``, signs,
    hex, or a number above PID_MAX.
    """
    if isinstance(word, bool):
        raise BadArgument("not a pid: %s" % shown(word))
    if isinstance(word, int):
        if 0 <= word <= PID_MAX:
            return word
        raise BadArgument("pid out of range (0..%d): %s" % (PID_MAX, shown(word)))
    w = _text(word, "pid")
    if not _ASCII_DIGITS.match(w):
        raise BadArgument("not a pid (decimal digits 0-9 only): %s" % shown(word))
    if len(w) > 7 or int(w) > PID_MAX:
        raise BadArgument("pid out of range (0..%d): %s" % (PID_MAX, shown(word)))
    return int(w)


def check_hex_word(word) -> int:
    """Return ``word`` (1-16 ASCII hex digits, optional ``0x``) as an int.

    Raises BadArgument for anything else (``_``, other digits, longer than 64 bits).
    """
    w = _text(word, "hex address")
    m = _HEX.match(w)
    if not m:
        raise BadArgument("not a hex address (0-9a-f, at most 16 digits): %s" % shown(word))
    return int(m.group(2), 16)


def check_address_word(word) -> str:
    """Return ``word`` if it is a hex address (<= 16 digits), a symbol or
    ``symbol+offset`` (hex or decimal offset); raises BadArgument otherwise (shell
    escapes, pipes, redirections, spaces, non-ASCII, overlong words)."""
    w = _text(word, "address or symbol")
    if _HEX.match(w) or _SYMBOL.match(w):
        return w
    raise BadArgument("not an address or symbol: %s" % shown(word))


def check_type_word(word) -> str:
    """Return ``word`` if it is a C type name (optionally ``struct X``); raises
    BadArgument."""
    w = _text(word, "type name")
    if _TYPE.match(w):
        return w
    raise BadArgument("not a type name: %s" % shown(word))


def check_member_word(word) -> str:
    """Return ``word`` if it is a member path like ``a.b[2].c``; raises BadArgument."""
    w = _text(word, "member name")
    if len(w) <= NAME_MAX and _MEMBER.match(w):
        return w
    raise BadArgument("not a member name: %s" % shown(word))


def check_frame_word(word) -> Union[int, str]:
    """Return a frame given as ``N``/``#N`` (ASCII digits, <= :data:`FRAME_MAX`) as an
    int, or a function name (a symbol, clone suffixes allowed) as a str.

    Raises BadArgument for anything else.
    """
    w = _text(word, "frame")
    m = _FRAME_NUM.match(w)
    if m:
        return int(m.group(1))
    if w.lstrip("#")[:1] in "0123456789" and w.lstrip("#"):
        raise BadArgument("not a frame number (0..%d) or function name: %s"
                          % (FRAME_MAX, shown(word)))
    if re.match(_NAME + r"\Z", w):
        return w
    raise BadArgument("not a frame number or function name: %s" % shown(word))


def check_count_word(word, what: str = "count", maximum: int = 10 ** 7) -> int:
    """Return ``word`` (ASCII decimal or an int) as a count in 0..``maximum``; raises
    BadArgument for negatives, other digits, ``_`` or a count above ``maximum``."""
    if isinstance(word, bool):
        raise BadArgument("not a %s: %s" % (what, shown(word)))
    if isinstance(word, int):
        n = word
    else:
        w = _text(word, what)
        if not _ASCII_DIGITS.match(w):
            raise BadArgument("%s must be a whole number 0 or more (digits 0-9): %s"
                              % (what, shown(word)))
        if len(w) > len(str(maximum)):
            raise BadArgument("%s too large (at most %d): %s" % (what, maximum, shown(word)))
        n = int(w)
    if n < 0:
        raise BadArgument("%s must be 0 or more: %s" % (what, shown(word)))
    if n > maximum:
        raise BadArgument("%s too large (at most %d): %s" % (what, maximum, shown(word)))
    return n


def check_timeout_word(word) -> float:
    """Return ``word`` (seconds: ASCII decimal, optional fraction, or a number) as a
    finite float in (0, :data:`TIMEOUT_MAX`]; raises BadArgument for ``nan``, ``inf``,
    exponents, zero, negatives and anything longer."""
    if isinstance(word, bool):
        raise BadArgument("not a timeout: %s" % shown(word))
    if isinstance(word, (int, float)):
        v = float(word)
    else:
        w = _text(word, "timeout")
        if not _TIMEOUT.match(w):
            raise BadArgument("timeout must be seconds, e.g. 60 or 2.5: %s" % shown(word))
        v = float(w)
    if not (v == v) or not 0 < v <= TIMEOUT_MAX:      # v != v: NaN
        raise BadArgument("timeout must be more than 0 and at most %d seconds: %s"
                          % (TIMEOUT_MAX, shown(word)))
    return v


def check_path_word(word, what: str = "path") -> str:
    """Return ``word`` as a file path: non-empty, at most :data:`PATH_MAX` characters,
    no NUL, newline or other control character.  Raises BadArgument.  (Whether the
    file may be read or written is for the caller: see ``outputs.check_output_path``.)"""
    if not isinstance(word, str) or not word:
        raise BadArgument("empty %s" % what)
    if len(word) > PATH_MAX:
        raise BadArgument("%s longer than %d characters: %s" % (what, PATH_MAX, shown(word)))
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in word):
        raise BadArgument("%s contains a control character: %s" % (what, shown(word)))
    if any(0xdc80 <= ord(c) <= 0xdcff for c in word):
        raise BadArgument("%s is not valid text in this locale: %s" % (what, shown(word)))
    return word


def check_module_spec(word) -> Tuple[str, str]:
    """Return (module name, .ko path) of ``NAME=KO``; raises BadArgument."""
    if not isinstance(word, str) or "=" not in word:
        raise BadArgument("expected NAME=KO (a module name and its .ko file): %s"
                          % shown(word))
    name, _, ko = word.partition("=")
    if not _MODNAME.match(name):
        raise BadArgument("not a module name: %s" % shown(name))
    ko = check_path_word(ko, "module file")
    if any(c in ko for c in " \t;|&<>`$'\"\\!"):
        raise BadArgument("module file path has a character crash would not pass on: %s"
                          % shown(ko))
    return name, ko


def pid_or_task_word(word) -> Tuple[str, Union[int, str]]:
    """Return ('pid', N) for a word of ASCII digits (a pid, checked by
    :func:`check_pid_word`), else ('address', word) for a hex task address or a symbol
    (checked by :func:`check_address_word`).  Raises BadArgument."""
    w = _text(word, "pid or task address")
    if w[:1] in "0123456789" and _ASCII_DIGITS.match(w):
        return "pid", check_pid_word(w)
    try:
        return "address", check_address_word(w)
    except BadArgument:
        raise BadArgument("not a pid (decimal digits 0-9) or task address (hex): %s"
                          % shown(word))


#: a command name as ``ps`` prints it: 1-15 printable ASCII characters, no blank
#: (TASK_COMM_LEN is 16 with its NUL)
_COMM = re.compile(r"[\x21-\x7e]{1,15}\Z")


def task_word(word) -> Tuple[str, Union[int, str]]:
    """Return what a task word names: ('pid', N) for ASCII digits (checked by
    :func:`check_pid_word`), ('name', word) for a word that may be a command name
    (printable ASCII, 1-15 characters, no blank) and may also be a task address or
    symbol, or ('address', word) for a hex task address or symbol too long to be a
    command name.  Raises BadArgument for anything else (other digits such as
    ``\u00b2``, blanks inside, non-ASCII, overlong words), naming the three forms."""
    w = _text(word, "pid, task address or command name")
    if _ASCII_DIGITS.match(w):
        return "pid", check_pid_word(w)
    if w[:1].isdigit() and not _HEX.match(w):
        # a word that starts like a number is read as one: 1_0, 1\u00b2, \u0663
        raise BadArgument("not a pid (decimal digits 0-9 only) or task address (hex): %s"
                          % shown(word))
    if _COMM.match(w):
        return "name", w
    try:
        return "address", check_address_word(w)
    except BadArgument:
        raise BadArgument("not a pid (decimal digits 0-9), task address (hex) or "
                          "command name: %s" % shown(word))


def argtype(check, *args):
    """Return an argparse ``type=`` callable running ``check(word, *args)``: a refused
    word becomes argparse's one-line usage error with the validator's message."""
    import argparse

    def _t(word):
        try:
            return check(word, *args)
        except BadArgument as e:
            raise argparse.ArgumentTypeError(str(e))
    _t.__name__ = getattr(check, "__name__", "word")
    return _t

