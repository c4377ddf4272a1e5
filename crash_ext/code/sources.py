"""Where argument recovery reads a port: :class:`PortSources` (disassembly named by
crash, prototypes, memory words and recoveries, kept for the crash session:
``caches.SOURCES``), :func:`recover_with_port` and :func:`recover_all` (``argrecover -u``:
one recovery per stack shape)."""

from ..compat import Dict, Iterator, List, Optional, Sequence, Set

from ..core.caches import SOURCES, HeldWeakly
from ..core.errors import BadArgument, CrashCommandError, CrashExtError
from ..core.words import check_address_word
from ..models.disasm import gdb_as_dis, join_dis
from ..models.proto import parse_scope
from ..models.stack import Backtrace
from ..models.symtab import SymbolTable
from ..core.results import TaskArgs
from .argrecords import CLONE_PARTS, ReadFn, parsed
from .stored import StoredCode, StoredParts
from .templates import Template, build_template, plain_view, task_view

class PortSources:
    """``dis``/``whatis``/memory callbacks on a Port, cached (share one across tasks),
    and the recoveries made through them.

    ``dis(addr)``: the whole function around ``addr`` as crash's ``dis`` prints it, by
    address so that clones and duplicate static names are unambiguous.
    ``flows``: the runs of functions to their call sites (:mod:`.flow`), shared by
    every recovery; ``templates``: {shape: [Template]} (:meth:`recover`).
    """

    #: recoveries kept per stack shape (tasks of one shape whose numbers lead to other
    #: decisions get their own)
    TEMPLATES_PER_SHAPE = 8
    #: tasks whose memory words are fetched together by :meth:`recover_many`
    CHUNK = 256
    #: the port read through (weakly: ``caches.SOURCES`` is keyed by it)
    port = HeldWeakly()

    def __init__(self, port):
        self.port = port
        self._dis = {}  # type: Dict[int, str]     # {instruction address: its function's text}
        self._symtab = None  # type: Optional[SymbolTable]
        self._whatis = {}  # type: Dict[str, str]
        self._scope = {}  # type: Dict[str, List[str]]
        self._words = {}  # type: Dict[int, Optional[int]]
        self.flows = {}  # type: Dict[tuple, fl.Flow]
        self.templates = {}  # type: Dict[tuple, List[Template]]
        self._stored = None  # type: Optional[StoredParts]
        self._stored_asked = False

    def stored(self) -> Optional[StoredParts]:
        """Return the session's code store (:class:`~.stored.StoredParts`: the kernel
        image's and the loaded modules', asked once), None when there is none."""
        if not self._stored_asked:
            self._stored_asked = True
            self._stored = StoredCode.for_port(self.port)
        return self._stored

    def rebind(self, port, fixed: bool) -> None:
        """Read through ``port``, a later port of this one's crash session (see
        :meth:`~crash_ext.core.caches.Cache.for_session`); memory words are dropped unless
        ``fixed``."""
        self.port = port
        if not fixed:
            self._words = {}

    def _covered(self, addr: int) -> Optional[str]:
        return self._dis.get(addr)

    def _keep(self, text: str, new: bool = True) -> str:
        """Keep ``text`` for each of its instructions (``new``: as crash printed it in
        this session: also in the code store)."""
        insns = parsed(text)
        for ins in insns:
            self._dis[ins.addr] = text
        st = self.stored() if new else None
        if st is not None:
            st.keep_dis(text, insns)
        return text

    def _from_store(self, addr: int) -> Optional[str]:
        """The function around ``addr`` from the code store, when it holds it and
        ``addr`` is one of its instructions."""
        st = self.stored()
        text = st.dis(addr) if st is not None else None
        if text is None:
            return None
        self._keep(text, new=False)
        return self._covered(addr)

    def symbols(self) -> Optional[SymbolTable]:
        """Return crash's symbol table (``sym -l``, read once), None when crash did not
        print one."""
        if self._symtab is None:
            try:
                tab = SymbolTable(self.port.command("sym -l"))
            except CrashExtError:
                tab = SymbolTable("")
            self._symtab = tab
        return self._symtab if len(self._symtab) else None

    def _gdb_dis(self, addr: int, answer: Optional[str] = None) -> Optional[str]:
        """The function around ``addr`` from gdb's ``disassemble`` (``answer``: its text
        when fetched already) with crash's names (:func:`gdb_as_dis`), kept; None when
        gdb has no function there or crash no symbol table."""
        tab = self.symbols()
        if tab is None:
            return None
        if answer is None:
            try:
                answer = self.port.command("gdb disassemble %#x" % addr)
            except CrashExtError:
                return None
        text = gdb_as_dis(answer, addr, tab)
        return None if text is None else self._keep(text)

    def dis(self, addr: int) -> str:
        """Return the disassembly of the whole function containing ``addr``, as crash's
        ``dis`` prints it; raises what the port raises (CrashCommandError when crash has
        no code there).

        gdb's ``disassemble`` renamed with crash's symbol table gives the same text
        in ~2 ms instead of ~7 ms for ``dis -r ADDR`` + ``dis -f ADDR`` (crash looks
        up every line's symbol itself; docs/design.md); crash's ``dis`` answers where
        gdb knows no function (a module whose debuginfo was not loaded)."""
        text = self._covered(addr)
        if text is not None:
            return text
        text = self._from_store(addr)
        if text is not None:
            return text
        text = self._gdb_dis(addr)
        if text is not None:
            return text
        back = self.port.command("dis -r %#x" % addr)
        fwd = self.port.command("dis -f %#x" % addr)
        return self._keep(join_dis(back, fwd))

    def whatis(self, name: str) -> str:
        """Return ``whatis NAME`` text, "" when crash has no prototype for it."""
        if name not in self._whatis:
            st = self.stored()
            got = st.whatis(name) if st is not None else None
            if got is not None:
                self._whatis[name] = got
                return got
            try:
                self._whatis[name] = self.port.command("whatis %s" % check_address_word(name))
            except CrashCommandError:
                self._whatis[name] = ""
            except Exception:  # noqa: BLE001 - names crash will not take
                self._whatis[name] = ""
                return ""
            if st is not None:
                st.keep_whatis(name, self._whatis[name])
        return self._whatis[name]

    def scope_names(self, name: str) -> List[str]:
        """Return the names of the symbols of function ``name``'s outermost block as
        its debuginfo lists them (parameters first: :func:`~..models.proto.parse_scope`),
        from gdb's ``info scope`` at the function's first instruction; [] when gdb has
        no debuginfo there (a module whose object file crash did not load) or crash
        knows no such function.  Asked once per name and session; raises only what the
        port raises for crash dying or timing out."""
        if name not in self._scope:
            st = self.stored()
            kept = st.scope(name) if st is not None else None
            if kept is not None:
                self._scope[name] = kept
                return kept
            names = []  # type: List[str]
            try:
                addr = self.port.symbol_address(check_address_word(name))
                if addr is not None:
                    names = parse_scope(self.port.command("gdb info scope *%#x" % addr))
            except (CrashCommandError, BadArgument):   # no such function, odd name
                names = []
            self._scope[name] = names
            if st is not None:
                st.keep_scope(name, names)
        return self._scope[name]

    def prefetch(self, shapes) -> None:
        """Fetch the code and prototypes of the functions in ``shapes`` (of
        :func:`shape_of`) not known yet, all in one exchange when the port can batch
        commands (one return address per function: the others are in the same text).
        What fails here is left to :meth:`dis`/:meth:`whatis`, which ask again and
        report it."""
        if not self.port.batches_commands:
            return          # in crash every command is a call: nothing to save
        rets = {}  # type: Dict[tuple, int]
        names = set()  # type: Set[str]
        for shape in shapes:
            for _i, function, ret, module, _sp, _st, _exc, _regs in shape:
                if ret is not None:
                    rets.setdefault((function, module), ret)
                m = CLONE_PARTS.match(function)
                names.add(m.group("base") if m else function)
        addrs = [a for a in rets.values()
                 if self._covered(a) is None and self._from_store(a) is None]
        st = self.stored()
        words = []  # type: List[str]
        for n in sorted(names):
            if n in self._whatis:
                continue
            got = st.whatis(n) if st is not None else None
            if got is not None:
                self._whatis[n] = got
                continue
            try:
                words.append(check_address_word(n))
            except CrashExtError:
                continue
        cmds = ["gdb disassemble %#x" % a for a in addrs]
        cmds += ["whatis %s" % n for n in words]
        if not cmds:
            return
        try:
            outs = self.port.batch(cmds)
        except CrashExtError:
            return
        for a, out in zip(addrs, outs):
            if isinstance(out, str) and self._covered(a) is None:
                self._gdb_dis(a, out)
        for n, out in zip(words, outs[len(addrs):]):
            self._whatis[n] = out if isinstance(out, str) else ""
            if st is not None and (isinstance(out, str) or isinstance(out, CrashCommandError)):
                st.keep_whatis(n, self._whatis[n])

    def read(self, addr: int) -> Optional[int]:
        """Return the u64 at ``addr`` or None when unreadable (reads and caches the
        aligned 64-byte block around it: stack slots come in runs)."""
        if addr in self._words:
            return self._words[addr]
        if addr & 7:
            try:
                return self.port.read_u64(addr)
            except CrashExtError:
                return None
        block = addr & ~0x3F
        try:
            data = self.port.read(block, 64)
        except CrashExtError:
            try:
                v = self.port.read_u64(addr)
            except CrashExtError:
                v = None
            self._words[addr] = v
            return v
        self._keep_block(block, data)
        return self._words[addr]

    def _keep_block(self, block: int, data: bytes) -> None:
        for i in range(8):
            self._words[block + 8 * i] = int.from_bytes(data[8 * i:8 * i + 8], "little")

    def prefetch_words(self, addrs) -> None:
        """Read the 64-byte blocks around ``addrs`` not cached yet, in one exchange when
        the port can (unreadable blocks are left to :meth:`read`)."""
        blocks = sorted({a & ~0x3F for a in addrs if a not in self._words and not a & 7})
        if not blocks:
            return
        try:
            got = self.port.read_many([(b, 64) for b in blocks])
        except CrashExtError:
            return
        for b, data in zip(blocks, got):
            if data is not None and len(data) == 64:
                self._keep_block(b, data)

    def _peek(self, misses: List[int]) -> ReadFn:
        """A read function answering from the cache only, noting the misses."""
        words = self._words

        def peek(addr: int) -> Optional[int]:
            if addr in words:
                return words[addr]
            misses.append(addr)
            return None
        return peek

    def _reuse(self, bt: Backtrace, view: tuple, read_fn: ReadFn) -> Optional[TaskArgs]:
        shape, sp0, words = view
        for t in self.templates.get(shape, ()):
            env = t.env_for(sp0, words, read_fn)
            if env is not None and t.holds(env):
                return t.answer(bt, env)
        return None

    def recover(self, bt: Backtrace, view: Optional[tuple] = None) -> TaskArgs:
        """Return the argument recovery of ``bt`` (``view``: its :func:`task_view`,
        when made already): from a recovery already made for a task of the same shape
        when all its decisions come out the same with ``bt``'s numbers, else from a new
        one (kept for the next tasks).  Raises only what the port raises for crash
        dying or timing out."""
        view = view or task_view(bt)
        shape = view[0]
        got = self._reuse(bt, view, self.read)
        if got is not None:
            return got
        t = build_template(bt, self.dis, self.read, self.whatis, self.flows)
        kept = self.templates.setdefault(shape, [])
        if len(kept) < self.TEMPLATES_PER_SHAPE:
            kept.append(t)
        return t.answer(bt, t.ps.env)

    def recover_many(self, bts: Sequence[Backtrace], views: Optional[Dict[int, tuple]] = None
                     ) -> Iterator[TaskArgs]:
        """Yield :meth:`recover` of each of ``bts`` in order, with the crash commands
        batched: code and prototypes of every function first, then per CHUNK tasks the
        memory words their recoveries need, in one exchange.  ``views``: {id(bt): (bt,
        :func:`task_view`)} made already (e.g. while the back traces were read); they
        are used up (removed) as the tasks are answered."""
        views = {} if views is None else views
        shapes = set()  # type: Set[tuple]
        for bt in bts:
            v = views.get(id(bt))
            if v is None or v[0] is not bt:
                v = views[id(bt)] = (bt, task_view(bt))
            shapes.add(v[1][0])
        self.prefetch(shapes)
        for i in range(0, len(bts), self.CHUNK):
            chunk = bts[i:i + self.CHUNK]
            done = [None] * len(chunk)  # type: List[Optional[TaskArgs]]
            misses = []  # type: List[int]
            peek = self._peek(misses)
            for j, bt in enumerate(chunk):
                view = views[id(bt)][1]
                if view[0] not in self.templates:
                    done[j] = self.recover(bt, view)
                    continue
                n = len(misses)
                got = self._reuse(bt, view, peek)
                if len(misses) == n:
                    done[j] = got       # None: no template fits; recover() below
            self.prefetch_words(misses)
            for j, bt in enumerate(chunk):
                view = views.pop(id(bt))[1]
                yield done[j] if done[j] is not None else self.recover(bt, view)
                done[j] = None


def sources_for(port) -> PortSources:
    """Return the PortSources shared by every recovery on ``port`` (caches of
    disassembly, prototypes, memory words and recoveries live as long as the port).

    A port with a ``session_identity`` (pykdump's: one port per verb call inside one
    crash session) shares them with the earlier ports of that session: the code, the
    prototypes and the recoveries (functions of each task's own words); the memory
    words too when the port's ``memory_fixed()`` says it reads a dump (a live system's
    memory changes: read again in each call)."""
    return SOURCES.for_session(port, PortSources)


def recover_with_port(port, bt: Backtrace, sources: Optional[PortSources] = None
                      ) -> TaskArgs:
    """Recover ``bt``'s arguments reading code, prototypes and memory through ``port``.

    ``bt``: the task's parsed ``bt -f`` (e.g. from Snapshot.backtrace); ``sources``
    defaults to the port's shared caches.  Raises only what the port raises for crash
    dying or timing out (CrashDied, CrashTimeout).
    """
    src = sources or sources_for(port)
    return src.recover(bt)


def recover_all(port, bts: Sequence[Backtrace], sources: Optional[PortSources] = None,
                views: Optional[Dict[int, tuple]] = None) -> Iterator[TaskArgs]:
    """Yield the recovery of each of ``bts`` in order -- what :func:`recover_with_port`
    gives for each -- with the crash commands batched (:meth:`PortSources.recover_many`;
    ``views``: {id(bt): (bt, task_view)} made already, e.g. by :func:`plain_view` while the
    back traces were streamed).  Raises only what the port raises for crash dying or
    timing out."""
    src = sources or sources_for(port)
    return src.recover_many(list(bts), views)
