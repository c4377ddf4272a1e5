"""crash-ext: deadlock-hunting verbs for the Linux crash utility.

Laid out by the question each part answers (docs/design.md draws it).
Floors, lowest first: core, models, session, code, waits, render, verbs.
``core`` (errors, the Port and its optional capabilities, words, records, caches) --
``models`` (what crash prints, kernel layouts) -- ``session`` (what one verb call reads
once) -- ``code`` (what the code says: dataflow, arguments, held locks) -- ``waits``
(what a task waits for, the wait-for graph) -- ``render`` (records in, text out) --
``verbs`` (argparse and main, ``crash-ext``, the in-crash entry).  ``ports`` (inside
crash via pykdump, outside via a crash process) import only ``core`` and ``models``,
and only ``verbs`` import them.  tests/unit/test_layers.py checks the order.
"""

__version__ = "0.1.0"
