"""Facts of a vmlinux's code kept on disk per build: the code store.

What the analyses derive from a function's code -- its disassembly (as crash's ``dis``
prints it), its prototype (``whatis``), the holds analysis' summary of it and the locks
held at its call sites -- is the same in every session and every dump of one kernel
build.  gdb takes seconds to answer it for the functions of a large dump; a
:class:`CodeStore` keeps it in ``<type store dir>/code/<build-id>.json`` beside the type
store (:mod:`crash_ext.ports.typestore`), so a later session reads it instead.

Per build, only functions of the kernel image itself are kept (a module's code and the
kernel it calls move apart between loads: a module's facts are kept per load, for one
dump, in ``code/mod-*.json``: :mod:`crash_ext.code.stored`), and KASLR moves the whole image
between boots: every address in a kept fact is stored relative to the start of the
function it belongs to (:class:`Relocation`), never as an absolute address, and its key
is the function's offset in the image.  ``CRASH_EXT_TYPE_CACHE=0`` turns the store off
(with the type store); on a live system the port uses it only when the running kernel's
build-id is the vmlinux's.  Writes go to a temporary file renamed over the store; a
write that fails is skipped: the store is only a speed-up.
"""

import os
import re
from ..compat import Dict, Optional

from . import jsontext
from .buildid import file_identity
from .caches import CODE_STORES

__all__ = ["CodeStore", "Relocation", "store_dir", "cache_enabled", "save_all"]

#: 1: dis/whatis/site/summary sections, addresses relative to the function's start
#: (and scope: a module function's names from its debuginfo; a file without it has none)
FORMAT_VERSION = 1
SECTIONS = ("dis", "whatis", "site", "summary", "scope")
MASK = (1 << 64) - 1


def cache_enabled() -> bool:
    """Return False when ``CRASH_EXT_TYPE_CACHE=0`` turns the per-build stores off."""
    return os.environ.get("CRASH_EXT_TYPE_CACHE", "1") != "0"


def store_dir() -> str:
    """Return the directory of the per-build stores: ``$CRASH_EXT_TYPES``, else
    ``$CRASH_EXT_CACHE/types`` (default ``~/.cache/crash-ext/types``)."""
    return os.environ.get("CRASH_EXT_TYPES") or os.path.join(
        os.environ.get("CRASH_EXT_CACHE") or os.path.expanduser("~/.cache/crash-ext"),
        "types")


# ------------------------------------------------------------------ relocation

_HEX = re.compile(r"(-?0x|\b)([0-9a-f]{8,16})\b")
_MARK = re.compile(r"@@([PNB])([+-][0-9a-f]+)@@")


class Relocation:
    """The kernel image of one session: addresses in ``[lo, hi)`` (``_text`` to
    ``_end``) move together under KASLR.  :meth:`to_rel` turns a fact (nested lists,
    tuples, ints, strings, None, bools) into one whose image addresses are offsets from
    ``origin`` (a function's start); :meth:`from_rel` (a static method: any session)
    turns it back with that session's ``origin``."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def contains(self, addr: int) -> bool:
        """Return True when ``addr`` lies in the kernel image."""
        return self.lo <= addr < self.hi

    def to_rel(self, value, origin: int):
        """Return ``value`` with image addresses made relative to ``origin``: an int as
        ``{"r": delta}``, in a string (``0x...``, ``-0x...`` as gdb prints a
        sign-extended displacement, bare 16 hex digits) as ``@@Kdelta@@``; tuples
        become lists.  Raises ValueError for a string that already holds ``@@`` or a
        value of another type (then the fact is not kept)."""
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            v = value & MASK
            if value >= 0 and self.contains(v):
                return {"r": v - origin}
            return value
        if isinstance(value, str):
            if "@@" in value:
                raise ValueError("a string holding the relocation mark")
            return _HEX.sub(lambda m: self._text_mark(m, origin), value)
        if isinstance(value, (list, tuple)):
            return [self.to_rel(x, origin) for x in value]
        raise ValueError("cannot keep a %s" % type(value).__name__)

    def _text_mark(self, m, origin: int) -> str:
        prefix, digits = m.group(1), m.group(2)
        v = int(digits, 16)
        if prefix == "-0x":
            kind, v = "N", (-v) & MASK
        elif prefix == "0x":
            kind = "P"
        elif len(digits) == 16:
            kind = "B"
        else:
            return m.group(0)
        if not self.contains(v):
            return m.group(0)
        d = v - origin
        return "@@%s%s%x@@" % (kind, "-" if d < 0 else "+", abs(d))

    @staticmethod
    def from_rel(value, origin: int):
        """Return the fact :meth:`to_rel` made, with ``origin`` the function's start in
        this session (lists come back as tuples)."""
        if isinstance(value, dict):
            return (origin + value["r"]) & MASK
        if isinstance(value, str):
            if "@@" not in value:
                return value
            return _MARK.sub(lambda m: _unmark(m, origin), value)
        if isinstance(value, list):
            return tuple(Relocation.from_rel(x, origin) for x in value)
        return value


def _unmark(m, origin: int) -> str:
    v = (origin + int(m.group(2), 16)) & MASK
    kind = m.group(1)
    if kind == "N":
        return "-0x%x" % ((-v) & MASK)
    return ("0x%x" if kind == "P" else "%016x") % v


# ------------------------------------------------------------------ the store

class CodeStore:
    """The code facts of one kernel build on disk (see the module's text): sections of
    :data:`SECTIONS`, each {key: fact}."""

    def __init__(self, path: str):
        self.path = path
        self._facts = None  # type: Optional[Dict[str, Dict[str, object]]]
        self._new = 0

    @classmethod
    def for_vmlinux(cls, vmlinux: Optional[str], running_id: Optional[str] = None,
                    live: bool = False) -> Optional["CodeStore"]:
        """Return the store of ``vmlinux`` (one object per file in the process), or
        None: no vmlinux file, ``CRASH_EXT_TYPE_CACHE=0``, or a ``live`` system whose
        running kernel's build-id (``running_id``) is not the file's."""
        if not vmlinux or not cache_enabled():
            return None
        ident = file_identity(vmlinux)
        if ident is None or (live and (running_id is None or running_id != ident)):
            return None
        return cls.at(os.path.join(store_dir(), "code", ident + ".json"))

    @classmethod
    def at(cls, path: str) -> "CodeStore":
        """Return the store kept in file ``path`` (one object per file in the process)."""
        return CODE_STORES.get(path, lambda: cls(path))

    def _load(self) -> Dict[str, Dict[str, object]]:
        if self._facts is None:
            self._facts = self._read()
        return self._facts

    def _read(self) -> Dict[str, Dict[str, object]]:
        """The facts on disk ({section: {}} when there are none, the file is unreadable
        or of another format version)."""
        empty = {s: {} for s in SECTIONS}  # type: Dict[str, Dict[str, object]]
        try:
            with open(self.path) as f:
                text = f.read()
            doc = jsontext.loads(text)
        except (OSError, ValueError):
            return empty
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            return empty
        for s in SECTIONS:
            got = doc.get(s)
            if isinstance(got, dict):
                empty[s] = got
        return empty

    def get(self, section: str, key: str):
        """Return the fact kept under ``key`` in ``section``, None when there is none."""
        return self._load()[section].get(key)

    def keys(self, section: str):
        """Return the keys of ``section``."""
        return self._load()[section].keys()

    def put(self, section: str, key: str, fact) -> None:
        """Keep ``fact`` (JSON-able: see :meth:`Relocation.to_rel`) under ``key``; written
        by :meth:`save`."""
        facts = self._load()[section]
        if facts.get(key) != fact:
            facts[key] = fact
            self._new += 1

    def save(self) -> None:
        """Write the facts learned since the last write, merged with what another
        session wrote meanwhile.  Best effort: a write that fails is skipped."""
        if not self._new:
            return
        disk = self._read()
        for s in SECTIONS:
            disk[s].update(self._facts[s])
        self._facts = disk
        doc = {"version": FORMAT_VERSION}  # type: Dict[str, object]
        doc.update(disk)
        tmp = "%s.%d.tmp" % (self.path, os.getpid())
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            text = jsontext.dumps(doc, separators=(",", ":"))
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, self.path)
            self._new = 0
        except (OSError, ValueError, TypeError):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def save_all() -> None:
    """Write the new facts of every code store of this process (best effort)."""
    for store in CODE_STORES.values():
        if isinstance(store, CodeStore):
            store.save()
