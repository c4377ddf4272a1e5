"""What a task holds: the locks each frame's code took before its current call and has
not released on the way (the ``holds`` analysis).

For one function and one call site (the instruction before a frame's return address):

1. The function is run symbolically (:mod:`.flow`, the dataflow ``argrecover`` uses),
   so the lock argument of every earlier call is a value ``symbol + offset``: a
   constant (``down(&some_global_sem)``, RIP-relative or immediate), or an entry
   register, a load, ... of this function.
2. A forward *must* analysis over its control-flow graph keeps the locks acquired on
   every path from the entry to the call site: a call of a lock primitive
   (:mod:`~crash_ext.models.lockcalls`) acquires; a trylock (or ``_interruptible``/
   ``_killable``) acquires only on the branch where its return value says success; a
   release of the same lock removes it, and a release of a lock of the same kind whose
   address cannot be told apart removes it too (never claim a lock the code may have
   dropped).  A direct callee is summarised once per function ("acquires arg0+0x50 as a
   semaphore", "releases arg0+0x50"), from its own primitives, and that summary is
   applied at each call of it (wrappers like ``xfs_ilock(ip)``, ``inode_lock(inode)``,
   ``mmap_read_lock(mm)``).
3. Each held value is located where the dump keeps it at the call site: a constant, a
   callee-saved register (its value from ``argrecover``), a stack slot of the frame, an
   argument ``argrecover`` recovered, or memory loaded through one of those.

Per-function work (disassembly, flows, summaries, the held values at a call site) is
cached per analyser (one per port); per task only the locations are read.

Where the kernel records held locks itself (lockdep's ``task_struct.held_locks`` on
debug kernels) :func:`~.lockdep.lockdep_held` reads them, and they come first.  The
records are in :mod:`.holdrecords`, steps 1-2 in :mod:`.mustheld`; here the analyser
that keeps the per-function work for a crash session and answers per task.
"""

from ..compat import Dict, List, Optional, Set, Tuple

from ..core.caches import HOLDS, HeldWeakly
from ..core.errors import CrashExtError
from ..models import locks as L
from ..models import lockstate as LS
from ..models import lockwalk as LW
from ..models.disasm import Insn
from ..models.waitframes import SCHED_FUNCS, classify_function
from . import flow as fl
from .argrecords import parsed, task_words
from .holdrecords import (MASK, HeldLock, SiteLock, Summary, TaskHolds, article, base_name,
                          mode_words)
from .lockdep import dep_map_offsets, lockdep_held, lockdep_locks, lockdep_matches
from .mustheld import SiteRelease, SummaryFn, function_site, loc_text, summarise
from .sources import sources_for

__all__ = ["HoldsAnalyser", "analyser_for", "code_holders", "held_now"]

#: callees of a frame's function are summarised from their own calls of lock
#: primitives (depth 0: the wrappers ``xfs_ilock``, ``mmap_read_lock`` call them
#: directly); each level deeper also summarises the callees' callees (depth 1: a
#: dispatcher calling wrappers, ``lab_take`` -> ``lab_mutex_lock`` -> ``mutex_lock``)
SUMMARY_DEPTH = 1
def held_now(port, addr: int, kind: str, task: int, memo: Optional[dict] = None
             ) -> Tuple[bool, str, Optional[str]]:
    """Return (the dump agrees ``task`` may hold it, words why, mode) for the lock of
    ``kind`` at ``addr``: it must decode as locked, with a sound wait list, and an owner
    field that names ``task`` or nobody; a spinning lock only when its owner field
    names ``task`` (a task asleep holds none; PREEMPT_RT's record their owner).
    ``mode``: 'writer'/'reader' when the lock's state tells.  ``memo``: {(addr, kind):
    what was read of the lock} shared by the calls that read the same memory (a
    convoy's lock is asked once per task that may hold it).  Never raises."""
    got = memo.get((addr, kind)) if memo is not None else None
    if got is None:
        got = _lock_now(port, addr, kind)
        if memo is not None:
            memo[(addr, kind)] = got
    cannot, st, ww = got
    if cannot is not None:
        return False, cannot, None
    if not st.locked:
        return False, "free in the dump" if st.locked is False else \
            "its state does not say locked", None
    if st.owner_task is not None and st.owner_task != task:
        return False, "its owner field names another task (%x)" % st.owner_task, None
    if ww is not None:
        if ww.damaged:
            return False, "not %s: %s" % (article(kind), ww.damaged), None
        if any(e.task == task for e in ww.entries):
            return False, "the task waits for it itself", None
    if kind in ("spinlock", "rwlock") and st.owner_task != task:
        return False, "a sleeping task holds no spinning lock", None
    words = ", ".join("%s=%s" % kv for kv in sorted(st.fields.items()))
    who = "its owner field names this task" if st.owner_task == task else \
        "it records no owner"
    return True, "locked in the dump (%s; %s)" % (words, who), st.mode


def _lock_now(port, addr: int, kind: str):
    """Return (why it cannot be read or None, its decoded state, the walk of its wait
    list (None when it is not locked or keeps none)) for :func:`held_now`."""
    try:
        lay = L.probe_layout(port, kind)
        raw = port.read(addr, lay.size)
    except CrashExtError as e:
        return "cannot read it as %s: %s" % (article(kind), e), None, None
    st = LS.decode_state(lay, raw, read_u64=port.read_u64)
    ww = None
    if st.locked and lay.wait_kind is not None:
        ww = LW.walk_waiters(port, lay, addr, raw, cap=64)
    return None, st, ww


# ------------------------------------------------------------------- per port

class HoldsAnalyser:
    """The holds analysis on one port, with its per-function caches.

    ``sources``: :class:`~crash_ext.code.sources.PortSources` (disassembly and argument
    recovery, shared with ``argrecover``)."""

    #: weakly: ``caches.HOLDS`` is keyed by it
    port = HeldWeakly()

    def __init__(self, port, sources=None):
        self.port = port
        self.src = sources or sources_for(port)
        self.summaries = {}  # type: Dict[Tuple[int, int], Optional[Summary]]
        self.sites = {}  # type: Dict[int, Tuple[List[SiteLock], List[SiteRelease], Optional[str]]]
        self.dep_maps = None  # type: Optional[Dict[str, int]]
        self.tasks = {}  # type: Dict[tuple, TaskHolds]
        self.locks = {}  # type: dict      # held_now's memo: what was read of each lock
        self.mem = None                     # memory of the task_holds call under way
        self.has_lockdep = None  # type: Optional[bool]

    def rebind(self, port, fixed: bool) -> None:
        """Work through ``port``, a later port of this one's crash session (see
        :meth:`~crash_ext.core.caches.Cache.for_session`); what each task holds is dropped unless
        ``fixed`` (the stacks of a live system move)."""
        self.port = port
        self.src = sources_for(port)
        if not fixed:
            self.tasks = {}
            self.locks = {}

    def _insns(self, addr: int) -> List[Insn]:
        return parsed(self.src.dis(addr) or "")

    def summary(self, addr: int, name: str, depth: int = SUMMARY_DEPTH) -> Optional[Summary]:
        """Return the Summary of the function at ``addr`` (cached), None when its code
        cannot be read."""
        key = (addr, depth)
        if key in self.summaries:
            return self.summaries[key]
        st = self.src.stored()
        if st is not None:
            found, got = st.summary(addr, depth)
            if found:
                self.summaries[key] = got
                return got
        self.summaries[key] = None          # recursion guard
        try:
            insns = self._insns(addr)
        except CrashExtError:
            return None
        if not insns or insns[0].addr != addr:
            return None
        sub = self._summary_fn(depth - 1) if depth > 0 else None
        s = summarise(name, insns, sub, self.src.dis)
        self.summaries[key] = s
        if st is not None and s is not None:
            st.keep_summary(addr, depth, s)
        return s

    def _summary_fn(self, depth: int) -> SummaryFn:
        def of(ins: Insn) -> Optional[Summary]:
            t = ins.branch_target()
            name = base_name(ins.branch_target_sym())
            if t is None or name is None or "+" in (ins.branch_target_sym() or ""):
                return None
            if name in fl.PRESERVE_ALL_CALLS or name.startswith("__x86_indirect") or \
                    name.startswith("__stack_chk"):
                return None
            return self.summary(t, name, depth)
        return of

    def site(self, ret_addr: int) -> Tuple[List[SiteLock], List[SiteRelease], Optional[str]]:
        """Return (SiteLocks, SiteReleases, problem) for the call before ``ret_addr``
        (cached)."""
        if ret_addr in self.sites:
            return self.sites[ret_addr]
        st = self.src.stored()
        got = st.site(ret_addr) if st is not None else None
        if got is not None:
            self.sites[ret_addr] = got
            return got
        try:
            insns = self._insns(ret_addr)
        except CrashExtError as e:
            r = ([], [], "no disassembly: %s" % e)   # type: tuple
            self.sites[ret_addr] = r
            return r
        idx = None
        for i, ins in enumerate(insns):
            if ins.addr == ret_addr:
                idx = i
                break
        if not idx or insns[idx - 1].mnemonic != "call":
            r = ([], [], "the instruction before the return address is not a call")
        else:
            r = function_site(insns, idx - 1, self._summary_fn(SUMMARY_DEPTH),
                              self.src.dis)
        self.sites[ret_addr] = r
        if st is not None:
            st.keep_site(ret_addr, r)
        return r

    # -- per task --------------------------------------------------------------------
    def task_holds(self, bt, above: Optional[int] = None, args=None, reader=None
                   ) -> TaskHolds:
        """Return what the task of back trace ``bt`` holds: lockdep's record when the
        kernel keeps one, else the locks its frames' code holds (frames with index
        greater than ``above``, the frame it blocks in, when given).  ``args``: its
        TaskArgs when already recovered (recovered here only when a lock's address
        needs it).  ``reader``: the port this call reads memory through (a snapshot's
        :class:`~crash_ext.session.snapshot.StackReadPort`, which answers stack words
        from the printed stacks: a lock's waiters live there), default the analyser's
        port.  Never raises for unreadable code or memory (they become notes)."""
        key = (bt.task, above, args is None,
               tuple((f.sp, f.ret_addr) for f in bt.frames[:2]), len(bt.frames))
        got = self.tasks.get(key)
        if got is None:
            if len(self.tasks) > 65536:
                self.tasks.clear()
            self.mem = reader
            try:
                got = self.tasks[key] = self._task_holds(bt, above, args)
            finally:
                self.mem = None
        return got

    def _task_holds(self, bt, above, args) -> TaskHolds:
        out = TaskHolds(task=bt.task, pid=bt.pid)
        dep = self._lockdep(bt.task, out)
        if dep is not None:
            out.held = dep
            return out
        frames = sorted(bt.frames, key=lambda f: f.index)
        todo = []
        for f in frames:                        # innermost first
            if f.ret_addr is None or f.exception_rip or f.regs or f.function in SCHED_FUNCS:
                continue
            k, _m, o = classify_function(f.function)
            todo.append((f, (above is not None and f.index <= above) or k is not None or
                         o is not None))
        # the frames that may hold first; the inner ones (lock and wait code) are read
        # for their releases only when some frame holds a lock
        if not any(self.site(f.ret_addr)[0] for f, inner in todo if not inner):
            return out
        sites = []
        for f, inner in todo:
            locks, rels, _problem = self.site(f.ret_addr)
            if locks or rels:
                sites.append((f, [] if inner else locks, rels))
        words = None
        dropped = []  # type: List[Tuple[object, SiteRelease]]   # releases further in
        for f, locks, rels in sites:
            maybe = [sl for sl in locks if sl.acq.may is not None]
            for sl in locks:
                if sl.acq.may is not None:
                    continue
                if sl.loc is None:
                    out.notes.append(
                        "frame #%d %s holds %s taken by %s at %s, but its address is kept "
                        "nowhere the dump shows" % (f.index, f.function, article(sl.acq.kind),
                                                    sl.acq.call, sl.acq.where))
                    continue
                if args is None and _needs_args(sl.loc):
                    args = self._args(bt)
                if words is None:
                    words = task_words(bt)
                val, how, weak = self._value(bt, f, sl.loc, args, words, sl.rsp)
                gone = self._released_further_in(bt, dropped, sl.acq.kind, val, args, words)
                if gone is not None:
                    out.notes.append("frame #%d %s took %s by %s at %s, but frame #%d %s may "
                                     "have released it (%s) before it blocked: not counted"
                                     % (f.index, f.function, article(sl.acq.kind),
                                        sl.acq.call, sl.acq.where, gone[0].index,
                                        gone[0].function, gone[1].how))
                    continue
                if val is None:
                    out.notes.append("frame #%d %s holds %s taken by %s at %s; its address "
                                     "(%s) is not recovered%s" % (
                                         f.index, f.function, article(sl.acq.kind),
                                         sl.acq.call, sl.acq.where, loc_text(sl.loc),
                                         ": " + how if how else ""))
                    continue
                out.held.append(HeldLock(
                    address=val, kind=sl.acq.kind, mode=sl.acq.mode, frame=f.index,
                    function=f.function, source="code", weak=weak,
                    evidence=[_evidence(f, sl, val, how)]))
            if maybe:
                if args is None and any(sl.loc and _needs_args(sl.loc) for sl in maybe):
                    args = self._args(bt)
                if words is None:
                    words = task_words(bt)
                self._path_dependent(bt, f, maybe, args, words, dropped, out)
            dropped.extend((f, r) for r in rels)
        return out

    def _path_dependent(self, bt, f, maybe: List[SiteLock], args, words, dropped,
                        out: TaskHolds) -> None:
        """Add to ``out`` the locks of ``maybe`` (frame ``f``'s callees took them on some
        paths: :attr:`Acq.may`) that the dump shows held (:func:`held_now`), one per
        address; a note for a call none of whose locks is."""
        groups = {}  # type: Dict[Tuple[str, str], List[SiteLock]]
        for sl in maybe:
            groups.setdefault((sl.acq.call, sl.acq.where), []).append(sl)
        for (call, where), sls in sorted(groups.items()):
            n = sls[0].acq.may[1]
            seen = {}  # type: Dict[int, list]
            why_not = []  # type: List[str]
            for sl in sls:
                what = sl.acq.may[2]
                if sl.loc is None:
                    why_not.append("%s: its address is kept nowhere the dump shows" % what)
                    continue
                val, how, weak = self._value(bt, f, sl.loc, args, words, sl.rsp)
                if val is None:
                    why_not.append("%s: address not recovered%s" % (
                        what, " (" + how + ")" if how else ""))
                    continue
                if self._released_further_in(bt, dropped, sl.acq.kind, val, args,
                                             words) is not None:
                    why_not.append("%s (%x): an inner frame may have released it" % (what, val))
                    continue
                ok, why, mode = held_now(self.mem or self.port, val, sl.acq.kind, bt.task,
                                         self.locks)
                if not ok:
                    why_not.append("%s (%x): %s" % (what, val, why))
                    continue
                seen.setdefault(val, []).append((sl, how, weak, why, mode))
            kept = 0
            for val, alts in sorted(seen.items()):
                kinds = sorted({a[0].acq.kind for a in alts})
                if len(kinds) > 1:
                    out.notes.append("frame #%d %s: %s at %s may have taken %x as %s: the "
                                     "dump does not tell which" % (
                                         f.index, f.function, call, where, val,
                                         " or ".join(article(k) for k in kinds)))
                    continue
                sl, how, weak, why, mode = next(
                    (a for a in alts if a[4] and a[0].acq.mode == a[4]), alts[0])
                if mode is None and len({a[0].acq.mode for a in alts}) == 1:
                    mode = sl.acq.mode
                kept += 1
                ev = [_evidence(f, sl, val, how) + "; that path is inferred: the lock is "
                      "%s" % why]
                if why_not:
                    ev.append("the other locks %s takes on other paths are not held: %s"
                              % (call, "; ".join(why_not)))
                out.held.append(HeldLock(
                    address=val, kind=sl.acq.kind, mode=mode, frame=f.index,
                    function=f.function, source="code", weak=weak, path_dependent=True,
                    evidence=ev))
            if not kept:
                out.notes.append("frame #%d %s: %s at %s %s depending on the path; the dump "
                                 "shows %s held (%s)" % (
                                     f.index, f.function, call, where,
                                     "takes one of %d locks" % n if n else "takes a lock",
                                     "none of them" if n > 1 else "it not",
                                     "; ".join(why_not) or "no address known"))

    def _released_further_in(self, bt, dropped, kind: str, val: Optional[int], args, words):
        """The (frame, SiteRelease) of an inner frame that may have released a lock of
        ``kind`` at ``val`` (None: any), or None."""
        for g, r in dropped:
            if r.kind != kind:
                continue
            if r.loc is None or val is None:
                return g, r
            if _needs_args(r.loc) and args is None:
                args = self._args(bt)
            v, _how, _weak = self._value(bt, g, r.loc, args, words, r.rsp)
            if v is None or v == val:
                return g, r
        return None

    def _args(self, bt):
        try:
            return self.src.recover(bt)
        except CrashExtError:
            return None

    def _value(self, bt, f, loc, args, words, rsp=None):
        """(value, how, weak) of a location in frame ``f``; value None when unknown."""
        kind = loc[0]
        if kind == "const":
            return loc[1], "", False
        if kind in ("reg", "arg"):
            fa = args.frame(f.index) if args is not None else None
            if fa is None:
                return None, "argument recovery did not cover the frame", False
            if kind == "reg":
                v = fa.registers.get(loc[1])
                if v is None:
                    return None, "%%%s at the call is not recovered" % loc[1], False
                return (v + loc[2]) & MASK, "%%%s = %x, recovered by argrecover" % (
                    loc[1], v), False
            for a in fa.args:
                if a.register == loc[1] and a.status == "recovered" and a.value is not None:
                    return (a.value + loc[2]) & MASK, "its argument %s (%%%s) = %x " \
                        "(recovered by argrecover)" % (a.name, loc[1], a.value), a.weak
            return None, "argument %%%s is not recovered" % loc[1], False
        if kind == "slot":
            st_rsp = rsp
            if st_rsp is None:
                return None, "the frame's stack pointer is not known", False
            entry_rsp = (f.sp + 8 - st_rsp) & MASK
            addr = (entry_rsp + loc[1]) & MASK
            w = words.get(addr)
            if w is None:
                try:
                    w = (self.mem or self.port).read_u64(addr)
                except CrashExtError:
                    return None, "stack slot %x unreadable" % addr, False
            return (w + loc[2]) & MASK, "stack slot %x = %x" % (addr, w), False
        if kind == "load":
            inner, how, weak = self._value(bt, f, loc[1], args, words, rsp)
            if inner is None:
                return None, how, weak
            try:
                w = (self.mem or self.port).read_u64(inner)
            except CrashExtError:
                return None, "memory at %x unreadable" % inner, False
            return (w + loc[2]) & MASK, "%s; [%x] = %x read from the dump (assumed " \
                "unchanged since it was loaded)" % (how, inner, w), True
        return None, "", False

    def _lockdep(self, task: int, out: TaskHolds) -> Optional[List[HeldLock]]:
        if self.has_lockdep is False:
            return None
        try:
            recs = lockdep_held(self.port, task)
        except CrashExtError as e:
            out.notes.append("lockdep's held_locks could not be read: %s" % e)
            return None
        self.has_lockdep = recs is not None
        if recs is None:
            return None
        if self.dep_maps is None:
            self.dep_maps = dep_map_offsets(self.port)
        return lockdep_locks(recs, self.dep_maps, self.port.address_symbol)


def code_holders(port, backtraces: Dict[int, object], blocked: Dict[int, object],
                 locks: Set[int]) -> Dict[int, List[Tuple[int, HeldLock]]]:
    """Return {lock address: [(task, HeldLock)]} for the ``locks`` that tasks of
    ``backtraces`` hold by :meth:`HoldsAnalyser.task_holds` (frames above the one each
    blocks in, from ``blocked``: {task: Blocked}; running tasks are left out: their
    stacks move).  Never raises for crash errors."""
    out = {}  # type: Dict[int, List[Tuple[int, HeldLock]]]
    if not locks:
        return out
    an = analyser_for(port)
    for t, bt in backtraces.items():
        b = blocked.get(t)
        if b is None or getattr(b, "kind", None) == "running" or not getattr(bt, "frames", None):
            continue
        try:
            th = an.task_holds(bt, above=b.frame, reader=port)
        except CrashExtError:
            continue
        for h in th.held:
            a = h.address
            if h.source == "lockdep" and a not in locks:
                a = next((x for x in locks for k in (an.dep_maps or {})
                          if lockdep_matches(h, x, k, an.dep_maps or {})), a)
            if a in locks and t not in [x[0] for x in out.get(a, [])]:
                out.setdefault(a, []).append((t, h))
    return out


def _needs_args(loc) -> bool:
    if loc[0] in ("reg", "arg"):
        return True
    return loc[0] == "load" and _needs_args(loc[1])


def _evidence(f, sl: SiteLock, val: int, how: str) -> str:
    a = sl.acq
    took = "acquired by %s at %s" % (a.call, a.where)
    if a.via:
        took += ", which %s" % a.via.split(" ", 1)[1]
    text = "frame #%d %s: %s%s, no %s on the way to the call at %s" % (
        f.index, f.function, took, mode_words(a.mode) if not a.via else "",
        sl.released_by, sl.at)
    text += "; lock address %x from %s%s" % (val, loc_text(sl.loc), " (" + how + ")"
                                             if how else "")
    return text


def analyser_for(port) -> HoldsAnalyser:
    """Return the HoldsAnalyser shared by every use of ``port`` and of the ports made
    over it (a snapshot's stack-reading port is keyed by its ``base_port``), and, as
    :func:`~crash_ext.code.sources.sources_for` does, by the ports of one crash
    session when they have a ``session_identity`` (pykdump's: one port per verb call):
    the per-function caches live as long as the crash session, across verbs and runs.
    Its per-task answers are kept per back trace (the task's stack pointer), across
    verb calls only when the port's ``memory_fixed()`` says it reads a dump."""
    return HOLDS.for_session(port.base_port, HoldsAnalyser)
