"""What pykdump's stock ``mpykdump.so`` builds embed: facts about pykdump, not its code.

pykdump freezes a short list of standard-library files into ``mpykdump.so``
(``Extension/minpylib-3.N.lst`` in its source) and links a few C modules statically
(``Extension/Setup.local-3.N``).  Nothing else of the standard library exists inside crash.
The names below are those lists as module names, read from pykdump's source for the
Python versions its prebuilt files use (3.8, 3.9, 3.10) on 2026-12-07; a user's
``mpykdump.so`` may be any of them.  ``tests/unit/test_incrash_imports.py`` checks the
in-crash import closure against them.
"""

#: Python modules embedded by the 3.8 build
PY_3_8 = frozenset({
    "__future__", "_collections_abc", "_strptime", "_weakrefset", "abc", "argparse",
    "base64", "bisect", "cProfile", "code", "codecs", "codeop", "collections",
    "collections.abc", "contextlib", "copy", "copyreg", "datetime", "dis", "encodings",
    "encodings.aliases", "encodings.ascii", "encodings.cp437", "encodings.latin_1",
    "encodings.utf_8", "enum", "fnmatch", "functools", "genericpath", "getopt",
    "gettext", "gzip", "heapq", "importlib", "importlib.abc", "importlib.machinery",
    "importlib.util", "inspect", "io", "keyword", "linecache", "locale", "ntpath",
    "opcode", "operator", "optparse", "os", "pathlib", "pkgutil", "posixpath", "pprint",
    "profile", "pstats", "random", "re", "reprlib", "runpy", "selectors", "shutil",
    "signal", "socket", "sre_compile", "sre_constants", "sre_parse", "stat", "string",
    "struct", "textwrap", "token", "tokenize", "trace", "traceback", "tty", "types",
    "urllib", "urllib.error", "urllib.parse", "urllib.request", "urllib.response",
    "urllib.robotparser", "warnings", "weakref"
})

#: the 3.9 build adds ast and typing
PY_3_9 = PY_3_8 | {"ast", "typing"}

#: the 3.10 build adds dataclasses
PY_3_10 = PY_3_9 | {"dataclasses"}

#: C modules linked statically, the same in the 3.8, 3.9 and 3.10 builds (3.10 adds readline)
C_MODULES = frozenset({
    "zlib", "select", "_struct", "_socket", "math", "_sha1", "_sha256", "_sha512",
    "_md5", "_blake2", "_datetime", "array", "binascii", "_sha3", "_random", "_json",
    "unicodedata", "_lsprof", "_codecs"
})

#: {Python version: (Python modules, C modules)}
BUILDS = {
    "3.8": (PY_3_8, C_MODULES),
    "3.9": (PY_3_9, C_MODULES),
    "3.10": (PY_3_10, C_MODULES | {"readline"}),
}
