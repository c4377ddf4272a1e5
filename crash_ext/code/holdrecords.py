"""The records of the holds analysis (:mod:`.holds`): what a call acquires (:class:`Acq`,
:class:`ArgExpr`), a function's summary, a lock held at a call site, what a task holds;
and how they are said in words."""

from ..compat import List, NamedTuple, Optional, Set, Tuple
from ..core.record import dataclass, field

from ..models import x86
from . import flow as fl

MASK = (1 << 64) - 1


class Acq(NamedTuple):
    """A lock a function's code holds: its address as a flow value (``node``+``off``),
    kind and mode, the call that took it and, for a wrapper, the wrapper's own words."""
    node: str
    off: int
    kind: str
    mode: Optional[str]
    call: str            # the function called: 'down', 'lab_xnode_ilock'
    where: str           # the call site: 'lab_gsem_a_section+92'
    via: Optional[str]   # a wrapper's summary line, or None for a primitive
    #: for a lock taken on some paths only (a callee that takes one of several locks,
    #: ``lab_take``/``xfs_ilock(ip, flags)``): (the callee, how many it may take, this
    #: one in the callee's words: ``arg0+0x58 as a mutex``)
    may: Optional[Tuple[str, int, str]] = None


class ArgExpr(NamedTuple):
    """A lock address in a summary: ``reg`` at the function's entry (the constant 0 when
    None), through the memory loads ``loads`` (each: add it, then read a pointer there:
    ``d_inode(l->path.dentry)``), plus ``off``."""
    reg: Optional[str]
    off: int
    kind: str
    mode: Optional[str]
    how: str             # 'down at lab_xnode_ilock+31'
    loads: Tuple[int, ...] = ()


@dataclass
class Summary:
    """What calling a function does to locks: ``acquires`` on every path to its returns,
    ``releases`` (of locks it did not take itself) on some path, and the kinds it
    releases at addresses not expressible in its arguments (``releases_unknown``)."""
    name: str
    acquires: List[ArgExpr] = field(default_factory=list)
    releases: List[ArgExpr] = field(default_factory=list)
    releases_unknown: Set[str] = field(default_factory=set)
    #: locks taken on some paths to its returns but not on all, and released on none
    may_acquire: List[ArgExpr] = field(default_factory=list)

    def describe(self, a: ArgExpr) -> str:
        """``lab_xnode_ilock takes its arg0+0x50 as a semaphore (down at ...)``; for one
        of :attr:`may_acquire`, ``lab_take may take ... (one of its 6 path-dependent
        locks; ...)``."""
        if a in self.may_acquire:
            return "%s may take %s (one of the %d locks it takes on different paths; " \
                   "%s)" % (self.name, what_text(a), len(self.may_acquire), a.how)
        return "%s takes %s (%s)" % (self.name, what_text(a), a.how)


class SiteLock(NamedTuple):
    """A lock held at one call site, located: ``loc`` is ('const', value),
    ('reg', callee-saved register, delta), ('slot', offset from the entry %rsp, delta),
    ('arg', argument register, delta), ('load', inner location, delta), or None (the
    address is kept nowhere the dump shows)."""
    acq: Acq
    loc: Optional[tuple]
    released_by: str     # the release calls that were looked for, for evidence
    at: str              # the call site: 'lab_gsem_a_section+111'
    rsp: Optional[int]   # %rsp at the call site minus %rsp at entry, when known


@dataclass
class HeldLock:
    """A lock a task holds, with how that is known.  ``source``: 'code' (this module's
    analysis of frame ``frame``), 'lockdep' (recorded by the kernel) or 'owner' (the
    lock's own owner field, :func:`~crash_ext.waits.collection.owned_locks`); ``weak``: the
    address rests on memory read now (it may have changed since);
    ``path_dependent``: the frame's code takes it on some paths only (a dispatcher),
    and the lock's state in the dump is what says it was this path."""
    address: int
    kind: str
    mode: Optional[str]
    frame: Optional[int]
    function: Optional[str]
    source: str
    evidence: List[str] = field(default_factory=list)
    weak: bool = False
    path_dependent: bool = False


@dataclass
class TaskHolds:
    """What one task holds (``held``), innermost frame first, and what could not be
    told (``notes``: a held lock whose address is kept nowhere, a frame not analysed)."""
    task: int
    pid: Optional[int] = None
    held: List[HeldLock] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def mode_words(mode: Optional[str]) -> str:
    return {"reader": " for reading", "writer": " for writing"}.get(mode or "", "")


def article(kind: str) -> str:
    return ("an " if kind[:1] in "aeiou" else "a ") + kind


def what_text(a: ArgExpr) -> str:
    """``arg0+0x58 as a mutex``, ``[[arg0+0x88]+0x30]+0xa0 as an rw_semaphore for
    writing``."""
    return "%s as %s%s" % (expr_text(a), article(a.kind), mode_words(a.mode))


def expr_text(a: ArgExpr) -> str:
    if a.reg is None and not a.loads:
        return "%x" % (a.off & MASK)
    if a.reg is None:
        text = "0"
    else:
        i = x86.ARG_REGS.index(a.reg) if a.reg in x86.ARG_REGS else None
        text = "arg%d" % i if i is not None else "%" + a.reg
    for d in a.loads:
        text = "[%s%s]" % (text, "%+#x" % fl.signed(d) if d else "")
    return text + ("%+#x" % fl.signed(a.off) if a.off else "")


def base_name(sym: Optional[str]) -> Optional[str]:
    return sym.split("+")[0] if sym else None

