#!/usr/bin/env python3
"""The live lab: crash-ext run *inside* a guest, on its running kernel.

    from tests.lab.live import run_live
    run = run_live("seed", [["deadlock", "--json"]], churn=0)
    run.truth                    # the module's truth, as for a dump
    run.outputs["live"][0]       # (rc, stdout, seconds) of the first argv on the live kernel

    python3 tests/lab/live.py SCENARIO [--churn N] [--kernel 6.1] -- VERB ARGS...

The guest boots the lab's kernel with the lab's initramfs (the module stages the scenario
and prints its truth, as for a dump) plus ``guest/live.sh`` and the virtio/9p modules:
it then mounts the host's root read-only over 9p, chroots into it and runs
``live_runner.py`` with the host's crash, Python and this checkout on ``/proc/kcore``
(``crash VMLINUX``, no dump file).  ``churn=N`` adds 5*N busy loops of real lock traffic
(``guest/live.sh``).  With ``compare=True`` the same verbs also run, in the same guest,
on the snapshot dump of the same scenario (the ratio of their times is the measurement
TCG allows: absolute times under emulation say little).  With ``mpykdump`` (a user's
mpykdump.so) the same verbs run a third time, typed at the prompt of crash on the running
kernel with the real pykdump (session ``incrash``).

Nothing is cached: every run boots a guest (a live system is not a fact to keep).
Raises mklab.LabError when the guest fails; the console is kept under
``$CRASH_EXT_CACHE/logs/live-*.log``.
"""

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
from tests.lab import mklab  # noqa: E402

#: busybox applets live.sh needs beyond mklab.BUSYBOX_APPLETS
APPLETS = ["mkfifo", "head", "basename", "chroot", "poweroff", "rmdir"]


class LiveRun:
    """One live guest's results: ``truth`` (the module's), ``outputs`` {label: [(rc,
    stdout, seconds)]} per session label (``live``, ``dump``, ``incrash``: rc None, a verb
    inside crash has no exit code), ``argvs`` {label: [argv as run, placeholders
    resolved]}, ``start`` {label: crash start-up seconds}, ``console`` (the whole console
    text) and ``seconds`` (the guest's wall time)."""

    def __init__(self, console, seconds):
        self.console = console
        self.seconds = seconds
        self.truth = mklab.extract_truth(console)
        self.outputs, self.start = {}, {}
        for m in re.finditer(r"^LIVE-SESSION (\S+) start ([\d.]+)$", console, re.M):
            self.start[m.group(1)] = float(m.group(2))
        self.argvs = {}
        for m in re.finditer(r"^LIVE-ARGV (\S+) (\d+) (.*)$", console, re.M):
            self.argvs.setdefault(m.group(1), []).append(json.loads(m.group(3)))
        pat = re.compile(r"^LIVE-OUT-BEGIN (\S+) (\d+)\n(.*?)^LIVE-OUT-END \1 \2 rc=(\d+|-) "
                         r"seconds=([\d.]+)$", re.M | re.S)
        for m in pat.finditer(console):
            rc = None if m.group(4) == "-" else int(m.group(4))
            self.outputs.setdefault(m.group(1), []).append((rc, m.group(3), float(m.group(5))))


def _live_entries(kdir, job_sh):
    """Return the cpio entries a live guest adds to the lab's initramfs: live.sh (the init
    sources it once the truth is printed), the job, the virtio/9p modules and the extra
    busybox applets."""
    entries = [mklab.cpio_entry("lib/live-modules", stat.S_IFDIR | 0o755)]
    with open(os.path.join(HERE, "guest", "live.sh"), "rb") as f:
        entries.append(mklab.cpio_entry("lib/live.sh", stat.S_IFREG | 0o644, f.read()))
    entries.append(mklab.cpio_entry("lib/live-job", stat.S_IFREG | 0o644, job_sh.encode()))
    mods = os.path.join(kdir, "modules")
    for name in sorted(os.listdir(mods)):
        if name.endswith(".ko") and name != "qemu_fw_cfg.ko":
            with open(os.path.join(mods, name), "rb") as f:
                entries.append(mklab.cpio_entry("lib/live-modules/" + name,
                                                stat.S_IFREG | 0o644, f.read()))
    for a in APPLETS:
        entries.append(mklab.cpio_entry("bin/" + a, stat.S_IFLNK | 0o777, b"busybox"))
    return entries


def _keep_console(text, scenario):
    logs = os.path.join(mklab.CACHE, "logs")
    os.makedirs(logs, exist_ok=True)
    path = os.path.join(logs, "live-%s-%s.log" % (scenario, time.strftime("%Y%m%d-%H%M%S")))
    with open(path, "w") as f:
        f.write(text)
    return path


def run_live(scenario, argvs, kernel=mklab.DEFAULT_KERNEL, churn=0, compare=None,
             crash=None, timeout=3600, mpykdump=None):
    """Boot a live guest staging ``scenario`` (plus ``churn`` loop pairs), run ``argvs``
    (crash-ext verb argv lists) on its running kernel, and, when ``compare`` is a LabDump
    of the same scenario, on that dump in the same guest; with ``mpykdump`` (a path),
    once more inside crash with that pykdump (in the crash the in-crash tests use:
    ``$CRASH`` or the lab's oldest, which the user's build is for).  ``crash``: the crash binary (default: the
    lab's newest).  Returns a LiveRun; raises mklab.LabError."""
    from tests.lab.labdumps import crash_binary, crash_for
    mklab.check_tools()
    kdir = mklab.fetch_kernel(kernel)
    for m in ("9p.ko", "9pnet_virtio.ko", "virtio_pci.ko"):
        if not os.path.exists(os.path.join(kdir, "modules", m)):
            raise mklab.LabError("kernel %s: no %s in %s/modules (fetch-kernel.sh extracts "
                                 "it; is 9p built in?)" % (kernel, m, kdir))
    crash = crash or crash_binary(crash_for(kernel))
    os.makedirs(os.path.join(mklab.CACHE, "live"), exist_ok=True)
    # the job and the module live under the cache: the guest mounts its own tmpfs on /tmp
    work = tempfile.mkdtemp(prefix="run-", dir=os.path.join(mklab.CACHE, "live"))
    console = os.path.join(work, "console.log")
    proc = None
    t0 = time.time()
    try:
        ko = mklab.build_module(kdir, work)
        labctl = mklab.build_labctl(work)
        sessions = [{"label": "live", "vmcore": None}]
        if compare is not None:
            sessions.append({"label": "dump", "vmcore": compare.vmcore,
                             "truth": os.path.join(compare.directory, "truth.json")})
        if mpykdump:
            # a copy beside the job: the guest's /tmp (where a user's build may be) is its own
            shutil.copy(mpykdump, os.path.join(work, "mpykdump.so"))
            # the crash the in-crash tests use (the user's pykdump is built for one crash)
            sessions.append({"label": "incrash", "vmcore": None, "crash": crash_binary(),
                             "mpykdump": os.path.join(work, "mpykdump.so")})
        job = {"vmlinux": os.path.join(kdir, "vmlinux"), "crash": crash, "module_ko": ko,
               "argvs": argvs, "sessions": sessions}
        with open(os.path.join(work, "job.json"), "w") as f:
            json.dump(job, f)
        py = sys.executable
        job_sh = "LIVE_ARGV='PYTHONPATH=%s %s %s %s'\n" % (
            ROOT, py, os.path.join(HERE, "live_runner.py"), os.path.join(work, "job.json"))
        # the guest mounts a tmpfs on /tmp: a checkout there (a CI clone) is bound back
        keep = [p for p in (ROOT, os.path.dirname(os.path.dirname(py)))
                if p == "/tmp" or p.startswith("/tmp/")]
        if len(set(keep)) > 1 and not keep[1].startswith(keep[0] + "/"):
            raise mklab.LabError("live lab: the checkout and the Python it runs are in two "
                                 "places under /tmp (%s); the guest keeps one" % keep)
        if keep:
            job_sh += "LIVE_KEEP='%s'\n" % keep[0]
        initrd = os.path.join(work, "initrd.gz")
        mklab.build_initramfs(kdir, ko, labctl, initrd, extra=_live_entries(kdir, job_sh))
        append = ("console=ttyS0 quiet loglevel=1 panic=-1 lab.scenario=%s lab.n=0 "
                  "lab.churn=%d" % (scenario, churn))
        cmd = ["qemu-system-x86_64", "-accel", os.environ.get("CRASH_EXT_LAB_ACCEL", "tcg"),
               "-smp", "2", "-m", "2G", "-display", "none", "-no-reboot",
               "-kernel", os.path.join(kdir, "vmlinuz"), "-initrd", initrd, "-append", append,
               "-serial", "file:" + console, "-monitor", "none",
               "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                          "multidevs=remap"]
        for attempt in range(mklab.BOOT_RETRIES + 1):
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                _, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
                text = _read(console)
                raise mklab.LabError("live %s: the guest did not finish within %ds "
                                     "(console: %s)" % (scenario, timeout,
                                                        _keep_console(text, scenario)))
            text = _read(console)
            why = mklab.died_booting(text)
            if why is None or attempt == mklab.BOOT_RETRIES:
                break
            # the kernel died in its own boot, before anything of the lab ran
            mklab.log("live %s: the guest's kernel died while booting (%s): booting it "
                      "again (console kept: %s)" % (scenario, why,
                                                    _keep_console(text, scenario)))
        ended = re.search(r"^LIVE-RUN-END rc=(\d+)$", text, re.M)
        if "LIVE-DONE" not in text or "LIVE-FAILED" in text or "LAB-FAILED" in text \
                or not ended or ended.group(1) != "0":
            where = _keep_console(text, scenario)
            tail = text[text.find("LIVE-FAILED"):] if "LIVE-FAILED" in text else text[-1500:]
            raise mklab.LabError("live %s: the guest failed (QEMU exit %s; console %s): %s%s"
                                 % (scenario, proc.returncode, where, tail[:1500],
                                    err.decode(errors="replace")[-500:]))
        return LiveRun(text, time.time() - t0)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def truth_cycle(truth):
    """Return (pids, lock addresses) of the truth's one cycle: the waiters that, following
    "waits on a lock owned by", come back to themselves (empty sets when there is none)."""
    waits = {w["pid"]: l for l in truth["locks"] for w in l["waiters"]}
    succ = {p: l["owners"][0]["pid"] for p, l in waits.items() if l["owners"]}

    def returns(p):
        q = succ.get(p)
        for _ in range(len(succ)):
            if q == p:
                return True
            q = succ.get(q)
        return False
    pids = {p for p in succ if returns(p)}
    return pids, {int(waits[p]["address"], 16) for p in pids}


def tally(runs):
    """Return one line counting, over every ``deadlock --json`` answer of ``runs`` (the
    live sessions of LiveRuns), the cycles that are the truth's (same tasks) and those
    that are not (false), and the convoys."""
    calls = truth_found = false = convoys = 0
    for run in runs:
        pids = truth_cycle(run.truth)[0]
        for (_, text, _), argv in zip(run.outputs.get("live", []), run.argvs.get("live", [])):
            if argv[:1] != ["deadlock"] or "--json" not in argv:
                continue
            doc = json.loads(text)
            calls += 1
            found = [set(c["pids"]) for c in doc["cycles"]]
            truth_found += pids in found
            false += sum(1 for f in found if f != pids)
            convoys += len(doc["convoys"])
    return ("%d deadlock calls in %d boots: the truth's cycle in %d, false cycles %d, "
            "convoys %d" % (calls, len(runs), truth_found, false, convoys))


def _read(path):
    """The console text with the tty's carriage returns removed ('' when missing)."""
    try:
        with open(path, errors="replace") as f:
            return f.read().replace("\r\n", "\n")
    except OSError:
        return ""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("scenario")
    p.add_argument("--kernel", default=mklab.DEFAULT_KERNEL)
    p.add_argument("--churn", type=int, default=0)
    p.add_argument("--crash", metavar="VERSION", help="the lab's crash version (default: the "
                   "newest that reads the kernel)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run the verb N times in the guest's one crash session")
    p.add_argument("--boots", type=int, default=1, metavar="N",
                   help="boot N guests one after another (a new staging each); with "
                   "deadlock --json, a closing line counts true and false cycles")
    p.add_argument("--compare", action="store_true",
                   help="also run the verbs on the scenario's snapshot dump, in the guest")
    p.add_argument("--mpykdump", metavar="PATH", help="also run the verbs inside crash on "
                   "the running kernel, with this mpykdump.so")
    p.add_argument("verb", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    argvs = [a.verb[1:] if a.verb[:1] == ["--"] else a.verb] if a.verb else [["deadlock"]]
    argvs = argvs * max(1, a.repeat)
    compare = None
    if a.compare:
        from tests.lab.labdumps import get_dump
        compare = get_dump(a.scenario, kernel=a.kernel)
    from tests.lab.labdumps import crash_binary
    runs = []
    for boot in range(max(1, a.boots)):
        try:
            run = run_live(a.scenario, argvs, a.kernel, a.churn, compare,
                           crash=crash_binary(a.crash) if a.crash else None,
                           mpykdump=a.mpykdump)
        except mklab.LabError as e:
            print("live: error: %s" % e, file=sys.stderr)
            return 1
        runs.append(run)
        for label, outs in run.outputs.items():
            for (rc, text, secs), argv in zip(outs, argvs):
                print("== boot %d %s: %s (rc %s, %.1fs; crash start %.1fs)" % (
                    boot + 1, label, " ".join(argv), "-" if rc is None else rc, secs,
                    run.start.get(label, -1)))
                sys.stdout.write(text)
        print("guest wall time %.0fs" % run.seconds, flush=True)
    print(tally(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
