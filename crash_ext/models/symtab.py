"""crash's symbol table, parsed from ``sym -l``: address -> name the way crash names it.

``sym -l`` prints every symbol crash knows, kernel and modules, in address order::

    ffffffff81a54980 (T) __mutex_lock.constprop.0
    ffffffff90448e80 (T) __memcpy
    ffffffff90448e80 (W) memcpy
    ffffffffc02a0000 MODULE START: crashext_lab

Where several symbols share an address, crash (``value_search()`` in symbols.c) names an
address exactly at them by the first listed (``__memcpy``, not ``memcpy``) unless that
one is a ``.text.*``, ``SyS_*``/``compat_SyS_*`` or ``*_text_start`` name, and an address
inside by the last listed (``__x86_indirect_thunk_rax+12``, not
``__indirect_thunk_start+12``); :meth:`SymbolTable.name_at` follows the same rules.
"""

import bisect
import re
from ..compat import List, Optional, Tuple

__all__ = ["SymbolTable"]

_SYM = re.compile(r"^([0-9a-fA-F]+) \(([A-Za-z?])\) (\S+)")


def _passed_over(name: str) -> bool:
    return name.startswith((".text.", "SyS_", "compat_SyS_")) or "_text_start" in name


class SymbolTable:
    """Names by address (see the module's text); ``len()`` is the number of symbols."""

    def __init__(self, text: str):
        addrs = []  # type: List[int]
        names = []  # type: List[str]
        for line in text.splitlines():
            m = _SYM.match(line)
            if m is None:
                continue
            a = int(m.group(1), 16)
            if addrs and a < addrs[-1]:
                continue                # out of order: keep the table sorted
            addrs.append(a)
            names.append(m.group(3))
        self._addrs = addrs
        self._names = names

    def __len__(self) -> int:
        return len(self._addrs)

    def symbol(self, addr: int, limit: int = 1 << 20, inside: bool = False
               ) -> Optional[Tuple[int, str]]:
        """Return (address, name) of the symbol crash names ``addr`` by, None when no
        symbol lies within ``limit`` bytes below it.  ``inside``: name an address at
        several symbols by the last listed, as crash's ``dis`` names the lines after
        the one asked for."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0 or addr - self._addrs[i] > limit:
            return None
        if addr != self._addrs[i] or inside:
            return self._addrs[i], self._names[i]
        i = bisect.bisect_left(self._addrs, addr)
        n = len(self._addrs)
        while i + 1 < n and self._addrs[i + 1] == addr and _passed_over(self._names[i]):
            i += 1
        return addr, self._names[i]

    def name_at(self, addr: int, limit: int = 1 << 20) -> Optional[str]:
        """Return ``name`` or ``name+OFF`` (decimal, as crash's ``dis`` prints it) for
        ``addr``, the name crash gives it; None when no symbol lies within ``limit``
        bytes below it."""
        got = self.symbol(addr, limit)
        if got is None:
            return None
        return got[1] if got[0] == addr else "%s+%d" % (got[1], addr - got[0])
