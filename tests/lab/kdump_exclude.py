"""A copy of a kdump-compressed lab dump with chosen pages left out, as makedumpfile
leaves out the pages its dump level filters.

    from tests.lab.kdump_exclude import exclude_pages
    exclude_pages(dump.vmcore, copy, [pfn, ...])    # those pages: "page excluded"

makedumpfile's ``-d 31`` leaves out only pages no lock structure lives in (zero, cache,
user, free), so to show what the verbs say when a read they need lands on a left-out page
(a lock, a waiter's stack, an argument's object), the lab drops that page from a copy the
way makedumpfile would have: its bit cleared in the dumpable bitmap (the second of the
file's two bitmaps) and its page descriptor removed from the table (descriptors are kept
one per dumpable page, in page order, so the later ones move up one slot; their data
offsets are absolute and stay right).  crash then answers a read there as for any page
makedumpfile filtered: ``page excluded``.  The cached dump is only ever read.

The layout read here is the kdump-compressed format's (makedumpfile's ``diskdump_mod.h``,
crash's ``diskdump.c``): block 0 the header (``KDUMP   ``, header version, utsname,
timestamp, then status, block size, sub-header blocks, bitmap blocks, max_mapnr), the
sub-header, the two bitmaps, then the 24-byte page descriptors.
"""

import shutil
import struct

SIGNATURE = b"KDUMP   "
#: offset of ``status`` in the header: signature (8), version (4), utsname (6 x 65),
#: padding to 8, timestamp (16)
_FIELDS = 424
DESC_SIZE = 24


class KdumpLayout:
    """Where a kdump-compressed file keeps its dumpable bitmap and page descriptors."""

    def __init__(self, path):
        with open(path, "rb") as f:
            head = f.read(_FIELDS + 24)
        if head[:8] != SIGNATURE:
            raise ValueError("%s is not a kdump-compressed file" % path)
        (_status, self.block_size, sub_blocks, bitmap_blocks,
         self.max_mapnr) = struct.unpack_from("<IiiII", head, _FIELDS)
        bitmap = (1 + sub_blocks) * self.block_size
        half = bitmap_blocks * self.block_size // 2
        #: file offset of the second (dumpable) bitmap, and its length in bytes
        self.dumpable = bitmap + half
        self.dumpable_len = half
        #: file offset of the first page descriptor
        self.descs = (1 + sub_blocks + bitmap_blocks) * self.block_size


def _popcount_below(bitmap, pfn):
    """Return how many bits below ``pfn`` are set in ``bitmap`` (bytes, LSB first)."""
    whole, rest = divmod(pfn, 8)
    n = sum(bin(b).count("1") for b in bitmap[:whole])
    return n + bin(bitmap[whole] & ((1 << rest) - 1)).count("1")


def exclude_pages(src, dest, pfns):
    """Copy the kdump-compressed file ``src`` to ``dest`` with the pages ``pfns`` left
    out; return the pfns that were dumpable in ``src`` (those left out now).  Raises
    ValueError when ``src`` is not a kdump-compressed file or a pfn is past its end."""
    lay = KdumpLayout(src)
    shutil.copyfile(src, dest)
    done = []
    with open(dest, "r+b") as f:
        f.seek(lay.dumpable)
        bitmap = bytearray(f.read(lay.dumpable_len))
        total = _popcount_below(bitmap, len(bitmap) * 8 - 1) + (bitmap[-1] >> 7)
        for pfn in sorted(set(pfns), reverse=True):
            if pfn >= lay.max_mapnr:
                raise ValueError("pfn %#x is past the dump's last page %#x"
                                 % (pfn, lay.max_mapnr - 1))
            if not bitmap[pfn // 8] & (1 << pfn % 8):
                continue
            index = _popcount_below(bitmap, pfn)
            f.seek(lay.descs + (index + 1) * DESC_SIZE)
            later = f.read((total - index - 1) * DESC_SIZE)
            f.seek(lay.descs + index * DESC_SIZE)
            f.write(later + bytes(DESC_SIZE))
            bitmap[pfn // 8] &= ~(1 << pfn % 8) & 0xff
            total -= 1
            done.append(pfn)
        f.seek(lay.dumpable)
        f.write(bytes(bitmap))
    return sorted(done)
