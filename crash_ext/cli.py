"""``crash-ext``: run a verb outside crash by driving a real crash process.

    crash-ext VERB [VERB ARGS...] [--vmlinux V --vmcore C] [--crash PATH]

Without --vmlinux/--vmcore crash opens the running system (as root), as crash does.
Exit codes: the verb's (0 nothing found, 1 deadlock/hang found), 2 usage or input error,
3 crash itself failed (it could not open the dump, died or stopped answering: one line
says which input to check, quoting crash's own error line).
"""

import argparse
import sys

from .adapters.crashproc import CrashProcess
from .adapters.diagnose import explain_start_failure, startup_warning
from .port import BadArgument, CrashExtError, CrashDied, CrashTimeout
from .verbs import registry
from .words import (argtype, check_module_spec, check_path_word, check_timeout_word,
                    shorten_message, shown)


class _Parser(argparse.ArgumentParser):
    """crash-ext's own options: a usage error raises BadArgument (one line, exit 2)."""

    def error(self, message):
        raise BadArgument(shorten_message(message))


def _split(argv):
    """Split argv into (our options, verb, verb argv); our options may come anywhere."""
    ours, rest, it = [], [], iter(argv)
    for a in it:
        if a in ("--vmlinux", "--vmcore", "--crash", "--timeout", "--mod"):
            ours += [a, next(it, "")]
        elif a.split("=", 1)[0] in ("--vmlinux", "--vmcore", "--crash", "--timeout", "--mod"):
            ours.append(a)
        else:
            rest.append(a)
    return ours, rest


def _crash_failed(e, opts) -> str:
    """Return the one line for crash failing (CrashDied/CrashTimeout ``e``)."""
    if isinstance(e, CrashDied) and getattr(e, "starting", False):
        return explain_start_failure(getattr(e, "output", ""), opts.vmlinux, opts.vmcore,
                                     opts.crash)
    if isinstance(e, CrashDied) and str(e).startswith("cannot run"):
        return "crash did not start: %s; check --crash" % shorten_message(e)
    text = " ".join(str(e).split())
    if isinstance(e, CrashTimeout) and "did not start" in text:
        return ("crash did not finish starting: the dump may be very large or damaged "
                "(%s)" % shorten_message(text[:200]))
    if isinstance(e, CrashTimeout):
        return ("crash stopped answering: %s; a larger --timeout may help on a big dump"
                % shorten_message(text[:200]))
    return "crash failed: %s" % shorten_message(text[:300])


def main(argv=None):
    """Run ``crash-ext`` with ``argv`` (sys.argv[1:] by default); return the exit code
    (0 nothing found, 1 deadlock/hang found, 2 usage or input error, 3 crash failed).
    Every error is one line on stderr (the verbs print their own)."""
    argv = sys.argv[1:] if argv is None else argv
    ours, rest = _split(argv)
    p = _Parser(prog="crash-ext", description=__doc__.splitlines()[0])
    p.add_argument("--vmlinux", type=argtype(check_path_word, "--vmlinux path"),
                   help="kernel with debuginfo (default: crash's own search)")
    p.add_argument("--vmcore", type=argtype(check_path_word, "--vmcore path"),
                   help="dump file (default: the live system)")
    p.add_argument("--crash", default="crash", type=argtype(check_path_word, "--crash path"),
                   help="crash binary (default: crash on PATH)")
    p.add_argument("--timeout", type=argtype(check_timeout_word), default=600,
                   help="seconds per crash command (more than 0)")
    p.add_argument("--mod", action="append", default=[], metavar="NAME=KO",
                   type=argtype(check_module_spec),
                   help="load a module's debuginfo (crash `mod -s NAME KO`); repeatable")
    try:
        opts = p.parse_args(ours)
    except BadArgument as e:
        print("crash-ext: error: %s" % e, file=sys.stderr)
        return 2
    if not rest or rest[0] in ("-h", "--help") or rest[0] not in registry.VERBS:
        if rest[:1] not in (["-h"], ["--help"]):
            print("crash-ext: error: %s (one of %s; crash-ext -h for help)" % (
                "unknown verb %s" % shown(rest[0]) if rest else "no verb given",
                ", ".join(registry.VERBS)), file=sys.stderr)
            return 2
        p.print_usage(sys.stderr)
        print("verbs:", file=sys.stderr)
        for name, (_, summary) in registry.VERBS.items():
            print("  %-11s %s" % (name, summary), file=sys.stderr)
        return 0
    verb = registry.load(rest[0])
    files = [f for f in (opts.vmlinux, opts.vmcore) if f]
    port = CrashProcess(files[0] if files else None, files[1] if len(files) > 1 else None,
                        crash=opts.crash, timeout=opts.timeout)
    port.module_files = [ko for _, ko in opts.mod]      # never an output file
    try:
        for name, ko in opts.mod:
            port.command("mod -s %s %s" % (name, ko))
        return verb.main(rest[1:], port)
    except (CrashDied, CrashTimeout) as e:
        print("crash-ext: %s" % _crash_failed(e, opts), file=sys.stderr)
        return 3
    except CrashExtError as e:
        print(registry.error_line("crash-ext", e), file=sys.stderr)
        return 2
    except Exception as e:   # noqa: BLE001 - a bug: one line, not a traceback
        print("crash-ext: internal error: %s: %s (please report it with the command "
              "line)" % (type(e).__name__, shorten_message(str(e)[:200])), file=sys.stderr)
        return 3
    finally:
        warn = startup_warning(port.startup_output, opts.vmcore)
        if warn:
            print("crash-ext: warning: %s" % warn, file=sys.stderr)
        port.close()


if __name__ == "__main__":
    sys.exit(main())
