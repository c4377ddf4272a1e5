"""The verbs crash-ext offers, by name: their module and one-line summary.

Each verb module has ``build_parser() -> ArgumentParser``, ``check(opts)`` (what needs no
dump), ``run(opts, port, out) -> exit code`` and ``main(argv, port, out, err) -> exit
code``; :mod:`.shell` runs them (parsing, errors, exit codes) for both entry points.
"""

import argparse
import importlib

from ..core.errors import BadArgument
from ..core.words import shorten_message

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
    instead of printing usage and exiting; ``-h`` still prints help and exits 0, with
    the verb's ``examples`` (its module's EXAMPLES) under the options, as crash's
    ``help VERB`` shows them."""

    def __init__(self, *args, **kwargs):
        self.examples = kwargs.pop("examples", "")
        argparse.ArgumentParser.__init__(self, *args, **kwargs)

    def error(self, message):
        raise BadArgument(shorten_message(message))

    def format_help(self):
        """Return what crash's ``help VERB`` prints for a registered verb (NAME,
        SYNOPSIS, DESCRIPTION with the options, EXAMPLES): ``VERB --help`` and ``help
        VERB`` are the same text.  Another parser: argparse's help, then examples."""
        if self.prog in VERBS:
            return help_text(self.prog)
        text = argparse.ArgumentParser.format_help(self)
        ex = (self.examples or "").strip("\n")
        if ex:
            text += "\nexamples:\n" + "\n".join("  " + l if l else "" for l in
                                                 ex.splitlines()) + "\n"
        return text


def _options_help(parser) -> str:
    """Return argparse's own help of ``parser`` (no EXAMPLES: the callers add them in
    crash's layout)."""
    return argparse.ArgumentParser.format_help(parser)


def load(name):
    """Return the verb module ``name``; raises KeyError for an unknown verb."""
    return importlib.import_module(VERBS[name][0])


def crash_help(name):
    """Return (summary, synopsis, description) of verb ``name`` as crash's command table
    keeps them (``help NAME`` prints NAME, SYNOPSIS and DESCRIPTION from them, so the
    description holds the options and EXAMPLES only).  Plain text, no printf escaping."""
    mod = load(name)
    parser = mod.build_parser()
    usage = parser.format_usage().replace("usage: ", "", 1).strip()
    first, _, rest = usage.partition("\n")
    synopsis = first[len(name):].strip() if first.startswith(name) else first
    lead = " " * (len(name) + 3)        # crash prints "  NAME " before the synopsis
    synopsis = "\n".join([synopsis] + [lead + l.strip() for l in rest.splitlines() if l.strip()])
    text = _options_help(parser)
    body = text.split("\n", 1)[1].strip() if "\n" in text else ""
    if body.startswith(name) or body.startswith("["):        # argparse's wrapped usage
        body = body.split("\n\n", 1)[1].strip() if "\n\n" in body else ""
    out = ["  " + line if line else "" for line in body.splitlines()]
    examples = getattr(mod, "EXAMPLES", "").strip("\n")
    if examples:
        out += ["", "EXAMPLES"] + ["  " + line if line else "" for line in examples.splitlines()]
    from .shell import EXIT_TEXT
    out += [""] + EXIT_TEXT.splitlines()
    return VERBS[name][1], synopsis, "\n".join(out)


def help_text(name):
    """Return what crash's ``help NAME`` prints for verb ``name`` (registered by the pykdump
    adapter): the same bytes, so ``crash-ext help NAME`` prints them too."""
    summary, synopsis, description = crash_help(name)
    return "\nNAME\n  %s - %s\n\nSYNOPSIS\n  %s %s\n\nDESCRIPTION\n%s\n\n" % (
        name, summary, name, synopsis, description)
