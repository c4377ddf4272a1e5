"""The holds analysis on recorded crash output (``dis FUNC`` on the lab's global-sems dump
of the pinned 6.1 kernel, tests/unit/data/lab61_holds.json, recorded by
tests/lab/record_fixtures.py; its ``source`` says which crash and dump).

Patterns: a lock taken and released around calls (held at the calls between, not after
the release); a trylock held only on its success branch; a wrapper summarised once
("takes arg0+0x50 as a semaphore") and applied at its caller, which keeps only the
object; the release wrapper's summary.  Expected offsets come from the module's C source
(tests/lab/module/crashext_lab.c: struct lab_xnode's x_iolock, struct lab_mm's
mmap_lock), checked against the struct layout crash printed (``struct -o``) in the data.
The locks' addresses are checked against the recording's truth: the module's (the
address of g:lab_global_sem_a) and crash's ``sym`` (lab_create_mutex, pcpu_drain_mutex).
Also lockdep's held_locks read through a fake port with a held_lock layout.
"""

import json

import pytest

from crash_ext.code import holdrecords as HR
from crash_ext.code import holds as H
from crash_ext.code import lockdep as LD
from crash_ext.code import mustheld as MH
from crash_ext.code.argrecords import parsed
from crash_ext.models import lockcalls as LC
from tests.unit.data import fixture

with open(fixture("lab61_holds.json")) as _f:
    DATA = json.load(_f)
DIS = DATA["dis"]
TRUTH = DATA["truth"]


def _insns(name):
    return parsed(DIS[name])


def _addr_of(name):
    return _insns(name)[0].addr


def _summaries(depth=0):
    """summary_of over the recorded functions (others: not summarised)."""
    cache = {}
    by_addr = {_addr_of(n): n for n in DIS}

    def of(ins):
        t = ins.branch_target()
        if t not in by_addr:
            return None
        if t not in cache:
            cache[t] = MH.summarise(by_addr[t], _insns(by_addr[t]), None)
        return cache[t]
    return of


def _call_index(name, callee, nth=0):
    """Index of the nth call of ``callee`` in ``name``'s recorded disassembly."""
    hits = [i for i, ins in enumerate(_insns(name)) if ins.mnemonic == "call" and
            (ins.branch_target_sym() or "").split("+")[0] == callee]
    return hits[nth]


def _member_offset(struct, member):
    """The offset crash printed for ``struct.member`` (``struct -o`` in the data)."""
    import re
    text = DATA["struct"][struct]
    m = re.search(r"\[(0x[0-9a-f]+|\d+)\]\s+[^;]*\b%s;" % member, text)
    assert m, (struct, member)
    return int(m.group(1), 0)


# ---------------------------------------------------------------- primitives table

def test_primitive_table():
    assert LC.primitive("down").action == "acquire"
    assert LC.primitive("down_trylock").success == "zero"
    assert LC.primitive("mutex_trylock").success == "nonzero"
    assert LC.primitive("down_read").mode == "reader"
    assert LC.primitive("up_write").action == "release"
    assert LC.primitive("mutex_lock_killable_nested").action == "try"
    assert LC.primitive("vfs_write") is None
    assert LC.primitive("mutex_lock+0").name == "mutex_lock"


# ---------------------------------------------------------------- lock/unlock pairing

def test_global_semaphore_held_between_down_and_up():
    name = "lab_gsem_a_section"
    insns = _insns(name)
    down = _call_index(name, "down")
    want = insns[down - 2].operands[0].imm & HR.MASK     # mov $lab_global_sem_a,%rdi
    assert want == int(TRUTH["lab_global_sem_a"], 16)    # the module's truth
    for callee in ("lab_book_owned", "lab_run", "up"):
        locks, problem = MH.function_holds(insns, _call_index(name, callee))
        assert problem is None
        assert [(s.acq.kind, s.loc) for s in locks] == [("semaphore", ("const", want))], callee
        assert locks[0].acq.call == "down" and locks[0].acq.where == insns[down].where
    # before down it is not held; after up (the stack-protector failure call) neither
    for callee in ("lab_lock_get", "lab_book_wait", "down", "__stack_chk_fail"):
        locks, problem = MH.function_holds(insns, _call_index(name, callee))
        assert problem is None and locks == [], callee


def test_mutex_held_across_the_calls_it_guards_and_released_at_the_end():
    """lab_lock_get: mutex_lock(&lab_create_mutex), lookup or kzalloc and init, then
    mutex_unlock at the join every path goes through before returning."""
    name = "lab_lock_get"
    insns = _insns(name)
    want = [i for i in insns[:_call_index(name, "mutex_lock")] if i.mnemonic == "mov"
            and i.operands[-1].reg == "rdi"][-1].operands[0].imm & HR.MASK
    assert want == int(TRUTH["lab_create_mutex"], 16)    # crash's sym lab_create_mutex
    guarded = [i for i, ins in enumerate(insns) if ins.mnemonic == "call" and
               (ins.branch_target_sym() or "").split("+")[0] in
               ("strcmp", "kmalloc_trace", "__mutex_init", "__init_rwsem", "kern_path",
                "mutex_unlock")]
    assert len(guarded) >= 6
    for i in guarded:
        locks, problem = MH.function_holds(insns, i)
        assert problem is None
        assert [(s.acq.kind, s.loc) for s in locks] == [("mutex", ("const", want))], \
            insns[i].where
    assert MH.function_holds(insns, _call_index(name, "mutex_lock")) == ([], None)
    s = MH.summarise(name, insns)       # every path to a return unlocks it
    assert not s.acquires and not s.releases and not s.releases_unknown


# ---------------------------------------------------------------- trylock

def test_trylock_held_only_on_its_success_branch():
    """__drain_all_pages (mm/page_alloc.c): ``if (!mutex_trylock(&pcpu_drain_mutex)) {
    if (!zone) return; mutex_lock(&pcpu_drain_mutex); }`` then drains: held at the drain
    calls (by the trylock's success branch and by the fallback mutex_lock), not on the
    failure branch before mutex_lock."""
    name = DATA["trylock"]["function"]
    prim = DATA["trylock"]["primitive"]
    insns = _insns(name)
    t = _call_index(name, prim)
    lock = [i for i in insns[:t] if i.mnemonic == "mov" and i.operands[-1].reg == "rdi"][-1]
    want = lock.operands[0].imm & HR.MASK                 # $pcpu_drain_mutex
    assert want == int(TRUTH["pcpu_drain_mutex"], 16)     # crash's sym pcpu_drain_mutex
    (ok_name, ok_n), (fail_name, fail_n) = DATA["trylock"]["calls"]
    ok_call, fail_call = _call_index(name, ok_name, ok_n), _call_index(name, fail_name, fail_n)
    held, problem = MH.function_holds(insns, ok_call)
    assert problem is None
    assert [(s.acq.kind, s.loc) for s in held] == [("mutex", ("const", want))], \
        insns[ok_call].where
    # on the branch where the trylock failed, before the fallback mutex_lock: not held
    assert MH.function_holds(insns, fail_call) == ([], None), insns[fail_call].where
    # the fallback's argument is the same mutex (so the join keeps it)
    fb = [i for i in insns[:fail_call] if i.mnemonic == "mov" and
          i.operands[-1].reg == "rdi"][-1]
    assert fb.operands[0].imm & HR.MASK == want


# ---------------------------------------------------------------- wrappers

def test_wrapper_summaries():
    xoff = _member_offset("lab_xnode", "x_iolock")
    s = MH.summarise("lab_xnode_ilock", _insns("lab_xnode_ilock"))
    assert [(a.reg, a.off, a.kind) for a in s.acquires] == [("rdi", xoff, "semaphore")]
    assert not s.releases and not s.releases_unknown
    assert "takes arg0+%#x as a semaphore (down at lab_xnode_ilock+" % xoff in \
        s.describe(s.acquires[0])
    u = MH.summarise("lab_xnode_iunlock", _insns("lab_xnode_iunlock"))
    assert [(a.reg, a.off, a.kind) for a in u.releases] == [("rdi", xoff, "semaphore")]
    assert not u.acquires
    moff = _member_offset("lab_mm", "mmap_lock")
    r = MH.summarise("lab_mmap_read_lock", _insns("lab_mmap_read_lock"))
    assert [(a.reg, a.off, a.kind, a.mode) for a in r.acquires] == [
        ("rdi", moff, "rw_semaphore", "reader")]
    # balanced inside: a function that takes and releases its own lock summarises empty
    g = MH.summarise("lab_gsem_a_section", _insns("lab_gsem_a_section"))
    assert not g.acquires and not g.releases


def test_wrapper_applied_at_the_caller_keeps_only_the_object():
    xoff = _member_offset("lab_xnode", "x_iolock")
    name = "lab_xnode_section"
    insns = _insns(name)
    of = _summaries()
    locks, problem = MH.function_holds(insns, _call_index(name, "lab_run"), of)
    assert problem is None
    assert len(locks) == 1
    s = locks[0]
    assert s.acq.kind == "semaphore" and s.acq.call == "lab_xnode_ilock"
    assert s.loc[0] == "reg" and s.loc[2] == xoff       # %rbx (the xnode) + x_iolock
    assert s.loc[1] in ("rbx", "rbp", "r12", "r13", "r14", "r15")
    # without the wrapper's summary nothing is seen (no primitive in the caller itself)
    assert MH.function_holds(insns, _call_index(name, "lab_run"))[0] == []
    # the release wrapper's call site: still held before it runs
    assert len(MH.function_holds(insns, _call_index(name, "lab_xnode_iunlock"), of)[0]) == 1


def test_reader_wrapper_at_the_caller():
    name = "lab_mm_read_section"
    locks, _ = MH.function_holds(_insns(name), _call_index(name, "lab_run"), _summaries())
    assert [(s.acq.kind, s.acq.mode) for s in locks] == [("rw_semaphore", "reader")]


# ---------------------------------------------------------------- lockdep

class _LockdepPort:
    """task_struct.held_locks/lockdep_depth with the held_lock layout of
    include/linux/lockdep_types.h (CONFIG_LOCK_STAT: prev_chain_key, acquire_ip,
    instance, nest_lock, waittime_stamp, holdtime_stamp, bitfields, pin_count)."""
    OFF = {("task_struct", "held_locks"): 0x900, ("task_struct", "lockdep_depth"): 0x8f8,
           ("held_lock", "instance"): 16, ("held_lock", "acquire_ip"): 8,
           ("mutex", "dep_map"): 0x20, ("rw_semaphore", "dep_map"): 0x38}

    def __init__(self, task, recs):
        self.mem = {task + 0x8f8: len(recs)}
        for i, (inst, ip) in enumerate(recs):
            base = task + 0x900 + i * 64
            self.mem[base + 8] = ip
            self.mem[base + 16] = inst

    def member_offset(self, t, m):
        return self.OFF.get((t, m))

    def type_size(self, t):
        return 64 if t == "struct held_lock" else None

    def read_u32(self, a):
        return self.mem[a]

    def read_u64(self, a):
        return self.mem[a]

    def address_symbol(self, a):
        return "do_thing+42" if a == 0xffffffff81000100 else None


def test_lockdep_records_come_first_and_match_by_dep_map():
    task = 0xffff888001000000
    mutex = 0xffff888002000000
    port = _LockdepPort(task, [(mutex + 0x20, 0xffffffff81000100)])
    recs = LD.lockdep_held(port, task)
    assert recs == [(mutex + 0x20, 0xffffffff81000100)]
    maps = LD.dep_map_offsets(port)
    held = LD.lockdep_locks(recs, maps, port.address_symbol)
    assert len(held) == 1 and held[0].source == "lockdep"
    assert "acquired at do_thing+42" in held[0].evidence[0]
    assert LD.lockdep_matches(held[0], mutex, "mutex", maps)
    assert not LD.lockdep_matches(held[0], mutex, "rw_semaphore", maps)
    assert LD.lockdep_held(_NoLockdep(), task) is None


class _NoLockdep(_LockdepPort):
    def __init__(self):
        self.mem = {}

    def member_offset(self, t, m):
        return None
