"""The port: the one interface through which every analysis reads the kernel.

Nothing above this module knows whether it runs inside crash (pykdump) or drives a
crash process from outside.  Adapters implement :class:`Port`; analyses take a port.
"""

import re
from ..compat import List, Optional, Sequence, Tuple, Union
from .errors import CrashCommandError, CrashExtError


class Port:
    """Kernel access.  Every method raises a :class:`CrashExtError` subclass on failure.

    Adapters must implement ``command``, ``read``, ``symbol_address``, ``address_symbol``,
    ``member_offset``, ``member_type``, ``type_size``, ``task_by_pid`` (the adapters built
    on crash commands have the look-ups from ``ports.commandport.CommandTypes``); the
    optional capabilities and helpers below have defaults built on them.
    """

    def command(self, cmd: str) -> str:
        """Run a crash command; return its output text.

        Raises CrashCommandError (crash said error), CrashTimeout, CrashDied.
        """
        raise NotImplementedError

    def read(self, addr: int, size: int) -> bytes:
        """Return ``size`` bytes of kernel memory at ``addr``; raises MemoryReadError."""
        raise NotImplementedError

    def symbol_address(self, name: str) -> Optional[int]:
        """Return the address of symbol ``name``, or None when there is no such symbol."""
        raise NotImplementedError

    def address_symbol(self, addr: int) -> Optional[str]:
        """Return ``sym+off`` (or ``sym``) for ``addr``, or None when none covers it."""
        raise NotImplementedError

    def member_offset(self, type_name: str, member: str) -> Optional[int]:
        """Return the byte offset of ``member`` (``a.b`` allowed) in ``type_name``, or None."""
        raise NotImplementedError

    def member_type(self, type_name: str, member: str) -> Optional[str]:
        """Return the C type name of ``member`` in ``type_name`` (e.g. ``atomic_long_t``,
        ``struct task_struct *``), or None when there is no such member."""
        raise NotImplementedError

    def type_size(self, type_name: str) -> Optional[int]:
        """Return ``sizeof(type_name)``, or None when the type is unknown."""
        raise NotImplementedError

    # Optional capabilities, each with its default ------------------------------
    #
    # An adapter overrides what it can do better; every caller may use each of them on
    # any port.  tests/unit/test_port_contract.py lists what each adapter overrides.

    #: True when :meth:`batch` sends its commands in one exchange (cheaper than one by
    #: one); callers that only batch to save exchanges skip it when False
    batches_commands = False

    #: True when :meth:`command_stream` hands the answer over while crash prints it
    streams_commands = False

    #: what stays the same for every port of one crash session (pykdump's: one port
    #: per verb call), for the caches of that session; None: the port is its session
    session_identity = None  # type: object

    #: the files crash reads, when the adapter knows them (outputs never overwrite them)
    vmlinux = None  # type: Optional[str]
    vmcore = None  # type: Optional[str]

    #: the module object files crash was given (``crash-ext --mod``)
    module_files = ()  # type: Sequence[str]

    #: what crash printed while it started, when the adapter saw it
    startup_output = ""

    @property
    def base_port(self) -> "Port":
        """Return the port this one wraps (itself unless it is a wrapper): caches of
        type layouts and code are kept for it."""
        return self

    def batch(self, cmds: Sequence[str], check: bool = True, timeout: Optional[float] = None,
              on_text=None) -> List[Union[str, CrashCommandError]]:
        """Return the answers of ``cmds`` in order: a CrashCommandError in the slot of a
        command crash rejects (its text with ``check=False``).  Default: one
        :meth:`command` at a time (``timeout`` unused; ``on_text`` {index: callback} is
        given each whole answer).  Raises CrashTimeout / CrashDied."""
        res = []  # type: List[Union[str, CrashCommandError]]
        for i, c in enumerate(cmds):
            try:
                out = self.command(c)  # type: Union[str, CrashCommandError]
            except CrashCommandError as e:
                out = (getattr(e, "output", "") or "") if not check else e
            if on_text is not None and i in on_text and isinstance(out, str):
                on_text[i](out)
            res.append(out)
        return res

    def command_stream(self, cmd: str, on_text, check: bool = True,
                       timeout: Optional[float] = None) -> str:
        """Return :meth:`command`'s answer to ``cmd``, also given to ``on_text`` (in one
        piece by default; in pieces while crash prints when :attr:`streams_commands`).
        Raises as :meth:`command` does."""
        out = self.command(cmd)
        on_text(out)
        return out

    def prefetch_structs(self, type_names: Sequence[str]) -> None:
        """Learn the member offsets of ``type_names`` in one go, when the adapter can;
        default: nothing (members are asked one by one)."""

    def prefetch_symbols(self, addrs: Sequence[int]) -> None:
        """Learn :meth:`address_symbol` of ``addrs`` in one go, when the adapter can;
        default: nothing."""

    def enum_value(self, name: str) -> Optional[int]:
        """Return the value of enumerator ``name`` (gdb's ``p/d NAME``), None when crash
        knows none.  Raises CrashTimeout / CrashDied."""
        try:
            out = self.command("p/d %s" % name)
        except CrashCommandError:
            return None
        m = re.search(r"^\$\d+ = (-?\d+)\s*$", out, re.M)
        return int(m.group(1)) if m else None

    def memory_fixed(self) -> bool:
        """Return True when memory cannot change between verb calls (a dump); default
        False (a live system, or the adapter cannot tell)."""
        return False

    def code_store(self):
        """Return the :class:`~crash_ext.core.codestore.CodeStore` of the kernel build
        crash reads (facts of its code kept on disk), None when there is none (the
        default; off, or a live system not proven to run that build)."""
        return None

    def crash_version(self) -> Optional[str]:
        """Return the version of the crash in use (``8.0.6``), None when unknown."""
        return None

    # Helpers with defaults -------------------------------------------------

    def read_u64(self, addr: int) -> int:
        """Return the little-endian u64 at ``addr``; raises MemoryReadError."""
        return int.from_bytes(self.read(addr, 8), "little")

    def read_u32(self, addr: int) -> int:
        """Return the little-endian u32 at ``addr``; raises MemoryReadError."""
        return int.from_bytes(self.read(addr, 4), "little")

    def read_many(self, ranges: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        """Return the bytes of each ``(address, size)`` of ``ranges`` in order, None for a
        range that cannot be read.  Adapters may read them all in one exchange."""
        out = []  # type: List[Optional[bytes]]
        for addr, size in ranges:
            try:
                out.append(self.read(addr, size))
            except CrashExtError:
                out.append(None)
        return out

    def has_member(self, type_name: str, member: str) -> bool:
        """Return True when ``type_name`` has ``member``."""
        return self.member_offset(type_name, member) is not None

    def task_by_pid(self, pid: int) -> Optional[int]:
        """Return the task_struct address of ``pid``, or None when no such task exists.
        Adapters built on crash commands have it from ``ports.commandport.CommandTypes``
        (``ps PID``)."""
        raise NotImplementedError
