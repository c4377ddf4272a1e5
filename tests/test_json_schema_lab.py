"""Every verb's ``--json`` on every small and waits lab dump (6.1 and 6.12), and on the
scale dump (6.1), validates against docs/json-schema.json, and says which dump it
describes.

The documents are made by the verbs on real vmcores; the facts checked besides the
schema (kernel release, the locks' addresses and owners, the pids of the cycle) come
from the lab module's truth.json and the dump's files, not from our own output.
``jsonschema`` is a test-only requirement (requirements-dev.txt): crash_ext never
imports it.
"""

import io
import json
import os

import jsonschema
import pytest

from crash_ext.verbs import registry
from tests.lab import labdumps
from tests.truthcheck import check_lock_doc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "docs", "json-schema.json")) as _f:
    SCHEMA = json.load(_f)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

KERNELS = [k for k in ("6.1", "6.12") if k in labdumps.selected_kernels()]
MATRIX = (labdumps.matrix(kernels=KERNELS)
          + labdumps.matrix(labdumps.WAITS, kernels=KERNELS)
          + [("scale", t) for t in labdumps.targets(KERNELS) if t.startswith("6.1@")]
          ) if KERNELS else []
#: on the big dumps (scale: thousands of tasks) the per-lock and per-task verbs run on
#: the first few of the truth's locks and tasks; the whole-dump verbs run as everywhere
PER_ITEM = {"scale": 4}


def _doc(crash, argv):
    buf = io.StringIO()
    rc = registry.load(argv[0]).main(argv[1:], crash, out=buf)
    assert rc in (0, 1), (argv, buf.getvalue()[:300])
    return json.loads(buf.getvalue())


def _valid(doc, argv):
    errs = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errs, (argv, [(list(e.absolute_path), e.message[:200]) for e in errs[:5]])


def _argvs(truth, cap=None):
    out = [["deadlock", "--json"], ["deadlock", "--json", "--include-in"],
           ["argrecover", "-u", "--json"]]
    for lk in truth["locks"][:cap]:
        out.append(["whoholds", "--json", lk["address"]])
    pids = [t["pid"] for t in truth["tasks"]] + [w["pid"] for w in truth.get("waits", [])]
    for pid in pids[:cap]:
        out.append(["whoholds", "-p", str(pid), "--json"])
        out.append(["whoholds", "--held", str(pid), "--json"])
    if truth["tasks"]:
        out.append(["argrecover", str(truth["tasks"][0]["pid"]), "--json"])
    return out


@pytest.mark.parametrize("scenario,target", MATRIX)
def test_every_verb_json_validates_and_names_its_dump(lab, scenario, target):
    dump, crash = lab(scenario, target=target)
    truth = dump.truth
    version = ".".join(str(x) for x in labdumps.crash_version(dump.crash))
    for argv in _argvs(truth, PER_ITEM.get(scenario)):
        doc = _doc(crash, argv)
        _valid(doc, argv)
        assert doc["verb"] == argv[0]
        assert doc["dump"]["kernel_release"] == truth["kernel_release"], argv
        assert doc["dump"]["crash_version"] == version, argv
        assert os.path.samefile(doc["dump"]["vmcore"], dump.vmcore), argv
        assert os.path.samefile(doc["dump"]["vmlinux"], dump.vmlinux), argv
        if argv[0] == "whoholds" and "--held" in argv:
            assert doc["blocked"]["task"]["pid"] == int(argv[2])
        elif argv[0] == "whoholds" and "-p" not in argv:
            lk = [l for l in truth["locks"] if l["address"] == argv[-1]][0]
            check_lock_doc(doc["lock"], lk)
        if argv[0] == "whoholds" and "-p" in argv:
            assert doc["chain"][0]["blocked"]["task"]["pid"] == int(argv[2])
            _check_chain(doc, int(argv[2]), truth)
        if argv[0] == "deadlock":
            for c in doc["cycles"]:
                assert c["pids"] == [s["task"]["pid"] for s in c["steps"]]
                assert c["abba"] == (len(c["steps"]) == 2 and all(
                    s["lock"]["wait"] is None for s in c["steps"]))


def _truth_next(truth):
    """{pid: set of pids}: whom each waiting task of the truth waits for (the owners of
    the lock it waits on, or the task that must act on its wait)."""
    nxt = {}
    for lk in truth["locks"]:
        for w in lk["waiters"]:
            nxt[w["pid"]] = {o["pid"] for o in lk["owners"]}
    for w in truth.get("waits", []):
        nxt[w["pid"]] = {w.get("must_act_pid", w.get("holder_pid"))}
    return nxt


def _check_chain(doc, start, truth):
    """whoholds -p START --json: a cycle it reports is one of the truth's (each task
    waits for the next, the last for the first) and is reached from START; where the
    truth leaves START one way to go at each step and that way closes a cycle, the
    outcome is that cycle."""
    nxt = _truth_next(truth)
    walk, p = [], start
    while p in nxt and len(nxt[p]) == 1 and p not in walk:
        walk.append(p)
        (p,) = nxt[p]
    out = doc["outcome"]
    if p in walk:                                   # the one way closes a cycle
        assert out["kind"] == "cycle", (start, out)
        assert set(out["pids"]) == set(walk[walk.index(p):]), (start, out, walk)
    if out["kind"] == "cycle":
        pids = out["pids"]
        for a, b in zip(pids, pids[1:] + pids[:1]):
            assert b in nxt.get(a, ()), (start, pids, a, b)
        hops = [h["blocked"]["task"]["pid"] for h in doc["chain"]]
        assert pids[0] in hops, (start, pids, hops)


# ------------------------------------------------------------ the schema can fail

def _seed_like():
    task = {"pid": 98, "task": "0xffff8d58c27e3080", "comm": "ruby", "state": "UN",
            "cpu": 0, "last_ran_ns": 258000000}
    return {"schema_version": 1, "verb": "whoholds",
            "dump": {"kernel_release": "6.1.0-57-amd64", "crash_version": "8.0.6",
                     "vmcore": "/x/vmcore", "vmlinux": "/x/vmlinux"},
            "mode": "chain",
            "outcome": {"kind": "cycle", "pid": 98, "pids": [98, 99], "text": "..."},
            "chain": [{"blocked": {"task": task, "kind": "lock",
                                   "lock_address": "0xffff8d58c2766c10",
                                   "lock_type": "rw_semaphore", "mode": "writer",
                                   "function": "rwsem_down_write_slowpath", "frame": 2,
                                   "evidence": []},
                       "caller": "vfs_unlink", "lock": None, "followed_candidate": False}]}


@pytest.mark.parametrize("break_it", [
    lambda d: d["chain"][0]["blocked"].__setitem__("lock_address", "ffff8d58c2766c10"),
    lambda d: d["chain"][0]["blocked"]["task"].__setitem__("last_ran_ns", "[0 00:00:00.258]"),
    lambda d: d["chain"][0]["blocked"]["task"].pop("cpu"),
    lambda d: d.pop("dump"),
    lambda d: d.__setitem__("schema_version", 2),
    lambda d: d["outcome"].pop("pids"),
    lambda d: d["outcome"].__setitem__("kind", "CYCLE: 98(ruby) -> 99(ruby)"),
], ids=["bare-hex", "string-time", "no-cpu", "no-dump", "version", "cycle-no-pids",
        "prose-outcome"])
def test_schema_refuses_what_a_runbook_could_not_rely_on(break_it):
    d = _seed_like()
    assert not list(VALIDATOR.iter_errors(d))
    break_it(d)
    assert list(VALIDATOR.iter_errors(d))
