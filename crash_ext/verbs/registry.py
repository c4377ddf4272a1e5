"""The verbs crash-ext offers, by name: their module and one-line summary.

Each verb module has ``main(argv, port) -> int`` and ``build_parser() -> ArgumentParser``.
"""

import argparse
import importlib

from ..port import BadArgument, CrashCannotRead, CrashDied, CrashTimeout
from ..words import shorten_message

VERBS = {
    "whoholds": ("crash_ext.verbs.whoholds",
                 "who holds a lock, who waits on it, what a task is blocked on"),
    "argrecover": ("crash_ext.verbs.argrecover",
                   "function arguments of each frame of a task, with evidence"),
    "deadlock": ("crash_ext.verbs.deadlock",
                 "wait-for graph of blocked tasks: cycles and hang chains"),
}


class VerbParser(argparse.ArgumentParser):
    """argparse for verbs: a usage error raises BadArgument (one line at the prompt)
    instead of printing usage and exiting; ``-h`` still prints help and exits 0."""

    def error(self, message):
        raise BadArgument(shorten_message(message))


def error_line(prog, e) -> str:
    """Return the one-line message ``PROG: error: ...`` for exception ``e`` (crash's
    multi-line answers joined, overlong words cut).  Never raises."""
    msg = shorten_message(" ".join(str(e).split())) or type(e).__name__
    return "%s: error: %s" % (prog, msg)


#: errors of crash itself: verbs let them through, so that ``crash-ext`` exits 3
CRASH_FAILURES = (CrashDied, CrashTimeout, CrashCannotRead)


def parse_verb_args(parser, argv, err):
    """Return (options, None), or (None, exit code) when ``argv`` asked for help (0,
    printed by argparse) or is a usage error (2, one line ``PROG: error: ...`` on
    ``err``)."""
    try:
        return parser.parse_args(list(argv)), None
    except SystemExit as e:       # -h / --help
        return None, (0 if not e.code else 2)
    except BadArgument as e:
        print(error_line(parser.prog, e), file=err)
        return None, 2


#: The exit codes every verb and ``crash-ext`` use (README "Exit codes").
EXIT_NOTHING, EXIT_FOUND, EXIT_INPUT, EXIT_CRASH = 0, 1, 2, 3


def exit_code(exc) -> int:
    """Return the exit code for an error a verb reports: 3 when crash itself failed
    (died, timed out, cannot read the kernel), else 2 (usage or input error)."""
    return EXIT_CRASH if isinstance(exc, CRASH_FAILURES) else EXIT_INPUT


def load(name):
    """Return the verb module ``name``; raises KeyError for an unknown verb."""
    return importlib.import_module(VERBS[name][0])


def long_help(name):
    """Return crash-style help for verb ``name``: NAME, SYNOPSIS, DESCRIPTION, EXAMPLES.

    Built from the verb's ``build_parser()`` and its module-level ``EXAMPLES`` text.
    """
    mod = load(name)
    parser = mod.build_parser()
    usage = parser.format_usage().replace("usage: ", "").strip()
    body = parser.format_help().split("\n", 1)[1].strip() if "\n" in parser.format_help() \
        else ""
    examples = getattr(mod, "EXAMPLES", "").strip("\n")
    out = ["NAME", "  %s - %s" % (name, VERBS[name][1]), "", "SYNOPSIS", "  " + usage, "",
           "DESCRIPTION"]
    out += ["  " + line if line else "" for line in body.splitlines()]
    if examples:
        out += ["", "EXAMPLES"] + ["  " + line if line else "" for line in examples.splitlines()]
    return "\n".join(out) + "\n"
