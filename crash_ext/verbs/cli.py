"""``crash-ext``: run a verb outside crash by driving a real crash process.

    crash-ext VERB [VERB ARGS...] [--vmlinux V --vmcore C | --lab SCENARIO] [--crash PATH]
    crash-ext help VERB      what crash's `help VERB` prints (no crash needed)

Without --vmlinux/--vmcore crash opens the running system (as root), as crash does.
Exit codes (the same for every verb, stated in each verb's help): 0 answered, nothing
alarming; 1 the answer holds a deadlock or a task blocked behind a blocked holder; 2 usage
or input error (the input named no lock or task); 3 crash itself failed (cannot be run,
cannot open the dump, cannot read the kernel).  Errors are one line on stderr; the verb's
words are checked before crash starts.
"""

import argparse
import sys

from ..ports.crashproc import CrashProcess
from ..ports.diagnose import explain_start_failure, startup_warning
from ..session.taskview import require_task_view
from ..ports.dumpfiles import find_crash, find_lab_dump, readable_dump
from ..core.errors import BadArgument, CrashCannotRead, CrashDied, CrashExtError, CrashTimeout
from . import registry, shell
from ..core.words import (argtype, check_module_spec, check_path_word, check_timeout_word,
                          shorten_message, shown)


class _Parser(argparse.ArgumentParser):
    """crash-ext's own options: a usage error raises BadArgument (one line, exit 2)."""

    def error(self, message):
        raise BadArgument(shorten_message(message))


_OURS = ("--vmlinux", "--vmcore", "--crash", "--timeout", "--mod", "--lab")

EPILOG = """\
verbs (crash-ext help VERB, or crash-ext VERB --help, for each one's options):
%s

examples:
  crash-ext deadlock --vmlinux /usr/lib/debug/lib/modules/$(uname -r)/vmlinux \\
            --vmcore /var/crash/127.0.0.1-2026-12-01/vmcore
  crash-ext deadlock --json --lab seed        # the lab's seed dump (make demo builds it)
  crash-ext whoholds -p rm --lab seed         # a task by its command name (or pid)
  crash-ext argrecover rm vfs_unlink --lab seed

exit codes: 0 answered, nothing alarming; 1 a deadlock, or a task blocked behind a
blocked holder; 2 usage or input error; 3 crash itself failed (cannot be run, cannot
open the dump, cannot read the kernel)."""


def _split(argv):
    """Split argv into (our options, verb argv); our options may come anywhere."""
    ours, rest, it = [], [], iter(argv)
    for a in it:
        if a in _OURS:
            ours += [a, next(it, "")]
        elif a.split("=", 1)[0] in _OURS:
            ours.append(a)
        else:
            rest.append(a)
    return ours, rest


def _crash_failed(e, opts, crash) -> str:
    """Return the one line for crash failing (CrashDied/CrashTimeout/CrashCannotRead)."""
    if isinstance(e, CrashCannotRead):
        return "error: %s" % e
    if isinstance(e, CrashDied) and getattr(e, "starting", False):
        return explain_start_failure(getattr(e, "output", ""), opts.vmlinux, opts.vmcore,
                                     crash)
    if isinstance(e, CrashDied) and str(e).startswith("cannot run"):
        return "crash did not start: %s; check --crash or CRASH=" % shorten_message(e)
    text = " ".join(str(e).split())
    if isinstance(e, CrashTimeout) and "did not start" in text:
        return ("crash did not finish starting: the dump may be very large or damaged "
                "(%s)" % shorten_message(text[:200]))
    if isinstance(e, CrashTimeout):
        return ("crash stopped answering: %s; a larger --timeout may help on a big dump"
                % shorten_message(text[:200]))
    return "crash failed: %s" % shorten_message(text[:300])


def build_parser():
    """Return the parser of crash-ext's own options (the verb's come after the verb)."""
    verbs = "\n".join("  %-11s %s" % (n, s) for n, (_, s) in registry.VERBS.items())
    p = _Parser(prog="crash-ext", usage="crash-ext VERB [VERB OPTIONS] [OPTIONS]",
                description=__doc__.splitlines()[0].split(": ", 1)[1],
                epilog=EPILOG % verbs, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vmlinux", metavar="PATH", type=argtype(check_path_word, "--vmlinux path"),
                   help="kernel with debuginfo (default: crash's own search)")
    p.add_argument("--vmcore", metavar="PATH", type=argtype(check_path_word, "--vmcore path"),
                   help="dump file; zstd or gzip dumps are decompressed once into "
                        "~/.cache/crash-ext/run (default: the live system)")
    p.add_argument("--lab", metavar="SCENARIO[@KERNEL]",
                   help="a lab dump from the cache with its vmlinux, module and the lab's "
                        "crash (e.g. seed, convoy@6.12; default: none, KERNEL defaults "
                        "to Debian 12's 6.1 when that dump exists)")
    p.add_argument("--crash", metavar="PATH", type=argtype(check_path_word, "--crash path"),
                   help="crash binary (default: $CRASH, then with --lab the lab's build, "
                        "then crash on PATH)")
    p.add_argument("--timeout", type=argtype(check_timeout_word), default=600,
                   metavar="SECONDS",
                   help="seconds crash may take to answer one command, more than 0 "
                        "(default: %(default)s)")
    p.add_argument("--mod", action="append", default=[], metavar="NAME=KO",
                   type=argtype(check_module_spec),
                   help="load a module's debuginfo (crash 'mod -s NAME KO'); repeatable "
                        "(default: none; --lab loads the lab module)")
    return p


def main(argv=None):
    """Run ``crash-ext`` with ``argv`` (sys.argv[1:] by default); return the exit code
    (:data:`~crash_ext.verbs.shell.EXIT_TEXT`: 0 answered, 1 deadlock or task blocked
    behind a blocked holder, 2 usage or input error, 3 crash failed).  The verb's words
    are checked before crash starts (:func:`~crash_ext.verbs.shell.prepare`); every
    error is one line on stderr."""
    argv = sys.argv[1:] if argv is None else argv
    ours, rest = _split(argv)
    p = build_parser()
    if rest[:1] == ["help"]:
        if len(rest) == 2 and rest[1] in registry.VERBS:
            sys.stdout.write(registry.help_text(rest[1]))
            return 0
        if len(rest) == 1:
            p.print_help()
            return 0
        rest = rest[1:2]
    if not rest or rest[0] in ("-h", "--help"):
        if rest:
            p.print_help()
            return 0
        shell.say("crash-ext: error: no verb given (one of %s; crash-ext --help)"
                  % ", ".join(registry.VERBS), sys.stderr)
        return shell.EXIT_INPUT
    if rest[0] not in registry.VERBS:
        shell.say("crash-ext: error: unknown verb %s (one of %s; crash-ext --help)"
                  % (shown(rest[0]), ", ".join(registry.VERBS)), sys.stderr)
        return shell.EXIT_INPUT
    try:
        opts = p.parse_args(ours)
    except BadArgument as e:
        shell.say(shell.error_line("crash-ext", e), sys.stderr)
        return shell.EXIT_INPUT
    name = rest[0]
    vopts, rc = shell.prepare(name, rest[1:], sys.stdout, sys.stderr)
    if vopts is None:
        return rc               # help, or a usage error: no crash started
    crash = opts.crash
    try:
        vmlinux, vmcore, mods = opts.vmlinux, opts.vmcore, list(opts.mod)
        if opts.lab:
            if vmlinux or vmcore:
                raise BadArgument("give --lab or --vmlinux/--vmcore, not both")
            lab = find_lab_dump(opts.lab)
            vmlinux, vmcore = lab.vmlinux, lab.vmcore
            mods.insert(0, ("crashext_lab", lab.module_ko))
            opts.vmlinux, opts.vmcore = vmlinux, vmcore
        crash = find_crash(opts.crash, lab=bool(opts.lab))
        if vmcore:
            vmcore = readable_dump(vmcore, say=lambda line: shell.say(
                "crash-ext: %s" % line, sys.stderr))
    except CrashExtError as e:
        shell.say(shell.error_line("crash-ext", e), sys.stderr)
        return shell.exit_code(e)
    port = CrashProcess(vmlinux, vmcore, crash=crash, timeout=opts.timeout)
    port.module_files = [ko for _, ko in mods]      # never an output file

    def crash_failed(e):
        return "crash-ext: %s" % _crash_failed(e, opts, crash)
    try:
        try:
            require_task_view(port)       # before mod -s: a crash that cannot read says so
            for mod, ko in mods:
                port.command("mod -s %s %s" % (mod, ko))
        except shell.CRASH_FAILURES as e:
            shell.say(crash_failed(e), sys.stderr)
            return shell.EXIT_CRASH
        except CrashExtError as e:
            shell.say(shell.error_line("crash-ext", e), sys.stderr)
            return shell.EXIT_INPUT
        return shell.execute(name, vopts, port, sys.stdout, sys.stderr, crash_failed)
    finally:
        warn = startup_warning(port.startup_output, opts.vmcore)
        if warn:
            shell.say("crash-ext: warning: %s" % warn, sys.stderr)
        port.close()


if __name__ == "__main__":
    sys.exit(main())
