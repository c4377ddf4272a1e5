#!/usr/bin/env python3
"""Record the unit tests' crash fixtures from today's lab, so that they can be re-derived.

    python3 tests/lab/record_fixtures.py [--out DIR] [--only NAME ...]

Each recording names its dump (``dump``: scenario, input key, kernel, how it was made, when
it was staged); tests/test_fixtures_lab.py records again into a temporary directory and
compares.  Each fixture is crash's own output on one of the lab's pinned 6.1 dumps (tests/lab/lab.lock),
with its truth from the lab module's truth.json or, where the module cannot know it, from
crash itself; nothing in a recording comes from crash-ext's answers.  NAME (default all):

``seed``
    ``lab61_seed_rm.json`` and ``lab61_seed_ruby.json``: the ``seed`` dump, for the rm in
    ``vfs_unlink`` and for the ruby queued in ``lab_inode_lock`` on the same inode lock:
    ``bt -f PID``, ``ps PID``, and every ``dis``, ``whatis`` and memory word that argument
    recovery asks crash for on that stack (recorded as crash answers them, through
    crash_ext's own port, which the unit tests then replay without crash); truth: the
    module's (the dentry, the locks, the arguments the module passed) and crash's
    (``struct inactive_task_frame`` at the task's ``thread.sp``: the registers
    ``__switch_to_asm`` pushed).
``holds``
    ``lab61_holds.json``: the ``global-sems`` dump, ``dis FUNC`` of HOLDS_FUNCTIONS and
    ``struct -o`` of the module's lab_xnode and lab_mm; truth: the module's (the address
    of ``g:lab_global_sem_a`` and its owner) and crash's ``sym`` of the two mutexes the
    module does not publish (``lab_create_mutex``, the kernel's ``pcpu_drain_mutex``).
``gdbdis``
    ``lab61_gdbdis.json``: the ``cycle3`` dump, for each of GDBDIS_CASES gdb's
    ``disassemble ADDR``, crash's ``dis -r ADDR`` and ``dis -f ADDR``, and the lines of
    crash's ``sym -l`` their addresses need (for each address, every symbol at the
    nearest symbol address at or below it).
``flushwork``
    ``lab61_flushwork.json``: the ``flush-work`` dump, for the task the module says waits
    in ``flush_work`` and the kworker it says must act: ``ps``, ``bt -f``, ``struct -o`` of
    the types the completion and workqueue resolution reads, ``rd -64`` of the kworker's
    struct worker and of its kthread.data, ``struct task_struct.worker_private,stack`` of
    the kworker, ``sym`` of wq_barrier_func and of the work function, ``help -m``'s page
    and stack sizes; truth: the module's (waiter, kworker, work item, work function) and
    crash's (the worker, and the wq_barrier on the worker's ``scheduled`` list, its
    completion, and the sleeper's swait_queue record on that completion's wait list).
"""

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from crash_ext.ports.crashproc import CrashProcess  # noqa: E402
from crash_ext.code.sources import PortSources  # noqa: E402
from crash_ext.code.templates import recover  # noqa: E402
from crash_ext.models.stack import parse_backtrace  # noqa: E402
from tests.lab.labdumps import crash_version, get_dump  # noqa: E402

DATA = os.path.join(ROOT, "tests", "unit", "data")
#: the kernel every fixture is recorded on (its ABI pinned in tests/lab/lab.lock)
KERNEL = "6.1"


def _record(crash, pid):
    """bt -f, ps, and the dis/whatis/words argument recovery asks crash for."""
    text = crash.command("bt -f %d" % pid)
    bt = parse_backtrace(text)
    src = PortSources(crash)
    dis, mem, whatis = {}, {}, {}

    def dis_fn(addr):
        t = src.dis(addr)
        first = re.match(r"\s*(0x[0-9a-f]+)", t)
        if first:
            dis[first.group(1)] = t
        return t

    def read_fn(addr):
        v = src.read(addr)
        mem["%x" % addr] = v
        return v

    def whatis_fn(name):
        whatis[name] = src.whatis(name)
        return whatis[name]

    recover(bt, dis_fn, read_fn, whatis_fn)
    return {"bt": text, "ps": crash.command("ps %d" % pid), "dis": dis,
            "mem": {k: v for k, v in mem.items() if v is not None}, "whatis": whatis}


def _switch_frame(crash, pid):
    """(thread.sp, {register: value}) of the task's inactive_task_frame, read by crash."""
    task = crash.task_by_pid(pid)
    sp = int(re.search(r"\bsp = (0x[0-9a-f]+|\d+),",
                       crash.command("struct task_struct.thread %#x" % task)).group(1), 0)
    regs = {}
    for name, val in re.findall(r"(\w+) = (0x[0-9a-f]+|\d+)",
                                crash.command("struct inactive_task_frame %#x" % sp)):
        if name in ("r12", "r13", "r14", "r15", "bp", "bx"):
            regs[{"bp": "rbp", "bx": "rbx"}.get(name, name)] = "%x" % int(val, 0)
    return "%x" % sp, regs


def _calls(truth, pid, functions):
    """{function: [argument values]} of the module's last call of each of ``functions``
    by ``pid`` (the frames still on its stack)."""
    out = {}
    for c in truth["calls"]:
        if c["pid"] == pid and c["function"] in functions:
            args = out.setdefault(c["function"], {})
            if c["arg"] in args:           # a later call of the same function
                args.clear()
            args[c["arg"]] = c["value"]
    return {f: list(a.values()) for f, a in out.items()}


def dump_identity(d):
    """Which staging of which lab inputs a recording comes from: the scenario, its input
    key (mklab.input_key: the same on every machine for the same lab inputs), its kernel,
    how it was made, and when that dump was staged (another staging of the same inputs is
    another dump: other addresses)."""
    return {"scenario": d.scenario, "key": d.meta["key"], "kernel": d.meta["kernel_abi"],
            "made": d.made, "built": d.meta["built"]}


def _write(out, name, rec, d):
    rec["dump"] = dump_identity(d)
    with open(os.path.join(out, name), "w") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
        f.write("\n")
    print(name)


def _open(scenario, crash):
    """(LabDump, CrashProcess with the lab module's symbols loaded) of the 6.1 ``scenario``
    read by crash ``crash`` (a version of labdumps.CRASH_VERSIONS)."""
    d = get_dump(scenario, kernel=KERNEL, crash=crash)
    c = CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=600)
    c.command("mod -s crashext_lab %s" % d.module_ko)
    return d, c


def _source(d, what):
    """The ``source`` line of a recording: crash, the dump (scenario, key, kernel), what."""
    return ("crash %s on the crash-ext lab dump %s-%s (%s, made by %s): %s; recorded by "
            "tests/lab/record_fixtures.py" % (
                ".".join(map(str, crash_version(d.crash))), d.scenario, d.meta["key"],
                d.meta["kernel_abi"], d.made, what))


def _sym(crash, name):
    """The address crash's ``sym NAME`` gives, as ``0x...``."""
    return "0x" + crash.command("sym %s" % name).split()[0]


def record_seed(out):
    d, crash = _open("seed", None)
    try:
        t = d.truth
        fire = next(l for l in t["locks"] if l["name"].startswith("i:"))
        rm = fire["waiters"][-1]["pid"]
        comm = {x["pid"]: x["comm"] for x in t["tasks"]}
        # the ruby queued on fire.js's inode lock (in lab_inode_lock, as rm in vfs_unlink)
        ruby = next(w["pid"] for w in fire["waiters"] if comm.get(w["pid"]) == "ruby")
        source = ("crash %s on the crash-ext lab dump seed-%s (Debian %s, ORC, KASLR), "
                  "task %%d, recorded by tests/lab/record_fixtures.py; truth from the lab "
                  "module's truth.json and, for inactive_task_frame, crash's struct "
                  "inactive_task_frame at task->thread.sp" % (
                      ".".join(map(str, crash_version(d.crash))), d.meta["key"],
                      d.meta["kernel_abi"]))
        for name, pid in (("lab61_seed_rm.json", rm), ("lab61_seed_ruby.json", ruby)):
            rec = _record(crash, pid)
            rec["source"] = source % pid
            sp, regs = _switch_frame(crash, pid)
            if pid == rm:
                rec["truth"] = {"pid": rm, "comm": "rm", "dentry": fire["container"]["dentry"],
                                "lock": fire["address"], "thread_sp": sp,
                                "inactive_task_frame": regs}
            else:
                blocked = next(x for x in t["tasks"] if x["pid"] == ruby)
                args = _calls(t, ruby, ("lab_inode_lock", "lab_take"))
                args["rwsem_down_write_slowpath"] = [blocked["blocked_address"]]
                rec["truth"] = {"pid": ruby, "comm": "ruby", "args": args,
                                "thread_sp": sp, "inactive_task_frame": regs}
            _write(out, name, rec, d)
    finally:
        crash.close()


#: lab61_holds.json: the functions disassembled (the module's lock sections and wrappers,
#: lab_lock_get's mutex, and the kernel's __drain_all_pages: a trylock with a fallback)
HOLDS_FUNCTIONS = ("lab_gsem_a_section", "lab_lock_get", "lab_xnode_section",
                   "lab_xnode_ilock", "lab_xnode_iunlock", "lab_mm_read_section",
                   "lab_mmap_read_lock", "lab_mmap_read_unlock", "lab_book_wait",
                   "lab_book_owned", "__drain_all_pages")
#: the trylock pattern of mm/page_alloc.c's __drain_all_pages (6.1): ``if
#: (!mutex_trylock(&pcpu_drain_mutex)) { if (!zone) return; mutex_lock(&pcpu_drain_mutex); }``
#: then drain_pages_zone...: the first drain_pages_zone call is on the success branch, the
#: first mutex_lock call is the failure branch's fallback (from the kernel's C source)
HOLDS_TRYLOCK = {"function": "__drain_all_pages", "primitive": "mutex_trylock",
                 "calls": [["drain_pages_zone", 0], ["mutex_lock", 0]]}


def record_holds(out):
    d, crash = _open("global-sems", "9.0.2")
    try:
        sem = next(l for l in d.truth["locks"] if l["name"] == "g:lab_global_sem_a")
        rec = {"source": _source(d, "dis FUNC of each function, struct -o lab_xnode, lab_mm; "
                                    "truth: the module's truth.json and crash's sym"),
               "dis": {f: crash.command("dis %s" % f) for f in HOLDS_FUNCTIONS},
               "struct": {s: crash.command("struct -o %s" % s) for s in ("lab_xnode", "lab_mm")},
               "trylock": HOLDS_TRYLOCK,
               "truth": {"lab_global_sem_a": sem["address"],
                         "lab_global_sem_a_owners": [o["pid"] for o in sem["owners"]],
                         "lab_create_mutex": _sym(crash, "lab_create_mutex"),
                         "pcpu_drain_mutex": _sym(crash, "pcpu_drain_mutex")}}
        _write(out, "lab61_holds.json", rec, d)
    finally:
        crash.close()


#: lab61_gdbdis.json's cases: (symbol, where in it): an offset, or "first call"
GDBDIS_CASES = (
    ("lab_take", 0),                            # a module function
    ("lab_proc_write", 0),                      # a module function with a .cold part
    ("entry_SYSCALL_64_after_hwframe", 0),      # an assembly label inside a function
    ("tpm1_get_timeouts", 0),                   # a .cold part: gdb's "Address range"
    ("sk_get_filter", 0),                       # calls __memcpy (gdb: memcpy)
    ("thermal_genl_event_tz_trip_down", 5),     # two functions at one address: inside
    ("gnttab_max_grant_frames", 0),             # calls a function at __noinstr_text_start
    ("lab_take", "first call"),                 # an address inside a function
)
_ADDR = re.compile(r"\b(?:0x)?(ffff[0-9a-f]{12})\b")
_SYMLINE = re.compile(r"^([0-9a-f]+) \([A-Za-z?]\) \S+")


def _symbols_needed(sym_l, texts):
    """The lines of ``sym -l`` (in its order, out-of-order ones dropped as a reader of the
    sorted table drops them) at the nearest symbol address at or below each address in
    ``texts``."""
    import bisect
    kept = []                                  # [(address, line)] ascending
    for line in sym_l.splitlines():
        m = _SYMLINE.match(line)
        if m and (not kept or int(m.group(1), 16) >= kept[-1][0]):
            kept.append((int(m.group(1), 16), line))
    addrs = [a for a, _ in kept]
    want = set()
    for text in texts:
        for h in _ADDR.findall(text):
            i = bisect.bisect_right(addrs, int(h, 16)) - 1
            if i >= 0:
                want.add(addrs[i])
    return [line for a, line in kept if a in want]


def record_gdbdis(out):
    d, crash = _open("cycle3", "8.0.6")
    try:
        cases = []
        for name, where in GDBDIS_CASES:
            base = int(_sym(crash, name), 16)
            if where == "first call":
                addr = next(int(m.group(1), 16) for m in re.finditer(
                    r"^(0x[0-9a-f]+) <[^>]*>:\s+call\b", crash.command("dis %#x" % base),
                    re.M))
            else:
                addr = base + where
            cases.append({"name": name, "addr": "%x" % addr,
                          "gdb": crash.command("gdb disassemble %#x" % addr),
                          "dis_r": crash.command("dis -r %#x" % addr),
                          "dis_f": crash.command("dis -f %#x" % addr)})
        texts = [c[k] for c in cases for k in ("gdb", "dis_r", "dis_f")]
        rec = {"source": _source(d, "gdb disassemble, dis -r, dis -f and the sym -l lines "
                                    "their addresses need"),
               "symbols": _symbols_needed(crash.command("sym -l"), texts),
               "cases": cases}
        _write(out, "lab61_gdbdis.json", rec, d)
    finally:
        crash.close()


#: the types completion and workqueue resolution reads (crash_ext/waits/completions.py)
FLUSHWORK_STRUCTS = ("completion", "swait_queue_head", "swait_queue", "wq_barrier",
                     "work_struct", "worker", "kthread")


def _struct_o(crash, name, members=None):
    """crash's ``struct -o NAME`` (only the lines of ``members`` when given)."""
    text = crash.command("struct -o %s" % name)
    if members is None:
        return text
    return "".join(l + "\n" for l in text.splitlines() if not l.startswith(" ") or
                   any(re.search(r"\b%s;$" % m, l) for m in members))


def _offset(struct_o, member):
    """The offset of ``member`` in crash's ``struct -o`` text."""
    return int(re.search(r"\[(\d+)\][^;\n]*\b%s;" % member, struct_o).group(1))


def _size(struct_o):
    return int(re.search(r"^SIZE: (\d+)$", struct_o, re.M).group(1))


def _member(crash, expr, member):
    """The value crash prints for ``member`` in ``struct EXPR``."""
    return int(re.search(r"\b%s = (0x[0-9a-f]+|\d+)" % member,
                         crash.command("struct %s" % expr)).group(1), 0)


def record_flushwork(out):
    d, crash = _open("flush-work", "9.0.2")
    try:
        w = next(x for x in d.truth["waits"] if x["waits"] == "flush_work")
        pid, kpid = w["pid"], w["must_act_pid"]
        structs = {s: _struct_o(crash, s) for s in FLUSHWORK_STRUCTS}
        task_kw = crash.task_by_pid(kpid)
        task_struct = crash.command("struct task_struct.worker_private,stack %#x" % task_kw)
        kthread = int(re.search(r"worker_private = (0x[0-9a-f]+)", task_struct).group(1), 16)
        data = kthread + _offset(structs["kthread"], "data")
        worker = _member(crash, "kthread.data %#x" % kthread, "data")
        rd = (crash.command("rd -64 %#x %d" % (worker, _size(structs["worker"]) // 8)) +
              crash.command("rd -64 %#x 1" % data))
        # truth from crash: the barrier flush_work queued is on the worker's scheduled list
        scheduled = worker + _offset(structs["worker"], "scheduled")
        barrier = (_member(crash, "list_head %#x" % scheduled, "next") -
                   _offset(structs["work_struct"], "entry") - _offset(structs["wq_barrier"], "work"))
        comp = barrier + _offset(structs["wq_barrier"], "done")
        head = comp + _offset(structs["completion"], "wait") + \
            _offset(structs["swait_queue_head"], "task_list")
        record = _member(crash, "list_head %#x" % head, "next") - \
            _offset(structs["swait_queue"], "task_list")
        func = w["work_func"].split()[0]
        help_m = "".join(l + "\n" for l in crash.command("help -m").splitlines()
                         if re.match(r"\s+(pagesize|stacksize):", l))
        rec = {"source": _source(d, "the task waiting in flush_work and the kworker that "
                                    "must act; truth: the module's truth.json and crash"),
               "ps": crash.command("ps %d %d" % (pid, kpid)),
               "bt": crash.command("bt -f %d" % pid),
               "structs": "".join(structs[s] for s in FLUSHWORK_STRUCTS),
               "task_struct_o": _struct_o(crash, "task_struct", ("stack", "worker_private")),
               "worker_task_struct": task_struct,
               "rd": rd,
               "syms": crash.command("sym wq_barrier_func") + crash.command("sym %s" % func),
               "help_m": help_m,
               "truth": {"waiter_pid": pid, "waiter_comm": w["comm"], "worker_pid": kpid,
                         "worker_comm": w["must_act_comm"], "work": w["object"],
                         "work_func": func,
                         "waiter_task": "%#x" % crash.task_by_pid(pid),
                         "worker_task": "%#x" % task_kw, "worker": "%#x" % worker,
                         "worker_size": _size(structs["worker"]),
                         "wq_barrier": "%#x" % barrier, "completion": "%#x" % comp,
                         "swait_record": "%#x" % record}}
        _write(out, "lab61_flushwork.json", rec, d)
    finally:
        crash.close()


RECORDERS = {"seed": record_seed, "holds": record_holds, "gdbdis": record_gdbdis,
             "flushwork": record_flushwork}
#: the files each recorder writes
FILES = {"seed": ("lab61_seed_rm.json", "lab61_seed_ruby.json"),
         "holds": ("lab61_holds.json",), "gdbdis": ("lab61_gdbdis.json",),
         "flushwork": ("lab61_flushwork.json",)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=DATA)
    p.add_argument("--only", action="append", choices=sorted(RECORDERS),
                   help="record only these fixtures (repeatable; default all)")
    a = p.parse_args(argv)
    # crash's own answers, not crash-ext's per-build stores: a stored disassembly may have
    # come by another of crash's paths (gdb's or crash's dis) in an earlier session
    was = os.environ.get("CRASH_EXT_TYPE_CACHE")
    os.environ["CRASH_EXT_TYPE_CACHE"] = "0"
    try:
        for name in a.only or RECORDERS:
            RECORDERS[name](a.out)
    finally:
        if was is None:
            del os.environ["CRASH_EXT_TYPE_CACHE"]
        else:
            os.environ["CRASH_EXT_TYPE_CACHE"] = was
    return 0


if __name__ == "__main__":
    sys.exit(main())
