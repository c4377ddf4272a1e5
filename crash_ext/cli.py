"""``crash-ext``: run a verb outside crash by driving a real crash process.

    crash-ext VERB [VERB ARGS...] [--vmlinux V --vmcore C] [--crash PATH]
    crash-ext help VERB      what crash's `help VERB` prints (no crash needed)

Without --vmlinux/--vmcore crash opens the running system (as root), as crash does.
Exit codes: the verb's (0 nothing found, 1 deadlock/hang found), 2 usage or input error,
3 crash itself failed.
"""

import argparse
import sys

from .adapters.crashproc import CrashProcess
from .port import CrashExtError, CrashDied, CrashTimeout
from .verbs import registry


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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ours, rest = _split(argv)
    p = argparse.ArgumentParser(prog="crash-ext", description=__doc__.splitlines()[0])
    p.add_argument("--vmlinux", help="kernel with debuginfo (default: crash's own search)")
    p.add_argument("--vmcore", help="dump file (default: the live system)")
    p.add_argument("--crash", default="crash", help="crash binary (default: crash on PATH)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per crash command")
    p.add_argument("--mod", action="append", default=[], metavar="NAME=KO",
                   help="load a module's debuginfo (crash `mod -s NAME KO`); repeatable")
    opts = p.parse_args(ours)
    if rest[:1] == ["help"] and len(rest) == 2 and rest[1] in registry.VERBS:
        sys.stdout.write(registry.help_text(rest[1]))
        return 0
    if not rest or rest[0] in ("-h", "--help") or rest[0] not in registry.VERBS:
        if rest and rest[0] not in ("-h", "--help"):
            print("crash-ext: error: unknown verb %r" % rest[0], file=sys.stderr)
        p.print_usage(sys.stderr)
        print("verbs:", file=sys.stderr)
        for name, (_, summary) in registry.VERBS.items():
            print("  %-11s %s" % (name, summary), file=sys.stderr)
        return 0 if rest[:1] in (["-h"], ["--help"]) else 2
    verb = registry.load(rest[0])
    files = [f for f in (opts.vmlinux, opts.vmcore) if f]
    port = CrashProcess(files[0] if files else None, files[1] if len(files) > 1 else None,
                        crash=opts.crash, timeout=opts.timeout)
    try:
        for spec in opts.mod:
            name, _, ko = spec.partition("=")
            port.command("mod -s %s %s" % (name, ko))
        return verb.main(rest[1:], port)
    except (CrashDied, CrashTimeout) as e:
        print("crash-ext: crash failed: %s" % e, file=sys.stderr)
        return 3
    except CrashExtError as e:
        print("crash-ext: error: %s" % e, file=sys.stderr)
        return 2
    finally:
        port.close()


if __name__ == "__main__":
    sys.exit(main())
