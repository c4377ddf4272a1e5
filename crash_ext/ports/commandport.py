"""What both adapters build on crash commands alone: reading crash's error lines, and
symbol/type look-ups answered by ``sym``, ``p`` and ``gdb whatis``.

:class:`CommandTypes` is a mixin for any Port whose ``command()`` runs a crash command;
answers (including "none") are cached in ``self._cache``, and type facts also on disk
per vmlinux (:mod:`.typestore`).
"""

import re
import time
from ..compat import Dict, Optional, Tuple

from ..core.buildid import note_build_id
from ..core.codestore import CodeStore, save_all
from ..core.errors import BadArgument, CrashCommandError, MemoryReadError
from ..core.words import check_address_word, check_member_word, check_pid_word, check_type_word
from ..models.ps import parse_ps

__all__ = ["CommandTypes", "find_error", "SET_C_LANGUAGE", "language_to_restore"]

#: gdb prints types in the language of crash's current frame ("auto"): when that frame is
#: assembly (an idle CPU's current task in a dump), ``whatis`` and ``struct -o`` drop the
#: ``struct`` keyword ("list_head").  The adapters run their look-ups in C: the process
#: adapter sets it once for its own crash, the pykdump adapter for the time of a verb.
SET_C_LANGUAGE = "gdb set language c"


def language_to_restore(show_language: str) -> Optional[str]:
    """Return the ``gdb set language X`` that restores the setting ``gdb show language``
    printed (``The current source language is "auto; currently asm".`` -> ``auto``), None
    when the text says nothing readable."""
    m = re.search(r'language is "([a-z0-9+_-]+)', show_language)
    return "gdb set language %s" % m.group(1) if m else None

# A line that reports an error: "rd: invalid ...", "crash: ...", "gdb: ...".
_ERR_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*): (?!\s)")
# gdb's own messages (crash passes them through unprefixed).
_GDB_ERRORS = re.compile(
    r"^(No symbol .* in current context\.|No struct type named .*\.|"
    r"No union type named .*\.|No enum type named .*\.|There is no member named .*\.|"
    r"A syntax error in expression.*|Attempt to .*|Cannot access memory at address .*|"
    r"Invalid (?:cast|character|number).*|No symbol table is loaded.*|symbol not found: .*|"
    r"Argument to arithmetic operation not a number or boolean\.|"
    r"(?:The history is empty|History has not yet reached).*)$")


# A memory-read error glued to the end of a partial output line ("addr:  0000 rd: ...").
_MIDLINE_READ_ERR = re.compile(
    r"(?:^|\s)(([A-Za-z_][A-Za-z0-9_]*): (?:invalid \w+ (?:virtual )?address|seek error|"
    r"read error|page excluded|page incomplete)\b.*)$")


def _is_error_line(line: str, cmd_word: str) -> bool:
    m = _ERR_LINE.match(line)
    if m and m.group(1) in (cmd_word, "crash", "gdb", _canonical(cmd_word)):
        return True
    return bool(_GDB_ERRORS.match(line))


def _canonical(word: str) -> str:
    return {"print": "p", "*": "struct", "gdb": "gdb"}.get(word, word)


#: answers longer than this are first checked on their last lines only
_TAIL_CHECK = 1 << 16
#: commands whose answer can end in "possible alternatives:" and a list of any length
#: (crash's cmd_sym, cmd_dis, cmd_rd, cmd_wr and cmd_datatype_common print it)
_ALTERNATIVES = {"sym", "dis", "rd", "wr", "struct", "union", "*"}


def find_error(cmd: str, text: str) -> Optional[Tuple[str, str]]:
    """Return ``(message, partial)`` when ``text`` (crash's answer to ``cmd``) ends in an
    error line, else None.  ``message`` is crash's error line(s) at the end, ``partial``
    the output before them."""
    words = cmd.split()
    if len(text) > _TAIL_CHECK and words and \
            words[0].lstrip("\\") not in _ALTERNATIVES:
        # a long answer (a foreach over thousands of tasks): when its last lines end in
        # no error, neither does the whole; split all of it only when they do
        cut = text.find("\n", len(text) - _TAIL_CHECK)
        tail = text[cut + 1:] if cut >= 0 else ""
        if tail.strip() and _find_error(cmd, tail) is None:
            return None
    return _find_error(cmd, text)


def _find_error(cmd: str, text: str) -> Optional[Tuple[str, str]]:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return None
    word = cmd.split()[0].lstrip("\\") if cmd.split() else ""
    # "sym NAME" ends with "symbol not found: NAME" + "possible alternatives:" + a list
    for j in range(len(lines) - 1 if "possible alternatives:" in text else -1, -1, -1):
        if lines[j] == "possible alternatives:":
            if j > 0 and lines[j - 1].startswith("symbol not found: ") and all(
                    l.startswith(" ") or not l.strip() for l in lines[j + 1:]):
                return lines[j - 1].strip(), "\n".join(lines[:j - 1])
            break
    i = len(lines)
    while i > 0 and _is_error_line(lines[i - 1].strip(), word):
        i -= 1
    if i == len(lines):
        m = _MIDLINE_READ_ERR.search(lines[-1])
        if m and m.group(2) in (word, "crash", _canonical(word)):
            return m.group(1).strip(), "\n".join(lines[:-1] + [lines[-1][:m.start(1)]])
        return None
    msg = "\n".join(l.strip() for l in lines[i:])
    partial = "\n".join(lines[:i])
    return msg, partial


def _hexint(s: str) -> int:
    return int(s, 16)


def _int_or_none(v: Optional[str]) -> Optional[int]:
    """Return gdb's printed integer (decimal or 0x-hex) as int, None if it is not one."""
    if v is None:
        return None
    try:
        return int(v.split()[0], 0) if v.split() else None
    except ValueError:
        return None



class CommandTypes:
    """Symbol and type methods of :class:`Port` built only on ``self.command(cmd)``
    (which must raise CrashCommandError when crash reports an error).

    For every adapter that can run crash commands (mix in before Port).  Answers,
    including "no such symbol/type/member", are cached in ``self._cache`` (a dict, made on
    first use): symbols and types cannot change within a session.  Type facts are also
    kept in the :class:`~.typestore.TypeStore` that :meth:`_open_type_store` returns
    (loaded when the cache is made, written after each answer gdb had to give).
    """

    _cache = None  # type: Optional[Dict[tuple, object]]
    _type_store = None

    def _memo(self) -> Dict[tuple, object]:
        """Return the session's answer cache (made on first use, with the type facts
        stored for this vmlinux)."""
        if self._cache is None:
            self._cache = {}
            store = self._open_type_store()
            if store is not None:
                self._cache.update(store.load())
                self._type_store = store
        return self._cache

    def _open_type_store(self):
        """Return the :class:`~.typestore.TypeStore` for this session's vmlinux, or None
        (the default: no store)."""
        return None

    #: seconds between two writes of the type store while facts are being learned
    TYPE_SAVE_INTERVAL = 2.0
    _type_saved_at = 0.0

    def _learned(self) -> None:
        """Note new type facts (after gdb answered): written to the store at once when
        the last write is old enough, else by :meth:`flush_types`."""
        if self._type_store is not None:
            self._types_dirty = True
            if time.monotonic() - self._type_saved_at >= self.TYPE_SAVE_INTERVAL:
                self.flush_types()

    def flush_types(self) -> None:
        """Write the type facts learned since the last write to the store (if any), and
        the code store's new facts."""
        if self._type_store is not None and getattr(self, "_types_dirty", False):
            self._type_store.save(self._cache)
            self._types_dirty = False
            self._type_saved_at = time.monotonic()
        save_all()          # the code stores of the session (one per build)

    def code_store(self):
        """Return the :class:`~crash_ext.core.codestore.CodeStore` of this session's
        vmlinux (asked once per port: :meth:`_open_code_store`), None when there is
        none."""
        if "_code_store" not in self.__dict__:
            self._code_store = None
            try:
                self._code_store = self._open_code_store()
            except (CrashCommandError, MemoryReadError, BadArgument):
                pass
        return self._code_store

    def _open_code_store(self):
        """Return the code store of the adapter's ``vmlinux`` file; on a live system only
        when the running kernel's build-id is the file's."""
        live = not self.memory_fixed()
        return CodeStore.for_vmlinux(getattr(self, "vmlinux", None), live=live,
                                     running_id=self.running_build_id() if live else None)

    def running_build_id(self) -> Optional[str]:
        """Return the GNU build-id of the kernel crash reads, from its own notes in
        memory (``__start_notes`` to ``__stop_notes``), None when they cannot be read.
        Raises CrashTimeout / CrashDied."""
        lo, hi = self.symbol_address("__start_notes"), self.symbol_address("__stop_notes")
        if lo is None or hi is None or not 0 < hi - lo <= 1 << 12:
            return None
        try:
            return note_build_id(self.read(lo, hi - lo))
        except (CrashCommandError, MemoryReadError):
            return None

    def symbol_address(self, name: str) -> Optional[int]:
        """Return the address of symbol ``name`` (``sym NAME``), None if crash knows no
        such symbol.  Raises BadArgument for a word that is not a symbol."""
        w = check_address_word(name)
        key = ("sym", w)
        if key not in self._memo():
            try:
                out = self.command("sym %s" % w)
            except CrashCommandError:
                self._memo()[key] = None
            else:
                val = None
                for line in out.splitlines():
                    t = line.split()
                    if len(t) >= 3 and t[1].startswith("(") and t[2] == w:
                        val = _hexint(t[0])
                        break
                self._memo()[key] = val
        return self._memo()[key]  # type: ignore

    def address_symbol(self, addr: int) -> Optional[str]:
        """Return ``name`` or ``name+0xOFF`` for ``addr`` (``sym ADDR``), None when no
        symbol covers it."""
        addr = int(addr)
        if addr < 0 or addr >= 1 << 64:
            raise BadArgument("bad address: %r" % (addr,))
        key = ("addr", addr)
        if key not in self._memo():
            try:
                out = self.command("sym %x" % addr)
            except CrashCommandError:
                out = ""
            self._memo()[key] = self._sym_answer(out)
        return self._memo()[key]  # type: ignore

    def task_by_pid(self, pid: int) -> Optional[int]:
        """Return the task_struct address of ``pid`` (``ps PID``), or None when no such
        task exists."""
        pid = check_pid_word(pid)
        try:
            out = self.command("ps %d" % pid)
        except CrashCommandError:
            return None
        for t in parse_ps(out):
            if t.pid == pid:
                return t.task
        return None

    def prefetch_symbols(self, addrs) -> None:
        """Learn :meth:`address_symbol` of each address in ``addrs`` with one ``sym``
        per address, sent together."""
        memo = self._memo()
        todo = sorted({int(a) for a in addrs if 0 <= int(a) < 1 << 64 and
                       ("addr", int(a)) not in memo})
        if not todo or not self.batches_commands:
            return
        for a, out in zip(todo, self.batch(["sym %x" % a for a in todo])):
            memo[("addr", a)] = self._sym_answer(out if isinstance(out, str) else "")

    def _sym_answer(self, out: str) -> Optional[str]:
        for line in out.splitlines():
            t = line.split()
            if len(t) >= 3 and t[1].startswith("("):
                return self._norm_symoff(t[2])
        return None

    @staticmethod
    def _norm_symoff(s: str) -> str:
        name, plus, off = s.partition("+")
        if not plus:
            return name
        try:
            n = int(off, 16) if off.lower().startswith("0x") else int(off)
        except ValueError:
            return s
        return name if n == 0 else "%s+%#x" % (name, n)

    # -------------------------------------------------------------------- types

    def _gdb_value(self, expr: str) -> Optional[str]:
        """Return the text after ``$N = `` of ``p EXPR``, None when gdb rejects it."""
        try:
            out = self.command("p %s" % expr)
        except CrashCommandError:
            return None
        m = re.search(r"^\$\d+ = (.*)$", out, re.M)
        return m.group(1).strip() if m else None

    def _ctype(self, type_name: str) -> Optional[str]:
        """Return how gdb spells ``type_name`` (``struct X``, ``union X`` or ``X``), or
        None when there is no such type.  Caches the size as well."""
        t = check_type_word(type_name)
        key = ("ctype", t)
        if key in self._memo():
            return self._memo()[key]  # type: ignore
        cands = [t] if " " in t else ["struct " + t, "union " + t, t]
        found = None
        for c in cands:
            n = _int_or_none(self._gdb_value("sizeof(%s)" % c))
            if n is not None:
                found = c
                self._memo()[("size", c)] = n
                break
        self._memo()[key] = found
        self._learned()
        return found

    def prefetch_structs(self, type_names) -> None:
        """Learn the size, member offsets and member types of each struct in
        ``type_names`` from one ``struct -o NAME`` apiece (sent together), instead of a
        ``p``/``whatis`` per fact -- each of those costs a gdb look-up, tens of ms the
        first time.  Members ``struct -o`` does not show plainly (arrays, bit fields,
        function pointers, members of nested named structs) are still asked for one by
        one; a member that appears nowhere in the answer is known absent.  Types this
        cannot read (typedefs, unions, unknown names) are left to the usual look-ups.
        Best for small structs: crash takes seconds over ``task_struct``."""
        memo = self._memo()
        todo = []
        for t in type_names:
            t = check_type_word(t)
            if " " not in t and ("ctype", t) not in memo and ("struct_o", t) not in memo:
                todo.append(t)
        if not todo:
            return
        cmds = ["struct -o %s" % t for t in todo]
        outs = self.batch(cmds)  # type: ignore[attr-defined]   # Port's: the error in its slot
        for t, out in zip(todo, outs):
            memo[("struct_o", t)] = True
            if isinstance(out, str):
                self._learn_struct(t, out)
        self._learned()

    def _learn_struct(self, t: str, out: str) -> None:
        lines = [l for l in out.splitlines() if l.strip()]
        if not lines or lines[0].strip() != "struct %s {" % t:
            return
        size = None
        blocks = [[]]  # type: list
        closed = False
        for line in lines[1:]:
            st = line.strip()
            if closed:
                m = re.match(r"^SIZE:\s*(\d+)$", st)
                if m:
                    size = int(m.group(1))
                continue
            m = re.match(r"^\[(\d+)\]\s+(.*);$", st)
            if m:
                decl = m.group(2)
                if not any(c in decl for c in "()[]:{}"):
                    mm = re.match(r"^(.*?)\s*(\**)\s*([A-Za-z_][A-Za-z0-9_]*)$", decl)
                    if mm and mm.group(1):
                        typ = mm.group(1) + (" " + mm.group(2) if mm.group(2) else "")
                        blocks[-1].append((mm.group(3), int(m.group(1)), typ))
                continue
            if st.endswith("{"):
                blocks.append([])           # an anonymous union/struct opens
            elif st.startswith("}"):
                if len(blocks) == 1:
                    closed = st == "}"
                    if not closed:
                        return
                    continue
                inner = blocks.pop()
                if st == "};":              # anonymous: its members are ours
                    blocks[-1].extend(inner)
            else:
                return                      # a line this reader does not know
        if size is None or len(blocks) != 1:
            return
        memo = self._memo()
        c = "struct %s" % t
        memo[("ctype", t)] = c
        memo[("size", c)] = size
        for name, off, typ in blocks[0]:
            memo.setdefault(("off", c, name), off)
            memo.setdefault(("mtype", c, name), " ".join(typ.split()))
        memo[("idents", c)] = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", out))

    def _known_absent(self, c: str, m: str) -> bool:
        idents = self._memo().get(("idents", c))
        return idents is not None and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", m) is not None \
            and m not in idents

    def type_size(self, type_name: str) -> Optional[int]:
        """Return ``sizeof(type_name)``, None for an unknown type."""
        c = self._ctype(type_name)
        if c is None:
            return None
        return self._memo().get(("size", c))  # type: ignore

    def member_offset(self, type_name: str, member: str) -> Optional[int]:
        """Return the offset of ``member`` (``a.b``, ``a[2].b``) in ``type_name``, None
        when the type or member does not exist."""
        m = check_member_word(member)
        c = self._ctype(type_name)
        if c is None:
            return None
        key = ("off", c, m)
        if key not in self._memo() and self._known_absent(c, m):
            self._memo()[key] = None
        if key not in self._memo():
            v = self._gdb_value("(unsigned long)&((%s *)0)->%s" % (c, m))
            self._memo()[key] = _int_or_none(v)
            self._learned()
        return self._memo()[key]  # type: ignore

    def member_type(self, type_name: str, member: str) -> Optional[str]:
        """Return the declared C type of ``member`` as gdb prints it (``atomic_long_t``,
        ``struct task_struct *``, ``char [16]``), None when there is no such member."""
        m = check_member_word(member)
        c = self._ctype(type_name)
        if c is None:
            return None
        key = ("mtype", c, m)
        if key not in self._memo() and self._known_absent(c, m):
            self._memo()[key] = None
        if key not in self._memo():
            val = None
            try:
                out = self.command("gdb whatis ((%s *)0)->%s" % (c, m))
            except CrashCommandError:
                out = ""
            mm = re.search(r"^type = (.*)$", out, re.M)
            if mm:
                val = mm.group(1).strip()
            self._memo()[key] = val
            self._learned()
        return self._memo()[key]  # type: ignore

    def enum_value(self, name: str) -> Optional[int]:
        """Return the value of enumerator ``name`` (``p/d NAME``), None when gdb knows
        no such enumerator."""
        w = check_address_word(name)
        key = ("enum", w)
        if key not in self._memo():
            val = None
            try:
                out = self.command("p/d %s" % w)
            except CrashCommandError:
                out = ""
            m = re.search(r"^\$\d+ = (-?\d+)\s*$", out, re.M)
            if m:
                val = int(m.group(1))
            self._memo()[key] = val
            self._learned()
        return self._memo()[key]  # type: ignore
