"""The records of argument recovery (:class:`Arg`, :class:`FrameArgs`,
:class:`TaskArgs`), the per-frame working data the recovery keeps (:class:`CodeFrame`)
and the small helpers every part of it shares (words of ``bt -f``, hex as crash prints
it, the C types that fit 32 bits)."""

import re
from ..compat import Callable, Dict, List, Optional, Tuple
from ..core.caches import PARSED_CODE

from ..models.disasm import Insn, parse_dis
from ..models.stack import Backtrace, Frame
from . import flow as fl
from .solver import Lin

MASK = (1 << 64) - 1
SWITCH_FUNCS = ("__switch_to_asm",)
TAIL_DEPTH = 3
CLONE_PARTS = re.compile(
    r"^(?P<base>[^.]+)(?P<suffix>(?:\.(?:constprop|isra|part|cold|lto_priv|localalias|"
    r"llvm)(?:\.\d+)?)+)$")

DisFn = Callable[[int], str]
ReadFn = Callable[[int], Optional[int]]
WhatisFn = Callable[[str], str]


class CodeFrame:
    """Per-frame working data."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.fid = "#%d" % frame.index
        self.flow = None  # type: Optional[fl.Flow]
        self.call = None  # type: Optional[Insn]
        self.problem = None  # type: Optional[str]
        m = CLONE_PARTS.match(frame.function)
        self.base = m.group("base") if m else frame.function
        self.clone = m.group("suffix") if m else None
        self.cold = bool(self.clone and ".cold" in self.clone)
        self.sp = frame.sp  # type: object   # the slot as an int or a Lin (Recovery)

    @property
    def state(self):
        return self.flow.state if self.flow is not None else None

    def where(self) -> str:
        return self.call.where if self.call else self.frame.function


@PARSED_CODE.memo
def parsed(text: str) -> List[Insn]:
    """Return parse_dis of ``text``, parsed once per process (instructions are never
    modified by the analyses)."""
    return parse_dis(text)


def hx(v) -> str:
    """Return an address/value formatted the way crash does (bare hex for kernel
    words); for a task-dependent value (a Lin), the mark its Params renders per task."""
    if isinstance(v, Lin):
        return v.ps.mark(v)
    return "%x" % (v & MASK)


_SMALL = re.compile(
    r"^(const\s+)?(unsigned\s+|signed\s+)?(int|short|char|short int|_Bool|bool|"
    r"u8|u16|u32|s8|s16|s32|__u8|__u16|__u32|__s8|__s16|__s32|uint|gfp_t|pid_t|uid_t|"
    r"gid_t|umode_t|fmode_t|dev_t|blk_opf_t|enum\s+\w+)$")


def is_32bit_type(typ: str) -> bool:
    """True for scalar C types of at most 32 bits (``int``, ``unsigned int``, ``char``,
    ``enum x``, common kernel typedefs such as ``gfp_t``)."""
    t = " ".join(typ.split())
    return t in ("unsigned", "signed") or bool(_SMALL.match(t))


def task_words(bt: Backtrace) -> Dict[int, int]:
    """Return the stack words ``bt -f`` printed under ``bt``'s frames ({address: word})."""
    words = {}  # type: Dict[int, int]
    for f in bt.frames:
        words.update(f.words)
    return words


def read_word(addr: int, words: Dict[int, int], read_fn: Optional[ReadFn]
              ) -> Tuple[Optional[int], str]:
    """Return (the word at ``addr``, where it was found: 'bt -f' when ``words`` has it,
    else 'memory' from ``read_fn``), or (None, "") when neither gives it."""
    v = words.get(addr)
    if v is not None:
        return v, "bt -f"
    if read_fn is not None:
        try:
            v = read_fn(addr)
        except Exception:  # noqa: BLE001 - unreadable means no anchor
            v = None
        if v is not None:
            return v, "memory"
    return None, ""
