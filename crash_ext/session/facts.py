"""Facts read once per :class:`~.snapshot.Snapshot` and shared by the analyses:
:func:`session_cache`."""

import re
import weakref
from ..core import record
from ..core.caches import SNAPSHOT_FACTS
from ..compat import Dict, List, Optional, Tuple

from ..models import locks as L

from ..models import lockwalk as LW
from ..core.errors import CrashExtError
from ..core.port import Port
from ..core.results import TaskRef
from .identity import live_system
from .snapshot import Snapshot

__all__ = ["SessionCache", "session_cache", "LIVE_REWALKS"]

#: on a live system, times a wait list found damaged is read before it is reported as
#: changing under the walk
LIVE_REWALKS = 3

_PSM = re.compile(r"^\s*\[(?P<t>\d+ \d\d:\d\d:\d\d\.\d+)\]\s+\[(?P<st>[A-Z?]+)\]\s+PID:\s*"
                  r"(?P<pid>\d+)\s+TASK:\s*(?P<task>[0-9a-fA-F]+)")


class SessionCache:
    """Facts read once per :class:`Snapshot`: ``ps -m`` times, wait-list walks, rings
    of waiter records, ``search -t`` results and blocked-on answers.  Shared by
    :func:`~.lockreport.lock_report` and :func:`~crash_ext.waits.blockedon.blocked_on`.

    ``read_last_ran``: fill ``TaskRef.last_ran`` from ``ps -m`` (one command, but slow
    with thousands of tasks: seconds); False leaves it None."""

    def __init__(self, snapshot: Snapshot, read_last_ran: bool = True):
        # weakly: the cache lives as long as its snapshot, in a WeakKeyDictionary
        # keyed by it, which a strong reference here would keep alive for ever
        self._snap = weakref.ref(snapshot)
        self.read_last_ran = read_last_ran
        self.last_ran = None  # type: Optional[Dict[int, str]]
        self.walks = {}  # type: Dict[Tuple[str, int], L.WaitWalk]
        self.rings = {}  # type: Dict[int, Tuple[List[int], List[str]]]
        self.searches = {}  # type: Dict[int, Dict[int, List[int]]]
        self.blocked = {}  # type: Dict[int, object]
        self.states = {}  # type: Dict[Tuple[str, int], L.LockState]
        self.slabs = {}  # type: Dict[int, Optional[Dict[str, object]]]
        #: {task: why the wait list of one of its lock frames is corrupt before it}
        self.damaged_for = {}  # type: Dict[int, str]
        #: {task: stack words tried as its lock that are on pages not in the dump}
        self.excluded_for = {}  # type: Dict[int, List[int]]
        #: waits.py's completion facts (record layouts, lists walked)
        self.completion_waits = {}  # type: Dict[object, object]
        #: blockedon.rt_lock_waiters' answer, None until asked
        self.rt_lock_waiters = None  # type: Optional[List[object]]

    @property
    def live(self) -> bool:
        """True when the snapshot's crash reads a running kernel (the port's dump
        identity, read once per port)."""
        return live_system(self.snap.port)

    @property
    def snap(self) -> Snapshot:
        """The snapshot this cache belongs to."""
        return self._snap()

    def ps_m(self) -> Dict[int, str]:
        """Return {task address: time since it last ran, as ``ps -m`` prints it}."""
        if self.last_ran is None:
            self.last_ran = {}
            try:
                out = self.snap.port.command("ps -m")
            except CrashExtError:
                out = ""
            for line in out.splitlines():
                m = _PSM.match(line)
                if m:
                    self.last_ran[int(m.group("task"), 16)] = "[%s]" % m.group("t")
        return self.last_ran

    def ref(self, task: int) -> TaskRef:
        """Return a TaskRef for ``task`` with its last-ran time filled in."""
        r = self.snap.ref(task)
        if self.read_last_ran:
            r = record.replace(r, last_ran=self.ps_m().get(task))
        return r

    def remember_blocked(self, answers: Dict[int, object]) -> None:
        """Keep blocked-on answers found elsewhere (e.g. from back traces already
        classified) so that :func:`~crash_ext.waits.blockedon.blocked_on` returns
        them instead of searching again; answers already known are kept."""
        for task, b in answers.items():
            self.blocked.setdefault(task, b)

    def walk(self, port: Port, layout: L.LockLayout, addr: int,
             raw: Optional[bytes] = None, cap: int = L.MAX_WAITERS,
             known: Optional[Dict[int, tuple]] = None) -> L.WaitWalk:
        """Return (cached) :func:`~crash_ext.models.locks.walk_waiters` of ``addr``."""
        key = (layout.kind, addr)
        w = self.walks.get(key)
        if w is None or (not w.complete and cap > len(w.entries)
                         and any("cap" in p for p in w.problems)):
            w = LW.walk_waiters(port, layout, addr, raw=raw, cap=cap, known=known)
            if w.damaged is not None and self.live:
                # a running kernel's list moves under the walk: read it again, from
                # memory (not from stack words a back trace printed earlier)
                base = port.base_port
                for n in range(2, LIVE_REWALKS + 1):
                    w = LW.walk_waiters(base, layout, addr, cap=cap, known=known)
                    if w.damaged is None:
                        break
                    w = record.replace(w, moving=n)
            self.walks[key] = w
        return w

    def ring(self, port: Port, start: int, cap: int = L.MAX_WAITERS + 2
                 ) -> Tuple[List[int], List[str]]:
        """Return (nodes of the list ring through ``start`` following ``next``, problems);
        cached per node."""
        if start in self.rings:
            return self.rings[start]
        nodes = [start]
        seen = {start}
        probs = []  # type: List[str]
        cur = start
        for _ in range(cap):
            try:
                nxt = port.read_u64(cur)
            except CrashExtError as e:
                probs.append("cannot read list node %#x: %s" % (cur, e))
                break
            if nxt == start:
                break
            if not L.is_kernel_pointer(nxt) or nxt in seen:
                probs.append("list through %#x is broken at %#x -> %#x" % (start, cur, nxt))
                break
            nodes.append(nxt)
            seen.add(nxt)
            cur = nxt
        else:
            probs.append("list through %#x longer than %d nodes" % (start, cap))
        out = (nodes, probs)
        if not probs:
            for n in nodes:
                self.rings[n] = out
        else:
            self.rings[start] = out
        return out

    def search_stacks(self, value: int) -> Dict[int, List[int]]:
        """Return {task address: [stack addresses holding ``value``]} from crash's
        ``search -t`` (every task's kernel stack, live frames and stale words)."""
        if value not in self.searches:
            res = {}  # type: Dict[int, List[int]]
            try:
                out = self.snap.port.command("search -t %x" % value)
            except CrashExtError:
                out = ""
            task = None
            for line in out.splitlines():
                m = re.match(r"^PID:\s*\d+\s+TASK:\s*([0-9a-fA-F]+)", line.strip())
                if m:
                    task = int(m.group(1), 16)
                    res.setdefault(task, [])
                    continue
                m = re.match(r"^([0-9a-fA-F]+):\s+([0-9a-fA-F]+)", line.strip())
                if m and task is not None and int(m.group(2), 16) == value:
                    res[task].append(int(m.group(1), 16))
            self.searches[value] = res
        return self.searches[value]


def session_cache(snapshot: Snapshot, last_ran: Optional[bool] = None) -> SessionCache:
    """Return the :class:`SessionCache` of ``snapshot`` (made on first use).

    ``last_ran``: True/False to read (or not) ``ps -m`` for the tasks' last-ran times
    from now on (see :class:`SessionCache`); None leaves the setting (default True)."""
    c = SNAPSHOT_FACTS.get(snapshot, lambda: SessionCache(snapshot))
    if last_ran is not None:
        c.read_last_ran = bool(last_ran)
    return c
