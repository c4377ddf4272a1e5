"""The lab itself, checked through the crash adapter on its real dumps.

Expected values come from the truth the lab module wrote inside the guest; crash reads
the dump independently.  These tests prove the ground every verb test stands on.
"""

import pytest

from crash_ext.models.ps import parse_ps
from crash_ext.core.errors import CrashExtError
from tests.lab import labdumps

# (scenario, KERNEL@CRASH): the small scenarios on every kernel of the matrix (each with the
# newest crash that reads it, 6.1 and 6.12 with every crash), `scale` on 6.1
ALL = labdumps.matrix() + [("scale", t) for t in labdumps.targets()
                           if t.startswith("6.1@")]
SEEDS = [t for s, t in ALL if s == "seed"]


def _ps_by_pid(crash):
    return {t.pid: t for t in parse_ps(crash.command("ps"))}


@pytest.mark.parametrize("scenario,target", ALL)
def test_truth_is_verified_and_shaped(lab, scenario, target):
    dump, crash = lab(scenario, target=target)
    t = dump.truth
    series = target.split("@")[0]
    assert t["verified"] is True and t["scenario"] == scenario
    assert t["kernel_release"] == dump.meta["kernel_abi"]
    assert dump.meta["kernel_abi"].startswith(series.split("-")[0] + ".")
    assert ("-rt-" in dump.meta["kernel_abi"]) == series.endswith("-rt")
    want = tuple(int(x) for x in target.split("@")[1].split("."))
    assert labdumps.crash_version(dump.crash) == want
    shape = {  # scenario -> (locks, waiters on each lock) as the issue defines them
        "seed": {"i:/tmp/js/fire.js": 2, "r:i_iolock": 1},
        "abba-mutex": {"m:abba_lock_a": 1, "m:abba_lock_b": 1},
        "cycle3": {"m:cyc_mutex": 1, "r:cyc_rwsem": 1, "s:cyc_sem": 1},
        "convoy": {"m:convoy_lock": 16},
        "readers": {"r:rd_sem": 2},
        "semaphore": {"s:sem_one": 4},
        "rt-spin": {"p:rt_spin": 2, "m:rt_mutex": 1},
        "global-sems": {"g:lab_global_sem_a": 1, "g:lab_global_sem_b": 1},
        "wrapper": {"x:ino_a": 2, "x:ino_b": 1},
        "rwsem-readers": {"mm:mm_a": 2},
        "rw-abba": {"mm:mm_b": 1, "m:rw_mutex": 1},
    }
    if scenario == "scale":
        assert len(t["tasks"]) == dump.meta["n"] == 2000
        assert len(t["locks"]) == 22
    else:
        assert {l["name"]: len(l["waiters"]) for l in t["locks"]} == shape[scenario]


TASK_RTLOCK_WAIT = 0x1000    # include/linux/sched.h (>= 5.15): a PREEMPT_RT spinlock_t sleeper


@pytest.mark.parametrize("scenario,target", ALL)
def test_owners_and_waiters_are_blocked_tasks_with_truth_names(lab, scenario, target):
    dump, crash = lab(scenario, target=target)
    ps = _ps_by_pid(crash)
    on_spin = {w["pid"] for l in dump.truth["locks"] if l["type"] == "spinlock"
               for w in l["waiters"]}
    for lock in dump.truth["locks"]:
        for who in lock["owners"] + lock["waiters"]:
            task = ps.get(who["pid"])
            assert task is not None, "pid %d of %s not in crash's ps" % (who["pid"], lock["name"])
            assert task.comm == who["comm"]
            if who["pid"] in on_spin:
                # crash names no state for TASK_RTLOCK_WAIT; the task's own word says it
                state = crash.read_u32(task.task + crash.member_offset("task_struct",
                                                                       "__state"))
                assert state == TASK_RTLOCK_WAIT and task.state == "??", (who, task.state)
                continue
            assert task.state == "UN", "%s pid %d is %s" % (lock["name"], task.pid, task.state)


@pytest.mark.parametrize("scenario,target", ALL)
def test_lock_addresses_read_as_their_types(lab, scenario, target):
    """Each lock's own fields, read by crash, agree with the truth's owner and waiters."""
    dump, crash = lab(scenario, target=target)
    ps = _ps_by_pid(crash)
    for lock in dump.truth["locks"]:
        addr = int(lock["address"], 16)
        typ = lock["type"]
        base = _rt_base_member(crash, typ)
        if base is not None:
            _check_rt_lock(crash, ps, lock, addr, typ, base)
            continue
        if _has_member(crash, typ, "wait_list"):
            head = addr + crash.member_offset(typ, "wait_list")
            first = crash.read_u64(head)
            assert first != head, "%s: wait list empty but truth has waiters" % lock["name"]
        else:   # 7.x: first_waiter, the first record of a ring without head
            first = crash.read_u64(addr + crash.member_offset(typ, "first_waiter"))
            assert first, "%s: no first_waiter but truth has waiters" % lock["name"]
            head = first
        # Walk the wait list: every mutex/rwsem/semaphore waiter starts {list, task}.
        walked, node = [crash.read_u64(first + 16)], crash.read_u64(first)
        while node != head and len(walked) < 5000:
            walked.append(crash.read_u64(node + 16))
            node = crash.read_u64(node)
        assert walked == [ps[w["pid"]].task for w in lock["waiters"]], lock["name"]
        if typ == "semaphore":
            assert crash.read_u32(addr + crash.member_offset("semaphore", "count")) == 0
            continue
        assert crash.member_type(typ, "owner") == "atomic_long_t"
        owner = crash.read_u64(addr + crash.member_offset(typ, "owner"))
        if typ == "rw_semaphore" and len(lock["owners"]) > 1:
            count = crash.read_u64(addr + crash.member_offset(typ, "count"))
            assert owner & 1, "reader-owned bit"
            assert count >> 8 == len(lock["owners"])
        else:
            assert owner & ~0x7 == ps[lock["owners"][0]["pid"]].task, lock["name"]


def _has_member(crash, typ, member):
    try:
        return crash.member_offset(typ, member) is not None
    except CrashExtError:
        return False


def _rt_base_member(crash, typ):
    """The member path of the struct rt_mutex_base inside ``typ`` on a PREEMPT_RT kernel
    (crash's own type answers), or None."""
    ctype = "spinlock" if typ == "spinlock" else typ
    for m in ("rtmutex", "rwbase.rtmutex", "lock"):
        try:
            t = crash.member_type(ctype, m)
        except CrashExtError:       # no such member
            continue
        if t and " ".join(t.split()) == "struct rt_mutex_base":
            return m
    return None


def _check_rt_lock(crash, ps, lock, addr, typ, base):
    """An rt_mutex-based lock read by crash: owner field and the waiter rbtree in order."""
    ctype = "spinlock" if typ == "spinlock" else typ
    b = addr + crash.member_offset(ctype, base)
    owner = crash.read_u64(b + crash.member_offset("rt_mutex_base", "owner"))
    root = crash.read_u64(b + crash.member_offset("rt_mutex_base", "waiters"))
    writer = lock.get("writer_waits_for_readers")
    queued = [w for w in lock["waiters"] if w["pid"] != writer]
    assert owner & 1 == (1 if queued else 0), "HAS_WAITERS bit"
    if writer:
        # the writer owns the rtmutex and waits, on no list, for the readers to leave:
        # READER_BIAS is out of the count, which is the readers alone
        assert owner & ~1 == ps[writer].task and lock["waiters"][0]["pid"] == writer
        readers = crash.read_u32(addr + crash.member_offset("rw_semaphore", "rwbase.readers"))
        assert readers == len(lock["owners"]) and all(o["mode"] == "r" for o in lock["owners"])
    elif typ == "rw_semaphore" and len(lock["owners"]) > 1:
        assert owner == 0           # readers leave the rtmutex unowned
    else:
        assert owner & ~1 == ps[lock["owners"][0]["pid"]].task, lock["name"]
    # in-order rbtree walk (rb_left first): rt_mutex_waiter.tree.entry -> .task
    entry = crash.member_offset("rt_mutex_waiter", "tree.entry")
    task_off = crash.member_offset("rt_mutex_waiter", "task")
    left, right = (crash.member_offset("rb_node", m) for m in ("rb_left", "rb_right"))
    walked, stack, node = [], [], root
    while (stack or node) and len(walked) < 100:
        if node:
            stack.append(node)
            node = crash.read_u64(node + left)
            continue
        node = stack.pop()
        walked.append(crash.read_u64(node - entry + task_off))
        node = crash.read_u64(node + right)
    assert walked == [ps[w["pid"]].task for w in queued], lock["name"]


@pytest.mark.parametrize("target", SEEDS)
def test_seed_rm_waits_in_vfs_unlink(lab, target):
    dump, crash = lab("seed", target=target)
    fire = next(l for l in dump.truth["locks"] if l["name"] == "i:/tmp/js/fire.js")
    rm = fire["waiters"][-1]
    assert rm["comm"] == "rm"
    bt = crash.command("bt %d" % rm["pid"])
    assert " vfs_unlink at " in bt and " do_unlinkat at " in bt
    # the i_rwsem the truth names is the one inside fire.js's inode
    inode = int(fire["container"]["address"], 16)
    assert int(fire["address"], 16) == inode + crash.member_offset("inode", "i_rwsem")
    name = crash.command("struct dentry.d_name.name %s" % fire["container"]["dentry"])
    assert '"fire.js"' in name
