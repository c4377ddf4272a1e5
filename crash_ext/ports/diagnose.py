"""Why crash could not open a dump, in one line: :func:`explain_start_failure`.

crash prints a screenful while it starts (banner, gdb's, warnings) and, when it cannot
go on, one key error line somewhere in it.  These functions pick that line, say in
plain words which input is wrong and what to check, and quote crash's line (cut to a
readable length).  :func:`startup_warning` does the same for a dump crash opens with a
warning that it is incomplete.  Outside crash only (``crash-ext``); never raises.
"""

import os
import re
from ..compat import List, Optional

__all__ = ["explain_start_failure", "startup_warning", "key_line"]

_QUOTE_MAX = 160

# compressed-file magics a vmcore is sometimes given as by mistake
_MAGICS = [(b"\x28\xb5\x2f\xfd", "zstd", "zstd -d"), (b"\x1f\x8b", "gzip", "gunzip"),
           (b"\xfd7zXZ\x00", "xz", "xz -d"), (b"BZh", "bzip2", "bunzip2"),
           (b"\x04\x22\x4d\x18", "lz4", "lz4 -d")]


def _magic(path: Optional[str]) -> Optional[tuple]:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    for m, name, cmd in _MAGICS:
        if head.startswith(m):
            return name, cmd
    return None


def _q(line: str) -> str:
    s = " ".join(line.split())
    if len(s) > _QUOTE_MAX:
        s = s[:_QUOTE_MAX - 3] + "..."
    return '"%s"' % s


def key_line(output: str, patterns: List[str]) -> Optional[str]:
    """Return the first line of ``output`` matching one of ``patterns`` (regexes, in
    order of preference), else the last line starting ``crash:``, else None."""
    lines = [l.strip() for l in (output or "").splitlines() if l.strip()]
    for p in patterns:
        rx = re.compile(p)
        for l in lines:
            if rx.search(l):
                return l
    for l in reversed(lines):
        if l.startswith("crash:"):
            return l
    return None


def _name(path: Optional[str], what: str) -> str:
    return "%s %s" % (what, path) if path else what


def explain_start_failure(output: str, vmlinux: Optional[str], vmcore: Optional[str],
                          crash: str = "crash") -> str:
    """Return one line saying why crash (``crash``, started on ``vmlinux`` and
    ``vmcore``) failed to start, from its start-up ``output``: which input is wrong,
    what to check, crash's own key line quoted."""
    out = output or ""
    line = key_line(out, [r"do not match", r"not a supported file format",
                          r"No such file or directory", r"no debugging data",
                          r"Permission denied", r"may be truncated or incomplete",
                          r"read error", r"cannot (read|open|determine|find)",
                          r"invalid|failed"])
    quoted = " (crash: %s)" % _q(line) if line else ""
    if re.search(r"do not match", out):
        return ("the vmlinux does not match the dump: give the debug vmlinux of the very "
                "kernel build that wrote %s (same release and build as its "
                "VMCOREINFO/`crash --osrelease`)%s" % (_name(vmcore, "the dump"), quoted))
    if re.search(r"not a supported file format", out):
        m = re.search(r"(\S+): not a supported file format", out)
        bad = m.group(1) if m else vmcore
        comp = _magic(bad) or _magic(vmcore)
        if comp is not None:
            return ("%s is %s-compressed: crash reads vmcores uncompressed; decompress it "
                    "first (%s FILE) and give the result as --vmcore%s"
                    % (_name(bad, "the dump"), comp[0], comp[1], quoted))
        if vmlinux and bad and os.path.abspath(bad) == os.path.abspath(vmlinux):
            return ("crash does not recognise %s as a kernel: check that --vmlinux is an "
                    "uncompressed vmlinux with debug info%s" % (bad, quoted))
        return ("crash does not recognise the format of %s: check that it is a complete "
                "vmcore (ELF or kdump-compressed) and that --vmlinux and --vmcore are not "
                "swapped%s" % (_name(bad, "the dump"), quoted))
    if re.search(r"No such file or directory", out):
        return "a file crash was given does not exist: check --vmlinux and --vmcore%s" \
            % quoted
    if re.search(r"no debugging data", out):
        return ("%s has no debug information: give the vmlinux with DWARF (the -dbg/"
                "debuginfo package's)%s" % (_name(vmlinux, "the vmlinux"), quoted))
    if re.search(r"Permission denied", out):
        return "crash cannot read a file it was given: check permissions%s" % quoted
    if re.search(r"may be truncated or incomplete", out):
        return ("%s is truncated (shorter than its ELF headers say): it was cut while "
                "being written or copied; copy it again or check the disk it was saved "
                "on%s" % (_name(vmcore, "the dump"), quoted))
    if re.search(r"cannot run|No such file", out) or not out.strip():
        return "crash did not start: check --crash (%s) and the files%s" % (crash, quoted)
    return ("crash could not open %s with %s: check that they belong together and that "
            "the dump is complete%s" % (_name(vmcore, "the dump"),
                                          _name(vmlinux, "the vmlinux"), quoted))


def startup_warning(output: str, vmcore: Optional[str]) -> Optional[str]:
    """Return one line warning that crash opened ``vmcore`` although it says the dump
    is incomplete (its start-up ``output``), or None when it said nothing of the
    kind."""
    out = output or ""
    if not re.search(r"may be truncated or incomplete", out):
        return None
    m = re.search(r"dumpfile size:\s*(\d+)", out)
    r = re.search(r"bytes required:\s*(\d+)", out)
    size = ""
    if m and r:
        size = " (%s of the %s bytes it should have)" % (m.group(1), r.group(1))
    line = key_line(out, [r"may be truncated or incomplete"])
    return ("%s is truncated%s: crash opened it, but memory past the cut reads as "
            "missing, so answers can be incomplete; copy the dump again if you can "
            "(crash: %s)" % (_name(vmcore, "the dump"), size, _q(line or "")))
