"""The lab's dumps as tests and benchmarks see them: located, built when missing.

    from tests.lab.labdumps import get_dump
    d = get_dump("seed")          # d.vmlinux, d.vmcore, d.truth, d.crash, d.module_ko
    d = get_dump("convoy", made="snapshot")     # QEMU's full-memory ELF dump

How each dump is made is chosen here and in mklab, not by the tests: ``mklab.made_by``
(kdump for the small scenarios and waits on KDUMP_KERNELS: the guest panics and its
capture kernel writes a filtered, compressed dump with makedumpfile; QEMU's snapshot
otherwise), and SNAPSHOT_ONLY below for the uses that need full memory.

Snapshot dumps are kept zstd-compressed in the cache; ``get_dump`` decompresses a
working copy (under ``$CRASH_EXT_CACHE/run``, as ``crash-ext`` does:
``crash_ext.ports.dumpfiles``) the first time it is asked for one.  kdump dumps are read
as they are (kdump-compressed).
"""

import json
import os
import subprocess

from crash_ext.ports.crashproc import crash_binary_version
from crash_ext.ports.dumpfiles import readable_dump
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
        self.made = self.meta.get("made", "snapshot")
        self.vmcore = readable_dump(os.path.join(directory, self.meta.get("vmcore")
                                                 or self.meta["vmcore_zst"]))

    def __repr__(self):
        return "LabDump(%s, %s)" % (self.scenario, self.vmcore)


def crash_version(path):
    """Return crash's version tuple, e.g. (8, 0, 6); raises mklab.LabError when unreadable."""
    v = crash_binary_version(path)
    nums = tuple(int(x) for x in v.split(".")[:3] if x.isdigit()) if v else ()
    if len(nums) < 3:
        raise mklab.LabError("%s --version did not print a crash version" % path)
    return nums


#: crash versions the lab builds from Debian's sources (build-crash.sh VERSION), oldest first
CRASH_VERSIONS = ("8.0.6", "9.0.2")
#: kernel series the lab stages (fetch-kernel.sh SERIES), oldest first
KERNELS = ("5.10", "6.1", "6.1-rt", "6.12", "6.12-rt", "7")
#: kernels whose dumps run with every crash version, not only the newest that reads them
EVERY_CRASH = ("6.1", "6.12")
#: (kernel, crash version) pairs tried and found not to work, with crash's own words
UNREADABLE = {
    ("7", "8.0.6"): "crash: invalid structure member offset: kmem_cache_s_num "
                    "FILE: memory.c LINE: 9950 FUNCTION: kmem_cache_init() (at start-up, "
                    "on sid's 7.2.13+deb14)",
    ("7", "9.0.2"): "crash: invalid structure member offset: module_num_gpl_syms "
                    "FILE: kernel.c LINE: 3834 FUNCTION: module_init() (at start-up, after "
                    "WARNING: SLUB: cannot determine how compound pages are linked; with "
                    "--no_modules it starts, lists the tasks, but loses module frames)",
}
SMALL = tuple(mklab.SMALL)
#: uses of the lab that need QEMU's full-memory snapshot (an ELF core) even where the
#: scenario's dump is kdump-made, and why
SNAPSHOT_ONLY = {
    "damage": "tests/lab/damage.py patches the dump's bytes through the ELF program "
              "headers (test_damaged_lab, make fuzz)",
    "drgn": "make compare: drgn 0.3 reads QEMU's ELF dump; the oracle is kept on the "
            "dumps its figures were measured on",
    "zstd": "test_cli's test_compressed_dump_is_read_once: a dump compressed at rest "
            "with zstd, which crash-ext decompresses once (a kdump file is read as it is)",
    "scale": "2,000 blocked tasks in a 512 MB guest, the benchmarks' dump: made by "
             "snapshot (mklab.made_by)",
}
#: scenarios whose cycle runs through a wait that is not a lock (staged on demand)
WAITS = ("flush-work", "kthread-stop", "flush-wq")


def selected_crashes():
    """Return the crash versions the tests may use: ``$CRASH_EXT_CRASHES`` (comma-separated
    CRASH_VERSIONS), default all.  Raises mklab.LabError for an unknown one."""
    env = os.environ.get("CRASH_EXT_CRASHES", "").strip()
    if not env:
        return list(CRASH_VERSIONS)
    vs = [v.strip() for v in env.split(",") if v.strip()]
    bad = [v for v in vs if v not in CRASH_VERSIONS]
    if bad:
        raise mklab.LabError("CRASH_EXT_CRASHES names unknown crash versions %s (known: %s)"
                             % (", ".join(bad), ", ".join(CRASH_VERSIONS)))
    return [v for v in CRASH_VERSIONS if v in vs]


def crash_for(kernel):
    """Return the newest crash version of :func:`selected_crashes` that reads ``kernel``'s
    dumps; raises mklab.LabError when none does."""
    for v in reversed(selected_crashes()):
        if (kernel, v) not in UNREADABLE:
            return v
    raise mklab.LabError("no crash version reads kernel %s: %s" % (
        kernel, "; ".join("%s: %s" % (v, UNREADABLE[(kernel, v)]) for v in CRASH_VERSIONS)))


def selected_kernels():
    """Return the kernel series the tests run on: ``$CRASH_EXT_KERNELS`` (comma-separated,
    ``all`` for KERNELS), default all of KERNELS.  Raises mklab.LabError for an unknown one."""
    env = os.environ.get("CRASH_EXT_KERNELS", "all").strip()
    if env in ("", "all"):
        return list(KERNELS)
    ks = [k.strip() for k in env.split(",") if k.strip()]
    bad = [k for k in ks if k not in KERNELS]
    if bad:
        raise mklab.LabError("CRASH_EXT_KERNELS names unknown kernels %s (known: %s)"
                             % (", ".join(bad), ", ".join(KERNELS)))
    return ks


def targets(kernels=None):
    """Return the test targets ``KERNEL@CRASH`` (e.g. ``6.1@8.0.6``) for ``kernels``
    (default :func:`selected_kernels`): each kernel with the newest crash that reads it,
    and EVERY_CRASH kernels with every crash version that reads them; a kernel no
    selected crash reads (UNREADABLE) has none."""
    out = []
    for k in kernels or selected_kernels():
        if all((k, v) in UNREADABLE for v in selected_crashes()):
            continue        # staged and verified by the lab, but no crash here reads it
        vs = selected_crashes() if k in EVERY_CRASH else (crash_for(k),)
        out.extend("%s@%s" % (k, v) for v in vs if (k, v) not in UNREADABLE)
    return out


def scenarios_of(kernel, wanted=SMALL):
    """Return the scenarios of ``wanted`` that ``kernel`` stages (mklab.why_not_staged),
    plus its PREEMPT_RT-only ones (mklab.RT_ONLY, and mklab.RT_SMALL on PREEMPT_RT) when
    ``wanted`` is the small set."""
    extra = []
    if tuple(wanted) == SMALL:
        extra = list(mklab.RT_ONLY) + (list(mklab.RT_SMALL) if mklab.is_rt(kernel) else [])
    return [s for s in list(wanted) + extra if not mklab.why_not_staged(kernel, s)]


def matrix(wanted=SMALL, kernels=None):
    """Return [(scenario, target)] for every target of :func:`targets` and each scenario of
    ``wanted`` its kernel stages (pytest parametrize values)."""
    return [(s, t) for t in targets(kernels) for s in scenarios_of(t.split("@")[0], wanted)]


def panic_kinds(kernel):
    """Return {panic kind: scenario}: the first small scenario ``kernel`` stages by
    kdump for each panic kind of tests/lab/kdump.py PLAN (empty when none is
    kdump-made there)."""
    out = {}
    for s in scenarios_of(kernel):
        if mklab.made_by(kernel, s) == "kdump":
            out.setdefault(mklab.kdump.plan(s)[0], s)
    return out


def kdump_kernels():
    """Return the selected kernels some of whose scenarios are kdump-made."""
    return [k for k in selected_kernels() if k in mklab.KDUMP_KERNELS]


def crash_binary(version=None):
    """Return the crash to use on lab dumps: ``$CRASH`` if set (only when ``version`` is
    None), else the cached build of ``version`` (default the oldest, 8.0.6), built when
    missing.

    Raises mklab.LabError when that crash is older than 8.0.4 (it cannot list tasks on the
    lab's 6.x kernels) or cannot be built.
    """
    path = os.environ.get("CRASH") if version is None else None
    if not path:
        version = version or CRASH_VERSIONS[0]
        r = subprocess.run([os.path.join(mklab.HERE, "build-crash.sh"), version],
                           stdout=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise mklab.LabError("building crash %s failed (see its output above)" % version)
        path = r.stdout.strip().splitlines()[-1]
    v = crash_version(path)
    if v < MIN_CRASH:
        raise mklab.LabError("crash %s at %s is too old for the lab's kernels; need >= %s "
                             "(unset CRASH to build 8.0.6)" % (".".join(map(str, v)), path,
                                                              ".".join(map(str, MIN_CRASH))))
    return path


_crash = {}  # crash version (None: $CRASH or the default) -> binary, found once per process


def get_dump(scenario, n=mklab.DEFAULT_N, kernel=mklab.DEFAULT_KERNEL, crash=None,
             made=None):
    """Return the LabDump of ``scenario`` on ``kernel`` (a series such as ``6.1``/``6.12``
    or an ABI), building crash and the dump when missing.  ``crash``: a crash version of
    CRASH_VERSIONS to read it with (default ``$CRASH`` or 8.0.6).  ``made``: ``kdump``
    or ``snapshot`` (default ``mklab.made_by``; ``snapshot`` for SNAPSHOT_ONLY's uses).

    Raises mklab.LabError when a build step fails.
    """
    if crash not in _crash:
        _crash[crash] = crash_binary(crash)
    try:
        directory = mklab.build([scenario], n, kernel, made)[scenario]
    except mklab.kdump.KdumpError as e:
        raise mklab.LabError(str(e))
    return LabDump(scenario, directory, _crash[crash])


def snapshot_of(dump):
    """Return ``dump`` itself when it is QEMU's snapshot, else the snapshot LabDump of
    the same scenario, kernel and crash (for SNAPSHOT_ONLY's uses)."""
    if dump.made == "snapshot":
        return dump
    inv = {v: k for k, v in _crash.items()}
    return get_dump(dump.scenario, dump.meta.get("n") or mklab.DEFAULT_N,
                    dump.meta["kernel_abi"], inv.get(dump.crash), made="snapshot")


def get_target_dump(scenario, target, n=mklab.DEFAULT_N, made=None):
    """Return the LabDump of ``scenario`` for a :func:`targets` string ``KERNEL@CRASH``."""
    kernel, _, version = target.partition("@")
    return get_dump(scenario, n, kernel, version or None, made)
