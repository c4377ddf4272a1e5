"""Every cache crash-ext keeps, in one place, each with its lifetime.

A cache is kept *for* something (a snapshot, a port, a crash session, a crash module)
in a table weak in that key, so it ends with it.  The lifetimes:

- ``CALL``: one verb call (kept for its :class:`~crash_ext.session.snapshot.Snapshot`,
  which the call makes and drops);
- ``PORT``: one port: a verb call inside crash (pykdump makes a port per call), the
  whole crash process outside;
- ``SESSION``: one crash session, every port of it (the ports with one
  ``session_identity``; a port without one is its own session).  Facts of the code
  (disassembly, prototypes, summaries) stay; facts read from memory stay only while
  memory cannot change (``memory_fixed()``: a dump), else the owner's ``rebind``
  drops them when the next call's port takes it over;
- ``BUILD``: one vmlinux build: the type store on disk (``ports/typestore.py``,
  docs/design.md "The type store") and the code store beside it (``core/codestore.py``);
- ``PURE``: answers of a pure function of its arguments (names, never kernel facts).

:data:`ENTRIES` lists them all; ``tests/unit/test_caches.py`` shows which survive a
call on a live system.  The adapters' per-port answer memo (``CommandTypes._cache``:
symbols and types, PORT) is a field of the port object and ends with it.
"""

import functools
import weakref
from ..compat import Callable, Dict, List, Optional

CALL = "call"
PORT = "port"
SESSION = "session"
BUILD = "build"
PURE = "pure"

#: lifetime -> what it lasts
LIFETIMES = {CALL: "one verb call", PORT: "one port (a call inside crash, a crash "
             "process outside)", SESSION: "one crash session (memory facts: one call "
             "on a live system)", BUILD: "one vmlinux build", PURE: "the process"}


class Cache:
    """One cache: ``name``, ``lifetime`` (one of :data:`LIFETIMES`), ``what`` it
    keeps; a table weak in its keys (``weak=False``: a plain table, for PURE caches
    keyed by names, at most ``limit`` entries)."""

    def __init__(self, name: str, lifetime: str, what: str, weak: bool = True,
                 limit: int = 0):
        assert lifetime in LIFETIMES
        self.name, self.lifetime, self.what, self.limit = name, lifetime, what, limit
        self._table = weakref.WeakKeyDictionary() if weak else {}  # type: Dict

    def get(self, key, make: Callable[[], object]):
        """Return the value kept for ``key``, made by ``make()`` when there is none
        (then kept; not kept when ``key`` cannot be held weakly)."""
        try:
            got = self._table.get(key)
        except TypeError:               # not weak-referenceable: not kept
            return make()
        if got is None:
            got = make()
            if self.limit and len(self._table) >= self.limit:
                self._table.clear()
            self._table[key] = got
        return got

    def values(self) -> List[object]:
        """Return the values kept (of a table that is not weak: every one)."""
        return list(self._table.values())

    def peek(self, key) -> Optional[object]:
        """Return the value kept for ``key``, None when there is none."""
        try:
            return self._table.get(key)
        except TypeError:
            return None

    def put(self, key, value) -> None:
        """Keep ``value`` for ``key`` (nothing when ``key`` cannot be held weakly); a
        table at its ``limit`` is emptied first."""
        try:
            if self.limit and len(self._table) >= self.limit and key not in self._table:
                self._table.clear()
            self._table[key] = value
        except TypeError:
            pass

    def for_session(self, port, make):
        """Return the object kept for ``port``'s crash session: the ports with one
        ``session_identity`` (pykdump's: one port per verb call) share one, any other
        port has its own.  ``make(port)`` makes it when there is none (also when the key
        cannot be held weakly: then it is not kept).  When an earlier port of the
        session made it, ``obj.rebind(port, port.memory_fixed())`` hands it to this
        one (a dump: what the cache read from memory stays true)."""
        key = port.session_identity
        key = port if key is None else key
        try:
            obj = self._table.get(key)
            if obj is None:
                obj = self._table[key] = make(port)
            elif obj.port is not port:
                obj.rebind(port, port.memory_fixed())
            return obj
        except TypeError:          # not weak-referenceable
            return make(port)

    def memo(self, fn):
        """Return ``fn`` with its answers kept here (a PURE cache: ``fn`` must be a pure
        function of hashable arguments; at most ``limit`` answers, least recent out)."""
        assert self.lifetime == PURE
        self._fn = functools.lru_cache(maxsize=self.limit or None)(fn)
        return self._fn

    def __len__(self) -> int:
        fn = getattr(self, "_fn", None)
        return fn.cache_info().currsize if fn is not None else len(self._table)


class HeldWeakly:
    """An attribute that holds its object (a port) through a weak reference when the
    object allows one, strongly otherwise.  A SESSION cache is kept in a table weak in
    its key, the port; a cache that held its key strongly would keep itself and the
    port alive after the session ends.  Reading it after the object is gone returns
    None."""

    def __set_name__(self, owner, name):
        self.slot = "_held_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj.__dict__[self.slot]()

    def __set__(self, obj, value):
        try:
            ref = weakref.ref(value)
        except TypeError:
            def ref():
                return value
        obj.__dict__[self.slot] = ref


# ------------------------------------------------------------------ the entries

SNAPSHOT_FACTS = Cache(
    "snapshot facts", CALL, "analyses/session.SessionCache of a snapshot: ps -m times, "
    "wait-list walks, rings, search -t results, blocked-on answers, damaged lists, "
    "completion layouts, rt_mutex waiters")
LOCK_LAYOUTS = Cache(
    "lock layouts", PORT, "{kind: LockLayout} probed from member types, per base port")
MOUNTS = Cache("mount points", PORT, "{super_block: first mount point} from `mount`")
TASK_VIEW = Cache(
    "task view checked", PORT, "True once crash was seen to list every task "
    "(taskview.require_task_view)")
DUMP_IDENTITY = Cache(
    "dump identity", PORT, "kernel release, crash version, vmcore and vmlinux of "
    "`sys` and `help -p` (session/identity.dump_identity)")
HOLDS = Cache(
    "holds analysers", SESSION, "analyses/holds.HoldsAnalyser: code summaries "
    "(session), what each task holds (memory: dropped per call when live)")
SOURCES = Cache(
    "argument sources", SESSION, "code/sources.PortSources: disassembly, prototypes, "
    "recoveries (session), memory words (dropped per call when live)")
SESSION_TYPES = Cache(
    "pykdump session types", SESSION, "type facts earlier verb calls of a crash "
    "session learned, per pykdump crash module (adapters/pykdump.run_verb)")
SESSION_FIXED = Cache(
    "pykdump memory fixed", SESSION, "whether crash reads a dump, per pykdump crash "
    "module (asked once with `sys`)")
FRAME_KINDS = Cache(
    "frame kinds", PURE, "blockedon.classify_function: lock kind and mode of a frame "
    "function name", weak=False, limit=8192)   # see Cache.memo

PARSED_CODE = Cache(
    "parsed code", PURE, "code/argrecords.parsed: parse_dis of a function's text",
    weak=False, limit=2048)   # see Cache.memo

PRINTED_LAYOUTS = Cache(
    "printed stack layouts", PURE, "models/btlazy: a back trace text's skeleton (hex "
    "digits as x) -> its frame count and word layout", weak=False, limit=4097)
PRINTED_VIEWS = Cache(
    "printed stack views", PURE, "models/btlazy: frame lines and relative slots -> "
    "(frames, innermost)", weak=False, limit=4097)
STACK_SHAPES = Cache(
    "stack shapes", PURE, "code/templates.plain_view: one shape object per shape",
    weak=False, limit=4097)
BTF_NAMES = Cache(
    "BTF parameter names", BUILD, "models/btf.read_vmlinux_btf: a vmlinux's BTF "
    "names, per (path, size, mtime)", weak=False)
CODE_STORES = Cache(
    "code store", BUILD, "core/codestore.CodeStore: a vmlinux build's disassembly, "
    "prototypes, holds summaries and call sites on disk, one object per store file",
    weak=False)

#: every cache, in the order above
ENTRIES = (SNAPSHOT_FACTS, LOCK_LAYOUTS, MOUNTS, TASK_VIEW, DUMP_IDENTITY, HOLDS,
           SOURCES, SESSION_TYPES, SESSION_FIXED, FRAME_KINDS, PARSED_CODE,
           PRINTED_LAYOUTS, PRINTED_VIEWS, STACK_SHAPES, BTF_NAMES, CODE_STORES)  # type: tuple


def entries_by_lifetime() -> Dict[str, List[str]]:
    """Return {lifetime: [cache names]} of :data:`ENTRIES`."""
    out = {}  # type: Dict[str, List[str]]
    for e in ENTRIES:
        out.setdefault(e.lifetime, []).append(e.name)
    return out
