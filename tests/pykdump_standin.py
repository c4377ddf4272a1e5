"""A stand-in for pykdump's ``crash`` C module, answering from a real crash session.

pykdump cannot be installed from this machine's package registries, so the tests run the
pykdump adapter against this object instead.  It follows pykdump's *documented* behaviour
(its `crash` module reference and C source), with real command text and real memory from
a crash process on a lab dump:

- ``exec_crash_command(cmd)``: crash's output; raises ``error(output)`` when crash
  reports an error and when the output is empty;
- ``readmem(addr, size)``: bytes; ``IndexError`` for address 0; ``error`` when unreadable;
- ``sym2addr``: 0 for unknown; ``addr2sym(addr)``: exact matches only, else None;
- ``member_offset(sname, member)`` / ``struct_size(sname)``: -1 when unknown; C names
  (``struct X``) required;
- ``register_epython_prog(name, description, shorthelp, longhelp)``: recorded.
"""

from crash_ext.ports.commandport import find_error
from crash_ext.core.errors import MemoryReadError


class error(Exception):
    """pykdump's crash.error."""


class CrashModuleStandIn:
    """Quacks like pykdump's ``crash`` module, backed by ``proc`` (a CrashProcess)."""

    error = error

    def __init__(self, proc):
        self._proc = proc
        self.registered = {}
        self.commands = []

    def exec_crash_command(self, cmd):
        self.commands.append(cmd)
        out = self._proc.command(cmd, check=False)
        if find_error(cmd, out) is not None or not out:
            raise error(out)
        return out

    def readmem(self, addr, size):
        if not addr:
            raise IndexError("readPtr NULL pointer")
        try:
            return self._proc.read(addr, size)
        except MemoryReadError:
            raise error("readmem error at addr %#x, reading %d bytes" % (addr, size))

    def sym2addr(self, name):
        return self._proc.symbol_address(name) or 0

    def addr2sym(self, addr):
        s = self._proc.address_symbol(addr)
        return s if s and "+" not in s else None

    @staticmethod
    def _bare(sname):
        kind, _, name = sname.partition(" ")
        return name if kind in ("struct", "union") and name else None

    def struct_size(self, sname):
        bare = self._bare(sname)
        size = self._proc.type_size(bare) if bare else None
        return -1 if size is None else size

    def member_offset(self, sname, member):
        bare = self._bare(sname)
        off = self._proc.member_offset(bare, member) if bare else None
        return -1 if off is None else off

    def register_epython_prog(self, name, description, shorthelp, longhelp):
        self.registered[name] = (description, shorthelp, longhelp)
