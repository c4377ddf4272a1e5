"""Parse crash ``dis`` output (AT&T syntax) into instructions.

Accepted line shapes (crash 5.x-8.x; spaces or a tab after the colon)::

    0xffffffff8119aaa9 <do_unlinkat+329>:   mov    %rdx,%rsi
    0xffffffff8119aabe <do_unlinkat+350>:   callq  0xffffffff81197960 <vfs_unlink>
    0xffffffffc0a01005 <lab_take+5>:\tlock cmpxchg %rdx,(%rbx)
    0xffffffff81a54980 <__mutex_lock.constprop.0>:\tnopl   0x0(%rax,%rax,1) [FTRACE NOP]
    /build/linux/kernel/locking/mutex.c: 283        (``dis -l`` source lines)

Everything else (blank lines, crash messages) is ignored.  Offsets inside ``<...>`` are
decimal unless ``dis -x`` was used; the parser accepts both (``+0x1f``).
"""

import re
from ..core.record import dataclass, field
from ..compat import List, Optional, Tuple

from . import x86

_LINE = re.compile(
    r"^\s*(?:=>\s*)?0x(?P<addr>[0-9a-fA-F]+)\s+<(?P<sym>[^>]*)>:\s*(?P<rest>.*)$")
_SRC = re.compile(r"^\s*(?P<file>/?[^\s:]+\.[chsS]):\s*(?P<line>\d+)\s*$")
_SYMOFF = re.compile(r"^(?P<name>.*?)(?:\+(?P<off>0x[0-9a-fA-F]+|\d+))?$")
_TARGET = re.compile(r"^\*?\s*(?:0x)?(?P<addr>[0-9a-fA-F]+)\s*(?:<(?P<sym>[^>]*)>)?$")
_MEM = re.compile(
    r"^(?:%(?P<seg>[a-z]s):)?(?P<disp>-?(?:0x[0-9a-fA-F]+|\d+))?"
    r"(?:\((?P<base>%[a-z0-9]+)?(?:,(?P<index>%[a-z0-9]+)?(?:,(?P<scale>\d))?)?\))?$")

PREFIXES = frozenset(("lock", "rep", "repz", "repe", "repnz", "repne", "data16", "data32",
                      "addr32", "cs", "ds", "es", "ss", "fs", "gs", "notrack", "bnd",
                      "rex", "rex.w", "rex.b", "rex.r", "rex.x", "rex.wb", "rex.wr",
                      "xacquire", "xrelease"))


@dataclass
class Operand:
    """One instruction operand.

    kind: ``reg`` (``reg`` set), ``imm`` (``imm`` set), ``mem`` (``disp``/``base``/``index``/
    ``scale``/``seg`` set; ``rip`` relative when base is ``rip``), ``target`` (a direct
    branch/call target: ``target`` address and ``target_sym``).  ``indirect`` marks a
    ``*``-prefixed call/jump operand.  ``text`` is the operand as printed.
    """
    kind: str
    text: str
    reg: Optional[str] = None
    imm: Optional[int] = None
    disp: int = 0
    base: Optional[str] = None
    index: Optional[str] = None
    scale: int = 1
    seg: Optional[str] = None
    target: Optional[int] = None
    target_sym: Optional[str] = None
    indirect: bool = False


@dataclass
class Insn:
    """One disassembled instruction.

    ``addr``: its address; ``func``/``offset``: the symbol crash printed (``do_unlinkat``,
    329); ``mnemonic``: normalized (``callq``->``call``, see x86.normalize_mnemonic);
    ``raw_mnemonic`` as printed; ``prefixes`` such as ``lock``/``rep``; ``operands`` in AT&T
    order (destination last); ``comment`` the text after ``#`` (gdb's rip-relative
    resolution); ``source`` the preceding ``dis -l`` line (``fs/namei.c: 2869``) if any;
    ``size``: bytes up to the next instruction when known (set by parse_dis).
    """
    addr: int
    func: str
    offset: int
    mnemonic: str
    raw_mnemonic: str
    operands: List[Operand] = field(default_factory=list)
    prefixes: List[str] = field(default_factory=list)
    text: str = ""
    comment: Optional[str] = None
    source: Optional[str] = None
    size: Optional[int] = None

    @property
    def where(self) -> str:
        """``func+offset`` as crash prints it (decimal offset)."""
        return "%s+%d" % (self.func, self.offset) if self.offset else self.func

    @property
    def next_addr(self) -> Optional[int]:
        """Address of the following instruction, or None when the size is unknown."""
        return self.addr + self.size if self.size is not None else None

    def is_call(self) -> bool:
        """True for ``call``."""
        return self.mnemonic == "call"

    def branch_target(self) -> Optional[int]:
        """Return the direct target address of a call/jump, or None (indirect, or not a
        branch)."""
        if not (self.mnemonic == "call" or x86.is_jump(self.mnemonic)):
            return None
        if self.operands and self.operands[0].kind == "target":
            return self.operands[0].target
        return None

    def branch_target_sym(self) -> Optional[str]:
        """Return the symbol printed for a direct branch target (``vfs_unlink``,
        ``do_unlinkat+355``), or None."""
        if self.operands and self.operands[0].kind == "target":
            return self.operands[0].target_sym
        return None

    def writes(self):
        """Return the set of 64-bit registers this instruction may write (explicit and
        implicit, including a call's caller-saved clobbers and rsp changes)."""
        regs = [(i, o.reg) for i, o in enumerate(self.operands) if o.kind == "reg"]
        w = x86.explicit_writes(self.mnemonic, regs, len(self.operands))
        return set(w) | set(x86.implicit_writes(self.mnemonic, len(self.operands)))


def split_symoff(sym: str) -> Tuple[str, int]:
    """Split ``name+off`` (decimal or 0x) into (name, off); a bare name gives off 0."""
    m = _SYMOFF.match(sym.strip())
    name = m.group("name")
    off = m.group("off")
    if off is None:
        return name, 0
    return name, int(off, 0)


def split_top_level(s: str) -> List[str]:
    """Return ``s`` split at the commas not inside (), [] (operands, parameter lists)."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if cur and "".join(cur).strip():
        out.append("".join(cur).strip())
    return out

def _to_int(s: str) -> int:
    neg = s.startswith("-")
    v = int(s[1:] if neg else s, 0)
    return -v if neg else v


def parse_operand(text: str, branch: bool = False) -> Operand:
    """Parse one AT&T operand.  ``branch`` marks a call/jump operand, where a bare number
    (optionally followed by ``<sym>``) is a target rather than a memory address.

    Raises ValueError for text that is no operand form known here.
    """
    t = text.strip()
    indirect = False
    if t.startswith("*"):
        indirect = True
        t = t[1:].strip()
    if t.startswith("$"):
        return Operand("imm", text, imm=_to_int(t[1:]))
    if t.startswith("%") and re.match(r"^%[a-z0-9]+$", t):
        return Operand("reg", text, reg=t[1:], indirect=indirect)
    if branch and not indirect:
        m = _TARGET.match(t)
        if m:
            return Operand("target", text, target=int(m.group("addr"), 16),
                           target_sym=m.group("sym"))
    # gdb may append the resolved symbol of a memory operand: "0xffffffff82a0(,%rax,8) <x>"
    t2 = re.sub(r"\s*<[^>]*>\s*$", "", t)
    m = _MEM.match(t2)
    if m and (m.group("disp") or m.group("base") or m.group("index")):
        return Operand("mem", text,
                       disp=_to_int(m.group("disp")) if m.group("disp") else 0,
                       base=m.group("base")[1:] if m.group("base") else None,
                       index=m.group("index")[1:] if m.group("index") else None,
                       scale=int(m.group("scale")) if m.group("scale") else 1,
                       seg=m.group("seg"), indirect=indirect)
    raise ValueError("unparsed operand %r" % (text,))


def parse_insn_text(addr: int, sym: str, rest: str) -> Insn:
    """Build an Insn from the address, the ``<sym+off>`` text and what follows the colon.

    Unknown operand syntax is kept as an ``unknown`` operand rather than raising.
    """
    func, off = split_symoff(sym)
    body = rest.replace("\t", " ").strip()
    body = body.replace("[FTRACE NOP]", "").strip()
    comment = None
    if "#" in body:
        body, comment = body.split("#", 1)
        body, comment = body.strip(), comment.strip()
    words = body.split()
    prefixes = []
    while len(words) > 1 and words[0].lower() in PREFIXES:
        prefixes.append(words.pop(0).lower())
    if not words:
        words = prefixes[-1:] or ["(bad)"]
        prefixes = prefixes[:-1]
    raw = words[0]
    mnem = x86.normalize_mnemonic(raw)
    optext = " ".join(words[1:])
    ops = []  # type: List[Operand]
    branch = mnem == "call" or x86.is_jump(mnem)
    if optext:
        if branch and not optext.startswith("*") and "(" not in optext:
            parts = [optext]
        else:
            parts = split_top_level(optext)
        for p in parts:
            try:
                ops.append(parse_operand(p, branch=branch))
            except ValueError:
                ops.append(Operand("unknown", p))
    return Insn(addr=addr, func=func, offset=off, mnemonic=mnem, raw_mnemonic=raw,
                operands=ops, prefixes=prefixes, text=body, comment=comment)


def parse_dis(text: str) -> List[Insn]:
    """Return the instructions in crash ``dis`` output, in address order as printed.

    Each instruction's ``size`` is set from the next instruction's address when they are
    consecutive in the same function; ``source`` from a preceding ``dis -l`` line.
    Never raises on odd lines; returns [] when nothing parses.
    """
    out = []  # type: List[Insn]
    src = None
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            s = _SRC.match(line)
            if s:
                src = "%s: %s" % (s.group("file"), s.group("line"))
            continue
        ins = parse_insn_text(int(m.group("addr"), 16), m.group("sym"), m.group("rest"))
        ins.source = src
        out.append(ins)
    for a, b in zip(out, out[1:]):
        if b.addr > a.addr and b.addr - a.addr <= 15:
            a.size = b.addr - a.addr
    return out


def rip_target(ins: Insn, op: Operand) -> Optional[int]:
    """Return the absolute address a ``disp(%rip)`` operand refers to, from the
    instruction size or, failing that, gdb's ``# 0x... <sym>`` comment; None if unknown."""
    if op.kind != "mem" or op.base != "rip":
        return None
    if ins.size is not None:
        return (ins.addr + ins.size + op.disp) & 0xFFFFFFFFFFFFFFFF
    if ins.comment:
        m = re.match(r"^(?:0x)?([0-9a-fA-F]+)", ins.comment)
        if m and not op.seg:
            return int(m.group(1), 16)
    return None


def join_dis(back: str, fwd: str) -> str:
    """Return crash's ``dis -r ADDR`` and ``dis -f ADDR`` answers joined into the text
    of the whole function around ADDR (the line at ADDR, which both print, once when
    both print it alike)."""
    lines = back.rstrip("\n").splitlines()
    flines = fwd.splitlines()
    if flines and lines and flines[0].split(":")[0] == lines[-1].split(":")[0]:
        flines = flines[1:]
    return "\n".join(lines + flines) + "\n"


_GDB_RANGE = re.compile(r"^Address range 0x(?P<lo>[0-9a-fA-F]+) to 0x(?P<hi>[0-9a-fA-F]+):")
_GDB_LINE = re.compile(
    r"^(?:=>)?\s*0x(?P<addr>[0-9a-fA-F]+) <[+-]?\d+>:\s*(?P<rest>.*)$")
_ANNOTATED = re.compile(r"0x(?P<addr>[0-9a-fA-F]+) <[^>]*>")


def gdb_as_dis(text: str, addr: int, symbols) -> Optional[str]:
    """Return gdb's ``disassemble ADDR`` answer rewritten as crash ``dis`` lines of the
    function around ``addr``, or None when it has no instruction at ``addr``.

    gdb names places by its debug information (``foo`` for crash's
    ``foo.constprop.0``, ``foo+9183399`` for ``foo.cold+798``, ``memcpy`` for
    ``__memcpy``); every ``0xADDR <...>`` is renamed from ``symbols`` (crash's symbol
    table: a :class:`~crash_ext.models.symtab.SymbolTable`), so the text reads as
    crash's own; as in crash's ``dis``, of symbols sharing an address the line at
    ``addr`` is named by the one crash names ``addr`` by, the other lines by the last
    listed (a return address inside them is shown in that one).  Of a function in
    several address ranges (a ``.cold`` part) only the range holding ``addr`` is kept,
    from the symbol at or below ``addr``: the text ``dis -r ADDR`` and ``dis -f ADDR``
    print together.
    """
    lines = []
    rng = None
    chosen = None
    for line in text.splitlines():
        m = _GDB_RANGE.match(line)
        if m:
            rng = (int(m.group("lo"), 16), int(m.group("hi"), 16))
            if rng[0] <= addr < rng[1]:
                chosen = rng
            continue
        m = _GDB_LINE.match(line)
        if m:
            lines.append((rng, int(m.group("addr"), 16), m.group("rest")))

    def rename(m):
        t = int(m.group("addr"), 16)
        n = symbols.name_at(t)
        return m.group(0) if n is None else "0x%x <%s>" % (t, n)
    out = []
    at = start = None
    for r, a, rest in lines:
        if r != chosen:
            continue
        sym = symbols.symbol(a, inside=a != addr)
        if sym is None:
            return None
        if a == addr:
            at = len(out)
        if a == sym[0] and a <= addr:
            start = len(out)      # crash's dis starts at the symbol at or below addr
        name = sym[1] if a == sym[0] else "%s+%d" % (sym[1], a - sym[0])
        out.append("0x%x <%s>:\t%s" % (a, name, _ANNOTATED.sub(rename, rest)))
    if at is None:
        return None
    return "\n".join(out[start or 0:]) + "\n"
