"""The verb shell: how every verb is run, by ``crash-ext`` and inside crash alike.

One place decides what the user sees around a verb's answer, so the two entry points
cannot drift:

- :func:`prepare` parses the words and checks everything that needs no dump (the verb
  module's ``check(opts)``): ``crash-ext`` calls it before crash starts, so a usage
  error costs no crash start-up;
- :func:`execute` runs the verb (its module's ``run(opts, port, out) -> exit code``,
  which raises CrashExtError for a one-line error) and turns what it raised into one
  line on stderr and an exit code; with ``--json`` stdout gets one whole document or
  nothing;
- :func:`main` is both, what each verb's ``main(argv, port, out, err)`` is.

Exit codes (:data:`EXIT_TEXT`, printed in each verb's help): 0 answered, nothing
alarming; 1 the answer holds a deadlock or a task blocked behind a blocked holder; 2 the
input named no lock or task, or bad usage; 3 crash itself failed, or crash-ext did.
"""

import io
import sys

from ..core.errors import BadArgument, CrashCannotRead, CrashDied, CrashExtError, CrashTimeout
from ..core.words import shorten_message

EXIT_ANSWERED, EXIT_ALARM, EXIT_INPUT, EXIT_CRASH = 0, 1, 2, 3

#: errors of crash itself (exit 3)
CRASH_FAILURES = (CrashDied, CrashTimeout, CrashCannotRead)

#: the exit codes as each verb's help states them
EXIT_TEXT = """\
EXIT CODES
  0  answered, nothing alarming
  1  the answer holds a deadlock, or a task blocked behind a holder that is itself
     blocked (a chain that does not move on its own)
  2  the input named no lock or task, or bad usage (one line on stderr)
  3  crash itself failed (cannot start, cannot read the kernel), or crash-ext did
     (a bug: the line asks to report it)
  crash-ext exits with these; errors go to stderr, so with --json stdout is one JSON
  document or nothing."""


def blocked(task) -> bool:
    """Return True when ``task`` (a TaskRef) is known not to be running: a holder in
    that state makes its waiters' answer exit 1."""
    return task is not None and task.state is not None and task.state != "RU"


def error_line(prog, e) -> str:
    """Return the one-line message ``PROG: error: ...`` for exception ``e`` (crash's
    multi-line answers joined, overlong words cut).  Never raises."""
    msg = shorten_message(" ".join(str(e).split())) or type(e).__name__
    return "%s: error: %s" % (prog, msg)


def exit_code(exc) -> int:
    """Return the exit code for an error a verb reports: 3 when crash itself failed
    (died, timed out, cannot read the kernel), else 2 (usage or input error)."""
    return EXIT_CRASH if isinstance(exc, CRASH_FAILURES) else EXIT_INPUT


def say(line: str, stream) -> None:
    """Print ``line`` on ``stream`` and flush it; nothing when it has gone (a closed
    pipe)."""
    try:
        print(line, file=stream)
        stream.flush()
    except (OSError, ValueError):
        pass


def _module(name):
    from . import registry
    return registry.load(name)


def prepare(name, argv, out=None, err=None):
    """Return (options, None) for verb ``name`` run with ``argv``, or (None, exit code)
    when nothing is left to do: its help printed on ``out`` (0), or a usage error --
    argparse's, or one the verb's ``check(opts)`` finds without the dump -- printed as
    one line on ``err`` (2).  Reads no dump, starts nothing."""
    out = out or sys.stdout
    err = err or sys.stderr
    mod = _module(name)
    parser = mod.build_parser()
    parser.print_help = lambda file=None: out.write(parser.format_help())
    try:
        opts = parser.parse_args(list(argv))
        check = getattr(mod, "check", None)
        if check is not None:
            check(opts)
    except SystemExit as e:       # -h / --help
        return None, (EXIT_ANSWERED if not e.code else EXIT_INPUT)
    except BadArgument as e:
        say(error_line(name, e), err)
        return None, EXIT_INPUT
    return opts, None


def execute(name, opts, port, out=None, err=None, crash_failed=None) -> int:
    """Run verb ``name`` with parsed ``opts`` on ``port``; return its exit code.

    The answer goes to ``out`` (with ``--json``: one whole document, or nothing when
    the verb failed); a CrashExtError becomes one line ``NAME: error: ...`` on ``err``
    (exit 2, or 3 when crash itself failed: then ``crash_failed(e)``, when given, says
    the line); any other exception one line ``NAME: internal error: ...`` (exit 3);
    a reader that went away (``| head``) exit 0.  Never raises."""
    out = out or sys.stdout
    err = err or sys.stderr
    mod = _module(name)
    buf = io.StringIO() if getattr(opts, "json", False) else None
    try:
        rc = mod.run(opts, port, buf if buf is not None else out)
        if buf is not None:
            out.write(buf.getvalue())
        return rc
    except BrokenPipeError:
        return EXIT_ANSWERED
    except CRASH_FAILURES as e:
        say(crash_failed(e) if crash_failed is not None else error_line(name, e), err)
        return EXIT_CRASH
    except CrashExtError as e:
        say(error_line(name, e), err)
        return EXIT_INPUT
    except Exception as e:   # noqa: BLE001 - a bug: one line, not a traceback
        say("%s: internal error: %s: %s (please report it with the command line)"
            % (name, type(e).__name__, shorten_message(str(e)[:200])), err)
        return EXIT_CRASH


def main(name, argv, port, out=None, err=None) -> int:
    """Run verb ``name`` with ``argv`` on ``port``: :func:`prepare`, then
    :func:`execute`; return the exit code.  Never raises."""
    opts, rc = prepare(name, argv, out, err)
    if opts is None:
        return rc
    return execute(name, opts, port, out, err)
