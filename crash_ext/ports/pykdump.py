"""The port inside crash, through pykdump's ``crash`` module.

Written to pykdump's documented behaviour:

- ``exec_crash_command(cmd)`` returns crash's output text; it raises ``crash.error`` with
  that output as the argument when crash reports an error **and when the output is
  empty**, so an empty answer is not an error here;
- ``readmem(addr, size)`` returns bytes, raises ``crash.error`` on unreadable memory and
  ``IndexError`` for address 0;
- ``sym2addr(name)`` returns 0 for an unknown symbol; ``member_offset``/``struct_size``
  return -1 for an unknown member/type and want proper C names (``struct X``).

The entry points ``install.sh`` wires into crash are in :mod:`crash_ext.verbs.incrash`.
What the port relies on from pykdump's C source (``Extension/epython.c``, ``functions.c``):

- ``exec_crash_command`` captures crash's output in a temporary file, but crash's
  ``error()`` also prints its message to ``pc->error_fp`` (stdout, or the pager or pipe
  of the command at the prompt); ``crash_set_error(path)`` points that elsewhere;
"""

import os
from ..compat import Optional

from ..core.caches import SESSION_FIXED, SESSION_TYPES
from ..core.errors import CrashCommandError, CrashExtError, MemoryReadError
from ..core.excluded import explain
from ..core.port import Port
from . import check_command
from .commandport import SET_C_LANGUAGE, CommandTypes, find_error, language_to_restore
from .typestore import TypeStore, session_files
from ..core.codestore import CodeStore


class PykdumpPort(CommandTypes, Port):
    """A :class:`Port` on pykdump's ``crash`` module (``crash_module`` for tests)."""

    def __init__(self, crash_module=None, errors=None):
        if crash_module is None:
            import crash as crash_module  # pykdump's C module: only inside crash
        self._crash = crash_module
        self._errors = errors          # an ErrorCapture, or None
        #: what stays the same for every verb call of this crash session (each call
        #: makes its own port): caches of facts of the code live that long
        self.session_identity = crash_module
        self._known = SESSION_TYPES.peek(crash_module)

    def memory_fixed(self) -> bool:
        """Return True when crash reads a dump (its memory is the same in every verb call
        of the session), False on a live system or when ``sys`` fails; asked once per
        crash session."""
        got = SESSION_FIXED.peek(self._crash)
        if got is None:
            try:
                live = session_files(self.command("sys"))[1]
            except CrashExtError:
                live = True
            got = not live
            SESSION_FIXED.put(self._crash, got)
        return got

    def crash_version(self):
        """Return the running crash's version (pykdump's ``crash.Crash_run``), or None."""
        v = getattr(self._crash, "Crash_run", None)
        return str(v) if v else None

    def _memo(self):
        """The answer cache, with the type facts earlier verb calls of this crash session
        learned (see :func:`run_verb`)."""
        if self._cache is None:
            super()._memo()
            if self._known:
                for k, v in self._known.items():
                    self._cache.setdefault(k, v)
        return self._cache

    def keep_session_types(self) -> None:
        """Keep the type facts this port learned for the next verb call of its crash
        session (the store on disk may be off: CRASH_EXT_TYPE_CACHE=0)."""
        if self._cache is not None:
            SESSION_TYPES.put(self._crash, TypeStore.facts(self._cache))

    def _open_type_store(self):
        """The type store of the vmlinux crash reads (from ``sys``); none when live."""
        try:
            path, live = session_files(self.command("sys"))
        except CrashExtError:
            return None
        return TypeStore.for_vmlinux(path, live=live)

    def _open_code_store(self):
        """The code store of the vmlinux crash reads (from ``sys``); on a live system
        only when the running kernel's build-id is the vmlinux's."""
        try:
            path, live = session_files(self.command("sys"))
        except CrashExtError:
            return None
        return CodeStore.for_vmlinux(path, live=live,
                                     running_id=self.running_build_id() if live else None)

    def command(self, cmd: str) -> str:
        """Return crash's output of ``cmd``; raises CrashCommandError with crash's message."""
        cmd = check_command(cmd)
        try:
            out = self._crash.exec_crash_command(cmd)
        except self._crash.error as e:
            out = self._with_errors(str(e.args[0]) if e.args else "")
            if not out.strip():
                return ""
            err = find_error(cmd, out)
            exc = CrashCommandError(err[0] if err else out.strip().splitlines()[-1])
            exc.output = out
            raise exc
        out = self._with_errors(out)
        err = find_error(cmd, out)
        if err is not None:
            exc = CrashCommandError(err[0])
            exc.output = out
            raise exc
        return out

    def _with_errors(self, out: str) -> str:
        """Return ``out`` followed by the error lines crash printed while making it."""
        errors = self._errors.take() if self._errors is not None else ""
        if not errors:
            return out
        return out + ("\n" if out and not out.endswith("\n") else "") + errors

    def read(self, addr: int, size: int) -> bytes:
        """Return ``size`` bytes at ``addr``; raises MemoryReadError (NULL, unreadable)."""
        try:
            data = self._crash.readmem(int(addr), int(size))
        except IndexError:
            raise MemoryReadError("cannot read %d bytes at NULL" % size)
        except self._crash.error as e:
            raise MemoryReadError("cannot read %d bytes at %#x: %s" % (size, addr,
                                                                      explain(e)))
        return bytes(data)

    def symbol_address(self, name: str) -> Optional[int]:
        """Return the address of symbol ``name``, None when crash knows none."""
        return self._crash.sym2addr(name) or None

    def _c_name(self, type_name: str) -> Optional[str]:
        """Return ``struct X``/``union X`` for ``type_name``, None when neither exists."""
        memo = self._memo()
        known = memo.get(("ctype", type_name))
        if isinstance(known, str) and known.startswith(("struct ", "union ")):
            return known
        cands = [type_name] if " " in type_name else ["struct " + type_name,
                                                      "union " + type_name]
        for c in cands:
            n = self._crash.struct_size(c)
            if n >= 0:
                memo[("ctype", type_name)] = c
                memo[("size", c)] = n
                self._learned()
                return c
        return None

    def type_size(self, type_name: str) -> Optional[int]:
        """Return sizeof(type_name), None for an unknown struct/union (typedefs: gdb)."""
        c = self._c_name(type_name)
        if c is None:
            return CommandTypes.type_size(self, type_name)
        return self._memo()[("size", c)]  # type: ignore

    def member_offset(self, type_name: str, member: str) -> Optional[int]:
        """Return the offset of ``member`` (``a.b`` allowed) in ``type_name``, or None."""
        c = self._c_name(type_name)
        if c is None:
            return None
        memo = self._memo()
        key = ("off", c, member)
        if key in memo:
            return memo[key]  # type: ignore
        off = self._crash.member_offset(c, member)
        if off is None or off < 0:
            if "." in member:
                return CommandTypes.member_offset(self, type_name, member)
            off = None          # no such member: a fact of the debuginfo, kept too
        memo[key] = off
        self._learned()
        return off



class ErrorCapture:
    """While active, crash's error lines go to a private temporary file (through
    pykdump's ``crash_set_error``) instead of the terminal, pager or pipe; :meth:`take`
    returns what was printed since the last call.  Does nothing when the crash module has
    no ``crash_set_error`` or crash has no ``set_error()``."""

    def __init__(self, crash_module):
        self._crash = crash_module
        self._fd = None
        self._path = None
        self._old = None

    def __enter__(self):
        setter = getattr(self._crash, "crash_set_error", None)
        if setter is None:
            return self
        path = os.path.join(os.environ.get("TMPDIR") or "/tmp", "crash-ext-errors-%d-%s"
                            % (os.getpid(), os.urandom(6).hex()))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError:
            return self
        try:
            old = setter(path)
        except Exception:   # noqa: BLE001 - crash.error: crash could not open it
            old = None
        if old is None:     # no set_error() in this crash: errors print as before
            os.close(fd)
            os.unlink(path)
            return self
        self._fd, self._path, self._old = fd, path, old
        return self

    def take(self) -> str:
        """Return the error text crash printed since the last call ("" when none)."""
        if self._fd is None:
            return ""
        chunks = []
        while True:
            b = os.read(self._fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode("utf-8", "replace")

    def __exit__(self, *exc):
        if self._fd is None:
            return False
        try:
            self._crash.crash_set_error(self._old)
        except Exception:   # noqa: BLE001 - leave crash's setting as it is
            pass
        os.close(self._fd)
        try:
            os.unlink(self._path)
        except OSError:
            pass
        self._fd = None
        return False


class CLanguage:
    """While active, gdb's language is C (see ``commandport.SET_C_LANGUAGE``); the user's
    setting is restored afterwards.  Best effort: without an answer it does nothing."""

    def __init__(self, crash_module):
        self._crash = crash_module
        self._restore = None

    def __enter__(self):
        try:
            shown = self._crash.exec_crash_command("gdb show language")
        except Exception:   # noqa: BLE001 - crash.error, or a stand-in without gdb
            return self
        restore = language_to_restore(str(shown))
        if restore is not None and restore != SET_C_LANGUAGE:
            try:
                self._crash.exec_crash_command(SET_C_LANGUAGE)
            except Exception:   # noqa: BLE001 - crash.error on empty output: it is set
                pass
            self._restore = restore
        return self

    def __exit__(self, *exc):
        if self._restore is not None:
            try:
                self._crash.exec_crash_command(self._restore)
            except Exception:   # noqa: BLE001 - empty output raises crash.error
                pass
        return False
