"""Parse crash ``whatis FUNC`` output (gdb's prototype text) and map parameters to
SysV argument registers.

Shapes seen::

    int vfs_unlink(struct user_namespace *, struct inode *, struct dentry *, struct inode **);
    struct rw_semaphore *rwsem_down_write_slowpath(struct rw_semaphore *, int);
    int (struct mutex *, unsigned int, unsigned long, struct lockdep_map *, unsigned int)
    void schedule(void);

gdb prints types only; names appear when the text came from elsewhere (``int a``).
"""

import re
from ..core.record import dataclass, field
from ..compat import List, Optional

from .x86 import ARG_REGS
from .disasm import split_top_level

_KEYWORDS = frozenset((
    "int", "long", "short", "char", "unsigned", "signed", "void", "_Bool", "bool", "float",
    "double", "const", "volatile", "restrict", "__restrict", "struct", "union", "enum",
    "__int128",
))
_FLOAT = re.compile(r"^(const\s+)?(float|double|long double)$")
_AGGREGATE = re.compile(r"^(const\s+)?(struct|union)\s+\w+$")


@dataclass
class Param:
    """One parameter: ``type`` as printed, ``name`` (None when gdb gave none)."""
    type: str
    name: Optional[str] = None


@dataclass
class Prototype:
    """A function prototype.  ``name`` may be None (gdb sometimes omits it)."""
    name: Optional[str]
    ret: str
    params: List[Param] = field(default_factory=list)
    variadic: bool = False
    text: str = ""

    def registers(self) -> List[Optional[str]]:
        """Return, per parameter, the SysV register it arrives in, or None when it is
        passed otherwise (floating point, memory) or its register cannot be told
        (a struct passed by value earlier in the list makes the rest uncertain)."""
        out = []  # type: List[Optional[str]]
        i = 0
        uncertain = False
        for p in self.params:
            t = p.type.strip()
            if uncertain or i >= len(ARG_REGS):
                out.append(None)
                continue
            if _FLOAT.match(t):
                out.append(None)
                continue
            if _AGGREGATE.match(t):
                out.append(None)
                uncertain = True
                continue
            out.append(ARG_REGS[i])
            i += 1
        return out


def _param(text: str) -> Param:
    t = " ".join(text.split())
    if "(" in t:  # function pointer: "void (*cb)(int)" or "void (*)(int)"
        m = re.search(r"\(\s*\*\s*(\w+)\s*\)", t)
        if m:
            return Param(t[:m.start(1)] + t[m.end(1):], m.group(1))
        return Param(t)
    m = re.match(r"^(?P<type>.*?[\s*])(?P<name>[A-Za-z_]\w*)(?P<arr>\s*\[[^\]]*\])?$", t)
    if m:
        typ = m.group("type").strip()
        name = m.group("name")
        words = typ.replace("*", " ").split()
        if name not in _KEYWORDS and words and not (
                words[-1] in ("struct", "union", "enum")) and (
                    typ.endswith("*") or words[-1] not in ("const", "volatile")):
            if m.group("arr"):
                typ += " *"
            return Param(typ, name)
    return Param(t)


def parse_whatis(text: str, function: Optional[str] = None) -> Optional[Prototype]:
    """Return the Prototype in ``whatis`` output (of ``function``, when given), or None
    when ``text`` holds no function prototype (an error message, a variable).

    crash's ``whatis`` of a function whose gdb type has no name puts the name after the
    first ``(*`` it finds, which is inside a function-pointer parameter when there is
    one: ``long (struct completion *, long (*__wait_for_common)(long), long, int);``.
    Given ``function``, that name is moved back where it belongs (``long
    __wait_for_common(struct completion *, long (*)(long), long, int);``) and the
    parameter stays unnamed.  Never raises."""
    line = None
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.endswith(");") or ln.endswith(")"):
            line = ln
            break
    if line is None:
        return None
    s = line.rstrip(";").rstrip()
    depth = 0
    open_at = None
    for i in range(len(s) - 1, -1, -1):
        if s[i] == ")":
            depth += 1
        elif s[i] == "(":
            depth -= 1
            if depth == 0:
                open_at = i
                break
    if open_at is None:
        return None
    head = s[:open_at].rstrip()
    inner = s[open_at + 1:-1].strip()
    name = None
    m = re.match(r"^(?P<ret>.*?[\s*])(?P<name>[A-Za-z_][\w.]*)$", head)
    if m and m.group("name") not in _KEYWORDS:
        ret = m.group("ret").strip()
        name = m.group("name")
    else:
        ret = head
    if not ret:
        return None
    proto = Prototype(name=name, ret=ret, text=line)
    if inner in ("", "void"):
        return proto
    for p in split_top_level(inner):
        if p == "...":
            proto.variadic = True
            continue
        proto.params.append(_param(p))
    if name is None and function:
        slot = "(*%s)" % function
        moved = [q for q in proto.params if q.name == function and "(*)" in q.type]
        if len(moved) == 1 and inner.count(slot) == 1:
            moved[0].name = None
            proto.name = function
            proto.text = "%s%s%s(%s);" % (ret, "" if ret.endswith("*") else " ", function,
                                           inner.replace(slot, "(*)"))
    return proto


_SCOPE_SYMBOL = re.compile(r"^Symbol ([A-Za-z_]\w*) is ", re.M)


def parse_scope(text: str) -> List[str]:
    """Return the names of the symbols gdb's ``info scope *ADDR`` lists, in its order:
    at a function's entry, the symbols of its outermost block as its debuginfo lists
    them (its parameters first, then that block's locals).  Returns [] when gdb lists
    none (no debuginfo for the address: "No function contains specified address.").
    Never raises."""
    if not text.lstrip().startswith("Scope for "):
        return []
    return _SCOPE_SYMBOL.findall(text)
