"""Who holds a lock and who waits on it: :func:`lock_report`.

A report says what the lock is (type, layout, where it lives), its decoded state, the
owner *when the lock records one*, the owner hint when the lock records an unreliable
one (a reader-owned rwsem's last reader, a semaphore's ``last_holder``), ranked
candidate holders with evidence when it records none, and the waiters in queue order.
Odd memory (loops, bad pointers, freed objects) is reported in ``problems``, never
raised.
"""

from .. import record
import re
import weakref
from ..compat import Dict, List, Optional, Tuple

from ..models import locks as L
from ..port import BadArgument, CrashExtError, MemoryReadError, Port
from .results import LockReport, TaskRef, Waiter
from .snapshot import Snapshot

__all__ = ["lock_report", "resolve_address", "check_lock_address", "slab_info",
           "slab_infos", "prefetch_locks", "session_cache", "SessionCache", "MAX_WAITERS"]

MAX_WAITERS = L.MAX_WAITERS
_PSM = re.compile(r"^\s*\[(?P<t>\d+ \d\d:\d\d:\d\d\.\d+)\]\s+\[(?P<st>[A-Z?]+)\]\s+PID:\s*"
                  r"(?P<pid>\d+)\s+TASK:\s*(?P<task>[0-9a-fA-F]+)")


# ----------------------------------------------------------- per-snapshot cache

class SessionCache:
    """Facts read once per :class:`Snapshot`: ``ps -m`` times, wait-list walks, rings
    of waiter records, ``search -t`` results and blocked-on answers.  Shared by
    :func:`lock_report` and :func:`~crash_ext.analyses.blockedon.blocked_on`.

    ``read_last_ran``: fill ``TaskRef.last_ran`` from ``ps -m`` (one command, but slow
    with thousands of tasks: seconds); False leaves it None."""

    def __init__(self, snapshot: Snapshot, read_last_ran: bool = True):
        # weakly: the cache lives as long as its snapshot, in a WeakKeyDictionary
        # keyed by it, which a strong reference here would keep alive for ever
        self._snap = weakref.ref(snapshot)
        self.read_last_ran = read_last_ran
        self.last_ran = None  # type: Optional[Dict[int, str]]
        self.walks = {}  # type: Dict[Tuple[str, int], L.WaitWalk]
        self.rings = {}  # type: Dict[int, Tuple[List[int], List[str]]]
        self.searches = {}  # type: Dict[int, Dict[int, List[int]]]
        self.blocked = {}  # type: Dict[int, object]
        self.states = {}  # type: Dict[Tuple[str, int], L.LockState]
        self.slabs = {}  # type: Dict[int, Optional[Dict[str, object]]]

    @property
    def snap(self) -> Snapshot:
        """The snapshot this cache belongs to."""
        return self._snap()

    def ps_m(self) -> Dict[int, str]:
        """Return {task address: time since it last ran, as ``ps -m`` prints it}."""
        if self.last_ran is None:
            self.last_ran = {}
            try:
                out = self.snap.port.command("ps -m")
            except CrashExtError:
                out = ""
            for line in out.splitlines():
                m = _PSM.match(line)
                if m:
                    self.last_ran[int(m.group("task"), 16)] = "[%s]" % m.group("t")
        return self.last_ran

    def ref(self, task: int) -> TaskRef:
        """Return a TaskRef for ``task`` with its last-ran time filled in."""
        r = self.snap.ref(task)
        if self.read_last_ran:
            r = record.replace(r, last_ran=self.ps_m().get(task))
        return r

    def remember_blocked(self, answers: Dict[int, object]) -> None:
        """Keep blocked-on answers found elsewhere (e.g. from back traces already
        classified) so that :func:`~crash_ext.analyses.blockedon.blocked_on` returns
        them instead of searching again; answers already known are kept."""
        for task, b in answers.items():
            self.blocked.setdefault(task, b)

    def walk(self, port: Port, layout: L.LockLayout, addr: int,
             raw: Optional[bytes] = None, cap: int = MAX_WAITERS,
             known: Optional[Dict[int, tuple]] = None) -> L.WaitWalk:
        """Return (cached) :func:`~crash_ext.models.locks.walk_waiters` of ``addr``."""
        key = (layout.kind, addr)
        w = self.walks.get(key)
        if w is None or (not w.complete and cap > len(w.entries)
                         and any("cap" in p for p in w.problems)):
            w = L.walk_waiters(port, layout, addr, raw=raw, cap=cap, known=known)
            self.walks[key] = w
        return w

    def search_stacks(self, value: int) -> Dict[int, List[int]]:
        """Return {task address: [stack addresses holding ``value``]} from crash's
        ``search -t`` (every task's kernel stack, live frames and stale words)."""
        if value not in self.searches:
            res = {}  # type: Dict[int, List[int]]
            try:
                out = self.snap.port.command("search -t %x" % value)
            except CrashExtError:
                out = ""
            task = None
            for line in out.splitlines():
                m = re.match(r"^PID:\s*\d+\s+TASK:\s*([0-9a-fA-F]+)", line.strip())
                if m:
                    task = int(m.group(1), 16)
                    res.setdefault(task, [])
                    continue
                m = re.match(r"^([0-9a-fA-F]+):\s+([0-9a-fA-F]+)", line.strip())
                if m and task is not None and int(m.group(2), 16) == value:
                    res[task].append(int(m.group(1), 16))
            self.searches[value] = res
        return self.searches[value]


_CACHES = weakref.WeakKeyDictionary()  # type: weakref.WeakKeyDictionary


def session_cache(snapshot: Snapshot, last_ran: Optional[bool] = None) -> SessionCache:
    """Return the :class:`SessionCache` of ``snapshot`` (made on first use).

    ``last_ran``: True/False to read (or not) ``ps -m`` for the tasks' last-ran times
    from now on (see :class:`SessionCache`); None leaves the setting (default True)."""
    c = _CACHES.get(snapshot)
    if c is None:
        c = SessionCache(snapshot)
        _CACHES[snapshot] = c
    if last_ran is not None:
        c.read_last_ran = bool(last_ran)
    return c


# ----------------------------------------------------------------- addresses

def resolve_address(port: Port, word) -> int:
    """Return the address a user word names: hex (``ffff...``/``0x...``, at most 16
    digits), ``symbol`` or ``symbol+off``.  Raises BadArgument for anything else
    (:func:`~crash_ext.words.check_address_word`) or an unknown symbol."""
    from ..words import check_address_word, check_hex_word, shown
    if isinstance(word, int) and not isinstance(word, bool):
        return word
    w = check_address_word(word)
    if re.match(r"(0[xX])?[0-9a-fA-F]{1,16}\Z", w) and (w[:2] in ("0x", "0X") or
                                                       re.search(r"[0-9]", w)):
        return check_hex_word(w)
    name, plus, off = w.partition("+")
    base = port.symbol_address(name)
    if base is None:
        if re.match(r"[0-9a-fA-F]{1,16}\Z", w):
            return int(w, 16)
        raise BadArgument("no such symbol: %s" % shown(name))
    if plus:
        return base + (int(off, 16) if off[:2] in ("0x", "0X") else int(off))
    return base


def check_lock_address(port: Port, addr: int, size: int) -> bytes:
    """Return the ``size`` bytes at ``addr`` after checking it can be a kernel lock.

    Raises BadArgument for NULL, a user-space or non-canonical address, and
    MemoryReadError when the address is not mapped or not in the dump.
    """
    if addr == 0:
        raise BadArgument("NULL address")
    if addr < L.KERNEL_START:
        raise BadArgument("%#x is a user-space address, not a kernel lock" % addr)
    if addr >= 1 << 64:
        raise BadArgument("%#x is not a 64-bit address" % addr)
    try:
        return port.read(addr, size)
    except MemoryReadError as e:
        raise MemoryReadError("%#x is not readable in this dump (unmapped or not "
                              "captured): %s" % (addr, _short(e)))


def _short(e) -> str:
    s = str(e).strip().splitlines()
    return s[-1] if s else ""


def slab_info(port: Port, addr: int) -> Optional[Dict[str, object]]:
    """Return {'cache', 'object', 'allocated', 'objsize'} for a slab address from
    ``kmem -s ADDR``, or None when ``addr`` is not in a slab."""
    try:
        out = port.command("kmem -s %x" % addr)
    except CrashExtError:
        return None
    lines = out.splitlines()
    info = {}  # type: Dict[str, object]
    for i, line in enumerate(lines):
        if line.strip().startswith("CACHE") and "NAME" in line and i + 1 < len(lines):
            t = lines[i + 1].split()
            if len(t) >= 7:
                info["cache"] = t[-1]
                try:
                    info["objsize"] = int(t[1])
                except ValueError:
                    pass
        if "FREE / [ALLOCATED]" in line:
            for l2 in lines[i + 1:]:
                s = l2.strip()
                m = re.match(r"^(\[)?([0-9a-fA-F]{8,16})(\])?(\s.*)?$", s)
                if m:
                    info["object"] = int(m.group(2), 16)
                    info["allocated"] = bool(m.group(1))
                    break
    return info if "cache" in info else None


_KMEM_P_ROW = re.compile(r"^\s*(?P<page>[0-9a-f]{8,16})\s+(?P<phys>[0-9a-f]+)\s+"
                         r"(?:(?P<mapping>[0-9a-f]{8,16})\s+)?(?P<index>[0-9a-f]+)\s+"
                         r"(?P<cnt>-?\d+)\s+(?P<flags>[0-9a-f]+)(?P<names>.*)$")
PAGE_SIZE = 4096


def _kmem_p_rows(port: Port, addrs: List[int]) -> Optional[List[Dict[str, object]]]:
    """Return one ``kmem -p`` row per address (in order), or None when crash's answer
    cannot be matched to the addresses one by one."""
    try:
        out = port.command("kmem -p " + " ".join("%x" % a for a in addrs))
    except CrashExtError:
        return None
    rows = []
    for line in out.splitlines():
        if not line.strip() or line.split()[0] == "PAGE":
            continue
        m = _KMEM_P_ROW.match(line)
        if m is None:
            return None
        rows.append({"page": int(m.group("page"), 16),
                     "flags": set(re.split(r"[\s,|]+", m.group("names").strip()))})
    return rows if len(rows) == len(addrs) else None


def _slub_fields(port: Port) -> Optional[Dict[str, int]]:
    """Return the offsets a SLUB slab look-up reads, None when this kernel's types do
    not show SLUB (``kmem_cache.cpu_slab``) or lack one of them."""
    pre = getattr(port, "prefetch_structs", None)
    if pre is not None:     # one look-up for the five members read below
        pre(["kmem_cache"])
    so = port.member_offset("slab", "slab_cache")
    if so is None:
        so = port.member_offset("page", "slab_cache")
    f = {"slab_cache": so}
    for m in ("name", "size", "object_size", "cpu_slab"):
        f[m] = port.member_offset("kmem_cache", m)
    if None in f.values():
        return None
    f["red_left_pad"] = port.member_offset("kmem_cache", "red_left_pad")
    return f  # type: ignore


def slab_infos(port: Port, addrs) -> Dict[int, Optional[Dict[str, object]]]:
    """Return {address: :func:`slab_info`} for many addresses with a few commands: one
    ``kmem -p`` for all (which pages are slab pages), then batched reads of each slab's
    ``slab_cache`` and each cache's ``name``/``size``/``object_size`` (SLUB: object i
    starts at the page's start + red_left_pad + i * size).  ``allocated`` is not
    told (``kmem -s`` walks the slab's free list for that).  Addresses this does not
    settle -- not in a slab's first page, other allocators, odd answers -- are asked
    with :func:`slab_info` (``kmem -s``) one by one."""
    addrs = sorted({int(a) for a in addrs})
    res = {}  # type: Dict[int, Optional[Dict[str, object]]]
    rows = _kmem_p_rows(port, addrs) if addrs else None
    f = _slub_fields(port) if rows is not None else None
    if rows is not None and f is not None:
        slab_rows = [(a, r) for a, r in zip(addrs, rows) if "slab" in r["flags"]]
        got = port.read_many([(r["page"] + f["slab_cache"], 8) for _, r in slab_rows])
        caches = {}  # type: Dict[int, Optional[Dict[str, object]]]
        owner = {}
        for (a, _), raw in zip(slab_rows, got):
            if raw is not None and L.is_kernel_pointer(int.from_bytes(raw, "little")):
                owner[a] = int.from_bytes(raw, "little")
                caches.setdefault(owner[a], None)
        offs = [f["name"], f["size"], f["object_size"]] + (
            [f["red_left_pad"]] if f["red_left_pad"] is not None else [])
        lo, hi = min(offs), max(offs) + 8
        cl = sorted(caches)
        for c, raw in zip(cl, port.read_many([(c + lo, hi - lo) for c in cl])):
            if raw is None:
                continue
            u = lambda o, n: int.from_bytes(raw[o - lo:o - lo + n], "little")  # noqa: E731
            caches[c] = {"name_ptr": u(f["name"], 8), "size": u(f["size"], 4),
                         "objsize": u(f["object_size"], 4),
                         "red": u(f["red_left_pad"], 4) if f["red_left_pad"] is not None
                         else 0}
        named = [c for c in cl if caches[c] and
                 L.KERNEL_START <= caches[c]["name_ptr"] < 1 << 64]
        for c, raw in zip(named, port.read_many([(caches[c]["name_ptr"], 32)
                                                 for c in named])):
            name = raw.split(b"\0", 1)[0] if raw is not None else b""
            if raw is not None and b"\0" in raw and re.match(rb"^[\x21-\x7e]+$", name):
                caches[c]["name"] = name.decode()
        for a, r in zip(addrs, rows):
            if "slab" not in r["flags"]:
                continue
            c = caches.get(owner.get(a, -1))
            if not c or "name" not in c or not 0 < c["size"] <= 1 << 24:
                continue
            base = (a & ~(PAGE_SIZE - 1)) + c["red"]
            if a < base:
                continue
            obj = base + (a - base) // c["size"] * c["size"]
            info = {"cache": c["name"], "objsize": c["objsize"]}  # type: Dict[str, object]
            if a < obj + c["objsize"]:
                info["object"] = obj
            res[a] = info
    for a in addrs:
        if a not in res:
            res[a] = slab_info(port, a)
    return res


def prefetch_locks(port: Port, snap: Snapshot, locks: Dict[int, str]) -> None:
    """Read what :func:`lock_report` will ask of many locks ({address: kind}) in a few
    exchanges: each lock's memory, the symbols at their addresses and where they live
    in the slab caches (:func:`slab_infos`).  Best effort: what fails here is asked
    again, one by one, by the report."""
    cache = session_cache(snap)
    ranges = []
    for a, kind in sorted(locks.items()):
        try:
            ranges.append((a, L.probe_layout(port, kind).size))
        except CrashExtError:
            continue
    try:
        port.read_many(ranges)
        todo = [a for a in locks if a not in cache.slabs]
        if todo:
            cache.slabs.update(slab_infos(port, todo))
        pre = getattr(port, "prefetch_symbols", None)
        if pre is not None:     # a slab object is no symbol: see _where
            pre(sorted(a for a in locks if cache.slabs.get(a) is None))
    except CrashExtError:
        pass


# ---------------------------------------------------------------- containers

def _read_str(port: Port, addr: int, limit: int = 256) -> Optional[str]:
    out = b""
    a = addr
    while len(out) < limit:
        try:
            chunk = port.read(a, 32)
        except CrashExtError:
            return None if not out else out.decode("utf-8", "replace")
        n = chunk.find(b"\0")
        if n >= 0:
            out += chunk[:n]
            break
        out += chunk
        a += 32
    return out.decode("utf-8", "replace")


def _dentry_path(port: Port, dentry: int) -> Optional[str]:
    no = port.member_offset("dentry", "d_name.name")
    po = port.member_offset("dentry", "d_parent")
    if no is None or po is None:
        return None
    parts = []  # type: List[str]
    d = dentry
    for _ in range(64):
        try:
            name = _read_str(port, port.read_u64(d + no))
            parent = port.read_u64(d + po)
        except CrashExtError:
            return None
        if name is None:
            return None
        if parent == d or not parent:
            break
        parts.append(name)
        d = parent
    else:
        parts.append("...")
    return "/" + "/".join(reversed(parts))


_MOUNTS = weakref.WeakKeyDictionary()  # type: weakref.WeakKeyDictionary


def _mount_dirs(port: Port) -> Dict[int, str]:
    """Return {super_block address: first mount point} from crash's ``mount``."""
    try:
        got = _MOUNTS.get(getattr(port, "base_port", port))
    except TypeError:
        got = None
    if got is not None:
        return got
    res = {}  # type: Dict[int, str]
    try:
        out = port.command("mount")
    except CrashExtError:
        out = ""
    for line in out.splitlines():
        t = line.split()
        if len(t) >= 5 and re.match(r"^[0-9a-f]{8,16}$", t[0]) and \
                re.match(r"^[0-9a-f]{8,16}$", t[1]):
            res.setdefault(int(t[1], 16), t[-1])
    try:
        _MOUNTS[getattr(port, "base_port", port)] = res
    except TypeError:
        pass
    return res


def describe_inode(port: Port, inode: int) -> Optional[Dict[str, object]]:
    """Return {'inode', 'fstype', 'dentry', 'path'} for an inode address that passes a
    self-check (``i_mapping == &i_data``), else None.  ``path`` is the dentry path
    prefixed with the file system's first mount point (crash ``mount``) when known."""
    try:
        mo = port.member_offset("inode", "i_mapping")
        do = port.member_offset("inode", "i_data")
        if mo is None or do is None or port.read_u64(inode + mo) != inode + do:
            return None
        res = {"inode": inode}  # type: Dict[str, object]
        so = port.member_offset("inode", "i_sb")
        to = port.member_offset("super_block", "s_type")
        no = port.member_offset("file_system_type", "name")
        sb = None
        if None not in (so, to, no):
            sb = port.read_u64(inode + so)
            res["fstype"] = _read_str(port, port.read_u64(port.read_u64(sb + to) + no), 32)
        io = port.member_offset("inode", "i_dentry")
        ao = port.member_offset("dentry", "d_u.d_alias")
        if ao is None:
            ao = port.member_offset("dentry", "d_alias")
        if io is not None and ao is not None:
            first = port.read_u64(inode + io)
            if first and L.is_kernel_pointer(first):
                res["dentry"] = first - ao
                path = _dentry_path(port, first - ao)
                mnt = _mount_dirs(port).get(sb) if sb else None
                if path and mnt and mnt != "/":
                    path = mnt.rstrip("/") + path
                res["path"] = path
        return res
    except CrashExtError:
        return None


def _inode_container(port: Port, addr: int, kind: str) -> Optional[Tuple[str, int, Dict]]:
    for member in ("i_rwsem", "i_mutex"):
        try:
            mt = port.member_type("inode", member)
        except CrashExtError:
            mt = None
        if not mt or L.normalize_kind(mt) != kind:
            continue
        off = port.member_offset("inode", member)
        if off is None:
            continue
        d = describe_inode(port, addr - off)
        if d is not None:
            return member, addr - off, d
    return None


def _where(port: Port, addr: int, kind: str, container, rep: LockReport,
           rep_snap: Optional[Snapshot] = None) -> Optional[int]:
    """Fill ``rep.where``; return the containing object's address when known (slab
    answers prefetched for ``rep_snap`` are used)."""
    parts = []  # type: List[str]
    cont_addr = None
    slabs = session_cache(rep_snap).slabs if rep_snap is not None else {}
    slab = slabs[addr] if addr in slabs else slab_info(port, addr)
    if slab is None:    # symbols name kernel and module images, never slab objects
        try:
            sym = port.address_symbol(addr)
        except CrashExtError:
            sym = None
        if sym and not sym.startswith("+"):
            parts.append("symbol %s" % sym)
    if slab is not None:
        obj = slab.get("object")
        s = "slab cache %s" % slab["cache"]
        if obj is not None:
            s += ", object %x+%#x" % (obj, addr - obj)
            cont_addr = obj
        if slab.get("allocated") is False:
            s += " (FREE object)"
            rep.problems.append("the address is inside a FREED slab object (%s): the lock "
                                "is stale; its contents may be reused" % slab["cache"])
        parts.append(s)
    if container is not None:
        ctype, cmember, caddr = container
        parts.insert(0, "%s.%s of %s %x" % (ctype, cmember, ctype, caddr))
        cont_addr = caddr
        if ctype == "inode":
            d = describe_inode(port, caddr)
            if d is not None:
                rep.state["inode"] = _inode_json(d)
                parts[0] += _inode_text(d)
    elif slab is not None and "inode" in str(slab.get("cache", "")):
        ic = _inode_container(port, addr, kind)
        if ic is not None:
            member, inode, d = ic
            parts.insert(0, "inode.%s of inode %x%s" % (member, inode, _inode_text(d)))
            rep.state["inode"] = _inode_json(d)
            rep.state["container"] = {"type": "inode", "member": member,
                                      "address": "%#x" % inode}
    if container is not None:
        rep.state["container"] = {"type": container[0], "member": container[1],
                                  "address": "%#x" % container[2]}
    rep.where = "; ".join(parts) if parts else None
    if not parts:
        rep.where = "not a symbol and not in a slab cache (stack, vmalloc or static)"
    return cont_addr


def _inode_text(d) -> str:
    bits = []
    if d.get("fstype"):
        bits.append(str(d["fstype"]))
    if d.get("path"):
        bits.append("path %s" % d["path"])
    return " (%s)" % ", ".join(bits) if bits else ""


def _inode_json(d) -> Dict[str, object]:
    out = {}  # type: Dict[str, object]
    for k, v in d.items():
        out[k] = "%#x" % v if isinstance(v, int) else v
    return out


# ------------------------------------------------------------ type detection

def _detect_type(port: Port, addr: int, snap: Snapshot, tried: List[str]
                 ) -> Optional[Tuple[str, str]]:
    """Return (kind, how it was found) for a lock at ``addr`` of unknown type."""
    # 1. a variable that starts at addr: its declared type
    try:
        sym = port.address_symbol(addr)
    except CrashExtError:
        sym = None
    if sym and "+" not in sym:
        try:
            out = port.command("whatis %s" % sym)
        except CrashExtError:
            out = ""
        m = re.match(r"^\s*((?:struct |union )?[A-Za-z_][A-Za-z0-9_]*)\s+\**\s*"
                     r"[A-Za-z_][A-Za-z0-9_]*\s*;", out.strip())
        if m and L.normalize_kind(m.group(1)):
            return L.normalize_kind(m.group(1)), "declared type of symbol %s (%s)" % (
                sym, m.group(1))
        tried.append("symbol %s: declared type is not a lock (%s)" % (
            sym, out.strip().splitlines()[0] if out.strip() else "no whatis"))
    else:
        tried.append("symbol: none starts at this address")
    # 2. a blocked task whose stack holds the address and whose lock frame names a type
    from .blockedon import blocked_on, rt_lock_waiters
    hits = 0
    try:
        bts = dict(snap.backtraces("UN"))
        for e in rt_lock_waiters(port, snap):     # PREEMPT_RT spinlock_t sleepers
            bts[e.task] = snap.backtrace(e.task)
    except CrashExtError:
        bts = {}
    for task, bt in bts.items():
        if addr not in bt.words.values():
            continue
        hits += 1
        try:
            b = blocked_on(port, task, snapshot=snap)
        except CrashExtError:
            continue
        if b.kind == "lock" and b.lock_address == addr and b.lock_type:
            return b.lock_type, ("task %s is blocked in %s and is on this %s's wait "
                                 "list" % (b.task.pid, b.function, b.lock_type))
    tried.append("blocked tasks: %d stack(s) hold the address, none is confirmed on it "
                 "as a wait list" % hits)
    # 3. structure: a wait list whose entries are all known tasks
    for kind in ("mutex", "rw_semaphore", "semaphore"):
        try:
            lay = L.probe_layout(port, kind)
            w = L.walk_waiters(port, lay, addr, cap=64)
        except CrashExtError:
            continue
        if w.entries and w.complete and not w.problems and all(
                snap.by_task(e.task) is not None for e in w.entries):
            return kind, "its memory read as a %s has a well-formed wait list of %d " \
                "known task(s)" % (kind, len(w.entries))
    tried.append("structure: no well-formed wait list of known tasks when read as mutex, "
                 "rw_semaphore or semaphore")
    return None


def _rbtree_modes(snap: Snapshot, entries) -> Dict[int, Optional[str]]:
    """Return {task: 'reader'/'writer'/None} for rbtree waiters of a PREEMPT_RT
    rw_semaphore, whose ``rt_mutex_waiter`` records no mode: the mode the waiter's own
    lock path names (``rwbase_read_lock``/``down_read`` or ``rwbase_write_lock``/
    ``down_write``).  A task whose stack cannot be read maps to None."""
    from .blockedon import classify_stack
    out = {}  # type: Dict[int, Optional[str]]
    for e in entries:
        try:
            frames = snap.backtrace(e.task).frames
        except CrashExtError:
            out[e.task] = None
            continue
        _, kind, mode, _ = classify_stack(frames)
        out[e.task] = mode if kind == "rw_semaphore" else None
    return out


# -------------------------------------------------------------- the report

def lock_report(port: Port, addr: int, lock_type: Optional[str] = None,
                snapshot: Optional[Snapshot] = None, container=None,
                candidates: bool = True, max_waiters: int = MAX_WAITERS) -> LockReport:
    """Return a :class:`LockReport` for the lock at ``addr``.

    ``lock_type``: a kind or C type (``mutex``, ``struct rw_semaphore``...); None to
    detect it (the symbol's declared type, a blocked task confirmed on its wait list,
    the shape of its memory) -- when that fails the report has type ``unknown`` and
    ``problems`` lists what was tried.  ``container``: (type, member, address) when the
    caller named the lock as ``STRUCT.MEMBER`` of an object.  ``candidates``: rank
    possible holders of a lock that records no owner (reads every blocked task's stack
    once through ``snapshot``).

    Raises BadArgument (NULL, user-space address, unknown type) and MemoryReadError
    (address not in the dump).  Bad lock contents are reported, not raised.
    """
    snap = snapshot or Snapshot(port)
    cache = session_cache(snap)
    addr = int(addr)
    if addr == 0 or addr < L.KERNEL_START:
        check_lock_address(port, addr, 8)
    rep = LockReport(address=addr, type="unknown")
    kind = None
    if lock_type:
        kind = L.normalize_kind(lock_type)
        if kind is None:
            raise BadArgument("not a lock type crash-ext decodes: %r (known: %s)"
                              % (lock_type, ", ".join(L.KINDS)))
        rep.state["type_from"] = "given" if container is None else \
            "declared type of %s.%s" % (container[0], container[1])
    else:
        check_lock_address(port, addr, 8)
        tried = []  # type: List[str]
        found = _detect_type(port, addr, snap, tried)
        if found is None:
            rep.problems.append("lock type not detected; tried: " + "; ".join(tried) +
                                ". Give it with -t TYPE or as STRUCT.MEMBER")
            _where(port, addr, "unknown", container, rep, snap)
            return rep
        kind, how = found
        rep.state["type_from"] = how
    layout = L.probe_layout(port, kind)
    rep.type = kind
    rep.layout = layout.name
    for n in layout.notes:
        rep.problems.append(n)
    raw = check_lock_address(port, addr, layout.size)
    cont_addr = _where(port, addr, kind, container, rep, snap)
    st = L.decode_state(layout, raw, read_u64=port.read_u64)
    rep.locked = st.locked
    rep.flags = list(st.flags)
    rep.readers = st.readers
    rep.state.update(st.fields)
    if st.mode:
        rep.state["held_as"] = st.mode
    rep.problems.extend(st.problems)
    walk = cache.walk(port, layout, addr, raw=raw, cap=max_waiters)
    entries = walk.entries
    if walk.damaged is not None:
        # only what the list itself confirms: entries past a broken link are not shown
        rep.problems.append("wait list of %s %x is corrupt after %d entr%s: %s" % (
            kind, addr, walk.sound, "y" if walk.sound == 1 else "ies", walk.damaged))
        rep.problems.extend(p for p in walk.problems if p != walk.damaged)
        if len(entries) > walk.sound:
            rep.problems.append("%d entr%s reached past the damage not listed as waiters"
                                % (len(entries) - walk.sound,
                                   "y" if len(entries) - walk.sound == 1 else "ies"))
        entries = entries[:walk.sound]
    else:
        rep.problems.extend(walk.problems)
    known = 0
    modes = _rbtree_modes(snap, entries) if (
        kind == "rw_semaphore" and layout.wait_kind == "rbtree") else {}
    for e in entries:
        if e.mode is None and modes.get(e.task):
            e = e._replace(mode=modes[e.task])
        ref = cache.ref(e.task)
        if ref.pid is not None:
            known += 1
        else:
            rep.problems.append("waiter record %x names task %x, which is not a task "
                                "crash lists" % (e.waiter, e.task))
        rep.waiters.append(Waiter(task=ref, mode=e.mode))
    if entries and known == 0:
        rep.problems.append("no waiter names a real task: this is probably not a %s"
                            % kind)
    if st.owner_task is not None:
        ref = cache.ref(st.owner_task)
        if ref.pid is None:
            rep.problems.append("owner field points at %x, which is not a task crash "
                                "lists: not a %s, or corrupt" % (st.owner_task, kind))
            rep.state["owner_field_task"] = "%#x" % st.owner_task
        else:
            rep.owner, rep.owner_source = ref, st.owner_source
    if st.hint_task is not None:
        ref = cache.ref(st.hint_task)
        if ref.pid is not None:
            rep.owner_hint, rep.owner_hint_why = ref, st.hint_why
        else:
            rep.problems.append("owner hint %x is not a task crash lists" % st.hint_task)
    if kind == "mutex" and st.locked is False and entries:
        rep.problems.append("unlocked mutex with waiters: caught between release and "
                            "wake-up, or not a mutex")
    need_cands = (candidates and st.locked and rep.owner is None and
                  kind in ("semaphore", "rw_semaphore", "mutex", "spinlock"))
    if need_cands:
        from .candidates import rank_candidates
        rep.candidates = rank_candidates(port, snap, rep, cont_addr)
    return rep
