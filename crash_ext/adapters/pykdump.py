"""The port inside crash, through pykdump's ``crash`` module.

Written to pykdump's documented behaviour:

- ``exec_crash_command(cmd)`` returns crash's output text; it raises ``crash.error`` with
  that output as the argument when crash reports an error **and when the output is
  empty**, so an empty answer is not an error here;
- ``readmem(addr, size)`` returns bytes, raises ``crash.error`` on unreadable memory and
  ``IndexError`` for address 0;
- ``sym2addr(name)`` returns 0 for an unknown symbol; ``member_offset``/``struct_size``
  return -1 for an unknown member/type and want proper C names (``struct X``).

Also the two entry points ``install.sh`` wires into crash: :func:`register_verbs` (run once
from ``~/.crashrc``) and :func:`run_verb` (what ``whoholds ARGS`` runs at the prompt).
What the verbs rely on from pykdump's C source (``Extension/epython.c``, ``functions.c``):

- a registered command ``NAME ARGS`` runs the program ``NAME``/``NAME.py`` found in ``.`` or
  on ``PYKDUMPPATH`` *as it was when mpykdump.so was loaded*, else the code object that
  ``zipimport.zipimporter(mpykdump.so).get_code("progs/NAME")`` returns (the module is
  looked up in ``sys.modules``, which lives as long as crash);
- ``exec_crash_command`` captures crash's output in a temporary file, but crash's
  ``error()`` also prints its message to ``pc->error_fp`` (stdout, or the pager or pipe
  of the command at the prompt); ``crash_set_error(path)`` points that elsewhere;
- nothing flushes ``sys.stdout`` after a program unless ``pykdump.API`` was imported.
"""

import os
import sys
from ..compat import Dict, Optional

from ..excluded import explain
from ..port import CrashCommandError, CrashExtError, MemoryReadError, Port
from . import check_command
from .commandport import SET_C_LANGUAGE, CommandTypes, find_error, language_to_restore
from .typestore import TypeStore, session_files


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
        known = _SESSION_TYPES.get(id(crash_module))
        self._known = known[1] if known is not None and known[0] is crash_module else None

    def memory_fixed(self) -> bool:
        """Return True when crash reads a dump (its memory is the same in every verb call
        of the session), False on a live system or when ``sys`` fails; asked once per
        crash session."""
        got = _FIXED.get(id(self._crash))
        if got is None or got[0] is not self._crash:
            try:
                live = session_files(self.command("sys"))[1]
            except CrashExtError:
                live = True
            got = _FIXED[id(self._crash)] = (self._crash, not live)
        return got[1]

    def crash_version(self):
        """Return the running crash's version (pykdump's ``crash.Crash_run``), or None."""
        v = getattr(self._crash, "Crash_run", None)
        return str(v) if v else None

    def _memo(self):
        """The answer cache, with the type facts earlier verb calls of this crash session
        learned (see :func:`run_verb`)."""
        if self._cache is None:
            CommandTypes._memo(self)
            if self._known:
                for k, v in self._known.items():
                    self._cache.setdefault(k, v)
        return self._cache

    def _open_type_store(self):
        """The type store of the vmlinux crash reads (from ``sys``); none when live."""
        try:
            path, live = session_files(self.command("sys"))
        except CrashExtError:
            return None
        return TypeStore.for_vmlinux(path, live=live)

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



#: type facts learned in this crash session: id(crash module) -> (that module, facts); a
#: verb call starts with what earlier ones learned (the store on disk may be off:
#: CRASH_EXT_TYPE_CACHE=0).  Holding the module keeps its id from being reused.
_SESSION_TYPES = {}  # type: Dict[int, tuple]
_FIXED = {}  # type: Dict[int, tuple]   # id(crash module): (it, memory_fixed)


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


def _printf_text(text: str) -> str:
    """Return ``text`` safe as a printf format (crash prints help strings with fprintf)."""
    return text.replace("%", "%%")


def _verb_code(name: str):
    """Return the code object of the program that runs verb ``name``."""
    return compile("from crash_ext.adapters.pykdump import run_verb\nrun_verb(%r)\n" % name,
                   "<crash-ext %s>" % name, "exec")


def _install_lookup(names, crash_module) -> None:
    """Make pykdump find the verbs' programs without ``PYKDUMPPATH``: a registered command
    that is on neither ``.`` nor the ``PYKDUMPPATH`` of extend time is run from
    ``zipimport.zipimporter(mpykdump.so).get_code("progs/NAME")``; answer those names.
    Other look-ups go to the real zipimporter."""
    real = sys.modules.get("zipimport")
    if real is None:
        import zipimport as real
    base = getattr(real, "_crash_ext_real", real)
    codes = dict(getattr(real, "_crash_ext_codes", {}))
    codes.update(("progs/" + n, _verb_code(n)) for n in names)

    class zipimporter(base.zipimporter):
        def get_code(self, fullname):
            code = codes.get(fullname)
            if code is not None:
                return code
            return super().get_code(fullname)

    module = type(sys)("zipimport")
    module.__dict__.update(base.__dict__)
    module.zipimporter = zipimporter
    module._crash_ext_real = base
    module._crash_ext_codes = codes
    sys.modules["zipimport"] = module


def register_verbs(crash_module=None):
    """Register whoholds, argrecover and deadlock as crash commands (pykdump's
    ``register_epython_prog``, with crash-style help), make pykdump find their programs
    in this session (also without ``PYKDUMPPATH``), and print one line.  Returns the names
    registered."""
    from ..verbs import registry
    if crash_module is None:
        import crash as crash_module
    _remember_path()
    done = []
    for name in registry.VERBS:
        summary, synopsis, description = registry.crash_help(name)
        if "%s" in description:
            description = _printf_text(description)
        crash_module.register_epython_prog(name, _printf_text(summary),
                                           _printf_text(synopsis), description)
        done.append(name)
    _install_lookup(done, crash_module)
    print("crash-ext: registered %s" % ", ".join(done))
    sys.stdout.flush()
    return done


#: the directory crash_ext was imported from (pykdump resets sys.path after each program)
_LIB_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _remember_path() -> None:
    if _LIB_DIR not in sys.path:
        sys.path.insert(0, _LIB_DIR)


def _say(line: str) -> None:
    """Print ``line``; nothing when the output has gone (a closed pipe)."""
    try:
        print(line)
    except OSError:
        pass


def run_verb(name, argv=None, crash_module=None):
    """Run verb ``name`` at the crash prompt; never raises, never ends crash.

    Output is flushed before returning, also after errors (crash's output may be a file
    or a pipe).  Crash's error lines are captured while the verb runs (they are part of
    the command answers, not printed).  Type facts stay known for the rest of the crash
    session.  Returns the verb's exit code (2 for usage or input errors, 3 when crash
    cannot read the kernel and for internal errors).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    port = None
    try:
        _remember_path()
        from ..verbs import registry
        if crash_module is None:
            import crash as crash_module  # pykdump's C module: only inside crash
        with ErrorCapture(crash_module) as errors, CLanguage(crash_module):
            errors.take()       # anything said while setting the language is not ours
            port = PykdumpPort(crash_module, errors)
            try:
                return registry.load(name).main(argv, port)
            finally:
                if port._cache is not None:
                    _SESSION_TYPES[id(crash_module)] = (crash_module,
                                                        TypeStore.facts(port._cache))
    except SystemExit as e:          # argparse: -h or a usage error
        return e.code if isinstance(e.code, int) else 2
    except BrokenPipeError:          # "deadlock | head -3": the reader has gone
        return 0
    except CrashExtError as e:       # 3: crash cannot read this kernel (or failed)
        from ..verbs import registry
        _say(registry.error_line(name, e))
        return registry.exit_code(e)
    except ImportError as e:
        _say("%s: error: pykdump's crash module is not available (%s); outside crash run "
             "'crash-ext %s ... --vmlinux V --vmcore C'" % (name, e, name))
        return 2
    except Exception as e:           # never a traceback at the crash> prompt
        _say("%s: internal error: %s: %s (please report it with the command line)"
             % (name, type(e).__name__, e))
        return 3
    finally:
        if port is not None:
            try:
                port.flush_types()
            except Exception:   # noqa: BLE001 - the store is only a speed-up
                pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:   # noqa: BLE001 - a closed pipe (| head): nothing to do
                pass
