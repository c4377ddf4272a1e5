"""``argrecover -u`` (one recovery per stack shape, reused across tasks, batched crash
commands) against ``argrecover PID`` run task by task with caches of its own, on real
lab dumps: the answers must be the same, text for text."""

import io

import pytest

from crash_ext.code import sources as A
from crash_ext.code.templates import task_view
from crash_ext.session.snapshot import Snapshot
from crash_ext.verbs import argrecover

SMALL = ["seed", "abba-mutex", "cycle3", "convoy", "readers", "semaphore"]


class _Fresh:
    """The same crash session under another identity: the recovery caches (shared per
    port) start empty, so ``argrecover PID`` through it recovers from scratch."""

    def __init__(self, port):
        self._port = port

    def __getattr__(self, name):
        return getattr(self._port, name)


def _blocks(text):
    """Return {pid: that task's lines} of argrecover's text output."""
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith("PID: "):
            cur = out.setdefault(int(line.split()[1]), [])
        assert cur is not None, line
        cur.append(line)
    return out


def _per_task(crash, pid):
    one = io.StringIO()
    assert argrecover.main(["--no-decode", str(pid)], _Fresh(crash), out=one) == 0
    return one.getvalue().splitlines()


def _un_pids(crash):
    """The pids crash's own ``ps`` lists in state UN."""
    return {t.pid for t in Snapshot(_Fresh(crash)).tasks() if t.state == "UN"}


@pytest.mark.parametrize("scenario", SMALL)
def test_u_matches_each_task_recovered_alone(lab, scenario):
    dump, crash = lab(scenario)
    out = io.StringIO()
    assert argrecover.main(["-u"], crash, out=out) == 0
    blocks = _blocks(out.getvalue())
    un = _un_pids(crash)
    assert un and set(blocks) == un
    assert {t["pid"] for t in dump.truth["tasks"]} & un
    for pid in sorted(un):
        assert blocks[pid] == _per_task(crash, pid), pid


def test_u_on_scale_reuses_recoveries_and_matches_tasks_alone(lab):
    """On the scale dump ``make lab`` builds (N=2000 blocked tasks, a few distinct
    stacks) -u answers most tasks from another task's recovery; a sample of every
    shape's tasks, recovered alone, gives the same text."""
    dump, crash = lab("scale")
    port = _Fresh(crash)
    out = io.StringIO()
    assert argrecover.main(["-u"], port, out=out) == 0
    blocks = _blocks(out.getvalue())
    un = _un_pids(crash)
    assert len(un) >= dump.meta["n"] == 2000 and set(blocks) == un
    src = A.sources_for(port)
    made = sum(len(v) for v in src.templates.values())
    assert 0 < made <= len(un) // 10
    by_shape = {}
    for bt in Snapshot(port).backtraces("UN").values():
        by_shape.setdefault(task_view(bt)[0], []).append(bt.pid)
    sample = set()
    for pids in by_shape.values():
        pids = sorted(pids)
        sample.update((pids[0], pids[len(pids) // 2], pids[-1]))
    for pid in sorted(sample):
        assert blocks[pid] == _per_task(crash, pid), pid
