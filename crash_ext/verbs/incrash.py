"""The entry points ``install.sh`` wires into crash: :func:`register_verbs` (run once
from ``~/.crashrc``) and :func:`run_verb` (what ``whoholds ARGS`` runs at the prompt).

What they rely on from pykdump's C source (``Extension/epython.c``, ``functions.c``):

- a registered command ``NAME ARGS`` runs the program ``NAME``/``NAME.py`` found in ``.`` or
  on ``PYKDUMPPATH`` *as it was when mpykdump.so was loaded*, else the code object that
  ``zipimport.zipimporter(mpykdump.so).get_code("progs/NAME")`` returns (the module is
  looked up in ``sys.modules``, which lives as long as crash);
- nothing flushes ``sys.stdout`` after a program unless ``pykdump.API`` was imported.
"""

import os
import sys

from ..core.errors import CrashExtError
from ..ports.pykdump import CLanguage, ErrorCapture, PykdumpPort


def _printf_text(text: str) -> str:
    """Return ``text`` safe as a printf format (crash prints help strings with fprintf)."""
    return text.replace("%", "%%")


def _verb_code(name: str):
    """Return the code object of the program that runs verb ``name``."""
    return compile("from crash_ext.verbs.incrash import run_verb\nrun_verb(%r)\n" % name,
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
    from . import registry
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


def run_verb(name, argv=None, crash_module=None):
    """Run verb ``name`` at the crash prompt through the verb shell (:mod:`.shell`, as
    ``crash-ext`` does: the same parsing, answers, one-line errors on stderr -- the
    process's, not crash's output (:func:`_stderr`) -- and exit codes); never raises,
    never ends crash.

    Output is flushed before returning, also after errors (crash's output may be a file
    or a pipe).  Crash's error lines are captured while the verb runs (they are part of
    the command answers, not printed).  Type facts stay known for the rest of the crash
    session.  Returns the verb's exit code.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    port = None
    err = _stderr()
    try:
        _remember_path()
        from . import shell
        opts, rc = shell.prepare(name, argv, sys.stdout, err)
        if opts is None:
            return rc
        if crash_module is None:
            import crash as crash_module  # pykdump's C module: only inside crash
        with ErrorCapture(crash_module) as errors, CLanguage(crash_module):
            errors.take()       # anything said while setting the language is not ours
            port = PykdumpPort(crash_module, errors)
            try:
                return shell.execute(name, opts, port, sys.stdout, err)
            finally:
                port.keep_session_types()   # the next verb call starts with them
    except BrokenPipeError:          # "deadlock | head -3": the reader has gone
        return 0
    except CrashExtError as e:       # 3: crash cannot read this kernel (or failed)
        from . import shell
        shell.say(shell.error_line(name, e), err)
        return shell.exit_code(e)
    except ImportError as e:
        _err("%s: error: pykdump's crash module is not available (%s); outside crash run "
             "'crash-ext %s ... --vmlinux V --vmcore C'" % (name, e, name))
        return 2
    except Exception as e:           # never a traceback at the crash> prompt
        _err("%s: internal error: %s: %s (please report it with the command line)"
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


def _stderr():
    """Return the process's own standard error (file descriptor 2, the terminal crash
    runs in): pykdump points ``sys.stderr`` at crash's output, so an error written there
    would land in the verb's ``> FILE`` or ``| pipe`` at the prompt, which must get
    the answer or nothing, as crash-ext's stdout does."""
    return sys.__stderr__ if sys.__stderr__ is not None else sys.stderr


def _err(line: str) -> None:
    """Print ``line`` on the process's stderr; nothing when it has gone."""
    from .shell import say
    say(line, _stderr())
