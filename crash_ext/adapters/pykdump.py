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
"""

import sys
from ..compat import Optional

from ..port import CrashCommandError, CrashExtError, MemoryReadError, Port
from . import check_command
from .commandport import CommandTypes, find_error
from .typestore import TypeStore, session_files


class PykdumpPort(CommandTypes, Port):
    """A :class:`Port` on pykdump's ``crash`` module (``crash_module`` for tests)."""

    def __init__(self, crash_module=None):
        if crash_module is None:
            import crash as crash_module  # pykdump's C module: only inside crash
        self._crash = crash_module

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
            out = str(e.args[0]) if e.args else ""
            if not out.strip():
                return ""
            err = find_error(cmd, out)
            exc = CrashCommandError(err[0] if err else out.strip().splitlines()[-1])
            exc.output = out
            raise exc
        err = find_error(cmd, out)
        if err is not None:
            exc = CrashCommandError(err[0])
            exc.output = out
            raise exc
        return out

    def read(self, addr: int, size: int) -> bytes:
        """Return ``size`` bytes at ``addr``; raises MemoryReadError (NULL, unreadable)."""
        try:
            data = self._crash.readmem(int(addr), int(size))
        except IndexError:
            raise MemoryReadError("cannot read %d bytes at NULL" % size)
        except self._crash.error as e:
            raise MemoryReadError("cannot read %d bytes at %#x: %s" % (size, addr, e))
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
            return CommandTypes.member_offset(self, type_name, member) if "." in member \
                else None
        memo[key] = off
        self._learned()
        return off


def register_verbs(crash_module=None):
    """Register whoholds, argrecover and deadlock as crash commands (pykdump's
    ``register_epython_prog``); prints one line per verb.  Returns the names registered."""
    from ..verbs import registry
    if crash_module is None:
        import crash as crash_module
    done = []
    for name, (_, summary) in registry.VERBS.items():
        longhelp = registry.long_help(name)
        crash_module.register_epython_prog(name, summary, "-h   - show the options", longhelp)
        done.append(name)
    print("crash-ext: registered %s" % ", ".join(done))
    return done


def run_verb(name, argv=None, crash_module=None):
    """Run verb ``name`` at the crash prompt; never raises, never ends crash.

    Returns the verb's exit code (2 for usage or input errors, 3 for internal errors).
    """
    from ..verbs import registry
    argv = sys.argv[1:] if argv is None else list(argv)
    port = None
    try:
        port = PykdumpPort(crash_module)
        return registry.load(name).main(argv, port)
    except SystemExit as e:          # argparse: -h or a usage error
        return e.code if isinstance(e.code, int) else 2
    except CrashExtError as e:
        print("%s: error: %s" % (name, e))
        return 2
    except ImportError as e:
        print("%s: error: pykdump's crash module is not available (%s); outside crash run "
              "'crash-ext %s ... --vmlinux V --vmcore C'" % (name, e, name))
        return 2
    except Exception as e:           # never a traceback at the crash> prompt
        print("%s: internal error: %s: %s (please report it with the command line)"
              % (name, type(e).__name__, e))
        return 3
    finally:
        if port is not None:
            try:
                port.flush_types()
            except Exception:   # noqa: BLE001 - the store is only a speed-up
                pass
