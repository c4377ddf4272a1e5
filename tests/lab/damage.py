"""Damaged copies of a lab dump, and crash-ext run on them as a careful user would.

    from tests.lab.damage import Damager, run_verbs
    with Damager(get_dump("convoy"), workdir) as dm:    # one copy of the vmcore
        for variant in dm.variants():                   # loop, garbage, unmapped, ...
            with dm.applied(variant):                   # bytes patched in the copy
                report = run_verbs(dm, variant)         # verbs, their outcome, checks

The copy is an ELF core: kernel virtual addresses are turned into file offsets through
crash's own ``vtop`` (on the intact copy) and the ELF program headers.  Facts about the
lock (its address, its waiters' pids) come from the lab's ``truth.json``; offsets within
structures and the wait list's nodes from crash (``struct -o``, ``list``, ``rd``) --
never from crash-ext itself.  Each variant's patches are undone (the original bytes
written back) before the next one; the cached original dump is only ever read.

Used by tests/test_damaged_lab.py (assertions) and tests/fuzz_hostile.py (counts).
"""

import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import struct
import time

from crash_ext.ports.crashproc import CrashProcess
from crash_ext.core.errors import CrashTimeout
from crash_ext.verbs import shell

VERB_TIMEOUT = 300      # seconds a crash command may take before it counts as a hang


def sha256(path, chunk=1 << 22):
    """Return the hex sha256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


class ElfCore:
    """The PT_LOAD segments of an ELF64 core: physical address -> file offset."""

    def __init__(self, path):
        with open(path, "rb") as f:
            eh = f.read(64)
            if eh[:4] != b"\x7fELF" or eh[4] != 2:
                raise ValueError("%s is not an ELF64 core" % path)
            phoff, = struct.unpack_from("<Q", eh, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", eh, 0x36)
            f.seek(phoff)
            ph = f.read(phentsize * phnum)
        self.loads = []
        for i in range(phnum):
            p_type, _, p_offset, _, p_paddr, p_filesz, _, _ = struct.unpack_from(
                "<IIQQQQQQ", ph, i * phentsize)
            if p_type == 1:
                self.loads.append((p_paddr, p_offset, p_filesz))

    def offset(self, paddr):
        """Return the file offset holding physical address ``paddr``; raises KeyError."""
        for base, off, size in self.loads:
            if base <= paddr < base + size:
                return off + (paddr - base)
        raise KeyError("physical %#x is in no PT_LOAD segment" % paddr)


def _offsets(cp, type_name):
    """Return {member: offset} of ``struct type_name`` from crash's ``struct -o``."""
    out = cp.command("struct %s -o" % type_name)
    res = {}
    for m in re.finditer(r"^\s*\[(\d+)\]\s+.*?\b(\w+)(\[\d+\])?;\s*$", out, re.M):
        res[m.group(2)] = int(m.group(1))
    return res


class Damager:
    """One working copy of ``dump``'s vmcore under ``workdir`` and the facts needed to
    damage it (from truth.json and crash).  Use as a context manager."""

    def __init__(self, dump, workdir, lock_name=None, seed=17):
        from tests.lab.labdumps import snapshot_of
        dump = snapshot_of(dump)        # patched through ELF program headers
        self.dump = dump
        self.workdir = workdir
        self.rng = random.Random(seed)
        locks = [l for l in dump.truth["locks"] if l["type"] == "mutex" and
                 len(l["waiters"]) >= 6]
        if lock_name:
            locks = [l for l in locks if l["name"] == lock_name]
        if not locks:
            raise ValueError("%s has no mutex with 6 or more waiters" % dump.scenario)
        self.lock = locks[0]
        self.lock_addr = int(self.lock["address"], 16)
        self.truth_locks = {int(l["address"], 16) for l in dump.truth["locks"]}
        self.waiter_pids = [w["pid"] for w in self.lock["waiters"]]
        self.copy = os.path.join(workdir, "vmcore")
        self.originals = {p: sha256(p) for p in self.protected()}
        # the module's .ko beside the copy: a lab rebuild may replace the cached one
        self.module_ko = os.path.join(workdir, "crashext_lab.ko")
        shutil.copyfile(dump.module_ko, self.module_ko)

    def protected(self):
        """Return the files that must never change: the dump, the vmlinux, the module."""
        return [self.dump.vmcore, self.dump.vmlinux, self.dump.module_ko]

    def changed(self):
        """Return the protected files whose sha256 is not what it was at the start (a
        file the lab removed meanwhile is not counted: it cannot have been written)."""
        return [p for p, h in self.originals.items()
                if os.path.exists(p) and sha256(p) != h]

    def __enter__(self):
        shutil.copyfile(self.dump.vmcore, self.copy)
        self.elf = ElfCore(self.copy)
        with self.session(self.copy) as cp:
            self._learn(cp)
        return self

    def __exit__(self, *exc):
        for p in (self.copy, self.module_ko):
            with contextlib.suppress(OSError):
                os.unlink(p)

    def session(self, vmcore):
        """Return a new CrashProcess on ``vmcore`` with the lab module's symbols."""
        cp = CrashProcess(self.dump.vmlinux, vmcore, crash=self.dump.crash,
                          timeout=VERB_TIMEOUT)
        cp.module_files = [self.dump.module_ko, self.module_ko]
        cp.command("mod -s crashext_lab %s" % self.module_ko)
        return cp

    # -------------------------------------------------------------- facts from crash

    def _vtop(self, cp, vaddr):
        out = cp.command("vtop %x" % vaddr)
        m = re.search(r"^%x\s+([0-9a-f]+)" % vaddr, out, re.M)
        if not m:
            raise ValueError("vtop %x: no physical address in %r" % (vaddr, out[:200]))
        return int(m.group(1), 16)

    def file_offset(self, vaddr):
        """Return the copy's file offset of kernel virtual address ``vaddr`` (pages
        looked up once through crash's ``vtop``)."""
        page = vaddr & ~0xfff
        return self.pages[page] + (vaddr & 0xfff)

    def _learn(self, cp):
        mo = _offsets(cp, "mutex")
        wo = _offsets(cp, "mutex_waiter")
        self.owner_off = mo["owner"]
        self.wait_off = mo["wait_list"]
        head = self.lock_addr + self.wait_off
        out = cp.command("list -H %x" % head)
        self.nodes = [int(w, 16) for w in out.split()]
        if len(self.nodes) != len(self.waiter_pids):
            raise ValueError("crash lists %d wait-list nodes, truth %d waiters"
                             % (len(self.nodes), len(self.waiter_pids)))
        self.records = [n - wo["list"] for n in self.nodes]
        self.task_off = wo["task"]
        # a kernel address that is canonical but that crash cannot read
        self.unmapped = None
        for cand in (0xffffc9ffff000000, 0xffffeaffff000000, 0xfffffe7fff000000,
                     0xffffc98000000000):
            try:
                cp.command("rd -64 %x 1" % cand)
            except Exception:   # noqa: BLE001 - an error is what is looked for
                self.unmapped = cand
                break
        if self.unmapped is None:
            raise ValueError("no unmapped kernel address found")
        # a kernel address that is no task: the lock's container object
        self.not_a_task = int(self.lock["container"]["address"], 16) \
            if self.lock.get("container") else self.lock_addr
        want = {self.lock_addr, self.lock_addr + self.owner_off,
                self.lock_addr + self.wait_off}
        want.update(self.nodes)
        want.update(r & ~0xfff for r in self.records)
        self.pages = {}
        for v in sorted({w & ~0xfff for w in want}):
            self.pages[v] = self.elf.offset(self._vtop(cp, v))
        # sanity: the bytes at the node's offset are crash's own reading of it
        out = cp.command("rd -64 %x 1" % self.nodes[0])
        first_next = int(out.split()[1], 16)
        with open(self.copy, "rb") as f:
            f.seek(self.file_offset(self.nodes[0]))
            got, = struct.unpack("<Q", f.read(8))
        if got != first_next:
            raise ValueError("file offset of %x holds %x, crash reads %x"
                             % (self.nodes[0], got, first_next))

    # -------------------------------------------------------------- variants

    def variants(self):
        """Return the damage variants: [(name, [(vaddr, bytes)...], what it does)]."""
        n = self.nodes
        q = lambda v: struct.pack("<Q", v)          # noqa: E731
        mid = len(n) // 2
        stack_rec = self.records[mid - 2]
        rnd = bytes(self.rng.getrandbits(8) for _ in range(4096))
        return [
            ("loop", [(n[-3], q(n[2]))],
             "waiter %d's next points back at waiter 3 (never returns to the head)"
             % (len(n) - 2)),
            ("garbage", [(n[mid], q(0x4141414141414141))],
             "waiter %d's next is 0x4141414141414141" % (mid + 1)),
            ("unmapped", [(n[mid], q(self.unmapped))],
             "waiter %d's next is %x, which is not mapped" % (mid + 1, self.unmapped)),
            ("head", [(self.lock_addr + self.wait_off, q(self.unmapped))],
             "the mutex's own wait_list.next is %x, which is not mapped" % self.unmapped),
            ("stack", [(stack_rec & ~0xfff, rnd)],
             "random bytes over the stack page holding waiter %d's record" % (mid - 1)),
            ("owner", [(self.lock_addr + self.owner_off, q(self.not_a_task | 1))],
             "owner field points at %x (not a task) with the WAITERS bit"
             % self.not_a_task),
        ]

    @contextlib.contextmanager
    def applied(self, variant):
        """Patch ``variant``'s bytes into the copy for the duration of the block; the
        original bytes are written back afterwards."""
        _, patches, _ = variant
        saved = []
        with open(self.copy, "r+b") as f:
            for vaddr, data in patches:
                off = self.file_offset(vaddr)
                f.seek(off)
                saved.append((off, f.read(len(data))))
                f.seek(off)
                f.write(data)
        try:
            yield
        finally:
            with open(self.copy, "r+b") as f:
                for off, data in reversed(saved):
                    f.seek(off)
                    f.write(data)

    def truncated(self, fraction):
        """Return the path of a new copy cut to ``fraction`` of the dump's size."""
        dest = os.path.join(self.workdir, "vmcore-cut%d" % int(fraction * 100))
        size = os.path.getsize(self.dump.vmcore)
        with open(self.dump.vmcore, "rb") as src, open(dest, "wb") as dst:
            left = int(size * fraction)
            while left:
                b = src.read(min(left, 1 << 22))
                if not b:
                    break
                dst.write(b)
                left -= len(b)
        return dest


# ------------------------------------------------------------------ running verbs

class Outcome:
    """One verb run: its argv, exit code (3 when crash failed), output, seconds, the
    exception that escaped (None is the only right value), the JSON it printed."""

    def __init__(self, verb, argv):
        self.verb, self.argv = verb, argv
        self.rc = None
        self.text = ""
        self.seconds = 0.0
        self.escaped = None
        self.doc = None

    def __repr__(self):
        return "%s %s -> %s (%.1fs)%s" % (self.verb, " ".join(self.argv), self.rc,
                                          self.seconds,
                                          " ESCAPED %r" % self.escaped if self.escaped
                                          else "")


def run_verb(cp, verb, argv):
    """Run ``verb`` with ``argv`` on CrashProcess ``cp`` through the verb shell, as
    crash-ext does; return its :class:`Outcome` (rc 3 when crash died or timed out,
    ``timed_out`` then said)."""
    o = Outcome(verb, list(argv))
    out, err = io.StringIO(), io.StringIO()
    o.escaped = None
    o.timed_out = False

    def crash_failed(e):        # the verb shell's exit 3: crash died or timed out
        o.timed_out = isinstance(e, CrashTimeout)
        return "crash-ext: crash failed: %s" % e
    t0 = time.monotonic()
    try:
        opts, rc = shell.prepare(verb, list(argv), out, err)
        o.rc = rc if opts is None else shell.execute(verb, opts, cp, out, err,
                                                     crash_failed)
    except Exception as e:   # noqa: BLE001 - counted: the one thing that must not happen
        o.escaped = e
        o.rc = None
    o.seconds = time.monotonic() - t0
    o.text = out.getvalue() + err.getvalue()
    if "--json" in argv and o.rc in (0, 1):
        try:
            o.doc = json.loads(out.getvalue())
        except ValueError:
            o.doc = None
    return o


def verb_plan(dm):
    """Return the [(verb, argv)] run on each damaged copy: the whole graph, the chain
    from a waiter past the damage and from the first waiter, the lock itself, and
    argument recovery of a waiter whose stack page may be the one overwritten, and the
    lock again with its type (mutex, from the truth) given."""
    mid = len(dm.waiter_pids) // 2
    return [("deadlock", ["--json"]),
            ("whoholds", ["-p", str(dm.waiter_pids[-1]), "--json"]),
            ("whoholds", ["-p", str(dm.waiter_pids[0]), "--json"]),
            ("whoholds", ["%x" % dm.lock_addr, "--json"]),
            ("argrecover", [str(dm.waiter_pids[mid - 2])]),
            ("whoholds", ["-t", "mutex", "%x" % dm.lock_addr, "--json"])]


def lock_addresses(o):
    """Return every lock address an outcome's JSON names as something a task waits on
    or a lock it reports (deadlock: locks and tasks' locks; whoholds -p: each hop)."""
    d = o.doc
    out = set()
    if not isinstance(d, dict):
        return out
    for ln in d.get("locks", []):
        out.add(int(ln["address"], 16))
    for t in d.get("tasks", []):
        if t.get("lock_address"):
            out.add(int(t["lock_address"], 16))
    for hop in d.get("chain", []):
        b = hop.get("blocked") or {}
        if b.get("lock_address"):
            out.add(int(b["lock_address"], 16))
        if hop.get("lock"):
            out.add(int(hop["lock"]["address"], 16))
    return out


def check(dm, o, expect_cycles=0):
    """Return the list of what is wrong with outcome ``o`` on a damaged copy (empty
    when all is right): a traceback, an exit code outside {0,1,2,3}, a cycle the truth
    has not, a lock address the truth has not, a waiter filed under another lock."""
    bad = []
    if o.escaped is not None:
        bad.append("traceback: %s: %s" % (type(o.escaped).__name__, o.escaped))
    if "Traceback" in o.text or "internal error" in o.text:
        bad.append("traceback in output")
    if o.rc not in (0, 1, 2, 3):
        bad.append("exit code %r" % o.rc)
    if getattr(o, "timed_out", False):
        bad.append("hang: crash timed out")
    d = o.doc
    if isinstance(d, dict) and o.verb == "deadlock":
        if len(d.get("cycles", [])) != expect_cycles:
            bad.append("false cycle: %d cycles" % len(d["cycles"]))
        by_pid = {t["task"]["pid"]: t for t in d.get("tasks", [])}
        for pid in dm.waiter_pids:
            t = by_pid.get(pid)
            if t is not None and t.get("lock_address") and \
                    int(t["lock_address"], 16) != dm.lock_addr:
                bad.append("waiter %d filed under %s" % (pid, t["lock_address"]))
    if isinstance(d, dict) and o.verb == "whoholds" and "chain" in d:
        for hop in d["chain"]:
            b = hop["blocked"]
            if b.get("kind") == "lock" and b["task"]["pid"] in dm.waiter_pids and \
                    int(b["lock_address"], 16) != dm.lock_addr:
                bad.append("waiter %d filed under %s" % (b["task"]["pid"],
                                                          b["lock_address"]))
    for a in lock_addresses(o):
        if a not in dm.truth_locks:
            bad.append("phantom lock %x" % a)
    return bad
