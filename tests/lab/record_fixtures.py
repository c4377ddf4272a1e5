#!/usr/bin/env python3
"""Record the unit tests' crash fixtures from today's lab, so that they can be re-derived.

    python3 tests/lab/record_fixtures.py [--out DIR]

Writes ``lab61_seed_rm.json`` and ``lab61_seed_ruby.json`` (tests/unit/data): crash's
own answers on the lab's 6.1 ``seed`` dump, for the rm in ``vfs_unlink`` and for the
ruby queued in ``lab_inode_lock`` on the same inode lock: ``bt -f PID``, ``ps PID``, and every ``dis``,
``whatis`` and memory word that argument recovery asks crash for on that stack
(recorded as crash answers them, through crash_ext's own port, which the unit tests then
replay without crash); and the truth, from the lab module's truth.json (the dentry, the
locks, the arguments the module passed) and from crash (``struct inactive_task_frame``
at the task's ``thread.sp``: the registers ``__switch_to_asm`` pushed).  Nothing in a
recording comes from crash-ext's answers.
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=DATA)
    a = p.parse_args(argv)
    d = get_dump("seed")
    crash = CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=600)
    try:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
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
            with open(os.path.join(a.out, name), "w") as f:
                json.dump(rec, f, indent=1, sort_keys=True)
                f.write("\n")
            print("%s: task %d" % (name, pid))
    finally:
        crash.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
