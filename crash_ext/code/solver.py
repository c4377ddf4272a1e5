"""Equalities between symbolic values, with reasons: a weighted union-find.

Each equation says ``value(a) = value(b) + d`` (mod 2**64) and carries the reason it
holds.  The symbol ``"0"`` is the constant zero, so ``value(a) = c`` is the equation
``(a, "0", c)``.  An equation that contradicts what is already known is kept aside as a
conflict, never merged.
"""

from collections import deque
from ..core.record import dataclass, field
from ..compat import Dict, List, Optional, Tuple

MASK = (1 << 64) - 1
ZERO = "0"


def _same(a, b) -> bool:
    """``a == b`` for ints or Lins (a Lin's decision is noted as its recovery's guard)."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return (a if isinstance(a, Lin) else b).ps.eq(a, b)


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
            if not _same(known, d):
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


# ---------------------------------------------------------------------------
# Values that depend on the task: affine forms over a recovery's parameters.
#
# A recovery run once for a stack *shape* (functions, return addresses, frame offsets)
# and then reused for every task of that shape keeps the task's numbers as parameters:
# its stack pointer, the stack words it read, ...  A value is then ``Lin``:
# ``c + sum(coef * param)`` (mod 2**64), and the union-find above works unchanged on it
# (its weights are ints or Lins).  Every decision that looks at a number (are two chains
# equal, is a slot inside a frame) is taken with the numbers of the task the recovery
# runs for and written down as a guard (:class:`Params`); another task of the shape
# gets the same answers with its own numbers only when all guards come out the same.


class Lin:
    """``c + sum(coef * param)`` mod 2**64 over the parameters of one :class:`Params`.

    Arithmetic with ints and Lins gives Lins (or an int when no parameter is left);
    ``& MASK`` keeps it.  Anything that would look at the number (comparisons, truth,
    hashing, ``%x``) raises TypeError: decisions go through :meth:`Params.lt` and
    :meth:`Params.eq`, text through :meth:`Params.mark` (``args.hx``)."""

    __slots__ = ("c", "t", "ps")

    def __init__(self, c: int, t: tuple, ps: "Params"):
        self.c = c & MASK
        self.t = t          # ((param index, coef), ...) sorted, coefs non-zero mod 2**64
        self.ps = ps

    def _combine(self, other, sign: int):
        if isinstance(other, int):
            return Lin(self.c + sign * other, self.t, self.ps)
        if not isinstance(other, Lin):
            return NotImplemented
        d = dict(self.t)
        for p, k in other.t:
            d[p] = (d.get(p, 0) + sign * k) & MASK
        t = tuple(sorted((p, k) for p, k in d.items() if k))
        c = (self.c + sign * other.c) & MASK
        return Lin(c, t, self.ps) if t else c

    def __add__(self, other):
        return self._combine(other, 1)

    __radd__ = __add__

    def __sub__(self, other):
        return self._combine(other, -1)

    def __neg__(self):
        return Lin(-self.c, tuple((p, (-k) & MASK) for p, k in self.t), self.ps)

    def __rsub__(self, other):
        return (-self)._combine(other, 1)

    def __and__(self, mask):
        if mask == MASK:
            return self
        raise TypeError("only & MASK keeps a Lin affine")

    __rand__ = __and__

    def key(self) -> tuple:
        """Return a hashable identity of the form (same key, same function)."""
        return (self.c, self.t)

    def value(self, env) -> int:
        """Return the form's number for the parameter values ``env`` (a list)."""
        v = self.c
        for p, k in self.t:
            v += k * env[p]
        return v & MASK

    def _refuse(self, *_a):
        raise TypeError("a task-dependent value was looked at without a guard")

    __bool__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = __hash__ = _refuse
    __str__ = __format__ = __index__ = __int__ = __rshift__ = __lshift__ = _refuse

    def __repr__(self):
        return "Lin(%#x%s)" % (self.c, "".join(" + %#x*p%d" % (k, p) for p, k in self.t))


def value_of(x, env) -> int:
    """Return ``x`` (an int or a Lin) as a number under parameter values ``env``."""
    return x if isinstance(x, int) else x.value(env)


class Params:
    """The parameters of one recovery, their values for the task it ran for, the guards
    its decisions wrote down, and the Lins its texts mention.

    ``defs[i]``: how parameter i is found for a task: ``("sp",)`` (its innermost frame's
    stack slot), ``("word", addr, source)`` (the word at ``addr``, an int or Lin over
    earlier parameters, as found in ``source``: 'bt -f' or 'memory'), ``("lo32", x)``
    (the low 32 bits of ``x``).  ``env[i]``: its value for the task the recovery ran for.
    ``guards``: ``("lt", a, b, result)`` and ``("eq", a, b, result)``.
    ``marks``: the Lins printed in texts, each as ``\x00INDEX\x00`` (:meth:`render`).
    """

    def __init__(self):
        self.defs = []  # type: List[tuple]
        self.env = []  # type: List[int]
        self.guards = []  # type: List[tuple]
        self.marks = []  # type: List[Lin]
        self._mark_of = {}  # type: Dict[tuple, int]
        self._words = {}  # type: Dict[tuple, object]
        self._seen = set()  # type: set

    def new(self, definition: tuple, value: int) -> "Lin":
        """Return a new parameter (as a Lin) defined by ``definition``, worth ``value``
        for this task."""
        self.defs.append(definition)
        self.env.append(value & MASK)
        return Lin(0, ((len(self.defs) - 1, 1),), self)

    def word(self, addr, value: int, source: str):
        """Return the word read at ``addr`` (int or Lin) from ``source`` as a parameter
        (the same one for the same address form)."""
        k = (addr if isinstance(addr, int) else addr.key(), source)
        w = self._words.get(k)
        if w is None:
            w = self._words[k] = self.new(("word", addr, source), value)
        return w

    def value(self, x) -> int:
        """Return ``x`` as a number for this recovery's own task."""
        return x if isinstance(x, int) else x.value(self.env)

    def lt(self, a, b) -> bool:
        """Return ``a < b`` (masked numbers) for this task, noted as a guard when either
        depends on the task."""
        r = (self.value(a) & MASK) < (self.value(b) & MASK)
        if not (isinstance(a, int) and isinstance(b, int)):
            self._guard("lt", a, b, r)
        return r

    def eq(self, a, b) -> bool:
        """Return ``a == b`` (mod 2**64) for this task; a guard when it depends on the
        task (two forms that are the same function of the parameters need none)."""
        d = a - b
        if isinstance(d, int):
            return d & MASK == 0
        r = d.value(self.env) == 0
        self._guard("eq", d, 0, r)
        return r

    def _guard(self, kind: str, a, b, r: bool) -> None:
        """Note a decision once (the same test on the same forms gives the same answer
        for any one task)."""
        k = (kind, a if isinstance(a, int) else a.key(), b if isinstance(b, int) else b.key())
        if k not in self._seen:
            self._seen.add(k)
            self.guards.append((kind, a, b, r))

    def mark(self, x) -> str:
        """Return the text standing for Lin ``x`` printed in hex (see :meth:`render`)."""
        k = x.key()
        i = self._mark_of.get(k)
        if i is None:
            i = self._mark_of[k] = len(self.marks)
            self.marks.append(x)
        return "\x00%d\x00" % i

    def render(self, text, env=None):
        """Return ``text`` with each Lin mark replaced by its hex number under ``env``
        (default: this recovery's task); other values are returned as they are."""
        if not isinstance(text, str) or "\x00" not in text:
            return text
        env = self.env if env is None else env
        parts = text.split("\x00")
        for i in range(1, len(parts), 2):
            parts[i] = "%x" % self.marks[int(parts[i])].value(env)
        return "".join(parts)
