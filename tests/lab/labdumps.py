"""The lab's dumps as tests and benchmarks see them: located, built when missing.

    from tests.lab.labdumps import get_dump
    d = get_dump("seed")          # d.vmlinux, d.vmcore, d.truth, d.crash, d.module_ko

Dumps are kept zstd-compressed in the cache; ``get_dump`` decompresses a working copy
(under ``$CRASH_EXT_CACHE/run``, as ``crash-ext`` does: ``crash_ext.dumpfiles``) the
first time it is asked for one.
"""

import json
import os
import re
import subprocess

from crash_ext.dumpfiles import readable_dump
from tests.lab import mklab

MIN_CRASH = (8, 0, 4)


class LabDump:
    """One scenario's dump: paths, and the truth the lab module published."""

    def __init__(self, scenario, directory, crash):
        self.scenario = scenario
        self.directory = directory
        self.crash = crash
        with open(os.path.join(directory, "meta.json")) as f:
            self.meta = json.load(f)
        with open(os.path.join(directory, "truth.json")) as f:
            self.truth = json.load(f)
        self.vmlinux = self.meta["vmlinux"]
        self.module_ko = os.path.join(directory, "crashext_lab.ko")
        self.vmcore = readable_dump(os.path.join(directory, self.meta["vmcore_zst"]))

    def __repr__(self):
        return "LabDump(%s, %s)" % (self.scenario, self.vmcore)


def crash_version(path):
    """Return crash's version tuple, e.g. (8, 0, 6); raises mklab.LabError when unreadable."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except OSError as e:
        raise mklab.LabError("cannot run crash at %s: %s" % (path, e))
    m = re.search(r"crash (\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise mklab.LabError("%s --version did not print a crash version" % path)
    return tuple(int(x) for x in m.groups())


def crash_binary():
    """Return the crash to use on lab dumps: ``$CRASH`` if set, else the cached 8.0.6 build.

    Raises mklab.LabError when that crash is older than 8.0.4 (it cannot list tasks on the
    lab's 6.x kernels) or cannot be built.
    """
    path = os.environ.get("CRASH")
    if not path:
        r = subprocess.run([os.path.join(mklab.HERE, "build-crash.sh")],
                           stdout=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise mklab.LabError("building crash 8.0.6 failed (see its output above)")
        path = r.stdout.strip().splitlines()[-1]
    v = crash_version(path)
    if v < MIN_CRASH:
        raise mklab.LabError("crash %s at %s is too old for the lab's kernels; need >= %s "
                             "(unset CRASH to build 8.0.6)" % (".".join(map(str, v)), path,
                                                              ".".join(map(str, MIN_CRASH))))
    return path


_crash = None  # the crash binary, found once per process


def get_dump(scenario, n=mklab.DEFAULT_N, kernel=mklab.DEFAULT_KERNEL):
    """Return the LabDump of ``scenario`` on ``kernel`` (a series such as ``6.1``/``6.12``
    or an ABI), building crash and the dump when missing.

    Raises mklab.LabError when a build step fails.
    """
    global _crash
    if _crash is None:
        _crash = crash_binary()
    directory = mklab.build([scenario], n, kernel)[scenario]
    return LabDump(scenario, directory, _crash)
