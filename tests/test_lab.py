"""The lab itself, checked through the crash adapter on its real dumps.

Expected values come from the truth the lab module wrote inside the guest; crash reads
the dump independently.  These tests prove the ground every verb test stands on.
"""

import pytest

from crash_ext.models.ps import parse_ps

SMALL = ["seed", "abba-mutex", "cycle3", "convoy", "readers", "semaphore"]
# (scenario, kernel series): every scenario on Debian 12's 6.1; the small ones on 6.12 too
ALL = [(s, "6.1") for s in SMALL + ["scale"]] + [(s, "6.12") for s in SMALL]


def _ps_by_pid(crash):
    return {t.pid: t for t in parse_ps(crash.command("ps"))}


@pytest.mark.parametrize("scenario,kernel", ALL)
def test_truth_is_verified_and_shaped(lab, scenario, kernel):
    dump, _ = lab(scenario, kernel=kernel)
    t = dump.truth
    assert t["verified"] is True and t["scenario"] == scenario
    assert t["kernel_release"] == dump.meta["kernel_abi"]
    assert dump.meta["kernel_abi"].startswith(kernel + ".")
    shape = {  # scenario -> (locks, waiters on each lock) as the issue defines them
        "seed": {"i:/tmp/js/fire.js": 2, "r:i_iolock": 1},
        "abba-mutex": {"m:abba_lock_a": 1, "m:abba_lock_b": 1},
        "cycle3": {"m:cyc_mutex": 1, "r:cyc_rwsem": 1, "s:cyc_sem": 1},
        "convoy": {"m:convoy_lock": 16},
        "readers": {"r:rd_sem": 2},
        "semaphore": {"s:sem_one": 4},
    }
    if scenario == "scale":
        assert len(t["tasks"]) == dump.meta["n"] == 2000
        assert len(t["locks"]) == 22
    else:
        assert {l["name"]: len(l["waiters"]) for l in t["locks"]} == shape[scenario]


@pytest.mark.parametrize("scenario,kernel", ALL)
def test_owners_and_waiters_are_blocked_tasks_with_truth_names(lab, scenario, kernel):
    dump, crash = lab(scenario, kernel=kernel)
    ps = _ps_by_pid(crash)
    for lock in dump.truth["locks"]:
        for who in lock["owners"] + lock["waiters"]:
            task = ps.get(who["pid"])
            assert task is not None, "pid %d of %s not in crash's ps" % (who["pid"], lock["name"])
            assert task.comm == who["comm"]
            assert task.state == "UN", "%s pid %d is %s" % (lock["name"], task.pid, task.state)


@pytest.mark.parametrize("scenario,kernel", ALL)
def test_lock_addresses_read_as_their_types(lab, scenario, kernel):
    """Each lock's own fields, read by crash, agree with the truth's owner and waiters."""
    dump, crash = lab(scenario, kernel=kernel)
    ps = _ps_by_pid(crash)
    for lock in dump.truth["locks"]:
        addr = int(lock["address"], 16)
        typ = lock["type"]
        head = addr + crash.member_offset(typ, "wait_list")
        first = crash.read_u64(head)
        assert first != head, "%s: wait list empty but truth has waiters" % lock["name"]
        # Walk the wait list: every mutex/rwsem/semaphore waiter starts {list, task}.
        walked, node = [], first
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


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
def test_seed_rm_waits_in_vfs_unlink(lab, kernel):
    dump, crash = lab("seed", kernel=kernel)
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
