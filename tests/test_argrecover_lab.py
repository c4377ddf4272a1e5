"""argrecover on real lab dumps, against the lab module's truth and against drgn."""

import io
import json
import re

import pytest

from crash_ext.code.sources import recover_with_port
from crash_ext.session.snapshot import Snapshot
from crash_ext.verbs import argrecover
from tests.lab import labdumps

SMALL = list(labdumps.SMALL)
# (scenario, KERNEL@CRASH) over the kernel matrix (tests/lab/labdumps.py)
CASES = labdumps.matrix()
SEEDS = [t for s, t in CASES if s == "seed"]


@pytest.mark.parametrize("scenario,target", CASES)
def test_module_pointer_arguments_recovered_exactly(lab, scenario, target):
    """Every pointer the module passed to a noinline function whose frame is still on
    the stack is recovered with the exact value the module recorded: per task and per
    function, as many frames as crash's own ``bt`` shows of that function, each checked
    against the module's notes of its call (the n live frames are the last n calls),
    under the parameter's name as the module's notes give it (from the module's
    debuginfo: gdb's prototype names none); every task the module noted calls of has
    at least one such frame checked."""
    dump, crash = lab(scenario, target=target)
    snap = Snapshot(crash)
    for task in dump.truth["tasks"]:
        pid = task["pid"]
        calls = [c for c in dump.truth["calls"] if c["pid"] == pid]
        ta = recover_with_port(crash, snap.backtrace(snap.by_pid(pid).task))
        # the module's debuginfo is loaded (mod -s): its frames' parameters are named
        # from it, as the module's notes name them (argrecover --mod)
        argrecover.name_params(crash, ta.frames)
        on_stack = _bt_functions(crash.command("bt %d" % pid))
        checked = 0
        for func in sorted({c["function"] for c in calls}):
            # one call per (function, first argument)
            per_call = []
            for c in calls:
                if c["function"] != func:
                    continue
                if not per_call or c["arg"] in per_call[-1]:
                    per_call.append({})
                per_call[-1][c["arg"]] = int(c["value"], 16)
            live = on_stack.count(func)
            assert live <= len(per_call), (pid, func, live, per_call)
            frames = [f for f in ta.frames if f.function == func]
            assert len(frames) == live, (pid, func, len(frames), live)
            for f, want in zip(frames, reversed(per_call)):
                got = {a.name: a for a in f.args}
                for name, value in want.items():
                    assert name in got, (pid, func, name, [a.name for a in f.args])
                    arg = got[name]
                    assert arg.status == "recovered", (pid, func, name, arg.reason)
                    assert arg.value == value, (pid, func, name)
                    checked += 1
        # a task that went through the module (not the seed's rm) has such frames
        assert checked or not calls, (pid, task["comm"], "no module frame checked")


def _bt_functions(text):
    """The functions of crash's ``bt`` frames, innermost first (module ones without
    their ``[module]`` tag)."""
    return re.findall(r"(?m)^\s*#\d+ \[[0-9a-f]+\] (\S+) at ", text)


@pytest.mark.parametrize("target", SEEDS)
def test_seed_vfs_unlink_dentry_is_fire_js(lab, target):
    dump, crash = lab("seed", target=target)
    fire = next(l for l in dump.truth["locks"] if l["name"].startswith("i:"))
    rm = fire["waiters"][-1]["pid"]
    out = io.StringIO()
    assert argrecover.main([str(rm), "vfs_unlink"], crash, out=out) == 0
    text = out.getvalue()
    assert re.match(r'PID: %d  TASK: [0-9a-f]+  CPU: \d+  COMMAND: "rm"' % rm, text)
    flat = " ".join(text.split())             # lines wrapped at 80 columns joined
    # the dentry's register is its place in crash's prototype: %rdx on 6.1 (after
    # mnt_userns), %rsi on 5.10
    proto = re.search(r"vfs_unlink\((.*)\)", crash.command("whatis vfs_unlink")).group(1)
    reg = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")[
        [p.strip() for p in proto.split(",")].index("struct dentry *")]
    assert re.search(r'\(struct dentry \*\) %%%s = %x -> dentry "fire.js" in "js" '
                     r'\[[^]]*stack slot[^]]*\]' % (reg, int(fire["container"]["dentry"], 16)),
                     flat), text
    assert "<-" not in text                   # compact: a tag, not the chain
    out = io.StringIO()
    assert argrecover.main([str(rm), "vfs_unlink", "-v"], crash, out=out) == 0
    text = out.getvalue()
    line = next(l for l in text.splitlines() if "(struct dentry *)" in l)
    after = text.split(line, 1)[1].splitlines()[1:4]       # the evidence follows
    assert any(l.lstrip().startswith("<- ") for l in after), after
    assert "\u2190" not in text


@pytest.mark.parametrize("argv,message", [
    (["99999"], "invalid task or pid value"),
    (["{pid}", "99"], "no frame #99"),
    (["{pid}", "no_such_function"], "no frame of function"),
    (["not-a-pid"], "no task named 'not-a-pid'"),
    (["1\u00b2"], "not a pid (decimal digits 0-9 only)"),
    (["ruby"], "2 tasks are named 'ruby'"),
    (["{pid}", "no_such_function", "--json"], "no frame of function"),
    (["{running}"], "is running"),
    ([], "give a pid"),
])
def test_bad_input_is_one_line(lab, argv, message):
    dump, crash = lab("seed")
    running = next(t for t in Snapshot(crash).tasks() if t.state == "RU")
    argv = [a.format(pid=dump.truth["tasks"][0]["pid"], running="%x" % running.task)
            for a in argv]
    out, err = io.StringIO(), io.StringIO()
    assert argrecover.main(argv, crash, out=out, err=err) == 2
    assert out.getvalue() == ""            # errors go to stderr, with --json too
    text = err.getvalue().strip()
    assert text.count("\n") == 0 and text.startswith("argrecover: error:") and message in text


def test_task_given_by_command_name(lab):
    """argrecover rm: the one task named rm, the same answer as by its pid (truth)."""
    dump, crash = lab("seed")
    rm = next(t["pid"] for t in dump.truth["tasks"] if t["comm"] == "rm")
    by_name, by_pid = io.StringIO(), io.StringIO()
    assert argrecover.main(["rm", "vfs_unlink"], crash, out=by_name) == 0
    assert argrecover.main([str(rm), "vfs_unlink"], crash, out=by_pid) == 0
    assert by_name.getvalue() == by_pid.getvalue()
    assert "PID: %d " % rm in by_name.getvalue()


@pytest.mark.parametrize("scenario", SMALL)
def test_agrees_with_drgn_and_recovers_at_least_as_much(lab, scenario):
    from tests.drgn_oracle import compare    # drgn is pinned in requirements-dev.txt
    dump, crash = lab(scenario)
    t = compare(dump, crash)
    assert t.frames > 0 and t.both > 0
    assert t.conflicts == []
    assert t.ours >= t.drgn, (t.ours, t.drgn)


@pytest.mark.parametrize("target", SEEDS)
def test_vmlinux_parameter_names_are_the_dwarf_names(lab, target):
    """argrecover names vfs_unlink's arguments as its DWARF does: the oracle is gdb's
    ``info scope vfs_unlink`` (safe on this function: it has no goto label, which makes
    gdb 10.2's info scope abort), its first symbols being the parameters in order."""
    dump, crash = lab("seed", target=target)
    fire = next(l for l in dump.truth["locks"] if l["name"].startswith("i:"))
    rm = fire["waiters"][-1]["pid"]
    scope = crash.command("gdb info scope vfs_unlink")
    dwarf = re.findall(r"^Symbol (\w+) is", scope, re.M)
    out = io.StringIO()
    assert argrecover.main([str(rm), "vfs_unlink", "--json"], crash, out=out) == 0
    (task,) = json.loads(out.getvalue())["tasks"]
    (frame,) = task["frames"]
    names = [a["name"] for a in frame["args"]]
    # as many as crash's prototype has (6.1: mnt_userns first; 5.10: dir, dentry, ...)
    proto = re.search(r"vfs_unlink\((.*)\)", crash.command("whatis vfs_unlink")).group(1)
    assert len(names) == len(proto.split(",")) and names == dwarf[:len(names)], (
        names, dwarf, proto)
    dentry = frame["args"][names.index("dentry")]
    assert dentry["type"] == "struct dentry *"
    assert int(dentry["value"], 16) == int(fire["container"]["dentry"], 16)


# ---------------------------------------------------------------- decodes

def _decoded_args(crash, pid):
    out = io.StringIO()
    assert argrecover.main([str(pid), "--json"], crash, out=out) == 0
    (task,) = json.loads(out.getvalue())["tasks"]
    return [(f, a) for f in task["frames"] for a in f["args"]
            if a["status"] == "recovered"]


@pytest.mark.parametrize("scenario", ["global-sems", "seed"])
def test_pointers_into_module_data_are_named(lab, scenario):
    """A recovered pointer to a module's global (global-sems: the semaphores are
    module globals, the truth names them) is decoded to its symbol, then as the lock
    it is."""
    dump, crash = lab(scenario)
    globals_ = {int(l["address"], 16): l["name"].split(":", 1)[1]
                for l in dump.truth["locks"] if l["name"].startswith("g:")}
    seen = 0
    for t in dump.truth["tasks"]:
        for f, a in _decoded_args(crash, t["pid"]):
            v = int(a["value"], 16)
            if v in globals_:
                assert a["decoded"] and a["decoded"].startswith(
                    "symbol %s" % globals_[v]), (f["function"], a)
                seen += 1
            elif a["decoded"] and a["decoded"].startswith("symbol "):
                # any other symbol named is crash's own answer for that address
                sym = a["decoded"][len("symbol "):].split(":")[0]
                assert sym.split("+")[0] in crash.command("sym %x" % v), (a, sym)
    assert seen or not globals_


@pytest.mark.parametrize("scenario", SMALL)
def test_struct_file_arguments_decode_to_crash_files_path(lab, scenario):
    """A recovered ``struct file *`` is decoded to its path, the one crash's own
    ``files PID`` prints for the open file at that address; every task's text fits 80
    columns."""
    dump, crash = lab(scenario)
    checked = 0
    for t in dump.truth["tasks"]:
        files = {}
        for line in crash.command("files %d" % t["pid"]).splitlines():
            m = re.match(r"\s*\d+\s+([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+\S+\s+(\S.*)$",
                         line)
            if m:
                files[int(m.group(1), 16)] = m.group(2).strip()
        out = io.StringIO()                   # the text: 80 columns (not a terminal)
        assert argrecover.main([str(t["pid"])], crash, out=out) == 0
        for line in out.getvalue().splitlines():
            assert len(line) <= 80, line
        for f, a in _decoded_args(crash, t["pid"]):
            if a["type"] != "struct file *" or int(a["value"], 16) not in files:
                continue
            path = files[int(a["value"], 16)]
            assert a["decoded"] and 'file "%s" (decoded' % path in a["decoded"], (a, path)
            checked += 1
    if not checked:
        pytest.skip("no recovered struct file * argument is an open file of its task")
