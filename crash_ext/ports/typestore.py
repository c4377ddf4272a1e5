"""Type facts kept on disk per vmlinux, so a new crash session does not ask gdb again.

gdb answers the first look-up of a struct in a session slowly (it expands the debug
information of a compilation unit: 30-150 ms each); ``deadlock`` needs about ten such
answers.  They are facts of the vmlinux's debuginfo, the same in every session and every
dump of that kernel build, so :class:`TypeStore` keeps them in
``$CRASH_EXT_CACHE/types/<build-id>.json`` (default ``~/.cache/crash-ext``; or
``$CRASH_EXT_TYPES/<build-id>.json``), keyed by the
vmlinux's GNU build-id (or its path, size and mtime when it has none).

Only type facts are kept -- struct sizes, member offsets and types, enumerator values --
never symbol addresses (KASLR moves them per dump) and never that a *type* is missing (a
module loaded later may define it).  ``CRASH_EXT_TYPE_CACHE=0`` turns the store off; it
is never used on a live system (nothing is written on the machine being examined).
"""

import os
import struct
import zlib
from ..compat import Dict, Optional
from ..core import jsontext
from ..core.live import reads_running_kernel

__all__ = ["TypeStore", "build_id", "session_files", "PERSISTED"]

#: memo keys (first element) that are facts of the debuginfo
PERSISTED = ("ctype", "size", "off", "mtype", "idents", "struct_o", "enum")
_VERSION = 2   # 2: answers in gdb language C (1 may hold "list_head" for "struct list_head")


def build_id(path: str) -> Optional[str]:
    """Return the hex GNU build-id of ELF file ``path``, None when it has none or is not
    a readable 64-bit little-endian ELF file."""
    try:
        with open(path, "rb") as f:
            eh = f.read(64)
            if len(eh) < 64 or eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
                return None
            shoff, = struct.unpack_from("<Q", eh, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", eh, 0x3a)
            if not shoff or shentsize < 64 or not 0 < shnum < 4096:
                return None
            f.seek(shoff)
            sh = f.read(shentsize * shnum)
            for i in range(shnum):
                stype, = struct.unpack_from("<I", sh, i * shentsize + 4)
                if stype != 7:          # SHT_NOTE
                    continue
                off, size = struct.unpack_from("<QQ", sh, i * shentsize + 24)
                if size > 1 << 16:
                    continue
                f.seek(off)
                found = _note_build_id(f.read(size))
                if found:
                    return found
    except (OSError, struct.error):
        return None
    return None


def _note_build_id(data: bytes) -> Optional[str]:
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        name_end = pos + 12 + ((namesz + 3) & ~3)
        desc_end = name_end + ((descsz + 3) & ~3)
        if desc_end > len(data):
            return None
        if ntype == 3 and data[pos + 12:pos + 12 + namesz].rstrip(b"\0") == b"GNU":
            return data[name_end:name_end + descsz].hex()
        pos = desc_end
    return None


def _identity(vmlinux: str) -> Optional[str]:
    bid = build_id(vmlinux)
    if bid:
        return bid
    try:
        st = os.stat(vmlinux)
    except OSError:
        return None
    raw = "%s\0%d\0%d" % (os.path.realpath(vmlinux), st.st_size, st.st_mtime_ns)
    data = raw.encode()
    # zlib, not hashlib: pykdump's embedded standard library has no hashlib
    return "path-%08x%08x" % (zlib.crc32(data), zlib.adler32(data))


def session_files(sys_text: str):
    """Return (file holding the types, live) from crash's ``sys`` output: the
    ``DEBUGINFO:`` file when crash names one, else ``KERNEL:``'s (None when neither is
    printed); ``live`` when there is no ``DUMPFILE:`` or it is a device or ``/proc``
    file (crash on a running system)."""
    fields = {}
    for line in sys_text.splitlines():
        key, colon, rest = line.strip().partition(":")
        if colon and key in ("KERNEL", "DEBUGINFO", "DUMPFILE") and rest.split():
            fields[key] = rest.split()[0]
    return (fields.get("DEBUGINFO") or fields.get("KERNEL"),
            reads_running_kernel(fields.get("DUMPFILE")))


def _encode(value):
    if isinstance(value, (set, frozenset)):
        return {"set": sorted(value)}
    return value


def _decode(value):
    if isinstance(value, dict) and "set" in value:
        return set(value["set"])
    return value


class TypeStore:
    """Type facts of one vmlinux on disk (see the module's text)."""

    def __init__(self, path: str):
        self.path = path
        self._saved = 0

    @classmethod
    def for_vmlinux(cls, vmlinux: Optional[str], live: bool = False) -> Optional["TypeStore"]:
        """Return the store of ``vmlinux``, or None: no vmlinux file, a live system, or
        ``CRASH_EXT_TYPE_CACHE=0``."""
        if not vmlinux or live or os.environ.get("CRASH_EXT_TYPE_CACHE", "1") == "0":
            return None
        ident = _identity(vmlinux)
        if ident is None:
            return None
        where = os.environ.get("CRASH_EXT_TYPES") or os.path.join(
            os.environ.get("CRASH_EXT_CACHE") or os.path.expanduser("~/.cache/crash-ext"),
            "types")
        return cls(os.path.join(where, ident + ".json"))

    def load(self) -> Dict[tuple, object]:
        """Return the facts stored (an empty dict when there are none or the file is
        unreadable or from another version of this format)."""
        try:
            with open(self.path) as f:
                doc = jsontext.loads(f.read())
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or doc.get("version") != _VERSION:
            return {}
        out = {}  # type: Dict[tuple, object]
        for item in doc.get("facts", ()):
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], list) \
                    and item[0] and item[0][0] in PERSISTED:
                out[tuple(item[0])] = _decode(item[1])
        self._saved = len(out)
        return out

    @staticmethod
    def facts(memo: Dict[tuple, object]) -> Dict[tuple, object]:
        """Return the entries of ``memo`` that are kept: type facts, without "no such
        type" answers."""
        return {k: v for k, v in memo.items()
                if k and k[0] in PERSISTED and not (k[0] == "ctype" and v is None)
                and not (k[0] == "enum" and v is None)}

    def save(self, memo: Dict[tuple, object]) -> None:
        """Write the type facts of ``memo`` when there are more than the file holds.
        Best effort: a write that fails is skipped (the store is only a speed-up)."""
        facts = self.facts(memo)
        if len(facts) <= self._saved:
            return
        doc = {"version": _VERSION,
               "facts": [[list(k), _encode(v)] for k, v in sorted(
                   facts.items(), key=lambda kv: [str(x) for x in kv[0]])]}
        tmp = "%s.%d.tmp" % (self.path, os.getpid())
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w") as f:
                f.write(jsontext.dumps(doc, separators=(",", ":")))
            os.replace(tmp, self.path)
            self._saved = len(facts)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
