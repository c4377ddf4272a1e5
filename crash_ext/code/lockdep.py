"""Locks the kernel itself records as held: lockdep's ``task_struct.held_locks`` on debug
kernels (``lockdep_depth`` entries of ``struct held_lock``: ``instance`` is the lock's
``dep_map``, so the lock address is ``instance`` minus the offset of ``dep_map``)."""

from ..compat import Dict, List, Optional, Tuple

from .holdrecords import MASK, HeldLock


def lockdep_held(port, task: int) -> Optional[List[Tuple[int, Optional[int]]]]:
    """Return [(lockdep_map address, acquire_ip)] of the locks lockdep records as held
    by ``task`` (``task_struct.held_locks[0..lockdep_depth)``), or None when the kernel
    has no lockdep (no such members).  Raises MemoryReadError for unreadable memory."""
    off_h = port.member_offset("task_struct", "held_locks")
    off_d = port.member_offset("task_struct", "lockdep_depth")
    size = port.type_size("struct held_lock")
    off_i = port.member_offset("held_lock", "instance")
    if None in (off_h, off_d, size, off_i) or not size:
        return None
    off_ip = port.member_offset("held_lock", "acquire_ip")
    depth = port.read_u32(task + off_d)
    cap = 48        # MAX_LOCK_DEPTH
    out = []
    for i in range(min(depth, cap)):
        rec = task + off_h + i * size
        inst = port.read_u64(rec + off_i)
        ip = port.read_u64(rec + off_ip) if off_ip is not None else None
        out.append((inst, ip))
    return out


def dep_map_offsets(port) -> Dict[str, int]:
    """Return {lock kind: offset of its ``dep_map``} for the kinds that have one here."""
    out = {}  # type: Dict[str, int]
    for kind, typ in (("mutex", "mutex"), ("rw_semaphore", "rw_semaphore"),
                      ("spinlock", "spinlock"), ("rt_mutex", "rt_mutex")):
        off = port.member_offset(typ, "dep_map")
        if off is not None:
            out[kind] = off
    return out



def lockdep_locks(recs, dep_maps: Dict[str, int], sym_fn=None) -> List[HeldLock]:
    """Return HeldLocks for lockdep records [(dep_map address, acquire_ip)]: the lock
    address is the dep_map's minus its offset in the lock type, and that type is said
    only when every kind with a dep_map puts it at the same offset (kind 'unknown'
    otherwise, with the candidates in the evidence)."""
    out = []
    offs = sorted(set(dep_maps.values()))
    for inst, ip in recs:
        where = sym_fn(ip) if (sym_fn and ip) else None
        ev = "recorded by lockdep (task_struct.held_locks): lockdep_map %x, acquired " \
             "at %s" % (inst, where or ("%x" % ip if ip else "an unknown ip"))
        if len(offs) == 1 and len(dep_maps) == 1:
            kind = list(dep_maps)[0]
            out.append(HeldLock(address=(inst - offs[0]) & MASK, kind=kind, mode=None,
                                frame=None, function=where, source="lockdep", evidence=[ev]))
        else:
            cands = ", ".join("%s at %x" % (k, (inst - o) & MASK)
                              for k, o in sorted(dep_maps.items()))
            out.append(HeldLock(address=inst, kind="unknown", mode=None, frame=None,
                                function=where, source="lockdep",
                                evidence=[ev + "; the lock is the %s" % (
                                    "one whose dep_map this is: " + cands if cands else
                                    "object containing it")]))
    return out


def lockdep_matches(h: HeldLock, addr: int, kind: str, dep_maps: Dict[str, int]) -> bool:
    """True when lockdep record ``h`` is the lock ``addr`` of ``kind``."""
    if h.kind != "unknown":
        return h.address == addr
    off = dep_maps.get(kind)
    return off is not None and h.address == (addr + off) & MASK
