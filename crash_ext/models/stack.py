"""Parse crash ``bt`` / ``bt -f`` / ``bt -l`` output (x86-64), one task or many
(``foreach UN bt -f``).

Frame geometry (crash's x86_64 back trace): the line `` #N [RSP_N] func at RETADDR``
names the stack slot RSP_N that holds RETADDR, a return address into ``func``.  With
``-f`` crash prints the words RSP_N+8 .. RSP_{N+1} (inclusive) *after* line #N, i.e.
before line #N+1; they are kept in ``Frame.words`` of frame N (and, all together, in
``Backtrace.words``).
"""

import re
from ..core.record import dataclass, field
from ..compat import Dict, List, Optional, Tuple

TASK_LINE = re.compile(
    r"^PID:\s*(?P<pid>\d+)\s+TASK:\s*(?P<task>[0-9a-fA-F]+)\s+CPU:\s*(?P<cpu>-?\d+|-)"
    r"\s+COMMAND:\s*\"(?P<comm>.*)\"\s*$")
FRAME_LINE = re.compile(
    r"^\s*#(?P<idx>\d+)\s+\[\s*(?P<sp>[0-9a-fA-F]+)\]\s+(?P<func>\S+)"
    r"(?:\s+at\s+(?P<ret>[0-9a-fA-F]+))?(?P<tail>.*)$")
_WORDS = re.compile(r"^\s+(?P<addr>[0-9a-f]{8,16}):\s+(?P<vals>(?:\S+\s*)+)$")
_REG = re.compile(r"\b(?P<name>[A-Z][A-Z0-9_]*):\s+(?P<val>[0-9a-fA-F]+)\b")
_EXC = re.compile(r"^\s*\[exception RIP:\s*(?P<where>[^\]]*)\]\s*$")
_MARK = re.compile(r"^\s*---\s*<(?P<what>[^>]*)>\s*---\s*$")
_SRCLINE = re.compile(r"^\s+(?P<src>/?\S+\.[chsS]:\s*\d+)\s*$")
_REGNAMES = frozenset((
    "RIP", "RSP", "RFLAGS", "RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "R8", "R9",
    "R10", "R11", "R12", "R13", "R14", "R15", "ORIG_RAX", "CS", "SS", "DS", "ES", "FS",
    "GS", "FS_BASE", "GS_BASE"))


@dataclass
class Frame:
    """One ``#N`` line of a back trace.

    ``sp``: RSP_N, the stack slot that holds ``ret_addr``; ``function``: name as printed
    (``__mutex_lock.constprop.0``; ``bt -s`` style ``+off`` is split into ``func_offset``);
    ``module``: ``xfs`` for ``[xfs]``; ``words``: {address: value} printed under the frame
    by ``-f``; ``exception_rip``: text of a following ``[exception RIP: ...]`` line;
    ``regs``: register block printed under the frame (exception/syscall frames);
    ``stack``: the ``--- <IRQ stack> ---`` style marker seen before this frame, if any;
    ``source``: ``bt -l`` line; ``notes``: trailing text such as ``(via system_call)``.
    """
    index: int
    sp: int
    function: str
    ret_addr: Optional[int]
    module: Optional[str] = None
    func_offset: Optional[int] = None
    words: Dict[int, int] = field(default_factory=dict)
    exception_rip: Optional[str] = None
    regs: Dict[str, int] = field(default_factory=dict)
    stack: Optional[str] = None
    source: Optional[str] = None
    notes: str = ""


@dataclass
class Backtrace:
    """One task's back trace.

    ``pid``/``task``/``cpu``/``command`` from the header (None when absent);
    ``frames`` innermost first; ``regs``: the last register block (the syscall or
    exception frame at the bottom); ``words``: every stack word printed by ``-f``;
    ``messages``: lines crash printed that were not understood (warnings, errors).
    """
    pid: Optional[int] = None
    task: Optional[int] = None
    cpu: Optional[int] = None
    command: Optional[str] = None
    frames: List[Frame] = field(default_factory=list)
    regs: Dict[str, int] = field(default_factory=dict)
    words: Dict[int, int] = field(default_factory=dict)
    messages: List[str] = field(default_factory=list)

    def frame(self, index: int) -> Optional[Frame]:
        """Return the frame numbered ``index`` (crash's ``#N``), or None."""
        for f in self.frames:
            if f.index == index:
                return f
        return None


def _parse_regs(line: str) -> Dict[str, int]:
    regs = {}
    for m in _REG.finditer(line):
        if m.group("name") in _REGNAMES:
            regs[m.group("name")] = int(m.group("val"), 16)
    return regs


def _is_reg_line(line: str) -> bool:
    s = line.strip()
    m = re.match(r"^([A-Z][A-Z0-9_]*):", s)
    return bool(m and m.group(1) in _REGNAMES)



def split_func_offset(func: str) -> Tuple[str, Optional[int]]:
    """Return (name, offset) of a frame's ``func`` or ``func+0x1f`` (``bt -s``); offset
    None when absent or unreadable."""
    if "+" not in func:
        return func, None
    name, off = func.split("+", 1)
    try:
        return name, int(off, 0)
    except ValueError:
        return name, None

def parse_backtraces(text: str) -> List[Backtrace]:
    """Return every task's back trace in ``text`` (one per ``PID:`` header; frames before
    any header go to a header-less Backtrace).  Never raises; unknown lines are kept in
    ``messages`` (lines before the first header go to the first back trace).  Text with
    no header and no frame gives []."""
    out = []  # type: List[Backtrace]
    bt = None  # type: Optional[Backtrace]
    frame = None  # type: Optional[Frame]
    mark = None  # type: Optional[str]
    regs_target = None  # type: Optional[Dict[str, int]]
    pre = []  # type: List[str]
    for line in text.splitlines():
        if not line.strip():
            continue
        m = TASK_LINE.match(line.strip())
        if m:
            cpu = m.group("cpu")
            bt = Backtrace(pid=int(m.group("pid")), task=int(m.group("task"), 16),
                           cpu=int(cpu) if cpu.lstrip("-").isdigit() else None,
                           command=m.group("comm"), messages=pre)
            pre = []
            out.append(bt)
            frame, mark, regs_target = None, None, None
            continue
        m = FRAME_LINE.match(line)
        if bt is None:
            if not m:
                pre.append(line.rstrip())
                continue
            bt = Backtrace(messages=pre)
            out.append(bt)
        if m:
            func, foff = split_func_offset(m.group("func"))
            tail = m.group("tail") or ""
            mod = re.search(r"\[(?P<mod>[A-Za-z0-9_\-]+)\]", tail)
            frame = Frame(index=int(m.group("idx")), sp=int(m.group("sp"), 16),
                          function=func,
                          ret_addr=int(m.group("ret"), 16) if m.group("ret") else None,
                          module=mod.group("mod") if mod else None, func_offset=foff,
                          stack=mark, notes=tail.strip())
            mark = None
            regs_target = None
            bt.frames.append(frame)
            continue
        m = _MARK.match(line)
        if m:
            mark = m.group("what")
            continue
        m = _EXC.match(line)
        if m:
            if frame is not None:
                frame.exception_rip = m.group("where").strip()
            continue
        if _is_reg_line(line):
            regs = _parse_regs(line)
            if regs_target is None:
                regs_target = frame.regs if frame is not None else {}
                bt.regs = regs_target
            regs_target.update(regs)
            continue
        m = _WORDS.match(line)
        if m:
            addr = int(m.group("addr"), 16)
            for i, w in enumerate(m.group("vals").split()):
                if re.match(r"^[0-9a-fA-F]{1,16}$", w):
                    a = addr + 8 * i
                    v = int(w, 16)
                    bt.words[a] = v
                    if frame is not None:
                        frame.words[a] = v
                else:
                    break  # bt -F symbolic words: keep what was plain hex
            continue
        m = _SRCLINE.match(line)
        if m and frame is not None:
            frame.source = m.group("src")
            continue
        bt.messages.append(line.rstrip())
    return out


def parse_backtrace(text: str) -> Backtrace:
    """Return the single back trace in ``text``.

    Raises ValueError when ``text`` holds no frame at all, or more than one task.
    """
    bts = [b for b in parse_backtraces(text) if b.frames or b.pid is not None]
    if len(bts) != 1:
        raise ValueError("expected one back trace, found %d" % len(bts))
    if not bts[0].frames:
        raise ValueError("back trace of PID %s has no frames" % (bts[0].pid,))
    return bts[0]
