"""The lab's kdump staging: dumps made the way users get them (issue 24).

The guest boots with a ``crashkernel=`` reservation, loads a capture kernel (the same
kernel) with Debian's ``kexec -p``, stages the scenario and prints the module's truth as
the snapshot path does, then panics by itself: through the hung-task detector
(``hung_task_panic=1`` on the command line; ``hung_task_timeout_secs`` is 0 while the
scenario is staged, then small) or through an admin's ``echo c > /proc/sysrq-trigger``.
The capture kernel runs trixie's ``makedumpfile -F -d 31`` with a compression on
``/proc/vmcore``, flattened (``-F``) onto a virtio disk (a sparse raw file on the host;
the capture initramfs carries the kernel's virtio block modules); the host turns that
flattened stream into a kdump-compressed file with the same ``makedumpfile -R``.  (A
second serial port works too, but moved 18 MB in 71 s under TCG: a byte per emulated
I/O.)  The makedumpfile is trixie's 1.7.6 (fetch-makedumpfile.sh, pinned in lab.lock),
not Debian 12's 1.7.2: 1.7.2 says "The kernel version is not supported" for 6.12 and
leaves its slab pages out as free (6.12 keeps PageSlab in page_type), and crash 8.0.6
then fails at start-up on 10 of 12 such dumps.  1.7.6 has zstd (``-z``) too, so the lab
rotates zlib, lzo and zstd (snappy is disabled in Debian's build).  It runs on Debian 12's
libraries (those ldd lists go into the capture initramfs).

The dump is filtered (zero, cache, user and free pages left out) and compressed page by
page: it stays as it is in the cache (already compressed at rest).
"""

import os
import re
import shutil
import stat
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))

#: makedumpfile's compression options in trixie's 1.7.6 (snappy: disabled there)
COMPRESSIONS = {"zlib": "-c", "lzo": "-l", "zstd": "-z"}
#: how each scenario's guest panics and compresses its dump: mostly the hung-task
#: detector (what a production hang turns into), the admin's sysrq-c for some, the three
#: compressions in turn
PLAN = {
    "seed": ("hung_task", "zlib"),
    "abba-mutex": ("sysrq", "lzo"),
    "cycle3": ("hung_task", "zstd"),
    "convoy": ("hung_task", "zlib"),
    "readers": ("hung_task", "lzo"),
    "semaphore": ("sysrq", "zstd"),
    "global-sems": ("hung_task", "zlib"),
    "wrapper": ("hung_task", "lzo"),
    "rwsem-readers": ("sysrq", "zstd"),
    "rt-spin": ("hung_task", "zstd"),
    "flush-work": ("hung_task", "lzo"),
    "kthread-stop": ("sysrq", "zlib"),
    "flush-wq": ("hung_task", "zstd"),
}
#: guest memory and the capture kernel's reservation out of it
MEMORY = "1G"
CRASHKERNEL = "256M"
#: the hung-task detector once the scenario is staged: report a task blocked this long,
#: checking this often (seconds)
HUNG_TASK_TIMEOUT = 2
HUNG_TASK_INTERVAL = 1
#: files whose content shapes a kdump dump beyond the snapshot path's inputs
KEY_FILES = ["kdump.py", "guest/kdump.sh", "guest/capture-init"]
#: seconds from the truth on the console to QEMU ending after the capture
CAPTURE_TIMEOUT = 900
CAPTURE_APPLETS = ["sh", "mount", "cat", "echo", "sync", "insmod"]
#: the capture kernel's dump disk: its modules (those a kernel lacks or builds in are
#: skipped: fetch-kernel.sh; loaded in the order their ``depends=`` asks) and the size of
#: the sparse file behind it
DISK_MODULES = ["virtio", "virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
                "virtio_pci", "virtio_blk"]
DISK_BYTES = 1 << 30


class KdumpError(Exception):
    """A kdump step failed; the message says which and why."""


def plan(scenario):
    """Return (panic kind, compression) of ``scenario`` (KdumpError if it has none)."""
    try:
        return PLAN[scenario]
    except KeyError:
        raise KdumpError("no kdump plan for scenario %s" % scenario)


def check_tools():
    """Raise KdumpError naming the packages when kexec or Debian 12's makedumpfile is
    missing (the lab runs trixie's makedumpfile, on the libraries Debian 12's brings)."""
    missing = [pkg for cmd, pkg in (("kexec", "kexec-tools"), ("makedumpfile", "makedumpfile"))
               if not _which(cmd)]
    if missing:
        raise KdumpError("missing tools for kdump dumps; install them with: apt-get "
                         "install %s (tests/lab/deps.sh)" % " ".join(missing))


def _which(cmd):
    return shutil.which(cmd) or shutil.which(cmd, path="/usr/sbin:/sbin")


_makedumpfile = []  # trixie's binary, found once per process


def makedumpfile():
    """Return the path of the makedumpfile the guests and ``-R`` run: trixie's, as
    lab.lock pins it (fetch-makedumpfile.sh fetches it once); KdumpError when it cannot
    be fetched."""
    if not _makedumpfile:
        r = subprocess.run([os.path.join(HERE, "fetch-makedumpfile.sh")],
                           stdout=subprocess.PIPE, text=True)
        path = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        if r.returncode != 0 or not os.access(path, os.X_OK):
            raise KdumpError("fetching trixie's makedumpfile failed (see "
                             "fetch-makedumpfile's output above)")
        _makedumpfile.append(path)
    return _makedumpfile[0]


def tool_versions():
    """Return the kexec and makedumpfile versions that go into the guest; KdumpError
    naming the packages when one is missing."""
    check_tools()
    out = {}
    for cmd, path in (("kexec", _which("kexec")), ("makedumpfile", makedumpfile())):
        r = subprocess.run([path, "-v"], capture_output=True, text=True)
        out[cmd] = (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr) \
            else "?"
    return out


def key_material():
    """Return bytes that change whenever a kdump input beyond the snapshot's changes."""
    parts = []
    for rel in KEY_FILES:
        with open(os.path.join(HERE, rel), "rb") as f:
            parts.append(rel.encode() + b"\0" + f.read())
    v = tool_versions()
    parts.append(("%s|%s|%s|%s|%d|%d" % (v["kexec"], v["makedumpfile"], MEMORY, CRASHKERNEL,
                                         HUNG_TASK_TIMEOUT, HUNG_TASK_INTERVAL)).encode())
    return b"\0".join(parts)


def shared_libs(binary):
    """Return [(path in the guest, real file on the host)] of the libraries and loader
    ``ldd`` lists for ``binary``."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if r.returncode != 0:
        raise KdumpError("ldd %s failed: %s" % (binary, r.stderr.strip()))
    out = []
    for line in r.stdout.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            out.append((m.group(1).lstrip("/"), os.path.realpath(m.group(1))))
        elif "not found" in line:
            raise KdumpError("ldd %s: %s" % (binary, line.strip()))
    return out


def _with_dirs(entry, files, seen):
    """Add the cpio directory entries ``path``'s parents need, once each."""
    parts = entry.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        if d not in seen:
            seen.add(d)
            files.append(_cpio()(d, stat.S_IFDIR | 0o755))


def _cpio():
    from tests.lab import mklab
    return mklab.cpio_entry


def program_entries(binary, dest, seen):
    """Return cpio entries for ``binary`` at ``dest`` and the libraries ldd lists."""
    out = []
    for path, src in [(dest, binary)] + shared_libs(binary):
        _with_dirs(path, out, seen)
        with open(src, "rb") as f:
            out.append(_cpio()(path, stat.S_IFREG | 0o755, f.read()))
    return out


def module_order(moddir, names):
    """Return those of ``names`` present in ``moddir`` as NAME.ko, each after the
    modules its ``depends=`` (modinfo) names."""
    deps = {}
    for m in names:
        path = os.path.join(moddir, m + ".ko")
        if os.path.exists(path):
            with open(path, "rb") as f:
                found = re.search(rb"\0depends=([^\0]*)\0", f.read())
            deps[m] = [d.decode() for d in found.group(1).split(b",") if d] if found else []
    out = []

    def visit(m, path=()):
        if m in out or m not in deps or m in path:
            return
        for d in deps[m]:
            visit(d, path + (m,))
        out.append(m)
    for m in names:
        visit(m)
    return out


def build_capture_initramfs(kdir, dest):
    """Write the capture kernel's initramfs: busybox, makedumpfile and its libraries,
    the virtio block modules, the capture init."""
    entry = _cpio()
    seen = {"bin", "dev", "proc", "tmp", "sys", "lib"}
    files = [entry(d, stat.S_IFDIR | 0o755) for d in sorted(seen)]
    files.append(entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    with open("/bin/busybox", "rb") as f:
        files.append(entry("bin/busybox", stat.S_IFREG | 0o755, f.read()))
    for a in CAPTURE_APPLETS:
        files.append(entry("bin/" + a, stat.S_IFLNK | 0o777, b"busybox"))
    files += program_entries(makedumpfile(), "bin/makedumpfile", seen)
    mods = module_order(os.path.join(kdir, "modules"), DISK_MODULES)
    for m in mods:
        with open(os.path.join(kdir, "modules", m + ".ko"), "rb") as f:
            files.append(entry("lib/%s.ko" % m, stat.S_IFREG | 0o644, f.read()))
    if "virtio_blk" not in mods:
        raise KdumpError("no virtio_blk module in %s/modules (fetch-kernel.sh extracts it)"
                         % kdir)
    files.append(entry("lib/modules.order", stat.S_IFREG | 0o644,
                       ("\n".join(mods) + "\n").encode()))
    with open(os.path.join(HERE, "guest", "capture-init"), "rb") as f:
        files.append(entry("init", stat.S_IFREG | 0o755, f.read()))
    files.append(entry("TRAILER!!!", 0))
    import gzip
    with gzip.open(dest, "wb", compresslevel=6) as f:
        f.write(b"".join(files))


def first_kernel_entries(kdir, capture_initrd):
    """Return the cpio entries the first kernel's initramfs adds for kdump: kexec and
    its libraries, the capture kernel and its initramfs, the guest's kdump.sh."""
    entry = _cpio()
    seen = {"bin", "dev", "lib", "proc", "sys", "tmp"}
    files = program_entries(_which("kexec"), "bin/kexec", seen)
    files.append(entry("boot", stat.S_IFDIR | 0o755))
    for name, src in (("boot/vmlinuz", os.path.join(kdir, "vmlinuz")),
                      ("boot/capture.gz", capture_initrd)):
        with open(src, "rb") as f:
            files.append(entry(name, stat.S_IFREG | 0o644, f.read()))
    with open(os.path.join(HERE, "guest", "kdump.sh"), "rb") as f:
        files.append(entry("lib/kdump.sh", stat.S_IFREG | 0o644, f.read()))
    return files


def kernel_args(scenario):
    """Return the first kernel's extra command line for ``scenario``'s kdump staging."""
    panic, comp = plan(scenario)
    return ("crashkernel=%s hung_task_panic=1 lab.kdump=%s,%s,%d,%d"
            % (CRASHKERNEL, panic, COMPRESSIONS[comp], HUNG_TASK_TIMEOUT, HUNG_TASK_INTERVAL))


def new_disk(path):
    """Create the capture kernel's dump disk: a sparse file of DISK_BYTES."""
    with open(path, "wb") as f:
        f.truncate(DISK_BYTES)


def unflatten(flat, dest):
    """Turn makedumpfile's flattened stream ``flat`` into a kdump-compressed ``dest``
    (``makedumpfile -R``); raise KdumpError with its words when it fails."""
    if not os.path.exists(flat) or os.path.getsize(flat) == 0:
        raise KdumpError("the capture kernel wrote no dump")
    with open(flat, "rb") as f:
        head = f.read(12)
    if head != b"makedumpfile":
        raise KdumpError("the capture kernel's output is not a flattened makedumpfile "
                         "stream")
    with open(flat, "rb", buffering=0) as f:
        r = subprocess.run([makedumpfile(), "-R", dest], stdin=f,
                           capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(dest):
        raise KdumpError("makedumpfile -R failed: %s" % (r.stdout + r.stderr).strip()[-1500:])
