"""Who holds a lock and who waits on it: :func:`lock_report`.

A report says what the lock is (type, layout, where it lives), its decoded state, the
owner *when the lock records one*, the owner hint when the lock records an unreliable
one (a reader-owned rwsem's last reader, a semaphore's ``last_holder``), ranked
candidate holders with evidence when it records none, and the waiters in queue order.
Odd memory (loops, bad pointers, freed objects) is reported in ``problems``, never
raised.
"""

import re
from ..compat import Dict, List, Optional, Tuple

from ..core.caches import MOUNTS
from ..core.excluded import EXCLUDED, is_excluded
from ..models import locks as L
from ..models import lockstate as LS
from ..models import lockwalk as LW
from ..core.errors import BadArgument, CrashExtError, MemoryReadError
from ..core.port import Port
from ..core.words import check_address_word, check_hex_word, shown
from ..models.waitframes import classify_stack
from .blockedon import blocked_on, corrupt_text, rt_lock_waiters
from .candidates import rank_candidates
from ..core.results import LockReport, TaskRef, Waiter
from ..session.facts import session_cache
from .rtdrain import DRAIN_EVIDENCE, drain_text
from .slabs import slab_info, slab_infos
from ..session.snapshot import Snapshot

__all__ = ["lock_report", "resolve_address", "check_lock_address", "prefetch_locks",
           "MAX_WAITERS"]

MAX_WAITERS = L.MAX_WAITERS

# ----------------------------------------------------------------- addresses

def resolve_address(port: Port, word) -> int:
    """Return the address a user word names: hex (``ffff...``/``0x...``, at most 16
    digits), ``symbol`` or ``symbol+off``.  Raises BadArgument for anything else
    (:func:`~crash_ext.core.words.check_address_word`) or an unknown symbol."""
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
        if is_excluded(e):
            raise MemoryReadError("%#x is %s: the page was left out when the dump was "
                                  "written, not a bad address" % (addr, EXCLUDED))
        raise MemoryReadError("%#x is not readable in this dump (unmapped or not "
                              "captured): %s" % (addr, _short(e)))


def _short(e) -> str:
    s = str(e).strip().splitlines()
    return s[-1] if s else ""


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
        # a slab object is no symbol: see _where
        port.prefetch_symbols(sorted(a for a in locks if cache.slabs.get(a) is None))
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


def _mount_dirs(port: Port) -> Dict[int, str]:
    """Return {super_block address: first mount point} from crash's ``mount``."""
    got = MOUNTS.peek(port.base_port)
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
    MOUNTS.put(port.base_port, res)
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
            if any(e.startswith(DRAIN_EVIDENCE) for e in b.evidence):
                return b.lock_type, ("task %s is blocked in %s and this %s records it "
                                     "as its writer waiting for readers" % (
                                         b.task.pid, b.function, b.lock_type))
            return b.lock_type, ("task %s is blocked in %s and is on this %s's wait "
                                 "list" % (b.task.pid, b.function, b.lock_type))
    tried.append("blocked tasks: %d stack(s) hold the address, none is confirmed on it "
                 "as a wait list" % hits)
    # 3. structure: a wait list whose entries are all known tasks
    for kind in ("mutex", "rw_semaphore", "semaphore"):
        try:
            lay = L.probe_layout(port, kind)
            w = LW.walk_waiters(port, lay, addr, cap=64)
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
    st = LS.decode_state(layout, raw, read_u64=port.read_u64)
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
        rep.problems.append(corrupt_text(kind, addr, walk))
        rep.problems.extend(p for p in walk.problems if p != walk.damaged)
        if len(entries) > walk.sound:
            rep.problems.append("%d entr%s reached past the damage not listed as waiters"
                                % (len(entries) - walk.sound,
                                   "y" if len(entries) - walk.sound == 1 else "ies"))
        entries = entries[:walk.sound]
    else:
        rep.problems.extend(walk.problems)
    known = 0
    if st.pending_writer is not None:
        # PREEMPT_RT: the writer owning the rtmutex, waiting for the readers: first in
        # line (the rbtree's waiters queue behind it on the rtmutex it owns)
        ref = cache.ref(st.pending_writer)
        if ref.pid is not None:
            known += 1
            rep.waiters.append(Waiter(task=ref, mode="writer"))
            rep.state["pending_writer"] = "PID %d: %s" % (ref.pid, drain_text(st.readers))
        else:
            rep.problems.append("rwbase.rtmutex.owner %x (a writer waiting for readers) "
                                "is not a task crash lists" % st.pending_writer)
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
    need_cands = (st.locked and rep.owner is None and
                  kind in ("semaphore", "rw_semaphore", "mutex", "spinlock"))
    if need_cands and candidates:
        rep.candidates = rank_candidates(port, snap, rep, cont_addr)
    elif need_cands:
        rep.state["candidates_searched"] = False
    return rep
