#!/usr/bin/env python3
"""Build the lab: real vmcores of a Debian kernel staging lock scenarios, with ground truth.

    python3 tests/lab/mklab.py [--scenario NAME ... | --small] [--n N] [--kernel SERIES|ABI]
                               [--made kdump|snapshot]

SERIES: 5.10, 6.1 (default), 6.12, 7 (sid's 7.x), each also as SERIES-rt (PREEMPT_RT).

For each scenario: boot the kernel in QEMU (TCG) with a busybox initramfs holding the
crashext_lab module, let the guest stage the scenario and print the module's truth on the
serial console, then either (snapshot) dump guest memory through QMP as ELF and compress
it with zstd, or (kdump, ``kdump.py``) let the guest panic by itself and its kdump
capture kernel write the dump with makedumpfile.  Which dumps are made which way:
:func:`made_by` (``--made`` overrides it).

Everything lands in ``$CRASH_EXT_CACHE`` (default ``~/.cache/crash-ext``) under
``lab/<abi>/<key>/`` where the key hashes every input (kernel ABI, module source, guest
files, this script, the scenario and N).  A second run finds the dumps and returns at once.
Prints one line per dump: ``SCENARIO DIRECTORY``.  Exits non-zero, loudly, when a scenario
fails to stage.
"""

import argparse
import fcntl
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from crash_ext.ports.dumpfiles import decompressed_copies  # noqa: E402
from tests.lab import kdump  # noqa: E402
CACHE = os.environ.get("CRASH_EXT_CACHE", os.path.expanduser("~/.cache/crash-ext"))
SCENARIOS = ["seed", "abba-mutex", "cycle3", "convoy", "readers", "semaphore", "scale",
             "rt-spin", "global-sems", "wrapper", "rwsem-readers", "flush-work", "kthread-stop",
             "flush-wq", "rw-abba"]
SMALL = ["seed", "abba-mutex", "cycle3", "convoy", "readers", "semaphore", "global-sems",
         "wrapper", "rwsem-readers"]
#: scenarios a PREEMPT_RT kernel cannot stage, and why (``readers`` and ``rwsem-readers``
#: are staged there in the form PREEMPT_RT has: the writer owns the rw_semaphore's
#: rtmutex and waits, on no wait list, for the readers to leave; the reader behind it
#: waits on the rtmutex)
NOT_ON_RT = {}  # type: dict
#: scenarios only a PREEMPT_RT kernel stages (a sleeping spinlock_t)
RT_ONLY = {"rt-spin": "spinlock_t spins on a kernel without PREEMPT_RT: no task can block "
                      "holding one"}
#: scenarios in the small set of PREEMPT_RT kernels only; elsewhere they stage on demand
RT_SMALL = {"rw-abba": "a reader/writer ABBA whose writer, on PREEMPT_RT, waits for the "
                       "reader on no wait list; elsewhere the readers scenarios cover it"}
DEFAULT_N = 2000
DEFAULT_KERNEL = "6.1"     # Debian 12's own series; "6.12" is bookworm-backports'
BUSYBOX_APPLETS = ["sh", "mount", "cat", "echo", "mkdir", "dmesg", "sleep", "insmod", "tr",
                   "tail", "rm", "type", "test", "["]
TOOLS = {  # command -> Debian package that provides it
    "qemu-system-x86_64": "qemu-system-x86",
    "gcc": "gcc",
    "make": "make",
    "zstd": "zstd",
}


#: kernel series whose dumps are made by kdump (:func:`made_by`), and which scenarios:
#: None for every one of kdump.PLAN (the small scenarios and the waits), else those named
#: (a scenario per panic kind).  6.12 needs trixie's makedumpfile (kdump.py): Debian 12's
#: 1.7.2 leaves 6.12's slab pages out as if free.
KDUMP_KERNELS = {"6.1": None, "6.12": None, "5.10": ("seed", "abba-mutex"),
                 "6.12-rt": ("cycle3", "semaphore")}
#: how a dump is made
MADE = ("kdump", "snapshot")


class LabError(Exception):
    """A lab build step failed; the message says which and why."""


def series_of(kernel):
    """Return the series of ``kernel`` (a series such as ``6.12-rt`` or an ABI such as
    ``6.12.95+deb12-amd64``): ``5.10``, ``6.1``, ``6.12``, ``6.12-rt``, ``7``..."""
    m = re.match(r"(\d+)\.(\d+)", kernel)
    if not m:
        return kernel
    series = "7" if m.group(1) == "7" else "%s.%s" % m.groups()
    return series + "-rt" if is_rt(kernel) else series


def made_by(kernel, scenario):
    """Return how the lab makes ``scenario``'s dump on ``kernel`` by default: ``kdump``
    for the scenarios of kdump.PLAN that KDUMP_KERNELS names on its kernels (dumps as
    users get them: a panic, the capture kernel, makedumpfile), ``snapshot`` otherwise
    (scale: 2,000 tasks for the hung-task detector to report and a 512 MB guest; the
    other scenarios of 5.10, 6.12-rt and 7)."""
    series = series_of(kernel)
    if series in KDUMP_KERNELS and scenario in kdump.PLAN and (
            KDUMP_KERNELS[series] is None or scenario in KDUMP_KERNELS[series]):
        return "kdump"
    return "snapshot"


def elapsed():
    """Return ``[m:ss]``: time since ``$CRASH_EXT_T0`` (set by the Makefile), or ``""``."""
    try:
        t = int(time.time() - float(os.environ["CRASH_EXT_T0"]))
    except (KeyError, ValueError):
        return ""
    return "[%d:%02d] " % (t // 60, t % 60)


def log(msg):
    print("%smklab: %s" % (elapsed(), msg), file=sys.stderr, flush=True)


def _is_dynamic(path):
    """Return True when the ELF file at ``path`` names a dynamic loader."""
    with open(path, "rb") as f:
        return b"/lib64/ld-linux" in f.read(1 << 20)


def check_tools():
    """Raise LabError naming the packages to install when a needed tool is missing."""
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if not shutil.which(cmd)})
    if not os.path.exists("/bin/busybox") or _is_dynamic("/bin/busybox"):
        missing.append("busybox-static")
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/libc.a"):
        missing.append("libc6-dev")
    if missing:
        raise LabError("missing tools; install them with: apt-get install %s"
                       % " ".join(sorted(set(missing))))


def fetch_kernel(kernel):
    """Return the kernel cache directory (vmlinuz, vmlinux, modules/, headers) for ``kernel``:
    an ABI (``6.1.0-56-amd64``) or a series (``6.1``: its newest generic ABI)."""
    cmd = [os.path.join(HERE, "fetch-kernel.sh"), kernel]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise LabError("fetching the kernel failed (see fetch-kernel output above)")
    return out.stdout.strip().splitlines()[-1]


def is_rt(kernel):
    """Return True when ``kernel`` (a series like ``6.12-rt`` or an ABI) is PREEMPT_RT."""
    return kernel.endswith("-rt") or "-rt-" in kernel


def why_not_staged(kernel, scenario):
    """Return why ``kernel`` (series or ABI) cannot stage ``scenario``, or None if it can."""
    return (NOT_ON_RT if is_rt(kernel) else RT_ONLY).get(scenario)


def small_scenarios(kernel):
    """Return the small scenarios ``kernel`` stages (PREEMPT_RT adds ``rt-spin`` and
    ``rw-abba``)."""
    extra = list(RT_ONLY) + (list(RT_SMALL) if is_rt(kernel) else [])
    return [s for s in SMALL + extra if not why_not_staged(kernel, s)]


def input_key(abi, scenario, n, made="snapshot"):
    """Return a short hash of every input that shapes this scenario's dump (a kdump
    dump's also its panic kind, compression and kdump.py's inputs)."""
    h = hashlib.sha256()
    h.update(("%s|%s|%s" % (abi, scenario, n if scenario == "scale" else "")).encode())
    for rel in ["mklab.py", "module/crashext_lab.c", "module/Kbuild", "guest/init",
                "guest/scenarios.sh", "guest/labctl.c", "cc-compat"]:
        with open(os.path.join(HERE, rel), "rb") as f:
            h.update(rel.encode() + b"\0" + f.read())
    if made == "kdump":
        h.update(("|kdump|%s|%s|" % kdump.plan(scenario)).encode() + kdump.key_material())
    return h.hexdigest()[:16]


def module_cc(kdir):
    """Return the ``CC=`` override for building against the headers at ``kdir``: None when
    the compiler they name (``.kernelvariables``, e.g. ``gcc-10`` on bullseye, ``gcc-16``
    on sid) is on PATH, else ``cc-compat`` beside this script (the host's gcc, with the
    few newer options it lacks mapped to older ones)."""
    try:
        with open(os.path.join(kdir, ".kernelvariables")) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"^CC\s*=.*?\b((?:gcc|clang)(?:-\d+)?)\s*$", text, re.M)
    if not m or shutil.which(m.group(1)):
        return None
    return os.path.join(HERE, "cc-compat")


def build_module(kernel_dir, outdir):
    """Build crashext_lab.ko against the kernel's extracted headers into ``outdir``;
    return its path."""
    with open(os.path.join(kernel_dir, "kdir")) as f:
        kdir = f.read().strip()
    if not os.path.isdir(kdir):
        raise LabError("no kernel headers at %s; remove %s and rebuild" % (kdir, kernel_dir))
    src = os.path.join(outdir, "module-build")
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(os.path.join(HERE, "module"), src)
    # no BTF for the lab module (crash reads its DWARF): sid's headers ask for pahole
    # options the host's pahole lacks
    cmd = ["make", "-C", kdir, "M=" + src, "modules", "CONFIG_DEBUG_INFO_BTF_MODULES="]
    cc = module_cc(kdir)
    if cc:
        cmd.append("CC=" + cc)
    r = subprocess.run(cmd, capture_output=True, text=True)
    ko = os.path.join(src, "crashext_lab.ko")
    # compiler warnings (FILE:LINE:COL: warning:) fail the build; kbuild's notices such as
    # "warning: pahole version differs" (sid's headers) do not
    warned = re.search(r"^\S+:\d+:\d+: warning:", r.stderr, re.M)
    if r.returncode != 0 or not os.path.exists(ko) or warned:
        raise LabError("module build failed:\n" + r.stdout[-2000:] + r.stderr[-4000:])
    dest = os.path.join(outdir, "crashext_lab.ko")
    shutil.copy(ko, dest)
    shutil.rmtree(src)
    return dest


def build_labctl(outdir):
    """Compile the static guest helper; return its path."""
    dest = os.path.join(outdir, "labctl")
    r = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", dest,
                        os.path.join(HERE, "guest", "labctl.c")], capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError("labctl build failed:\n" + r.stderr)
    return dest


def cpio_entry(name, mode, data=b"", rdev=(0, 0), ino=[1]):
    """Return one newc cpio entry (header, name, data, padded) for an initramfs."""
    ino[0] += 1
    namez = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in [
        ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(namez), 0])
    out = hdr.encode() + namez
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)


def build_initramfs(kdir, ko, labctl, dest, extra=()):
    """Write a gzip'd newc cpio with busybox, labctl, the modules, init and scenarios
    (and ``extra`` cpio entries: a kdump guest's)."""
    files = []

    def add_file(path, src, mode=0o755):
        with open(src, "rb") as f:
            files.append(cpio_entry(path, stat.S_IFREG | mode, f.read()))

    for d in ["bin", "dev", "lib", "proc", "sys", "tmp"]:
        files.append(cpio_entry(d, stat.S_IFDIR | 0o755))
    files.append(cpio_entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    add_file("bin/busybox", "/bin/busybox")
    for a in BUSYBOX_APPLETS:
        files.append(cpio_entry("bin/" + a, stat.S_IFLNK | 0o777, b"busybox"))
    add_file("bin/labctl", labctl)
    add_file("init", os.path.join(HERE, "guest", "init"))
    add_file("lib/scenarios.sh", os.path.join(HERE, "guest", "scenarios.sh"), 0o644)
    add_file("lib/crashext_lab.ko", ko, 0o644)
    add_file("lib/qemu_fw_cfg.ko", os.path.join(kdir, "modules", "qemu_fw_cfg.ko"), 0o644)
    files.extend(extra)
    files.append(cpio_entry("TRAILER!!!", 0))
    with gzip.open(dest, "wb", compresslevel=1) as f:
        f.write(b"".join(files))


class QMP:
    """A minimal QMP client over a unix socket (one command at a time)."""

    def __init__(self, path, timeout=60):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise LabError("QMP socket %s never came up" % path)
                time.sleep(0.1)
        self.buf = b""
        self._recv()
        self.execute("qmp_capabilities")

    def _recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise LabError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, cmd, timeout=600, **args):
        """Run a QMP command; return its "return" value; raise LabError on "error"."""
        self.sock.settimeout(timeout)
        self.sock.sendall(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
        while True:
            msg = self._recv()
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise LabError("QMP %s: %s" % (cmd, msg["error"].get("desc")))


def _console(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _qemu_exited(proc, console, scenario, stage):
    """Return the LabError for QEMU ending before ``stage`` was reached, with QEMU's
    words and the console's tail (the whole console is kept: _keep_failed_console).
    QEMU exits 0 when the guest resets (-no-reboot): a panic (panic=-1) or a triple
    fault; the console tells them apart."""
    text = _console(console)
    err = proc.stderr.read().decode(errors="replace")[-2000:]
    return LabError("%s: QEMU exited (%s) before %s: %s\nconsole tail:\n%s" % (
        scenario, proc.returncode, stage, err, text[-3000:]))


def run_guest(kdir, initrd, scenario, n, outdir, timeout, made="snapshot"):
    """Boot the guest for ``scenario``; dump it (snapshot), or let it panic and its
    capture kernel write the dump (kdump); return (console text, dump path): the ELF
    vmcore (snapshot) or makedumpfile's flattened stream (kdump)."""
    console = os.path.join(outdir, "console.log")
    qmp_path = os.path.join(tempfile.mkdtemp(prefix="crash-ext-qmp-"), "qmp.sock")
    mem = "512M" if scenario == "scale" else "256M"
    append = "console=ttyS0 quiet loglevel=1 panic=-1 lab.scenario=%s lab.n=%d" % (scenario, n)
    serial = ["-serial", "file:" + console]
    vmcore = os.path.join(outdir, scenario + ".vmcore")
    if made == "kdump":
        mem = kdump.MEMORY
        append += " " + kdump.kernel_args(scenario)
        vmcore = os.path.join(outdir, scenario + ".flat")
        kdump.new_disk(vmcore)
        serial += ["-drive", "file=%s,format=raw,if=virtio" % vmcore]
    accel = os.environ.get("CRASH_EXT_LAB_ACCEL", "tcg")
    cmd = ["qemu-system-x86_64", "-accel", accel, "-smp", "2", "-m", mem, "-display", "none",
           "-no-reboot", "-kernel", os.path.join(kdir, "vmlinuz"), "-initrd", initrd,
           "-append", append, "-device", "vmcoreinfo"] + serial + [
           "-qmp", "unix:%s,server=on,wait=off" % qmp_path, "-monitor", "none"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        qmp = QMP(qmp_path)
        deadline = time.time() + timeout
        text = ""
        while "LAB-DONE" not in text:
            if proc.poll() is not None:
                raise _qemu_exited(proc, console, scenario, "LAB-DONE")
            if time.time() > deadline:
                raise LabError("%s: guest did not finish staging within %ds; console tail:\n%s"
                               % (scenario, timeout, text[-3000:]))
            time.sleep(0.5)
            text = _console(console)
        if "LAB-FAILED" in text:
            raise LabError("%s: staging failed:\n%s" % (scenario, text[text.find("LAB-FAILED"):]))
        if made == "kdump":
            text = _await_capture(proc, console, scenario, kdump.CAPTURE_TIMEOUT)
        else:
            qmp.execute("dump-guest-memory", paging=False, protocol="file:" + vmcore)
            qmp.execute("quit")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(os.path.dirname(qmp_path), ignore_errors=True)
    return text, vmcore


def _await_capture(proc, console, scenario, timeout):
    """Wait for a kdump guest to panic, its capture kernel to write the dump and reboot
    (QEMU then exits: -no-reboot); return the console text."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise LabError("%s: no dump written within %ds of staging; console tail:\n%s"
                       % (scenario, timeout, _console(console)[-3000:]))
    text = _console(console)
    m = re.search(r"LAB-CAPTURE-END (\d+)", text)
    if not m or m.group(1) != "0":
        raise LabError("%s: the capture kernel did not write the dump (%s); console tail:\n%s"
                       % (scenario, "makedumpfile exit code %s" % m.group(1) if m else
                          "no LAB-CAPTURE-END", text[-3000:]))
    return text


#: a kernel log line on the console (``[    4.549588] sysrq: Trigger a crash``)
_PRINTK = re.compile(r"^\[\s*\d+\.\d+\] .*$", re.M)


def extract_truth(console_text):
    """Return the module's truth JSON (dict) printed between the LAB-TRUTH markers.

    Kernel log lines inside the block are left out: a kdump guest's sysrq panic prints
    straight to the serial port while the init's ``cat`` of the truth may still sit in
    the tty's buffer (seen once: the panic's first lines before the truth's last)."""
    try:
        body = console_text.split("LAB-TRUTH-BEGIN", 1)[1].split("LAB-TRUTH-END", 1)[0]
        truth = json.loads(_PRINTK.sub("", body))
    except (IndexError, ValueError) as e:
        raise LabError("no readable truth on the console: %s" % e)
    if not truth.get("verified"):
        raise LabError("the module could not verify its own truth: %s"
                       % truth.get("verify_message"))
    return truth


def scenario_dir(abi, scenario, n, made="snapshot"):
    """Return the cache directory of one scenario's dump (it may not exist yet):
    ``SCENARIO-KEY`` (snapshot) or ``SCENARIO-kdump-KEY``."""
    name = scenario if scenario != "scale" else "scale-n%d" % n
    if made == "kdump":
        name += "-kdump"
    return os.path.join(CACHE, "lab", abi, "%s-%s" % (name, input_key(abi, scenario, n, made)))


#: dumps of other inputs used this recently are kept: other checkouts (branches, worktrees,
#: CI's clone) of a different lab version may be using them right now
KEEP_OTHER_KEYS_SECONDS = 2 * 86400


def _prune_stale(dest):
    """Remove dumps (and their working copies) of the same scenario built from other
    inputs and not used for KEEP_OTHER_KEYS_SECONDS (:func:`build_scenario` touches a
    dump's meta.json each time it hands it out)."""
    prefix = dest.rsplit("-", 1)[0] + "-"
    for old in glob.glob(prefix + "*"):
        try:
            idle = time.time() - os.path.getmtime(os.path.join(old, "meta.json"))
        except OSError:
            idle = KEEP_OTHER_KEYS_SECONDS + 1
        if idle <= KEEP_OTHER_KEYS_SECONDS:
            continue
        if old != dest and not old.endswith(".tmp") and old[len(prefix):].isalnum():
            for zst in glob.glob(os.path.join(old, "*.vmcore.zst")):
                for copy in decompressed_copies(zst):
                    os.unlink(copy)
            shutil.rmtree(old, ignore_errors=True)


def build_scenario(abi, kdir, scenario, n, shared, made="snapshot"):
    """Build (or reuse) one scenario's dump; return its directory.  Concurrent builders
    (parallel test runs) are serialised by a lock file, so a dump is built once."""
    dest = scenario_dir(abi, scenario, n, made)
    meta = os.path.join(dest, "meta.json")
    if os.path.exists(meta):
        os.utime(meta)              # in use: see _prune_stale
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(os.path.join(os.path.dirname(dest), ".build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(dest, "meta.json")):
            return dest
        # every failed staging's console is kept; only a guest whose kernel died while
        # booting, before anything of the lab ran, is staged again (died_booting)
        for attempt in range(BOOT_RETRIES + 1):
            try:
                return _build_scenario_locked(abi, kdir, scenario, n, shared, dest, made)
            except LabError as e:
                text = _console(os.path.join(dest + ".tmp", "console.log"))
                kept = _keep_failed_console(dest, abi, scenario, made, e)
                why = died_booting(text)
                if why is None or attempt == BOOT_RETRIES:
                    raise LabError("%s (console kept: %s)" % (e, kept))
                log("%s: the guest's kernel died while booting, before the lab's init "
                    "loaded a module (%s): staging it again (console kept: %s)"
                    % (scenario, why, kept))


#: stagings of one scenario retried after a guest died while booting (died_booting)
BOOT_RETRIES = 2
_OOPS = re.compile(r"^\[\s*\d+\.\d+\] (Oops: .*|BUG: .*|Kernel panic - not syncing: .*)$",
                   re.M)
_MODULES = re.compile(r"^\[\s*\d+\.\d+\] Modules linked in:(.*)$", re.M)


def died_booting(console_text):
    """Return the first oops or panic line of a guest whose kernel died while booting,
    before the lab's init loaded any module (the oops's "Modules linked in:" is empty):
    nothing of the lab had run, so staging again is sound.  None for any other console
    (a failure of the lab's own making is never retried).

    Seen on QEMU TCG with two vCPUs (6.12.95, a loaded 2-core host): ``Oops: int3`` in
    ``sched_clock_cpu`` at 1.4 s, while the kernel patched a static branch with its
    int3 breakpoint protocol (text_poke_bp) and the other vCPU still ran the int3 that
    the patching had already removed: the emulator's cross-modifying code, not the
    kernel (it does not happen on hardware or KVM).  QEMU then exits 0 (panic=-1,
    -no-reboot) before LAB-DONE."""
    oops = _OOPS.search(console_text)
    if oops is None:
        return None
    mods = _MODULES.search(console_text)
    if mods is None or mods.group(1).strip():
        return None
    return oops.group(1)


def _keep_failed_console(dest, abi, scenario, made, err):
    """Copy a failed staging's console (and the error) under the cache's logs
    directory; return the copy's path."""
    logs = os.path.join(CACHE, "logs", "lab-failed")
    os.makedirs(logs, exist_ok=True)
    path = os.path.join(logs, "%s-%s-%s-%s.log" % (abi, scenario, made,
                                                   time.strftime("%Y%m%dT%H%M%S")))
    with open(path, "w") as f:
        f.write("mklab: %s\n\n---- console ----\n" % err)
        f.write(_console(os.path.join(dest + ".tmp", "console.log")))
    return path


def _build_scenario_locked(abi, kdir, scenario, n, shared, dest, made="snapshot"):
    if "initrd" not in shared:
        shared["tmp"] = tempfile.mkdtemp(prefix="crash-ext-lab-")
        shared["ko"] = build_module(kdir, shared["tmp"])
        shared["labctl"] = build_labctl(shared["tmp"])
        shared["initrd"] = os.path.join(shared["tmp"], "initrd.gz")
        build_initramfs(kdir, shared["ko"], shared["labctl"], shared["initrd"])
    if made == "kdump" and "kdump_initrd" not in shared:
        kdump.check_tools()
        capture = os.path.join(shared["tmp"], "capture.gz")
        kdump.build_capture_initramfs(kdir, capture)
        shared["kdump_initrd"] = os.path.join(shared["tmp"], "initrd-kdump.gz")
        build_initramfs(kdir, shared["ko"], shared["labctl"], shared["kdump_initrd"],
                        kdump.first_kernel_entries(kdir, capture))
    work = dest + ".tmp"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    t0 = time.time()
    log("staging %s%s%s" % (scenario, " (N=%d)" % n if scenario == "scale" else "",
                            " (kdump: %s, %s)" % kdump.plan(scenario) if made == "kdump" else ""))
    initrd = shared["kdump_initrd" if made == "kdump" else "initrd"]
    text, vmcore = run_guest(kdir, initrd, scenario, n, work,
                             timeout=1200 if scenario == "scale" else 240, made=made)
    truth = extract_truth(text)
    with open(os.path.join(work, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    shutil.copy(shared["ko"], os.path.join(work, "crashext_lab.ko"))
    extra = {}
    if made == "kdump":
        dumpname = scenario + ".kdump"
        try:
            kdump.unflatten(vmcore, os.path.join(work, dumpname))
        except kdump.KdumpError as e:
            raise LabError("%s: %s" % (scenario, e))
        panic, comp = kdump.plan(scenario)
        extra = {"panic": panic, "compression": comp, "filter": "-d 31",
                 "memory": kdump.MEMORY, "crashkernel": kdump.CRASHKERNEL,
                 "tools": kdump.tool_versions()}
        os.unlink(vmcore)
    else:
        dumpname = scenario + ".vmcore.zst"
        if subprocess.run(["zstd", "-qf", "-T0", "-3", "--rm", vmcore]).returncode != 0:
            raise LabError("%s: compressing %s failed" % (scenario, vmcore))
    qemu_version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                                  text=True).stdout.splitlines()[0]
    meta = {"scenario": scenario, "kernel_abi": abi, "n": n if scenario == "scale" else None,
            "key": input_key(abi, scenario, n, made), "qemu": qemu_version,
            "accel": os.environ.get("CRASH_EXT_LAB_ACCEL", "tcg"), "made": made,
            "vmlinux": os.path.join(kdir, "vmlinux"), "vmcore": dumpname,
            # the name older readers (crash_ext.dumpfiles) look for; not always zstd
            "vmcore_zst": dumpname,
            "bytes": os.path.getsize(os.path.join(work, dumpname)),
            "seconds": round(time.time() - t0, 1), "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
    meta.update(extra)
    with open(os.path.join(work, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(work, dest)
    _prune_stale(dest)
    log("%s done in %.0fs" % (scenario, time.time() - t0))
    return dest


def build(scenarios, n=DEFAULT_N, kernel=DEFAULT_KERNEL, made=None):
    """Build (or reuse) the dumps of ``scenarios`` on ``kernel`` (a series like ``6.1`` or
    an ABI); return {scenario: directory}.  ``made``: ``kdump`` or ``snapshot``, default
    :func:`made_by` per scenario."""
    check_tools()
    bad = {s: why_not_staged(kernel, s) for s in scenarios if why_not_staged(kernel, s)}
    if bad:
        raise LabError("kernel %s cannot stage %s" % (kernel, "; ".join(
            "%s: %s" % kv for kv in sorted(bad.items()))))
    kdir = fetch_kernel(kernel)
    with open(os.path.join(kdir, "abi")) as f:
        abi = f.read().strip()
    shared = {}
    try:
        return {s: build_scenario(abi, kdir, s, n, shared, made or made_by(kernel, s))
                for s in scenarios}
    finally:
        if "tmp" in shared:
            shutil.rmtree(shared["tmp"], ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--scenario", action="append", choices=SCENARIOS,
                   help="scenario to build (repeatable; default: all the kernel stages)")
    p.add_argument("--small", action="store_true",
                   help="the small scenarios the kernel stages (all but scale)")
    p.add_argument("--n", type=int, default=DEFAULT_N, help="blocked tasks in 'scale'")
    p.add_argument("--kernel", default=DEFAULT_KERNEL,
                   help="series (5.10, 6.1, 6.12, 7, or SERIES-rt: the newest generic or "
                        "PREEMPT_RT ABI in its suite's package index) or an ABI like "
                        "6.1.0-56-amd64 (default: %(default)s)")
    p.add_argument("--made", choices=MADE,
                   help="make every dump this way (default: kdump for the small scenarios "
                        "on %s and some on %s, snapshot otherwise)" % (
                            ", ".join(k for k, v in KDUMP_KERNELS.items() if v is None),
                            ", ".join(k for k, v in KDUMP_KERNELS.items() if v)))
    a = p.parse_args(argv)
    if a.n < 30:
        p.error("--n must be at least 30")
    try:
        wanted = a.scenario or (small_scenarios(a.kernel) if a.small else
                                [s for s in SCENARIOS if not why_not_staged(a.kernel, s)])
        if a.made == "kdump":
            for s in wanted:
                kdump.plan(s)
        for s, d in build(wanted, a.n, a.kernel, a.made).items():
            print(s, d)
    except (LabError, kdump.KdumpError) as e:
        print("mklab: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
