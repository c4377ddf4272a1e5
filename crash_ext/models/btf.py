"""Parameter names of kernel functions from the vmlinux's BTF (``.BTF`` section).

crash's ``whatis FUNC`` prints a prototype with types only (gdb prints a function's
type, which has no parameter names), and gdb's ``info scope FUNC`` -- which lists the
DWARF names -- aborts gdb 10.2 (crash 8.0.x) on any function with a goto label
(``internal-error: get_symbol_address: Assertion 'SYMBOL_CLASS (sym) == LOC_STATIC'``),
killing the crash session.  The kernel's BTF is pahole's copy of the same DWARF
(CONFIG_DEBUG_INFO_BTF): every ``FUNC`` names a ``FUNC_PROTO`` whose parameters carry
their names.  This module reads it from the vmlinux file with :mod:`struct` only (it
runs inside pykdump).

Format: linux/Documentation/bpf/btf.rst (header, type section, string section; type
ids from 1; each type a 12-byte ``btf_type`` and a kind-dependent tail).
"""

import os
import struct
from ..compat import Dict, List, Optional, Tuple
from ..core.caches import BTF_NAMES

__all__ = ["BtfNames", "read_vmlinux_btf", "param_names"]

_MAGIC = 0xEB9F
# bytes after the 12-byte btf_type, per kind: (fixed, per vlen item)
_TAIL = {1: (4, 0), 2: (0, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 7: (0, 0),
         8: (0, 0), 9: (0, 0), 10: (0, 0), 11: (0, 0), 12: (0, 0), 13: (0, 8),
         14: (4, 0), 15: (0, 12), 16: (0, 0), 17: (4, 0), 18: (0, 0), 19: (0, 12)}
_FUNC, _FUNC_PROTO = 12, 13


class BtfNames:
    """The functions a BTF blob describes; their parameter names read on demand."""

    def __init__(self, blob: bytes, sstart: int, str_len: int,
                 funcs: Dict[int, List[int]], protos: Dict[int, Tuple[int, int]]):
        self._blob, self._sstart, self._slen = blob, sstart, str_len
        self._funcs = funcs          # {name offset: [FUNC_PROTO type id]}
        self._protos = protos        # {type id: (offset of its params, count)}
        self._names = {}  # type: Dict[str, Optional[Tuple[str, ...]]]

    def _string(self, off: int) -> str:
        a = self._sstart + off
        end = self._sstart + self._slen
        b = self._blob.find(b"\0", a, end)
        return self._blob[a:b if b >= 0 else end].decode("ascii", "replace")

    def _offset(self, name: str) -> Optional[int]:
        """Return the string-section offset of ``name`` (BTF keeps each string once)."""
        key = b"\0" + name.encode("ascii", "replace") + b"\0"
        at = self._blob.find(key, self._sstart, self._sstart + self._slen)
        while at >= 0:
            off = at + 1 - self._sstart
            if off in self._funcs:
                return off
            at = self._blob.find(key, at + 1, self._sstart + self._slen)
        return None

    def params(self, function: str) -> Optional[Tuple[str, ...]]:
        """Return the parameter names of ``function`` (``()`` for ``(void)``), None
        when BTF does not describe it, or describes two functions of that name (static
        functions of other files) with other names."""
        if function in self._names:
            return self._names[function]
        got = None  # type: Optional[Tuple[str, ...]]
        off = self._offset(function)
        for proto in (self._funcs.get(off, ()) if off is not None else ()):
            p = self._protos.get(proto)
            if p is None:
                continue
            at, n = p
            names = []
            for i in range(n):
                poff, ptype = struct.unpack_from("<II", self._blob, at + 8 * i)
                if poff == 0 and ptype == 0:         # the "..." of a variadic function
                    break
                names.append(self._string(poff) if poff else "")
            if got is not None and got != tuple(names):
                got = None
                break
            got = tuple(names)
        self._names[function] = got
        return got


def parse_btf(blob: bytes) -> BtfNames:
    """Return the functions of the BTF ``blob``; raises ValueError when it is not BTF
    (bad magic, truncated, an unknown type kind)."""
    if len(blob) < 24:
        raise ValueError("BTF: too short")
    magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
    if magic != _MAGIC:
        raise ValueError("BTF: bad magic %#x" % magic)
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
    tstart, sstart = hdr_len + type_off, hdr_len + str_off
    if tstart + type_len > len(blob) or sstart + str_len > len(blob):
        raise ValueError("BTF: sections beyond the blob")
    unpack = struct.Struct("<III").unpack_from
    protos = {}  # type: Dict[int, Tuple[int, int]]
    funcs = {}  # type: Dict[int, List[int]]
    pos, end, tid = tstart, tstart + type_len, 1
    tails = _TAIL
    while pos < end:
        name_off, info, size_type = unpack(blob, pos)
        kind, vlen = (info >> 24) & 0x1f, info & 0xffff
        tail = tails.get(kind)
        if tail is None:
            raise ValueError("BTF: unknown kind %d at type %d" % (kind, tid))
        if kind == _FUNC:
            funcs.setdefault(name_off, []).append(size_type)
        elif kind == _FUNC_PROTO:
            protos[tid] = (pos + 12, vlen)
        pos += 12 + tail[0] + tail[1] * vlen
        tid += 1
    return BtfNames(blob, sstart, str_len, funcs, protos)


def _section(f, name: bytes) -> Optional[bytes]:
    """Return the bytes of ELF64 section ``name`` of the open file ``f``, None when
    the file is not a little-endian ELF64 or has no such section."""
    f.seek(0)
    eh = f.read(64)
    if len(eh) < 64 or eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
        return None
    shoff, = struct.unpack_from("<Q", eh, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", eh, 0x3a)
    if not shoff or shentsize < 64 or not shnum or shstrndx >= shnum:
        return None
    f.seek(shoff)
    table = f.read(shentsize * shnum)
    if len(table) < shentsize * shnum:
        return None
    heads = [struct.unpack_from("<IIQQQQ", table, i * shentsize) for i in range(shnum)]
    _n, _t, _fl, _a, stroff, strsize = heads[shstrndx]
    f.seek(stroff)
    names = f.read(strsize)
    for sh_name, _t, _fl, _a, off, size in heads:
        end = names.find(b"\0", sh_name)
        if names[sh_name:end] == name:
            f.seek(off)
            return f.read(size)
    return None


def read_vmlinux_btf(path: Optional[str]) -> Optional[BtfNames]:
    """Return the BTF parameter names of the vmlinux at ``path``, read once per file
    (path, size, mtime); None when it cannot be read or has no (valid) ``.BTF``.
    Never raises."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    key = (path, st.st_size, int(st.st_mtime))
    kept = BTF_NAMES.peek(key)     # (names,): a file without BTF is kept as (None,)
    if kept is None:
        got = None
        try:
            with open(path, "rb") as f:
                blob = _section(f, b".BTF")
            if blob:
                got = parse_btf(blob)
        except (OSError, ValueError, struct.error):
            got = None
        kept = (got,)
        BTF_NAMES.put(key, kept)
    return kept[0]


def param_names(btf: Optional[BtfNames], function: str, count: int
                ) -> Optional[Tuple[str, ...]]:
    """Return the ``count`` parameter names of ``function`` (a GCC clone suffix such
    as ``.constprop.0`` ignored) when BTF describes it with exactly ``count`` named
    parameters; None otherwise."""
    if btf is None:
        return None
    names = btf.params(function.split(".")[0])
    if names is None or len(names) != count or not all(names):
        return None
    return names
