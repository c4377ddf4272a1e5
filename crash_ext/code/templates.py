"""Templates: one recovery per distinct stack shape, reused for every task of that
shape with the task's own numbers when the decisions it took (its guards) come out the
same (``argrecover -u``; docs/argrecover.md, "Speed")."""

from ..compat import Dict, List, Optional

from ..core.caches import STACK_SHAPES
from ..models.btlazy import LazyBacktrace
from ..models.stack import Backtrace
from ..core.results import Arg, FrameArgs, TaskArgs
from .argrecords import DisFn, ReadFn, WhatisFn, read_word, task_words
from .recovery import Recovery
from .solver import MASK as _MASK, Lin, Params

def shape_of(bt: Backtrace) -> tuple:
    """Return what a recovery reads of ``bt`` besides its numbers: per frame (innermost
    first) its index, function, return address, module, stack slot relative to the
    innermost frame's, stack marker, exception RIP and whether it has registers.
    Tasks of one shape share a :class:`Template`."""
    frames = sorted(bt.frames, key=lambda f: f.index)
    if not frames:
        return ()
    sp0 = frames[0].sp
    return tuple((f.index, f.function, f.ret_addr, f.module, f.sp - sp0, f.stack,
                  f.exception_rip, bool(f.regs)) for f in frames)


def _expr(x) -> str:
    """Return Python source computing int-or-Lin ``x`` from a parameter list ``e``."""
    if isinstance(x, int):
        return "%d" % (x & _MASK)
    terms = "+".join(("e[%d]" % p) if k == 1 else ("%d*e[%d]" % (k, p)) for p, k in x.t)
    return "((%d+%s)&%d)" % (x.c, terms, _MASK)


def _compile(source: str):
    """Return the function the generated ``lambda`` ``source`` defines (numbers and
    parameter look-ups only)."""
    return eval(compile(source, "<argrecover template>", "eval"), {})


def plain_view(bt: Backtrace) -> Optional[tuple]:
    """Return :func:`task_view` of a lazily read back trace whose text is only frame
    and plain word lines, from its text alone (so also while ``foreach`` is still
    being read: see Snapshot.backtraces' ``on_task``), the words' values as printed
    (hex text, found in the text and turned into numbers only when read:
    :class:`~crash_ext.models.btlazy.PrintedWords`); None for any other."""
    got = bt.printed_view() if isinstance(bt, LazyBacktrace) else None
    if got is None:
        return None
    frames = got[0]
    shape = STACK_SHAPES.peek(frames)
    if shape is None:
        shape = tuple((i, fn, ret, mod, rel, None, None, False)
                      for i, fn, ret, mod, rel in frames)
        STACK_SHAPES.put(frames, shape)
    return shape, got[1], got[2]


def task_view(bt: Backtrace) -> tuple:
    """Return (:func:`shape_of`, the innermost frame's stack slot or None without
    frames, :func:`task_words` -- values as ints or, from :func:`plain_view`, hex
    text) of ``bt``: what :meth:`Template.env_for` needs of a task."""
    got = plain_view(bt)
    if got is not None:
        return got
    frames = sorted(bt.frames, key=lambda f: f.index)
    return shape_of(bt), (frames[0].sp if frames else None), task_words(bt)


class Template:
    """A recovery run for one task, reusable for every task of the same stack shape.

    ``result``: that task's TaskArgs with its task-dependent numbers as Lins and its
    texts holding marks; ``ps``: the recovery's :class:`~.solver.Params` (how each
    parameter is found, the guards its decisions noted); ``shape``: :func:`shape_of`.
    The guards, the marks and the values are turned into Python functions of the
    parameter list on first reuse.
    """

    __slots__ = ("result", "ps", "shape", "_holds", "_hexes", "_values", "_plan", "_env",
                 "_answer")

    def __init__(self, result: TaskArgs, ps: Params, shape: tuple):
        self.result = result
        self.ps = ps
        self.shape = shape
        self._plan = None

    def _prepare(self) -> None:
        ps = self.ps
        tests = []  # type: List[str]
        for kind, a, b, res in ps.guards:
            if kind == "lt":
                t = "(%s<%s)" % (_expr(a), _expr(b))
            else:
                t = "(%s==0)" % _expr(a)
            tests.append(t if res else "(not %s)" % t)
        self._holds = _compile("lambda e: %s" % (" and ".join(tests) or "True"))
        self._hexes = _compile("lambda e: [%s]" % ",".join(
            "'%%x'%%%s" % _expr(m) for m in ps.marks))
        # the parameters of a task: read_word's answer for each word, or None when it
        # comes from elsewhere than it came for this recovery's task
        body = ["def env(sp0, w, rd):", " e = []", " a = e.append"]
        for d in ps.defs:
            if d[0] == "sp":
                body.append(" a(sp0)")
            elif d[0] == "lo32":
                body.append(" a(%s & 0xffffffff)" % _expr(d[1]))
            else:
                body.append(" x = %s" % _expr(d[1]))
                if d[2] == "bt -f":
                    body += [" v = w.get(x)", " if v is None: return None",
                             " a(v if v.__class__ is int else int(v, 16))"]
                else:
                    body += [" if w.get(x) is not None: return None",
                             " v = rd(x)", " if (v is None) != %s: return None" % (d[2] is None),
                             " a(0 if v is None else v)"]
        body.append(" return e")
        scope = {}  # type: Dict[str, object]
        exec(compile("\n".join(body), "<argrecover template>", "exec"), scope)
        self._env = scope["env"]
        values = []  # type: List[str]

        def val(x):
            """Return an int, or the index of ``x`` in the values list."""
            if x is None or isinstance(x, int):
                return ("int", x)
            values.append(_expr(x))
            return ("lin", len(values) - 1)

        def txt(x):
            if not isinstance(x, str) or "\x00" not in x:
                return x
            parts = x.split("\x00")
            fmt = "".join(p.replace("%", "%%") if i % 2 == 0 else "%s"
                          for i, p in enumerate(parts))
            return (fmt, tuple(int(p) for p in parts[1::2]))

        t = self.result
        frames = []
        for fa in t.frames:
            args = [(a.name, a.type, a.register, val(a.value),
                     [txt(x) for x in a.provenance], a.status, txt(a.reason),
                     [(val(v), [txt(x) for x in ch]) for v, ch in a.alternatives], a.weak)
                    for a in fa.args]
            frames.append((fa.index, fa.function, fa.module, fa.prototype, fa.clone, args,
                           [(k, val(v)) for k, v in fa.registers.items()],
                           [txt(w) for w in fa.warnings]))
        self._values = _compile("lambda e: [%s]" % ",".join(values))
        self._plan = ([txt(w) for w in t.warnings], frames)
        self._answer = _answer_function(self._plan, self._hexes, self._values)

    def env_for(self, sp0: Optional[int], words: Dict[int, int],
                read_fn: Optional[ReadFn]) -> Optional[List[int]]:
        """Return the parameter values of a task of this shape (``sp0``: its innermost
        frame's stack slot, ``words``: its :func:`task_words`), or None when a word is
        not found where this recovery's own task had it (then it does not apply)."""
        if sp0 is None:
            return None
        if self._plan is None:
            self._prepare()
        return self._env(sp0, words, lambda x: read_word(x, {}, read_fn)[0])

    def holds(self, env: List[int]) -> bool:
        """Return True when every decision the recovery took comes out the same with
        the parameter values ``env``."""
        if self._plan is None:
            self._prepare()
        return self._holds(env)

    def answer(self, bt: Backtrace, env: List[int]) -> TaskArgs:
        """Return the TaskArgs of ``bt`` from this recovery with the parameter values
        ``env`` (from :meth:`env_for`, checked with :meth:`holds`)."""
        if self._plan is None:
            self._prepare()
        return self._answer(bt, env)


def _answer_function(plan: tuple, hexes, values):
    """Return the function ``f(bt, env)`` that builds a Template's TaskArgs for a task
    from its ``plan`` (see Template._prepare: texts as they are or (format, mark
    indexes), numbers as ("int", n) or ("lin", index in ``values(env)``)) and the mark
    texts ``hexes(env)``: one generated expression, with the records' fields filled
    directly (no dataclass __init__)."""
    def text(x) -> str:
        if x.__class__ is tuple:
            return "(%r%%(%s,))" % (x[0], ",".join("h[%d]" % i for i in x[1]))
        return repr(x)

    def num(x) -> str:
        return repr(x[1]) if x[0] == "int" else "v[%d]" % x[1]

    def texts(xs) -> str:
        return "[%s]" % ",".join(text(x) for x in xs)

    def rec(cls: str, fields) -> str:
        return "mk(%s,{%s})" % (cls, ",".join("%r:%s" % kv for kv in fields))

    warnings, frames = plan
    fexprs = []
    for index, function, module, proto, clone, args, regs, fwarn in frames:
        aexprs = [rec("Arg", [
            ("name", repr(name)), ("type", repr(typ)), ("register", repr(reg)),
            ("value", num(value)), ("provenance", texts(prov)), ("status", repr(status)),
            ("reason", text(reason)),
            ("alternatives", "[%s]" % ",".join("(%s,%s)" % (num(av), texts(ch))
                                               for av, ch in alts)),
            ("weak", repr(weak)),
            ("wording", repr(tuple(x[0] if x.__class__ is tuple else x for x in prov)))])
            for name, typ, reg, value, prov, status, reason, alts, weak in args]
        fexprs.append(rec("FrameArgs", [
            ("index", repr(index)), ("function", repr(function)), ("module", repr(module)),
            ("prototype", repr(proto)), ("clone", repr(clone)),
            ("args", "[%s]" % ",".join(aexprs)),
            ("registers", "{%s}" % ",".join("%r:%s" % (k, num(x)) for k, x in regs)),
            ("warnings", texts(fwarn))]))
    body = rec("TaskArgs", [("pid", "bt.pid"), ("task", "bt.task"), ("command", "bt.command"),
                            ("frames", "[%s]" % ",".join(fexprs)),
                            ("warnings", texts(warnings))])
    source = "\n".join([
        "def answer(bt, e):",
        " h = hexes(e)" if "h[" in body else "",
        " v = values(e)" if "v[" in body else "",
        " return " + body])

    def mk(cls, fields):
        o = object.__new__(cls)
        o.__dict__ = fields
        return o
    scope = {"mk": mk, "hexes": hexes, "values": values, "Arg": Arg, "FrameArgs": FrameArgs,
             "TaskArgs": TaskArgs}
    exec(compile(source, "<argrecover template>", "exec"), scope)
    return scope["answer"]


def build_template(bt: Backtrace, dis_fn: DisFn, read_fn: Optional[ReadFn] = None,
                   whatis_fn: Optional[WhatisFn] = None,
                   flows: Optional[dict] = None) -> Template:
    """Run the recovery of ``bt`` (see :func:`recover`) and return it as a Template
    (``flows``: a cache of function runs shared between recoveries)."""
    r = Recovery(bt, dis_fn, read_fn, whatis_fn, flows)
    r.build_flows()
    r.boundaries()
    r.geometry()
    r.links()
    r.anchors()
    return Template(r.report(), r.ps, shape_of(bt))


def recover(bt: Backtrace, dis_fn: DisFn, read_fn: Optional[ReadFn] = None,
            whatis_fn: Optional[WhatisFn] = None) -> TaskArgs:
    """Recover the arguments of every frame of ``bt`` (a parsed ``bt -f``).

    ``dis_fn(addr)`` returns crash ``dis`` text of the whole function containing ``addr``
    (raise or return "" when unavailable); ``read_fn(addr)`` the 8-byte word at ``addr``
    or None (used for stack words ``bt -f`` did not print, e.g. __switch_to_asm's saves
    below frame #0); ``whatis_fn(name)`` crash ``whatis`` text.  Never raises for
    missing data: what cannot be found is reported unknown with a reason.
    """
    t = build_template(bt, dis_fn, read_fn, whatis_fn)
    return t.answer(bt, t.ps.env)
