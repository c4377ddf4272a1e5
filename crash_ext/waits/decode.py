"""One-line decodes of well-known kernel pointers, for argument values.

Each decoder reads a few fields through the port and returns a short text, or None when
the value does not read as that type (the caller then prints the bare value).
"""

from ..compat import Optional

from ..core.errors import CrashExtError
from ..core.excluded import EXCLUDED, is_excluded
from ..core.port import Port
from .lockreport import lock_report

_MAX_NAME = 128
#: path components a file's decode reads at most (dentries up to the root, mounts)
MAX_PATH_STEPS = 64
#: the lowest address of the kernel image and the module area (x86-64): a pointer at
#: or above it may be a symbol (a module's data); below it, slab and stacks are not
SYMBOL_SPACE = 0xffffffff80000000


def read_cstring(port: Port, addr: int, limit: int = _MAX_NAME) -> Optional[str]:
    """Return the NUL-terminated string at ``addr`` (at most ``limit`` bytes), None if
    unreadable."""
    try:
        raw = port.read(addr, limit)
    except CrashExtError:
        try:
            raw = port.read(addr, 16)
        except CrashExtError:
            return None
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _ptr(port: Port, base: int, type_name: str, member: str) -> int:
    off = port.member_offset(type_name, member)
    if off is None:
        raise CrashExtError("no %s.%s" % (type_name, member))
    return port.read_u64(base + off)


def dentry_name(port: Port, dentry: int) -> Optional[str]:
    """Return the dentry's name, or None when it does not read as a dentry."""
    try:
        return read_cstring(port, _ptr(port, dentry, "dentry", "d_name.name"))
    except CrashExtError:
        return None


def describe_dentry(port: Port, dentry: int) -> Optional[str]:
    """Return 'dentry "NAME" in "PARENT"'."""
    name = dentry_name(port, dentry)
    if name is None:
        return None
    try:
        parent = dentry_name(port, _ptr(port, dentry, "dentry", "d_parent"))
    except CrashExtError:
        parent = None
    return 'dentry "%s"%s' % (name, ' in "%s"' % parent if parent else "")


def describe_inode(port: Port, inode: int) -> Optional[str]:
    """Return 'inode INO on FSTYPE'."""
    try:
        ino = _ptr(port, inode, "inode", "i_ino")
        sb = _ptr(port, inode, "inode", "i_sb")
        fstype = read_cstring(port, _ptr(port, _ptr(port, sb, "super_block", "s_type"),
                                         "file_system_type", "name"))
    except CrashExtError:
        return None
    return "inode %d on %s" % (ino, fstype or "?")


def file_path(port: Port, file: int) -> Optional[str]:
    """Return the path of ``struct file`` ``file`` as d_path would build it: the names
    of ``f_path.dentry`` and its parents up to its filesystem's root, crossing each
    mount to its mount point (``struct mount``: ``mnt_mountpoint``, ``mnt_parent``), at
    most :data:`MAX_PATH_STEPS` steps; None when it does not read as a file.  A path
    cut short by the bound starts with ``.../``."""
    try:
        dentry = _ptr(port, file, "file", "f_path.dentry")
        vfsmnt = _ptr(port, file, "file", "f_path.mnt")
        moff = port.member_offset("mount", "mnt")
        names = []
        mount = vfsmnt - moff if moff is not None and vfsmnt else None
        for _ in range(MAX_PATH_STEPS):
            if mount is not None:
                root = _ptr(port, mount + moff, "vfsmount", "mnt_root")
                if dentry == root:
                    parent = _ptr(port, mount, "mount", "mnt_parent")
                    if parent == mount or not parent:
                        return "/" + "/".join(reversed(names))
                    dentry = _ptr(port, mount, "mount", "mnt_mountpoint")
                    mount = parent
                    continue
            up = _ptr(port, dentry, "dentry", "d_parent")
            if up == dentry:
                return "/" + "/".join(reversed(names))
            name = dentry_name(port, dentry)
            if name is None:
                return None
            names.append(name)
            dentry = up
        return ".../" + "/".join(reversed(names))
    except CrashExtError:
        return None


def describe_file(port: Port, file: int) -> Optional[str]:
    """Return 'file "/PATH" (decoded: f_path up to the root)', or None."""
    path = file_path(port, file)
    if path is None:
        return None
    return 'file "%s" (decoded: f_path, dentry names up to the root)' % path


def describe_symbol(port: Port, addr: int) -> Optional[str]:
    """Return 'symbol NAME+OFF' for a pointer into the kernel's or a module's data, None
    below :data:`SYMBOL_SPACE` or where no symbol covers it."""
    if addr < SYMBOL_SPACE:
        return None
    try:
        name = port.address_symbol(addr)
    except CrashExtError:
        return None
    return "symbol %s" % name if name else None


def describe_lock(port: Port, addr: int, lock_type: str) -> Optional[str]:
    """Return a whoholds hint: '<type> held by PID (comm), N waiters'."""
    try:
        rep = lock_report(port, addr, lock_type, candidates=False)
    except CrashExtError:
        return None
    if rep.owner is not None:
        who = "held by PID %s (%s)" % (rep.owner.pid, rep.owner.comm)
    elif rep.locked:
        who = "held, owner not recorded"
    else:
        who = "unlocked" if rep.locked is not None else "state unknown"
    return "%s %s, %d waiter%s (whoholds %x)" % (lock_type, who, len(rep.waiters),
                                                  "" if len(rep.waiters) == 1 else "s", addr)


_DECODERS = {
    "dentry": describe_dentry,
    "file": describe_file,
    "inode": describe_inode,
    "mutex": lambda p, a: describe_lock(p, a, "mutex"),
    "rw_semaphore": lambda p, a: describe_lock(p, a, "rw_semaphore"),
    "semaphore": lambda p, a: describe_lock(p, a, "semaphore"),
}


def decode_pointer(port: Port, type_text: str, value: int) -> Optional[str]:
    """Return a one-line decode of ``value`` as ``type_text`` (e.g. ``struct dentry *``):
    the type's decoder's (a lock's state, a file's path...), after the symbol it points
    into when it points into the kernel's or a module's data;
    :data:`~crash_ext.core.excluded.EXCLUDED` when the object's page is one makedumpfile
    left out of the dump (crash says so); None for other types, NULL, or values that do
    not read as the type."""
    t = type_text.replace("const ", "").strip()
    if not t.endswith("*") or not value:
        return None
    dec = _DECODERS.get(t[len("struct "):-1].strip()) if t.startswith("struct ") and \
        not t.endswith("**") else None
    got = dec(port, value) if dec else None
    if dec is not None and got is None:
        try:
            port.read(value, 8)
        except CrashExtError as e:
            if is_excluded(e):
                return EXCLUDED
    sym = describe_symbol(port, value)
    if sym is None:
        return got
    return "%s: %s" % (sym, got) if got else sym
