"""Equalities between symbolic values, with reasons: a weighted union-find.

Each equation says ``value(a) = value(b) + d`` (mod 2**64) and carries the reason it
holds.  The symbol ``"0"`` is the constant zero, so ``value(a) = c`` is the equation
``(a, "0", c)``.  An equation that contradicts what is already known is kept aside as a
conflict, never merged.
"""

from collections import deque
from ..record import dataclass, field
from ..compat import Dict, List, Optional, Tuple

MASK = (1 << 64) - 1
ZERO = "0"


@dataclass
class Reason:
    """Why an equation holds: ``text`` in words, ``uses``: symbols whose values the
    equation itself relied on (the base register of a stack slot), ``weak``: True when
    it rests on an assumption worth flagging (a slot that a callee could have changed)."""
    text: str
    uses: Tuple[str, ...] = ()
    weak: bool = False


@dataclass
class Conflict:
    """An equation ``a = b + d`` rejected because ``a`` and ``b`` were already known to
    differ by ``known``."""
    a: str
    b: str
    d: int
    known: int
    reason: Reason


@dataclass
class Solver:
    """Union-find over symbols; see the module docstring."""
    parent: Dict[str, str] = field(default_factory=dict)
    weight: Dict[str, int] = field(default_factory=dict)
    adj: Dict[str, List[Tuple[str, int, Reason]]] = field(default_factory=dict)
    conflicts: List[Conflict] = field(default_factory=list)

    def find(self, x: str) -> Tuple[str, int]:
        """Return (root, w) with value(x) = value(root) + w."""
        path = []
        while self.parent.get(x, x) != x:
            path.append(x)
            x = self.parent[x]
        root = x
        # compress
        acc = 0
        for y in reversed(path):
            acc = (acc + self.weight[y]) & MASK
            self.weight[y] = acc
            self.parent[y] = root
        if path:
            return root, self.weight[path[0]]
        return root, 0

    def add(self, a: str, b: str, d: int, reason: Reason) -> bool:
        """Record value(a) = value(b) + d.  Returns False (and records a Conflict) when
        that contradicts what is known; True otherwise."""
        d &= MASK
        ra, wa = self.find(a)
        rb, wb = self.find(b)
        if ra == rb:
            known = (wa - wb) & MASK
            if known != d:
                self.conflicts.append(Conflict(a, b, d, known, reason))
                return False
            self._edge(a, b, d, reason)
            return True
        # value(ra) = value(a) - wa = value(b) + d - wa = value(rb) + wb + d - wa
        w = (wb + d - wa) & MASK
        if ra == ZERO:  # keep ZERO a root
            self.parent[rb] = ra
            self.weight[rb] = (-w) & MASK
        else:
            self.parent[ra] = rb
            self.weight[ra] = w
        self._edge(a, b, d, reason)
        return True

    def _edge(self, a: str, b: str, d: int, reason: Reason) -> None:
        self.adj.setdefault(a, []).append((b, d, reason))
        self.adj.setdefault(b, []).append((a, (-d) & MASK, reason))

    def value(self, x: str) -> Optional[int]:
        """Return the concrete value of ``x``, or None when not known."""
        if x == ZERO:
            return 0
        r, w = self.find(x)
        return w if r == ZERO else None

    def same_class(self, a: str, b: str) -> bool:
        """True when ``a`` and ``b`` are tied by equations."""
        return self.find(a)[0] == self.find(b)[0]

    def path(self, x: str, to: str = ZERO) -> Optional[List[Tuple[str, str, int, Reason]]]:
        """Return the shortest chain of equations from ``x`` to ``to`` as (from, to, d,
        reason) steps, or None when they are not tied."""
        if x == to:
            return []
        prev = {x: None}  # type: Dict[str, Optional[Tuple[str, int, Reason]]]
        q = deque([x])
        while q:
            u = q.popleft()
            for v, d, r in self.adj.get(u, ()):
                if v in prev:
                    continue
                prev[v] = (u, d, r)
                if v == to:
                    out = []
                    cur = v
                    while prev[cur] is not None:
                        pu, pd, pr = prev[cur]
                        out.append((pu, cur, pd, pr))
                        cur = pu
                    return list(reversed(out))
                q.append(v)
        return None

    def class_conflicts(self, x: str) -> List[Conflict]:
        """Return the conflicts that involve the class of ``x``."""
        r = self.find(x)[0]
        return [c for c in self.conflicts if self.find(c.a)[0] == r or self.find(c.b)[0] == r]
