"""The floors of crash_ext import downwards only, and no floor imports a circle.

Every ``import`` statement counts, also those inside functions (a lazy import that
hides a circle is still a circle).  Floors, lowest first (crash_ext/__init__.py and
docs/design.md say the same): ``core`` (errors, the Port, words, records, caches) --
``models`` (what crash prints, kernel layouts) -- ``session`` (one call's snapshot) --
``code`` (what the code says: dataflow, arguments, held locks) -- ``waits`` (what a
task waits for, the wait-for graph) -- ``render`` (records in, text out) -- ``verbs``
(commands, the CLI, the in-crash entry).  ``ports`` (the adapters) import only
``core`` and ``models``; only ``verbs`` import ``ports``.  ``render`` imports no floor
that reads the kernel: only ``core``, ``models`` and the records of the wait-for graph
(``waits.graph``, which itself imports only ``core``).  ``compat`` is below everything.
"""

import ast
import os

from crash_ext.waits.graph import tarjan_scc
from tests.unit.test_incrash_imports import ROOT, _imports

#: the floors, lowest first
FLOORS = ("core", "models", "session", "code", "waits", "render", "verbs")

#: floor -> the crash_ext floors it must not import: every floor above it, and
#: ``ports`` for all but ``verbs``; ``ports`` import only ``core`` and ``models``;
#: ``render`` nothing that reads the kernel
FORBIDDEN = {f: set(FLOORS[i + 1:]) | ({"ports"} if f != "verbs" else set())
             for i, f in enumerate(FLOORS)}
FORBIDDEN["ports"] = set(FLOORS) - {"core", "models"}
FORBIDDEN["render"] |= {"session", "code", "waits"}
FORBIDDEN["compat"] = set(FLOORS) | {"ports"}


def _graph():
    """Return {crash_ext module: {crash_ext modules it imports}} of the source tree."""
    g = {}
    base = os.path.join(ROOT, "crash_ext")
    for d, _, files in os.walk(base):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(d, f)
            mod = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
            if mod.endswith(".__init__"):
                mod = mod[:-len(".__init__")]
            pkg = mod if f == "__init__.py" else mod.rsplit(".", 1)[0]
            deps = set()
            for name, _opt, _line, froms in _imports(ast.parse(open(path).read()), pkg):
                if not name or not name.startswith("crash_ext"):
                    continue
                subs = [name + "." + n for n in froms or ()
                        if os.path.isfile(os.path.join(ROOT, *(name + "." + n).split("."))
                                          + ".py")]
                deps.update(subs or [name])
            g[mod] = deps - {mod}
    return g


def _cycles(g, within):
    """Return the import circles (strongly connected components of more than one
    module, each sorted) among the modules whose names start with ``within``."""
    nodes = sorted(m for m in g if m.startswith(within))
    inside = set(nodes)
    comps = tarjan_scc(nodes, lambda v: sorted(w for w in g[v] if w in inside))
    return sorted(sorted(c) for c in comps if len(c) > 1)


def _layer(mod):
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_analyses_import_no_circle():
    g = _graph()
    assert "crash_ext.code.holds" in g and "crash_ext.waits.lockreport" in g
    assert _cycles(g, "crash_ext.waits.") == []


#: the one module of a forbidden floor render may import: records and pure functions
RENDER_MAY = {"crash_ext.waits.graph"}


def test_the_layers_import_downwards():
    bad = []
    for mod, deps in sorted(_graph().items()):
        for d in sorted(deps):
            if _layer(d) in FORBIDDEN.get(_layer(mod), ()) and not (
                    _layer(mod) == "render" and d in RENDER_MAY):
                bad.append("%s imports %s" % (mod, d))
    assert bad == []


def test_what_render_may_import_reads_no_kernel():
    g = _graph()
    for mod in RENDER_MAY:
        assert {_layer(d) for d in g[mod]} <= {"core", "compat"}, mod


def test_a_circle_is_seen():
    """The check itself can fail: a made-up graph with a circle through a lazy import."""
    g = {"crash_ext.waits.a": {"crash_ext.waits.b"},
         "crash_ext.waits.b": {"crash_ext.waits.c"},
         "crash_ext.waits.c": {"crash_ext.waits.a", "crash_ext.models.x"},
         "crash_ext.models.x": set()}
    assert _cycles(g, "crash_ext.waits.") == [
        ["crash_ext.waits.a", "crash_ext.waits.b", "crash_ext.waits.c"]]


def _private_uses(path):
    """Return the private names (``_x``) ``path`` takes from another crash_ext module:
    imported by name, or read as ``module._x`` of a module it imported."""
    tree = ast.parse(open(path).read())
    mods = set()
    bad = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith(
                "crash_ext")):
            for a in n.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    bad.append("%s from %s" % (a.name, n.module))
                mods.add(a.asname or a.name)
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and \
                n.value.id in mods and n.attr.startswith("_") and \
                not n.attr.startswith("__"):
            bad.append("%s.%s" % (n.value.id, n.attr))
    return bad


def test_no_private_name_crosses_modules():
    bad = []
    for d, _, files in os.walk(os.path.join(ROOT, "crash_ext")):
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(d, f)
                bad.extend("%s: %s" % (os.path.relpath(path, ROOT), b)
                           for b in _private_uses(path))
    assert bad == []


def test_the_floor_order_is_stated_the_same_everywhere():
    said = "Floors, lowest first: %s." % ", ".join(FLOORS)
    import crash_ext
    design = open(os.path.join(ROOT, "docs", "design.md")).read()
    assert said in " ".join(crash_ext.__doc__.split())
    assert said in " ".join(design.split())


def test_no_module_is_over_about_600_lines():
    big = []
    for d, _, files in os.walk(os.path.join(ROOT, "crash_ext")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                n = sum(1 for _ in open(path))
                if n > 620:
                    big.append("%s: %d" % (os.path.relpath(path, ROOT), n))
    assert big == []
