"""``crash-ext``: run a verb outside crash by driving a real crash process.

    crash-ext VERB [VERB ARGS...] [--vmlinux V --vmcore C | --lab SCENARIO] [--crash PATH]

Without --vmlinux/--vmcore crash opens the running system (as root), as crash does.
Exit codes: the verb's (0 nothing found, 1 deadlock/hang found), 2 usage or input error,
3 crash itself failed (cannot be run, cannot open the dump, cannot read the kernel).
"""

import argparse
import sys

from .adapters.crashproc import CrashProcess
from .analyses.taskview import require_task_view
from .dumpfiles import find_crash, find_lab_dump, readable_dump
from .port import BadArgument, CrashExtError
from .verbs import registry

_OURS = ("--vmlinux", "--vmcore", "--crash", "--timeout", "--mod", "--lab")

EPILOG = """\
verbs (crash-ext help VERB, or crash-ext VERB --help, for each one's options):
%s

examples:
  crash-ext deadlock --vmlinux /usr/lib/debug/lib/modules/$(uname -r)/vmlinux \\
            --vmcore /var/crash/127.0.0.1-2026-12-01/vmcore
  crash-ext deadlock --json --lab seed        # the lab's seed dump (make demo builds it)
  crash-ext whoholds -p 98 --lab seed
  crash-ext argrecover 98 vfs_unlink --lab seed

exit codes: 0 nothing found, 1 deadlock or hang found, 2 usage or input error,
3 crash itself failed (cannot be run, cannot open the dump, cannot read the kernel)."""


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


class _Parser(argparse.ArgumentParser):
    """crash-ext's own options: a usage error is one line and exit 2."""

    def error(self, message):
        self.exit(2, "crash-ext: error: %s\n" % message)


def build_parser():
    """Return the parser of crash-ext's own options (the verb's come after the verb)."""
    verbs = "\n".join("  %-11s %s" % (n, s) for n, (_, s) in registry.VERBS.items())
    p = _Parser(prog="crash-ext", usage="crash-ext VERB [VERB OPTIONS] [OPTIONS]",
                description=__doc__.splitlines()[0].split(": ", 1)[1],
                epilog=EPILOG % verbs, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vmlinux", metavar="PATH",
                   help="kernel with debuginfo (default: crash's own search)")
    p.add_argument("--vmcore", metavar="PATH",
                   help="dump file; zstd or gzip dumps are decompressed once into "
                        "~/.cache/crash-ext/run (default: the live system)")
    p.add_argument("--lab", metavar="SCENARIO[@KERNEL]",
                   help="a lab dump from the cache with its vmlinux, module and the lab's "
                        "crash (e.g. seed, convoy@6.12)")
    p.add_argument("--crash", metavar="PATH",
                   help="crash binary (default: $CRASH, then with --lab the lab's build, "
                        "then crash on PATH)")
    p.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                   help="seconds crash may take to answer one command (default: "
                        "%(default)s)")
    p.add_argument("--mod", action="append", default=[], metavar="NAME=KO",
                   help="load a module's debuginfo (crash 'mod -s NAME KO'); repeatable "
                        "(default: none; --lab loads the lab module)")
    return p


def main(argv=None):
    """Run crash-ext with ``argv``; return the exit code (see the module's text)."""
    argv = sys.argv[1:] if argv is None else argv
    ours, rest = _split(argv)
    p = build_parser()
    if rest[:1] == ["help"]:
        if len(rest) == 1:
            p.print_help()
            return 0
        rest = [rest[1], "--help"]
    if not rest or rest[0] in ("-h", "--help"):
        if rest:
            p.print_help()
            return 0
        p.print_usage(sys.stderr)
        print("crash-ext: error: no verb given (whoholds, argrecover, deadlock)",
              file=sys.stderr)
        return 2
    if rest[0] not in registry.VERBS:
        print("crash-ext: error: unknown verb %r (whoholds, argrecover, deadlock; "
              "crash-ext --help)" % rest[0][:40], file=sys.stderr)
        return 2
    opts = p.parse_args(ours)
    verb = registry.load(rest[0])
    if any(a in ("-h", "--help") for a in rest[1:]):
        return verb.main(rest[1:], None)
    try:
        vmlinux, vmcore, mods = opts.vmlinux, opts.vmcore, list(opts.mod)
        if opts.lab:
            if vmlinux or vmcore:
                raise BadArgument("give --lab or --vmlinux/--vmcore, not both")
            lab = find_lab_dump(opts.lab)
            vmlinux, vmcore = lab.vmlinux, lab.vmcore
            mods.insert(0, "crashext_lab=" + lab.module_ko)
        crash = find_crash(opts.crash, lab=bool(opts.lab))
        if vmcore:
            vmcore = readable_dump(vmcore)
    except CrashExtError as e:
        print("crash-ext: error: %s" % e, file=sys.stderr)
        return registry.exit_code(e)
    port = CrashProcess(vmlinux, vmcore, crash=crash, timeout=opts.timeout)
    try:
        require_task_view(port)       # before mod -s: a crash that cannot read says so
        for spec in mods:
            name, _, ko = spec.partition("=")
            port.command("mod -s %s %s" % (name, ko))
        return verb.main(rest[1:], port)
    except CrashExtError as e:
        print("crash-ext: error: %s" % e, file=sys.stderr)
        return registry.exit_code(e)
    finally:
        port.close()


if __name__ == "__main__":
    sys.exit(main())
