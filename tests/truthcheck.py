"""Checks of verbs' JSON documents against the lab module's truth, shared by the tests
that make those documents in different ways (crash-ext driving crash; the verbs inside
crash through pykdump)."""


def check_lock_doc(got, lk):
    """A ``lock_report`` of ``whoholds LOCK --json`` (docs/json-schema.json) against the
    truth's lock ``lk``: its address and type; its owner when the lock records one, else
    (semaphore, reader-owned rw_semaphore) its holders ranked first among the candidates;
    its waiters, in the truth's order."""
    assert got["address"] == lk["address"] and got["type"] == lk["type"], (got, lk["name"])
    owners = sorted(o["pid"] for o in lk["owners"])
    if got["owner"] is not None:
        assert [got["owner"]["pid"]] == owners, lk["name"]
    else:
        assert got["type"] in ("semaphore", "rw_semaphore"), lk["name"]
        assert sorted(c["task"]["pid"] for c in got["candidates"][:len(owners)]) == owners, (
            lk["name"], [(c["task"]["pid"], c["score"]) for c in got["candidates"]])
    assert [w["task"]["pid"] for w in got["waiters"]] == [w["pid"] for w in lk["waiters"]], (
        lk["name"], got["waiters"])


#: how the holds analysis's evidence from a candidate's code begins
CODE = "its code holds the lock: "


def top_candidates_from_code(rep, lk):
    """Check that the truth's holders of ``lk`` are ``rep``'s first candidates (as many as
    the truth has), each with evidence from its code naming the lock's address first.
    Returns those candidates."""
    owners = sorted(o["pid"] for o in lk["owners"])
    top = rep.candidates[:len(owners)]
    assert sorted(c.task.pid for c in top) == owners, (
        lk["name"], [(c.task.pid, c.score) for c in rep.candidates])
    for c in top:
        assert c.evidence[0].startswith(CODE) and lk["address"][2:] in c.evidence[0], (
            lk["name"], c.evidence)
    return top
