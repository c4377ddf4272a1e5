"""Which vmlinux build a file is: its GNU build-id (read from the ELF file itself, or from
the bytes of a running kernel's notes), or failing that its path, size and mtime.  The
per-build stores (the type store, the code store) are keyed by it."""

import os
import struct
import zlib
from ..compat import Optional

__all__ = ["build_id", "note_build_id", "file_identity"]


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
                found = note_build_id(f.read(size))
                if found:
                    return found
    except (OSError, struct.error):
        return None
    return None


def note_build_id(data: bytes) -> Optional[str]:
    """Return the hex GNU build-id in ELF notes ``data`` (a ``.notes`` section, or the
    bytes between a running kernel's ``__start_notes`` and ``__stop_notes``), None when
    they hold none or are cut short."""
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


def file_identity(vmlinux: str) -> Optional[str]:
    """Return the build identity of file ``vmlinux``: its build-id, else ``path-`` and a
    checksum of its real path, size and mtime; None when the file cannot be read."""
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
