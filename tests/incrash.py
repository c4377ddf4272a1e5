"""Run crash with the real pykdump: the ``mpykdump.so`` a user brings (``$MPYKDUMP``).

pykdump is in no package registry the project reaches, and no copy of its source, nor
anything that builds it, lives in the project: the in-crash tests and benchmarks run when
``MPYKDUMP`` names a user's prebuilt ``mpykdump.so`` (``make test-incrash
MPYKDUMP=/path/to/mpykdump.so``), and are skipped with :data:`SKIP_REASON` otherwise.

    mp = mpykdump()                                   # $MPYKDUMP, or None
    check_mpykdump(mp, dump)                          # crash's extend accepts it, or raise
    home = installed_home(tmpdir, mp)                 # install.sh in a temporary HOME
    outs = run_script(dump, ["deadlock", "help deadlock"], home)   # one crash process

:func:`run_script` feeds the commands to ``crash -s VMLINUX VMCORE`` on stdin, its output
going to a file (or a pipe), and splits the output at marker commands (``help TOKEN``,
answered ``No help data for "TOKEN" is available.``).  ``PYKDUMPPATH`` is removed from the
environment: what a shell that just ran install.sh has.
"""

import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "crash_ext_marker_7f3a"
MARKER = 'No help data for "%s" is available.' % TOKEN
SKIP_REASON = ("in-crash tests need your own pykdump build: "
               "make test-incrash MPYKDUMP=/path/to/mpykdump.so")


class MpykdumpError(Exception):
    """``$MPYKDUMP`` names no mpykdump.so that this crash can load; the message says why."""


def mpykdump():
    """Return the absolute path ``$MPYKDUMP`` names, or None when it is unset or empty."""
    path = os.environ.get("MPYKDUMP", "").strip()
    return os.path.abspath(path) if path else None


def check_mpykdump(path, dump):
    """Check that crash (``dump.crash``, on ``dump``) loads ``path`` as pykdump: its
    ``extend`` says the shared object was loaded and ``epython`` then exists.

    Returns pykdump's start-up line (what ``extend`` printed).  Raises MpykdumpError with
    a one-line reason (no such file, not an ELF shared object, crash's own refusal)."""
    if not os.path.isfile(path):
        raise MpykdumpError("MPYKDUMP=%s: no such file" % path)
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise MpykdumpError("MPYKDUMP=%s: not an ELF shared object" % path)
    argv = [dump.crash, "-s", dump.vmlinux, dump.vmcore]
    script = "extend %s\nhelp %s\nhelp epython\nhelp %s\nq\n" % (path, TOKEN, TOKEN)
    with tempfile.TemporaryDirectory(prefix="crash-ext-mpykdump-") as home:
        r = subprocess.run(argv, input=script.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=_env(home), cwd=home, timeout=600)
    text = r.stdout.decode("utf-8", "replace")
    parts = text.split(MARKER + "\n")
    loaded = parts[0] if len(parts) == 3 else text
    said = " ".join(l.strip() for l in loaded.splitlines() if path in l or "extend" in l)
    if len(parts) != 3 or "shared object loaded" not in loaded:
        raise MpykdumpError("MPYKDUMP=%s is not a loadable mpykdump.so for %s: %s" % (
            path, dump.crash, said[-300:] or "crash printed nothing about it"))
    if 'No help data for "epython"' in parts[1]:
        raise MpykdumpError("MPYKDUMP=%s: crash loaded it, but it gave crash no epython "
                            "command: not pykdump" % path)
    return said


def installed_home(base, mp):
    """Run install.sh --mpykdump MP --no-cli with HOME=BASE/home; returns that HOME.
    Raises RuntimeError when install.sh fails."""
    home = os.path.join(str(base), "home")
    os.makedirs(home, exist_ok=True)
    env = _env(home)
    r = subprocess.run(["bash", os.path.join(ROOT, "install.sh"), "--mpykdump", mp,
                        "--no-cli"], env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("install.sh failed: " + r.stderr)
    return home


def prefix(home):
    """Return the install prefix install.sh uses in ``home``."""
    return os.path.join(home, ".local", "share", "crash-ext")


def _env(home, extra=None):
    env = dict(os.environ, HOME=home)
    for k in ("PYKDUMPPATH", "CRASH_EXTENSIONS"):
        env.pop(k, None)
    env.update(extra or {})
    return env


def run_script(dump, commands, home, pipe=False, preamble=(), env=None, timeout=1800,
               stderr=None):
    """Run ``commands`` in one crash on ``dump`` (its lab module's symbols loaded first);
    returns (list of each command's output, text before the first command: start-up,
    ~/.crashrc, ``preamble``).  Output goes to a file, or through a pipe when ``pipe``.
    ``dump`` needs ``crash``, ``vmlinux``, ``module_ko`` and ``vmcore``: None is the
    running kernel (crash with no dump file: the live lab's guest).  Raises RuntimeError
    when crash exits before every command ran."""
    lines = list(preamble) + ["mod -s crashext_lab %s" % dump.module_ko, "help " + TOKEN]
    for c in commands:
        lines += [c, "help " + TOKEN]
    script = os.path.join(home, "script.crash")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\nq\n")
    out_path = os.path.join(home, "crash.out")
    argv = [dump.crash, "-s", dump.vmlinux] + ([dump.vmcore] if dump.vmcore else [])
    with open(script) as stdin:
        if pipe:
            r = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=_env(home, env), cwd=home,
                               timeout=timeout)
            text = r.stdout.decode("utf-8", "replace")
        else:
            with open(out_path, "wb") as out:
                r = subprocess.run(argv, stdin=stdin, stdout=out, stderr=subprocess.PIPE,
                                   env=_env(home, env), cwd=home, timeout=timeout)
            with open(out_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
    if stderr is not None:      # a list: crash's stderr (the verbs' error lines) goes in
        stderr.append(r.stderr.decode("utf-8", "replace"))
    parts = text.split(MARKER + "\n")
    if len(parts) != len(commands) + 2:
        raise RuntimeError("crash exited %d after %d of %d commands; stderr: %s\n%s" % (
            r.returncode, len(parts) - 2, len(commands), r.stderr.decode()[-2000:],
            text[-3000:]))
    return parts[1:-1], parts[0]
