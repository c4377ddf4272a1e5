"""crash-ext: deadlock-hunting verbs for the Linux crash utility.

Layers (see docs/design.md): ``port`` (kernel access interface) -> ``adapters`` (inside
crash via pykdump, outside via a crash process) -> ``models`` (parsed crash output, lock
layouts, x86-64) -> ``analyses`` (lock owners, argument recovery, wait-for graph) ->
``verbs`` (argparse, tables and --json from ``render``).
"""

__version__ = "0.1.0"
