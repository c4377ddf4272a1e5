"""The per-build code store changes no answer: ``deadlock`` (text and --json),
``whoholds -p`` and ``argrecover -u`` print the same bytes with the stores off
(``CRASH_EXT_TYPE_CACHE=0``), while a store fills, and from a warm store, on 6.1 lab dumps
(the seed, an ABBA mutex deadlock, a convoy).  The store is shared across the dumps, so
each later dump reads facts an earlier one (another boot: KASLR moved the kernel) wrote.
The lab module's code is kept too, per load (one dump), and read back by the warm runs.
Each run is its own ``crash-ext`` process and crash session.  No timing is checked."""

import glob
import json
import os
import subprocess
import sys

import pytest

from crash_ext.core.buildid import build_id
from tests.lab.labdumps import get_dump

CLI = [sys.executable, "-m", "crash_ext.verbs.cli"]
SCENARIOS = ("seed", "abba-mutex", "convoy")


def _run(dump, args, env):
    full = dict(os.environ)
    full.update(env)
    r = subprocess.run(CLI + list(args) + ["--vmlinux", dump.vmlinux, "--vmcore", dump.vmcore,
                                           "--mod", "crashext_lab=" + dump.module_ko, "--crash", dump.crash],
                       capture_output=True, text=True, timeout=900, env=full)
    return r.returncode, r.stdout, r.stderr


def _verbs(dump, env):
    """The answers compared: {verb line: (rc, stdout, stderr)}."""
    out = {}
    rc, text, err = _run(dump, ["deadlock", "--json"], env)
    out["deadlock --json"] = (rc, text, err)
    pids = sorted(_pids(json.loads(text)))[:2]
    out["deadlock"] = _run(dump, ["deadlock"], env)
    out["argrecover -u"] = _run(dump, ["argrecover", "-u"], env)
    for pid in pids:
        out["whoholds -p %d" % pid] = _run(dump, ["whoholds", "-p", str(pid)], env)
    return out


def _pids(doc):
    """Every task pid the document names."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "pid" and isinstance(v, int):
                yield v
            else:
                yield from _pids(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _pids(v)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(tmp_path_factory.mktemp("stores"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_answers_are_the_same_with_the_code_store_off_filling_and_warm(scenario, store):
    dump = get_dump(scenario)
    off = _verbs(dump, {"CRASH_EXT_TYPE_CACHE": "0"})
    filling = _verbs(dump, {"CRASH_EXT_TYPES": store})
    path = os.path.join(store, "code", build_id(dump.vmlinux) + ".json")
    assert os.path.exists(path), "the code store was not written"
    # the lab module's code, kept for this dump's load of it (crash loaded its .ko)
    mods = glob.glob(os.path.join(store, "code", "mod-crashext_lab-*.json"))
    kept = set()
    for m in mods:
        with open(m) as f:
            kept.update(e[1] for e in json.load(f)["dis"].values())
    assert any(n.startswith("lab_") for n in kept), (mods, sorted(kept))
    warm = _verbs(dump, {"CRASH_EXT_TYPES": store})
    assert any(k.startswith("whoholds") for k in off), "no blocked task to follow"
    for verb in off:
        assert filling[verb] == off[verb], "%s: filling the store changed it" % verb
        assert warm[verb] == off[verb], "%s: the warm store changed it" % verb
