"""The code that runs inside crash imports only what pykdump's stock build embeds.

pykdump's ``mpykdump.so`` carries the standard-library files listed in its
``Extension/minpylib-3.N.lst`` and the C modules of ``Extension/Setup.local-3.N``, nothing
else.  Those lists are kept as module names in ``tests/unit/data/pykdump_stdlib.py`` (no
pykdump source lives in the project); a module counts as available
when every one of the 3.8, 3.9 and 3.10 builds has it (a user's prebuilt mpykdump.so may be
any of them), or it is built into every CPython (``CORE``), or ``install.sh`` installs it.

The import closure is computed statically (every ``import`` statement, also inside
functions, of crash_ext modules reachable from the in-crash entry points; third-party
packages are followed too).  Imports inside ``try:`` with an ``except ImportError``
fallback are optional: they are checked to have a fallback, and the fallback is run below
with the missing modules blocked.
"""

import ast
import os
import re
import subprocess
import sys

from tests.unit.data import pykdump_stdlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERSIONS = ("3.8", "3.9", "3.10")

#: what install.sh's generated programs import and call, inside crash
ENTRY_POINTS = ("crash_ext.verbs.incrash", "crash_ext.verbs.registry",
                "crash_ext.verbs.whoholds", "crash_ext.verbs.argrecover",
                "crash_ext.verbs.deadlock")

#: built into every CPython 3.8-3.10: Python/ (sys, builtins, _imp, marshal, _warnings,
#: _ast, gc, _string...), the frozen importlib/zipimport, and the lines of Modules/Setup
#: that are not commented out (posix ... _symtable)
CORE = {"sys", "builtins", "_imp", "marshal", "_warnings", "_ast", "gc", "_string",
        "_frozen_importlib", "_frozen_importlib_external", "zipimport", "posix", "errno",
        "pwd", "_sre", "_codecs", "_weakref", "_functools", "_operator", "_collections",
        "_abc", "itertools", "atexit", "_signal", "_stat", "time", "_thread", "_locale",
        "_io", "faulthandler", "_tracemalloc", "_symtable",
        "crash"}  # pykdump's own C module


def pykdump_lists():
    """Return {version: (stdlib modules, C modules)} of pykdump's stock builds."""
    return {v: pykdump_stdlib.BUILDS[v] for v in VERSIONS}


def install_sh_extras():
    """Return the top-level modules install.sh puts on the in-crash path besides
    crash_ext: the packages it pip-installs into PREFIX/lib (from requirements.txt)."""
    text = open(os.path.join(ROOT, "install.sh")).read()
    extras = set()
    if re.search(r'pip install[^\n]*--target "\$PREFIX/lib"', text):
        for line in open(os.path.join(ROOT, "requirements.txt")):
            name = re.split(r"[=<>!~\[; ]", line.split("#", 1)[0].strip())[0]
            if name:
                extras.add(name.lower().replace("-", "_"))
    return extras


def allowed_modules():
    lists = pykdump_lists()
    common = None
    for py, cmods in lists.values():
        have = py | cmods
        common = have if common is None else common & have
    return common | CORE | install_sh_extras(), set().union(*(py for py, _ in lists.values()))


def _is_optional(handlers):
    for h in handlers:
        names = []
        if h.type is None:
            return True
        for n in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]):
            names.append(getattr(n, "id", getattr(n, "attr", "")))
        if {"ImportError", "ModuleNotFoundError", "Exception"} & set(names):
            return True
    return False


def _imports(tree, pkg):
    """Yield (module, optional, lineno) for each import in ``tree`` (module ``pkg`` is
    the package relative imports start from)."""
    def walk(node, optional):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Try):
                opt = optional or _is_optional(child.handlers)
                for n in child.body:
                    yield from walk_one(n, opt)
                for part in (child.handlers, child.orelse, child.finalbody):
                    for n in part:
                        yield from walk_one(n, optional)
            else:
                yield from walk_one(child, optional)

    def walk_one(node, optional):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, optional, node.lineno, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            yield mod, optional, node.lineno, [a.name for a in node.names]
        else:
            yield from walk(node, optional)

    yield from walk(tree, False)


def _source(mod):
    """Return the file of module ``mod`` (crash_ext or an installed package), or None."""
    for base in [ROOT] + [p for p in sys.path if p.endswith("site-packages")]:
        stem = os.path.join(base, *mod.split("."))
        for f in (stem + ".py", os.path.join(stem, "__init__.py")):
            if os.path.isfile(f):
                return f
    return None


def closure(entries=ENTRY_POINTS):
    """Return ({module outside crash_ext: [(importer, line)]}, [optional imports],
    set of crash_ext modules) reachable from ``entries``."""
    outside, optional, seen = {}, [], set()
    extras = install_sh_extras()
    todo = list(entries)
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        parts = mod.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))   # parent packages
        f = _source(mod)
        assert f is not None, "no source for %s" % mod
        pkg = mod if f.endswith("__init__.py") else ".".join(parts[:-1])
        for name, opt, line, froms in _imports(ast.parse(open(f).read(), f), pkg):
            top = name.split(".")[0]
            ours = top == "crash_ext" or top in extras
            if opt and not ours:
                optional.append((name, mod, line))
                continue
            if ours:
                todo.append(name)
                for n in froms or ():
                    if _source(name + "." + n):
                        todo.append(name + "." + n)
            else:
                outside.setdefault(name, []).append((mod, line))
                for n in froms or ():
                    outside.setdefault(name + "." + n, []).append((mod, line))
    return outside, optional, seen


def test_lists_hold_the_facts_that_shaped_the_code():
    lists = pykdump_lists()
    assert set(lists) == set(VERSIONS)
    for v, (py, cmods) in lists.items():
        assert {"argparse", "re", "os", "collections", "struct"} <= py, v
        assert {"zlib", "math", "_struct"} <= cmods, v
    # the facts that shaped the code: no json/hashlib/html anywhere, typing not in 3.8,
    # dataclasses not in 3.8/3.9
    for v, (py, _) in lists.items():
        assert not {"json", "hashlib", "html", "subprocess", "shlex"} & py, v
    assert "typing" not in lists["3.8"][0] and "typing" in lists["3.9"][0]
    assert "dataclasses" not in lists["3.9"][0] and "dataclasses" in lists["3.10"][0]


def test_incrash_closure_is_in_every_stock_pykdump():
    allowed, union = allowed_modules()
    outside, optional, ours = closure()
    assert "crash_ext.verbs.deadlock" in ours and "crash_ext.waits.collection" in ours
    assert "crash_ext.ports.crashproc" not in ours, "the CLI's crash process adapter"
    bad = []
    for name, where in sorted(outside.items()):
        top = name.split(".")[0]
        if name in allowed:
            continue
        if name != top and name not in union and top in allowed:
            continue      # an attribute imported from an allowed module (from os import path)
        bad.append("%s (imported by %s line %d)" % (name, where[0][0], where[0][1]))
    assert not bad, "not in pykdump's 3.8/3.9/3.10 builds: " + "; ".join(bad)
    # optional imports of what stock pykdump lacks: only typing, whose fallback runs below
    assert {n for n, _, _ in optional if n not in allowed} <= {"typing"}, optional


def test_closure_sees_what_it_must():
    # the checker itself: a module known to import subprocess is caught
    outside, _, ours = closure(("crash_ext.ports.crashproc",))
    assert "subprocess" in outside and "crash_ext.core.port" in ours


BLOCKER = r'''
import sys
ALLOWED = set(sys.argv[1].split(","))
def importer():
    f = sys._getframe(2)
    while f is not None and f.f_globals.get("__name__", "").startswith(
            ("importlib", "_frozen_importlib")):
        f = f.f_back
    return f.f_globals.get("__name__", "") if f is not None else ""
class Block:
    """Imports done by crash_ext's own code: only stock pykdump's modules."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "crash_ext" or name in ALLOWED:
            return None
        if importer().startswith("crash_ext"):
            raise ModuleNotFoundError("No module named %r (not in stock pykdump)" % name)
        return None
sys.meta_path.insert(0, Block())
for m in list(sys.modules):
    if m.split(".")[0] in ("typing", "dataclasses", "json", "tabulate", "html"):
        del sys.modules[m]
from crash_ext.verbs.incrash import run_verb, register_verbs
from crash_ext.verbs import registry
for name in registry.VERBS:
    registry.load(name)
from crash_ext.compat import NamedTuple, Optional, Dict
assert "typing" not in sys.modules
class P(NamedTuple):
    a: int
    b: Optional[Dict[str, int]] = None
    def twice(self):
        return 2 * self.a
p = P(3)
assert p == (3, None) and p.twice() == 6 and p._replace(b={}).b == {}
for name in registry.VERBS:
    print(run_verb(name, ["--help"], crash_module=object()))
'''


def test_entry_points_run_with_only_the_stock_modules():
    """Import the in-crash entry points and run each verb's --help in a Python where every
    module outside the 3.8 list (and the builtins) raises ImportError: the fallbacks of the
    optional imports work, and nothing imports a module the static walk missed."""
    allowed, _ = allowed_modules()
    # what the interpreter itself has imported before our code runs is available too
    boot = subprocess.run([sys.executable, "-S", "-c", "import sys; print(','.join(sys.modules))"],
                          capture_output=True, text=True, check=True).stdout.strip().split(",")
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-S", "-c", BLOCKER, ",".join(sorted(allowed | set(boot)))],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    codes = [l for l in r.stdout.splitlines() if l in ("0", "1", "2", "3")]
    assert codes == ["0", "0", "0"], r.stdout[-3000:]
    for name in ("whoholds", "argrecover", "deadlock"):    # VERB -h: crash's help text
        assert "NAME\n  %s - " % name in r.stdout and "\n  %s [-h]" % name in r.stdout, name
