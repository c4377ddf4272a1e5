"""Files crash-ext writes (``deadlock --dot/--svg``): where it may write, and how.

Rules (issue 17): an output is never the dump, the vmlinux or a module crash loaded
(compared by device and inode, so symlinks and hard links are caught too), and never
an existing file unless it is a previous output of ours *and* ``--force`` was given.
Ours are recognised by :data:`MARKER` near their start: DOT files begin with it as a
comment, SVG files carry it as an XML comment right after the XML declaration.
A new picture is written to a temporary file beside the target and renamed over it,
so a failed write leaves nothing half-written under the user's name.
"""

import os
from ..compat import Iterable

from ..core.errors import BadArgument, CrashExtError
from ..core.words import check_path_word, shown

__all__ = ["MARKER", "is_our_output", "check_output_path",
           "write_output", "mark_svg", "dot_header"]

#: the mark that makes a file a previous output of crash-ext
MARKER = "crash-ext deadlock picture"
_HEAD = 512          # bytes of an existing file searched for the mark


def is_our_output(path: str) -> bool:
    """Return True when the regular file at ``path`` starts (first 512 bytes) with
    our :data:`MARKER` in a DOT or XML comment.  Never raises."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return False
    m = MARKER.encode()
    return head.startswith(b"// " + m) or (b"<!-- " + m) in head


def _same(st, others) -> bool:
    return any(st.st_dev == o.st_dev and st.st_ino == o.st_ino for o in others)


def check_output_path(path, protected: Iterable[str] = (), force: bool = False,
                      what: str = "output file") -> str:
    """Return ``path`` if crash-ext may write ``what`` there.

    ``protected``: paths, or a callable returning them (called only when ``path``
    exists).  Raises BadArgument (one line) when the path is not a sane word
    (:func:`~crash_ext.core.words.check_path_word`), is (or links to) one of ``protected``,
    is a directory or other non-regular file, or exists without being ours; an
    existing output of ours is refused too unless ``force``.
    """
    path = check_path_word(path, what)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except (OSError, ValueError) as e:
        raise BadArgument("cannot use %s as %s: %s" % (shown(path), what,
                                                       getattr(e, "strerror", None) or e))
    try:
        lst = os.lstat(path)
    except OSError:
        lst = None
    if st is None and lst is None:
        return path                 # a new file: nothing of anybody's is there
    if callable(protected):
        protected = protected()
    stats = []
    for p in protected:
        try:
            stats.append(os.stat(p))
        except (OSError, ValueError):
            pass
    if st is not None and _same(st, stats):
        raise BadArgument("refusing to write %s: it is this session's dump, vmlinux or a "
                          "module file" % shown(path))
    if lst is not None and _same(lst, stats):
        raise BadArgument("refusing to write %s: it is this session's dump, vmlinux or a "
                          "module file" % shown(path))
    if st is None:
        if lst is not None:
            raise BadArgument("refusing to write %s: a dangling symbolic link" % shown(path))
        return path
    import stat as _stat
    if not _stat.S_ISREG(st.st_mode):
        raise BadArgument("refusing to write %s: it exists and is not a regular file"
                          % shown(path))
    if not is_our_output(path):
        raise BadArgument("refusing to overwrite %s: it exists and is not a picture "
                          "crash-ext wrote (choose a new file name)" % shown(path))
    if not force:
        raise BadArgument("%s exists (a previous crash-ext picture): give --force to "
                          "replace it" % shown(path))
    return path


def write_output(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a new temporary file beside it, renamed over
    ``path`` (the caller checked it with :func:`check_output_path`).  Raises
    CrashExtError when the file cannot be written (nothing is left behind)."""
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise CrashExtError("cannot write %s: %s" % (shown(path), e.strerror or e))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CrashExtError("cannot write %s: %s" % (shown(path), e.strerror or e))


def mark_svg(svg: bytes) -> bytes:
    """Return ``svg`` with our :data:`MARKER` as an XML comment after its XML
    declaration (at the start when it has none)."""
    mark = ("<!-- %s -->\n" % MARKER).encode()
    if svg.startswith(b"<?xml"):
        end = svg.find(b"?>")
        if end >= 0:
            nl = svg.find(b"\n", end)
            cut = nl + 1 if nl >= 0 else end + 2
            return svg[:cut] + mark + svg[cut:]
    return mark + svg


def dot_header() -> str:
    """Return the first line of every DOT file crash-ext writes (carries the mark)."""
    return "// %s (written by crash-ext; --force may replace it)\n" % MARKER

