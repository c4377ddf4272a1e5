"""The code store (:mod:`crash_ext.core.codestore`) as the analyses read and write it:
a function's disassembly text, prototypes, holds summaries and call sites of one crash
session's kernel image, moved to where KASLR put the image in this session, and of the
modules of a dump whose object files crash loaded (with their functions' names from
gdb's ``info scope``).

Code of the kernel image (``_text`` to ``_end``) is kept per vmlinux build: disassembly
is keyed by the function's offset in the image and stored relative to its first
instruction; a summary by the function's offset (relative to its start); a call site by
its return address's offset (relative to that address); a prototype by the function's
name, for functions the store has the code of.

A module's code calls into the kernel image and reaches its own data, which move apart
from it between loads (and, from 6.4 on, apart from each other): a module's facts are
kept for one load of one object file -- the module's name, text base and size and
``struct module`` address as ``mod`` lists them, its object file's build-id, the
kernel build and the dump's ``sys`` DATE -- so that a dump read again (a second crash
session on it) finds its modules' code; never on a live system, whose modules can be
unloaded and loaded again.  A module whose object file crash did not load (no ``mod
-s``) is asked of crash in every session.
"""

import bisect
import os
import re
import zlib
from ..compat import Dict, List, Optional, Set, Tuple

from ..core.buildid import file_identity
from ..core.codestore import CodeStore, Relocation, store_dir
from ..core.errors import CrashExtError
from ..models.disasm import Insn
from .argrecords import CLONE_PARTS
from .holdrecords import Acq, ArgExpr, SiteLock, Summary
from .mustheld import SiteRelease

__all__ = ["StoredCode", "StoredParts"]

_FIRST = re.compile(r"^0x[0-9a-f]+ <([^>+]+)>:")
#: a line of crash's ``mod``: MODULE NAME (TEXT_)BASE SIZE OBJECT-FILE (a loaded one)
_MOD_LOADED = re.compile(r"^\s*([0-9a-f]+)\s+(\S+)\s+([0-9a-f]+)\s+(\d+)\s+(/\S+)\s*$",
                         re.M)
_DATE = re.compile(r"^\s*DATE:\s+(.+?)\s*$", re.M)


class StoredCode:
    """The code store of one crash session (``store``) with its image (``reloc``)."""

    def __init__(self, store, reloc: Relocation):
        self.store = store
        self.reloc = reloc
        self._starts = None  # type: Optional[List[int]]
        self._names = set()  # type: Set[str]

    @classmethod
    def for_port(cls, port) -> Optional["StoredParts"]:
        """Return the stored code of ``port``'s session (:class:`StoredParts`: the
        kernel image's, then its modules'), None when its port keeps no code store or
        crash does not name the image's ``_text`` and ``_end``.  Raises only what the
        port raises for crash dying or timing out."""
        store = port.base_port.code_store()
        if store is None:
            return None
        try:
            lo, hi = port.symbol_address("_text"), port.symbol_address("_end")
        except CrashExtError:
            return None
        if lo is None or hi is None or not lo < hi:
            return None
        image = cls(store, Relocation(lo, hi))
        return StoredParts([image] + _module_parts(port, store, lo))

    # -------------------------------------------------------------- disassembly
    def _index(self) -> List[int]:
        if self._starts is None:
            starts = []
            for k in self.store.keys("dis"):
                try:
                    starts.append(int(k, 16))
                except ValueError:
                    continue
                entry = self.store.get("dis", k)
                if isinstance(entry, list) and len(entry) == 3:
                    self._name(entry[1])
            starts.sort()
            self._starts = starts
        return self._starts

    def _name(self, name) -> None:
        if isinstance(name, str):
            self._names.add(name)
            m = CLONE_PARTS.match(name)
            if m:
                self._names.add(m.group("base"))

    def dis(self, addr: int) -> Optional[str]:
        """Return the stored text of the function whose instructions span ``addr`` (its
        first to its last), None when none is stored."""
        if not self.reloc.contains(addr):
            return None
        off = addr - self.reloc.lo
        starts = self._index()
        i = bisect.bisect_right(starts, off) - 1
        if i < 0:
            return None
        start = starts[i]
        entry = self.store.get("dis", "%x" % start)
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], int)
                and isinstance(entry[2], str)) or off - start > entry[0]:
            return None
        return Relocation.from_rel(entry[2], self.reloc.lo + start)

    def keep_dis(self, text: str, insns: List[Insn]) -> None:
        """Keep ``text``, the disassembly of one function (``insns``: it parsed), when
        all of it lies in the kernel image."""
        if not insns:
            return
        first, last = insns[0].addr, insns[-1].addr
        m = _FIRST.match(text)
        if m is None or not (self.reloc.contains(first) and self.reloc.contains(last)):
            return
        try:
            rel = self.reloc.to_rel(text, first)
        except ValueError:
            return
        off = first - self.reloc.lo
        key = "%x" % off
        starts = self._index()
        if self.store.get("dis", key) is None:
            bisect.insort(starts, off)
        self.store.put("dis", key, [last - first, m.group(1), rel])
        self._name(m.group(1))

    # -------------------------------------------------------------- prototypes
    def whatis(self, name: str) -> Optional[str]:
        """Return the stored ``whatis`` text of image function ``name``, None when none
        is stored."""
        self._index()
        if name not in self._names:
            return None
        got = self.store.get("whatis", name)
        return got if isinstance(got, str) else None

    def keep_whatis(self, name: str, text: str) -> None:
        """Keep crash's ``whatis`` text of ``name`` when the store holds the code of an
        image function of that name (a module's functions are not kept)."""
        self._index()
        if name in self._names:
            self.store.put("whatis", name, text)

    def scope(self, name: str) -> Optional[List[str]]:
        """Return the stored names of function ``name``'s outermost block (gdb's ``info
        scope``: :meth:`~.sources.PortSources.scope_names`), None when none are."""
        self._index()
        if name not in self._names:
            return None
        got = self.store.get("scope", name)
        return list(got) if isinstance(got, list) and all(
            isinstance(n, str) for n in got) else None

    def keep_scope(self, name: str, names: List[str]) -> None:
        """Keep ``names`` for function ``name`` when this part holds its code."""
        self._index()
        if name in self._names:
            self.store.put("scope", name, list(names))

    # -------------------------------------------------------------- holds
    def summary(self, addr: int, depth: int) -> Tuple[bool, Optional[Summary]]:
        """Return (found, the stored Summary of the function starting at ``addr``,
        summarised ``depth`` callees deep)."""
        if not self.reloc.contains(addr):
            return False, None
        got = self.store.get("summary", "%x:%d" % (addr - self.reloc.lo, depth))
        if not isinstance(got, list) or len(got) != 5:
            return False, None
        try:
            t = Relocation.from_rel(got, addr)
            return True, Summary(name=t[0], acquires=[ArgExpr(*a) for a in t[1]],
                                 releases=[ArgExpr(*a) for a in t[2]],
                                 releases_unknown=set(t[3]),
                                 may_acquire=[ArgExpr(*a) for a in t[4]])
        except (TypeError, ValueError):
            return False, None

    def keep_summary(self, addr: int, depth: int, s: Summary) -> None:
        """Keep Summary ``s`` of the image function starting at ``addr``."""
        if not self.reloc.contains(addr):
            return
        try:
            rel = self.reloc.to_rel([s.name, [tuple(a) for a in s.acquires],
                                     [tuple(a) for a in s.releases],
                                     sorted(s.releases_unknown),
                                     [tuple(a) for a in s.may_acquire]], addr)
        except ValueError:
            return
        self.store.put("summary", "%x:%d" % (addr - self.reloc.lo, depth), rel)

    def site(self, ret: int):
        """Return the stored (SiteLocks, SiteReleases, problem) of the call before return
        address ``ret``, None when none is stored."""
        if not self.reloc.contains(ret):
            return None
        got = self.store.get("site", "%x" % (ret - self.reloc.lo))
        if not isinstance(got, list) or len(got) != 3:
            return None
        try:
            t = Relocation.from_rel(got, ret)
            locks = [SiteLock(Acq(*sl[0]), sl[1], sl[2], sl[3], sl[4]) for sl in t[0]]
            rels = [SiteRelease(*r) for r in t[1]]
            return locks, rels, t[2]
        except (TypeError, ValueError):
            return None

    def keep_site(self, ret: int, site) -> None:
        """Keep the (SiteLocks, SiteReleases, problem) of the image call site before
        ``ret``."""
        if not self.reloc.contains(ret):
            return
        locks, rels, problem = site
        try:
            rel = self.reloc.to_rel([[[tuple(sl.acq)] + list(sl[1:]) for sl in locks],
                                     [tuple(r) for r in rels], problem], ret)
        except ValueError:
            return
        self.store.put("site", "%x" % (ret - self.reloc.lo), rel)


class StoredParts:
    """The stored code of one crash session, in parts (:class:`StoredCode` each: the
    kernel image's first, then each module's); each part answers and keeps only what
    lies in its own code (an address in its range, a name of a function it holds), so
    every question goes to the first part that has an answer and every fact is
    offered to all."""

    def __init__(self, parts: List[StoredCode]):
        self.parts = parts

    def _first(self, how: str, *args):
        for p in self.parts:
            got = getattr(p, how)(*args)
            if got is not None:
                return got
        return None

    def _offer(self, how: str, *args) -> None:
        for p in self.parts:
            getattr(p, how)(*args)

    def dis(self, addr: int) -> Optional[str]:
        """Return the stored text of the function spanning ``addr`` (see
        :meth:`StoredCode.dis`), None when no part holds it."""
        return self._first("dis", addr)

    def keep_dis(self, text: str, insns: List[Insn]) -> None:
        """Keep one function's disassembly in the part whose code it is."""
        self._offer("keep_dis", text, insns)

    def whatis(self, name: str) -> Optional[str]:
        """Return the stored ``whatis`` text of function ``name``, None when none is."""
        return self._first("whatis", name)

    def keep_whatis(self, name: str, text: str) -> None:
        """Keep crash's ``whatis`` text of ``name`` in the part holding its code."""
        self._offer("keep_whatis", name, text)

    def scope(self, name: str) -> Optional[List[str]]:
        """Return the stored ``info scope`` names of ``name``, None when none are."""
        return self._first("scope", name)

    def keep_scope(self, name: str, names: List[str]) -> None:
        """Keep the ``info scope`` names of ``name`` in the part holding its code."""
        self._offer("keep_scope", name, names)

    def summary(self, addr: int, depth: int) -> Tuple[bool, Optional[Summary]]:
        """Return (found, the stored Summary): see :meth:`StoredCode.summary`."""
        for p in self.parts:
            got = p.summary(addr, depth)
            if got[0]:
                return got
        return False, None

    def keep_summary(self, addr: int, depth: int, s: Summary) -> None:
        """Keep Summary ``s`` in the part whose code starts at ``addr``."""
        self._offer("keep_summary", addr, depth, s)

    def site(self, ret: int):
        """Return the stored call site before ``ret`` (see :meth:`StoredCode.site`)."""
        return self._first("site", ret)

    def keep_site(self, ret: int, site) -> None:
        """Keep the call site before ``ret`` in the part whose code it is."""
        self._offer("keep_site", ret, site)


def _module_parts(port, image: CodeStore, text: int) -> List[StoredCode]:
    """Return a StoredCode for each module of ``port``'s dump whose object file crash
    loaded (``mod``), keyed by that load (see the module's text); [] on a live system,
    when crash names no DATE in ``sys``, or when ``mod`` fails.  Raises only what the
    port raises for crash dying or timing out."""
    if not port.memory_fixed():
        return []
    try:
        mods = _MOD_LOADED.findall(port.command("mod"))
        date = _DATE.search(port.command("sys")) if mods else None
    except CrashExtError:
        return []
    if date is None:
        return []
    image_id = os.path.splitext(os.path.basename(image.path))[0]
    out = []
    for addr, name, base, size, objfile in mods:
        obj = file_identity(objfile)
        lo, n = int(base, 16), int(size)
        if obj is None or not n:
            continue
        raw = "\0".join((image_id, "%x" % text, date.group(1), addr, name, base, size,
                         obj)).encode()
        path = os.path.join(store_dir(), "code", "mod-%s-%08x%08x.json" % (
            name, zlib.crc32(raw), zlib.adler32(raw)))
        out.append(StoredCode(CodeStore.at(path), Relocation(lo, lo + n)))
    return out
