"""Run crash with the real pykdump (mpykdump.so built by ``tests/lab/build-mpykdump.sh``).

    mp = mpykdump()                                   # builds it once (cached)
    home = installed_home(tmpdir, mp)                 # install.sh in a temporary HOME
    outs = run_script(dump, ["deadlock", "help deadlock"], home)   # one crash process

:func:`run_script` feeds the commands to ``crash -s VMLINUX VMCORE`` on stdin, its output
going to a file (or a pipe), and splits the output at marker commands (``help TOKEN``,
answered ``No help data for "TOKEN" is available.``).  ``PYKDUMPPATH`` is removed from the
environment: what a shell that just ran install.sh has.
"""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "tests", "lab", "build-mpykdump.sh")
TOKEN = "crash_ext_marker_7f3a"
MARKER = 'No help data for "%s" is available.' % TOKEN

_built = []


def mpykdump():
    """Return the path of mpykdump.so (built when missing); raises RuntimeError with the
    build's message when the build fails."""
    if not _built:
        r = subprocess.run([BUILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=3600)
        if r.returncode != 0:
            raise RuntimeError("build-mpykdump.sh failed:\n" + r.stderr[-4000:])
        _built.append(r.stdout.strip().splitlines()[-1])
    return _built[0]


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


def run_script(dump, commands, home, pipe=False, preamble=(), env=None, timeout=1800):
    """Run ``commands`` in one crash on ``dump`` (its lab module's symbols loaded first);
    returns (list of each command's output, text before the first command: start-up,
    ~/.crashrc, ``preamble``).  Output goes to a file, or through a pipe when ``pipe``."""
    lines = list(preamble) + ["mod -s crashext_lab %s" % dump.module_ko, "help " + TOKEN]
    for c in commands:
        lines += [c, "help " + TOKEN]
    script = os.path.join(home, "script.crash")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\nq\n")
    out_path = os.path.join(home, "crash.out")
    argv = [dump.crash, "-s", dump.vmlinux, dump.vmcore]
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
    parts = text.split(MARKER + "\n")
    if len(parts) != len(commands) + 2:
        raise RuntimeError("crash exited %d after %d of %d commands; stderr: %s\n%s" % (
            r.returncode, len(parts) - 2, len(commands), r.stderr.decode()[-2000:],
            text[-3000:]))
    return parts[1:-1], parts[0]
