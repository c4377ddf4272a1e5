"""The files ``crash-ext`` hands to crash: the crash binary, compressed dumps, lab dumps.

Outside crash only (the console script): nothing here runs inside pykdump.

- :func:`find_crash`: ``--crash``, then ``$CRASH``, then the lab's own build (with
  ``--lab``), then ``crash`` on PATH.
- :func:`readable_dump`: a zstd- or gzip-compressed dump is decompressed once into the
  cache (``$CRASH_EXT_CACHE/run``, keyed by the file's path, size and time), since crash
  reads neither.
- :func:`find_lab_dump`: a lab dump (``tests/lab/mklab.py``) by scenario name, with the
  vmlinux and module it was made with.
"""

import glob
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import List, NamedTuple, Optional, Tuple

from ..core.errors import BadArgument, CrashDied
from ..core.words import shown

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"


def cache_dir() -> str:
    """Return crash-ext's cache directory (``$CRASH_EXT_CACHE``, ``~/.cache/crash-ext``)."""
    return os.environ.get("CRASH_EXT_CACHE") or os.path.expanduser("~/.cache/crash-ext")


def _version_key(path: str) -> Tuple[int, ...]:
    """Sort key of ``.../crash-8.0.6/crash`` by its version numbers."""
    ver = os.path.basename(os.path.dirname(path)).split("-", 1)[-1]
    return tuple(int(x) if x.isdigit() else 0 for x in ver.split("."))


def lab_crashes() -> List[str]:
    """Return the crash binaries the lab built (``$CACHE/crash-VERSION/crash``), newest
    version first."""
    found = [p for p in glob.glob(os.path.join(cache_dir(), "crash-*", "crash"))
             if os.access(p, os.X_OK)]
    return sorted(found, key=_version_key, reverse=True)


def find_crash(option: Optional[str], lab: bool = False) -> str:
    """Return the crash binary to run: ``option`` (``--crash``), else ``$CRASH``, else
    (``lab``) the newest crash the lab built, else ``crash`` on PATH.

    Raises CrashDied (exit code 3) naming ``--crash`` and ``CRASH=`` when the one asked
    for is not an executable file, or when none is found.
    """
    for how, path in (("--crash", option), ("CRASH=", os.environ.get("CRASH"))):
        if path:
            found = path if os.sep in path else shutil.which(path)
            if found and os.path.isfile(found) and os.access(found, os.X_OK):
                return found
            raise CrashDied("cannot run crash: %s%s is not an executable file (name one "
                            "with --crash PATH or CRASH=PATH)"
                            % (how if how == "CRASH=" else how + " ", shown(path)))
    if lab:
        built = lab_crashes()
        if built:
            return built[0]
    found = shutil.which("crash")
    if found:
        return found
    raise CrashDied("cannot run crash: no 'crash' on PATH; install it (apt-get install "
                    "crash; for Debian 12's 6.1 kernels build >= 8.0.4: "
                    "tests/lab/build-crash.sh) or name one with --crash PATH or CRASH=PATH")


def compression_of(path: str) -> Optional[str]:
    """Return ``"zstd"`` or ``"gzip"`` when the file starts with that format's magic,
    None otherwise (or when it cannot be read: crash will say why)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return None
    if head == ZSTD_MAGIC:
        return "zstd"
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    return None


def _copy_prefix(path: str) -> str:
    """Return the cache path prefix of decompressed copies of ``path`` (its name and a
    hash of its real path; the file's size and time complete it)."""
    real = os.path.realpath(path)
    stem = os.path.basename(real)
    for ext in (".zst", ".gz"):
        if stem.endswith(ext):
            stem = stem[:-len(ext)]
    return os.path.join(cache_dir(), "run", "%s-%s-" % (
        stem, hashlib.sha256(real.encode()).hexdigest()[:8]))


def decompressed_copies(path: str) -> List[str]:
    """Return the decompressed copies of compressed dump ``path`` in the cache."""
    return [p for p in glob.glob(glob.escape(_copy_prefix(path)) + "*")
            if not p.endswith(".tmp")]


def _size(n: int) -> str:
    """Return ``n`` bytes as a short size (``553 MB``)."""
    for unit, f in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= f:
            return "%.1f %s" % (n / f, unit) if n < 10 * f else "%d %s" % (n // f, unit)
    return "%d bytes" % n


#: seconds between two progress lines while a compressed dump is decompressed
PROGRESS_EVERY = 5.0


def _progress(say, tmp: str, read) -> None:
    """Tell ``say`` how far decompressing into ``tmp`` has come: the size written, and
    with ``read`` = (compressed bytes read, compressed size) the share done."""
    try:
        done = os.path.getsize(tmp)
    except OSError:
        return
    share = " (%d%% of the compressed file read)" % (100 * read[0] // read[1]) \
        if read and read[1] else ""
    say("... %s written%s" % (_size(done), share))


def readable_dump(path: str, say=None) -> str:
    """Return a path crash can read for dump ``path``: ``path`` itself, or for a zstd or
    gzip file its decompressed copy in the cache (made once; later calls reuse it while
    the compressed file keeps its size and time).

    ``say(line)``, when given, is told about the copy: before it is made (from what,
    where to), how far it has come every :data:`PROGRESS_EVERY` seconds, when it is
    done (its size) or reused, and how to remove it.
    Raises BadArgument when a zstd dump needs the ``zstd`` program and it is missing, or
    when decompressing fails (the message says how to do it by hand).
    """
    kind = compression_of(path)
    if kind is None:
        return path
    say = say or (lambda line: None)
    st = os.stat(path)
    prefix = _copy_prefix(path)
    dest = prefix + hashlib.sha256(("%d|%d" % (st.st_size, st.st_mtime_ns)).encode()
                                   ).hexdigest()[:8]
    if os.path.exists(dest):
        say("reading %s's decompressed copy %s (%s, made earlier; rm it to free the "
            "space)" % (path, dest, _size(os.path.getsize(dest))))
        return dest
    for old in decompressed_copies(path):     # copies of an older version of the file
        os.unlink(old)
    say("%s is %s-compressed (%s): decompressing it once into %s (later runs reuse "
        "it)..." % (path, kind, _size(st.st_size), dest))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = "%s.%d.tmp" % (dest, os.getpid())
    by_hand = ("zstd -d %s" if kind == "zstd" else "gunzip -k %s") % path
    try:
        if kind == "zstd":
            if not shutil.which("zstd"):
                raise BadArgument("%s is zstd-compressed and the zstd program is missing: "
                                  "apt-get install zstd, or decompress it yourself (%s)"
                                  % (shown(path), by_hand))
            with tempfile.TemporaryFile() as errs:
                proc = subprocess.Popen(["zstd", "-dqf", path, "-o", tmp],
                                        stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=errs)
                while True:
                    try:
                        proc.wait(timeout=PROGRESS_EVERY)
                        break
                    except subprocess.TimeoutExpired:
                        _progress(say, tmp, None)
                if proc.returncode != 0:
                    errs.seek(0)
                    raise BadArgument("cannot decompress %s: %s (try: %s)" % (
                        shown(path), errs.read().decode("utf-8", "replace").strip()[-200:],
                        by_hand))
        else:
            last = time.monotonic()
            with gzip.open(path, "rb") as src, open(tmp, "wb") as out:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    if time.monotonic() - last >= PROGRESS_EVERY:
                        last = time.monotonic()
                        _progress(say, tmp, (src.fileobj.tell(), st.st_size))
        os.rename(tmp, dest)
        say("decompressed %s: %s written; remove it with: rm %s" % (
            path, _size(os.path.getsize(dest)), dest))
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise BadArgument("cannot decompress %s: %s (try: %s)" % (shown(path), e, by_hand))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


class LabDumpFiles(NamedTuple):
    """What crash needs to open one lab dump."""
    scenario: str
    kernel_abi: str
    vmlinux: str
    vmcore: str          # compressed at rest; readable_dump() makes it readable
    module_ko: str
    directory: str


def _abi_is(abi: str, kernel: str) -> bool:
    """True when the kernel ABI ``abi`` (``6.12.95+deb12-rt-amd64``) is of ``kernel``: an
    ABI prefix ending at a version boundary (``6.1`` is not ``6.12``), or ``SERIES-rt``."""
    rt = kernel.endswith("-rt")
    series = kernel[:-3] if rt else kernel
    if rt and "-rt-" not in abi:
        return False
    return abi == series or abi.startswith(series + ".") or abi.startswith(series + "-") \
        or (not rt and abi.startswith(series) and not abi[len(series):len(series) + 1].isdigit())


def find_lab_dump(spec: str) -> LabDumpFiles:
    """Return the newest lab dump of ``spec``: ``SCENARIO`` (on Debian 12's 6.1 kernel
    when one exists) or ``SCENARIO@KERNEL`` (a kernel ABI prefix such as ``6.12``).

    Raises BadArgument saying how to build it when the cache has no such dump.
    """
    scenario, _, kernel = str(spec).partition("@")
    if not scenario or not all(c.isascii() and (c.isalnum() or c in "-_.")
                               for c in scenario + kernel):
        raise BadArgument("--lab takes SCENARIO or SCENARIO@KERNEL, not %s" % shown(spec))
    metas = []
    pattern = os.path.join(cache_dir(), "lab", "*", "%s-*" % scenario, "meta.json")
    for m in glob.glob(pattern):
        try:
            with open(m) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if meta.get("scenario") == scenario:
            metas.append((os.path.dirname(m), meta))
    if kernel:
        metas = [(d, m) for d, m in metas if _abi_is(m.get("kernel_abi", ""), kernel)]
    elif any(m.get("kernel_abi", "").startswith("6.1.") for _, m in metas):
        metas = [(d, m) for d, m in metas if m.get("kernel_abi", "").startswith("6.1.")]
    if not metas:
        raise BadArgument("no lab dump %s in %s; build it with 'make demo' (seed) or "
                          "'python3 tests/lab/mklab.py --scenario %s%s'"
                          % (shown(spec), os.path.join(cache_dir(), "lab"), scenario,
                             " --kernel " + kernel if kernel else ""))
    # the lab's own choice first: a kdump-made dump (tests/lab/mklab.py made_by), then
    # the newest
    d, meta = max(metas, key=lambda dm: (dm[1].get("made") == "kdump",
                                         dm[1].get("built", "")))
    return LabDumpFiles(scenario, meta["kernel_abi"], meta["vmlinux"],
                        os.path.join(d, meta["vmcore_zst"]),
                        os.path.join(d, "crashext_lab.ko"), d)
