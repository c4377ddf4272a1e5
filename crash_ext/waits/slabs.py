"""Where an address lives in the slab allocator: :func:`slab_info` (one address, ``kmem
-s``) and :func:`slab_infos` (many, in a few commands)."""

import re
from ..compat import Dict, List, Optional

from ..models import locks as L
from ..core.errors import CrashExtError
from ..core.port import Port

__all__ = ["slab_info", "slab_infos", "PAGE_SIZE"]

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
    port.prefetch_structs(["kmem_cache"])   # one look-up for the five members below
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
