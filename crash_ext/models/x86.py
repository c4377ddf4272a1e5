"""x86-64 facts used by argument recovery: register names, the SysV ABI, and which
registers an instruction writes.

Register names are given without ``%``.  Every sub-register is mapped to its 64-bit
register (``eax``/``ax``/``al``/``ah`` -> ``rax``, ``r8d``/``r8w``/``r8b`` -> ``r8``).
"""

from ..compat import Dict, FrozenSet, List, Optional, Set, Tuple

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")

#: SysV AMD64 integer argument registers, in parameter order.
ARG_REGS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")

#: Registers a callee must preserve (rsp aside).
CALLEE_SAVED = frozenset(("rbx", "rbp", "r12", "r13", "r14", "r15"))

#: Registers a call may change (the callee need not preserve them).
CALLER_SAVED = frozenset(("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"))


def _build_subregs() -> Dict[str, Tuple[str, int]]:
    m = {}  # name -> (64-bit name, width in bits); 8 marks a high byte as -8
    for r in ("ax", "bx", "cx", "dx"):
        full = "r" + r
        m[full] = (full, 64)
        m["e" + r] = (full, 32)
        m[r] = (full, 16)
        m[r[0] + "l"] = (full, 8)
        m[r[0] + "h"] = (full, -8)
    for r in ("si", "di", "bp", "sp"):
        full = "r" + r
        m[full] = (full, 64)
        m["e" + r] = (full, 32)
        m[r] = (full, 16)
        m[r + "l"] = (full, 8)
    for n in range(8, 16):
        full = "r%d" % n
        m[full] = (full, 64)
        m[full + "d"] = (full, 32)
        m[full + "w"] = (full, 16)
        m[full + "b"] = (full, 8)
        m[full + "l"] = (full, 8)
    return m


_SUBREGS = _build_subregs()


def canonical(reg: str) -> Optional[str]:
    """Return the 64-bit GPR name of ``reg`` (``%esi`` -> ``rsi``), or None when ``reg``
    is not a general-purpose register (``rip``, segment, xmm, ...)."""
    r = reg.lstrip("%").lower()
    v = _SUBREGS.get(r)
    return v[0] if v else None


def width(reg: str) -> Optional[int]:
    """Return the width in bits written through ``reg`` (64, 32, 16, 8; -8 for ah..dh),
    or None when it is not a GPR."""
    v = _SUBREGS.get(reg.lstrip("%").lower())
    return v[1] if v else None


def is_gpr(reg: str) -> bool:
    """True when ``reg`` names a general-purpose register or one of its parts."""
    return canonical(reg) is not None


# ---------------------------------------------------------------------------
# Mnemonics.

_COND = ("o", "no", "b", "c", "nae", "ae", "nb", "nc", "e", "z", "ne", "nz", "be", "na",
         "a", "nbe", "s", "ns", "p", "pe", "np", "po", "l", "nge", "ge", "nl", "le", "ng",
         "g", "nle")
JCC = frozenset(["j" + c for c in _COND] + ["jrcxz", "jecxz", "jcxz", "loop", "loope",
                                           "loopne", "loopz", "loopnz"])
CMOV = frozenset("cmov" + c for c in _COND)
SETCC = frozenset("set" + c for c in _COND)

# Base mnemonics a size suffix (b w l q) may be appended to by the AT&T printer.
_SUFFIXABLE = frozenset((
    "mov", "add", "sub", "and", "or", "xor", "cmp", "test", "lea", "push", "pop", "inc",
    "dec", "neg", "not", "shl", "shr", "sar", "sal", "rol", "ror", "rcl", "rcr", "adc",
    "sbb", "imul", "mul", "div", "idiv", "xchg", "cmpxchg", "xadd", "call", "ret", "jmp",
    "leave", "bt", "bts", "btr", "btc", "bsf", "bsr", "popcnt", "lzcnt", "tzcnt", "nop",
    "stos", "movs", "lods", "scas", "cmps", "iret", "sysret", "shld", "shrd", "bswap",
    "andn", "blsr", "movbe", "crc32", "rdpkru",
))

# Instructions that write nothing we track (flags, memory barriers, hints).
NO_REG_WRITE = frozenset((
    "cmp", "test", "bt", "nop", "endbr64", "endbr32", "lfence", "mfence", "sfence",
    "pause", "clflush", "clflushopt", "clwb", "prefetcht0", "prefetcht1", "prefetcht2",
    "prefetchnta", "prefetchw", "int3", "ud2", "hlt", "cli", "sti", "clac", "stac", "cld",
    "std", "clc", "stc", "cmc", "invlpg", "wbinvd", "wrmsr", "xsetbv", "lgdt", "lidt",
    "ltr", "wrfsbase", "wrgsbase", "fxsave", "fxsave64", "xsave", "xsave64", "xsaves",
    "xsaves64", "xsaveopt", "xsaveopt64", "jmp", "ret", "iret", "iretq", "sysret",
    "sysretq", "swapgs", "verw", "serialize", "ldmxcsr", "stmxcsr", "fnstcw", "fldcw",
    "fwait", "vzeroupper", "xabort", "sysexit", "monitor", "mwait", "wrpkru", "clui",
    "stui", "ptwrite", "tpause", "umonitor", "umwait", "incssp", "setssbsy", "clrssbsy",
    "rstorssp", "saveprevssp", "wrss", "wruss", "out", "outs", "lock",
))

# Implicit GPR writes (beyond the explicit destination).
IMPLICIT_WRITES = {
    "cltq": ("rax",), "cwtl": ("rax",), "cbtw": ("rax",), "cdqe": ("rax",),
    "cqto": ("rdx",), "cltd": ("rdx",), "cwtd": ("rdx",), "cqo": ("rdx",), "cdq": ("rdx",),
    "mul": ("rax", "rdx"), "div": ("rax", "rdx"), "idiv": ("rax", "rdx"),
    "rdtsc": ("rax", "rdx"), "rdtscp": ("rax", "rdx", "rcx"), "rdmsr": ("rax", "rdx"),
    "rdpmc": ("rax", "rdx"), "cpuid": ("rax", "rbx", "rcx", "rdx"), "xgetbv": ("rax", "rdx"),
    "rdpkru": ("rax", "rdx"), "cmpxchg": ("rax",), "cmpxchg8b": ("rax", "rdx"),
    "cmpxchg16b": ("rax", "rdx"), "syscall": ("rcx", "r11"), "lahf": ("rax",),
    "in": ("rax",), "ins": ("rdi", "rcx"), "stos": ("rdi", "rcx"), "movs": ("rsi", "rdi", "rcx"),
    "lods": ("rax", "rsi", "rcx"), "scas": ("rdi", "rcx"), "cmps": ("rsi", "rdi", "rcx"),
    "rdrand": (), "rdseed": (), "xbegin": ("rax",), "rdsspq": (), "rdfsbase": (),
    "rdgsbase": (), "outs": ("rsi", "rcx"),
}

# Instructions whose explicit operands are all read and only the last one written.
# Anything not listed anywhere is treated as writing every register operand.
_DEST_WRITE = frozenset((
    "mov", "add", "sub", "and", "or", "xor", "adc", "sbb", "inc", "dec", "neg", "not",
    "shl", "shr", "sar", "sal", "rol", "ror", "rcl", "rcr", "lea", "imul", "bts", "btr",
    "btc", "bsf", "bsr", "popcnt", "lzcnt", "tzcnt", "bswap", "shld", "shrd", "andn",
    "blsr", "blsi", "blsmsk", "bzhi", "sarx", "shlx", "shrx", "rorx", "pdep", "pext",
    "movbe", "crc32", "movabs", "movsx", "movzx", "movsxd", "rdrand", "rdseed", "rdfsbase",
    "rdgsbase", "rdsspq", "movq", "movd", "pmovmskb", "movmskps", "movmskpd", "cvttsd2si",
    "cvtsd2si", "cvttss2si", "cvtss2si", "pextrq", "pextrd", "pextrw", "pextrb", "str",
    "sldt", "smsw", "lsl", "lar", "in",
)) | CMOV | SETCC

_MOVX = ("movs", "movz")


def normalize_mnemonic(mnem: str) -> str:
    """Return ``mnem`` without the AT&T size suffix and in the forms this module uses:
    ``callq``->``call``, ``movq``->``mov``, ``movzbl``->``movzx``, ``movslq``->``movsxd``,
    ``leaveq``->``leave``, ``rep stos`` stays ``rep stos``-free (the prefix is dropped by
    the disassembly parser).  Unknown mnemonics are returned lower-cased unchanged."""
    m = mnem.lower()
    if m in ("movabsq", "movabs"):
        return "movabs"
    if m in ("movslq", "movsxd"):
        return "movsxd"
    if m in ("movsbw", "movsbl", "movsbq", "movswl", "movswq", "movsx"):
        return "movsx"
    if m in ("movzbw", "movzbl", "movzbq", "movzwl", "movzwq", "movzx"):
        return "movzx"
    if m in ("movsb", "movsw", "movsl", "movsq"):
        return "movs"
    if m in ("cmpsb", "cmpsw", "cmpsl", "cmpsq"):
        return "cmps"
    if m in _SUFFIXABLE or m in IMPLICIT_WRITES:
        return m
    if m[-1:] in ("b", "w", "l", "q") and m[:-1] in _SUFFIXABLE:
        return m[:-1]
    if m in ("iretq", "sysretq"):
        return m[:-1]
    return m


def is_call(mnem: str) -> bool:
    """True for a call instruction (``call``/``callq``)."""
    return normalize_mnemonic(mnem) == "call"


def is_jump(mnem: str) -> bool:
    """True for unconditional (``jmp``) and conditional (``jcc``, ``loop``) jumps."""
    m = normalize_mnemonic(mnem)
    return m == "jmp" or m in JCC


def is_conditional_jump(mnem: str) -> bool:
    """True for ``jcc``/``loop*``/``jrcxz`` (the ones that may fall through)."""
    return normalize_mnemonic(mnem) in JCC


def is_return(mnem: str) -> bool:
    """True for ``ret``/``retq``/``iret``/``sysret``."""
    return normalize_mnemonic(mnem) in ("ret", "iret", "iretq", "sysret", "sysretq")


def ends_flow(mnem: str) -> bool:
    """True when control never falls through to the next instruction
    (``jmp``, ``ret``, ``ud2``, ``hlt``-style traps excluded: ``hlt`` returns)."""
    m = normalize_mnemonic(mnem)
    return m == "jmp" or is_return(m) or m in ("ud2", "sysexit")


def explicit_writes(mnem: str, reg_operands: List[Tuple[int, str]], n_operands: int,
                    ) -> Set[str]:
    """Return the 64-bit registers written by an instruction's explicit operands.

    ``reg_operands`` lists ``(operand index, register name)`` for the operands that are
    plain registers (AT&T order: destination last); ``n_operands`` is the operand count.
    Unknown mnemonics are assumed to write every register operand.
    """
    m = normalize_mnemonic(mnem)
    out = set()  # type: Set[str]
    if m in NO_REG_WRITE or m in ("push", "call"):
        return out
    if m in ("xchg", "xadd", "cmpxchg"):
        for _i, r in reg_operands:
            c = canonical(r)
            if c:
                out.add(c)
        if m == "cmpxchg":
            # only the destination (and rax) may change
            out = set()
            for i, r in reg_operands:
                if i == n_operands - 1 and canonical(r):
                    out.add(canonical(r))
        return out
    if m in ("pop",):
        for _i, r in reg_operands:
            if canonical(r):
                out.add(canonical(r))
        return out
    if m in ("mul", "div", "idiv") or (m == "imul" and n_operands == 1):
        return out
    if m in _DEST_WRITE or m.startswith(_MOVX):
        for i, r in reg_operands:
            if i == n_operands - 1 and canonical(r):
                out.add(canonical(r))
        return out
    for _i, r in reg_operands:
        if canonical(r):
            out.add(canonical(r))
    return out


def implicit_writes(mnem: str, n_operands: int = 0) -> FrozenSet[str]:
    """Return the registers an instruction writes implicitly: a call's caller-saved set,
    ``rsp`` for push/pop/call/ret/leave, ``rax``/``rdx`` for one-operand mul/div, etc."""
    m = normalize_mnemonic(mnem)
    if m == "call":
        return CALLER_SAVED | frozenset(("rsp",))
    if m in ("push", "pop", "ret", "pushf", "popf", "pushfq", "popfq"):
        return frozenset(("rsp",))
    if m == "leave":
        return frozenset(("rsp", "rbp"))
    if m == "imul" and n_operands == 1:
        return frozenset(("rax", "rdx"))
    return frozenset(IMPLICIT_WRITES.get(m, ()))
