"""install.sh in a temporary HOME: idempotent, --uninstall removes exactly what it added."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the build backend of the console script, pinned (requirements-build.txt; make venv)
WHEELS = os.path.join(os.environ.get("CRASH_EXT_CACHE") or
                      os.path.expanduser("~/.cache/crash-ext"), "wheels")
USER_CRASHRC = "set radix 16\n"
USER_PROFILE = "export EDITOR=vi\n"


def _run(home, *args):
    # no package index: the console script is built with the pinned setuptools `make venv`
    # put in WHEELS (requirements-build.txt), not the newest one PyPI has today
    env = dict(os.environ, HOME=str(home), PYTHON=sys.executable, PIP_NO_INDEX="1",
               PIP_FIND_LINKS=WHEELS)
    env.pop("CRASH_EXTENSIONS", None)
    return subprocess.run(["bash", os.path.join(ROOT, "install.sh")] + list(args), env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    (h / ".crashrc").write_text(USER_CRASHRC)
    (h / ".profile").write_text(USER_PROFILE)
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "mpykdump.so").write_bytes(b"\x7fELF stand-in")
    return h


def _blocks(text):
    return text.count("# >>> crash-ext >>>"), text.count("# <<< crash-ext <<<")


def test_install_twice_then_uninstall(home):
    mp = str(home.parent / "ext" / "mpykdump.so")
    for _ in range(2):
        r = _run(home, "--mpykdump", mp, "--no-cli")
        assert r.returncode == 0, r.stderr
    crashrc = (home / ".crashrc").read_text()
    assert crashrc.startswith(USER_CRASHRC)
    assert _blocks(crashrc) == (1, 1)
    prefix = home / ".local" / "share" / "crash-ext"
    assert "extend %s\n" % mp in crashrc
    assert "epython %s\n" % (prefix / "pykdump" / "load.py") in crashrc
    # nothing in the login profile: the loader makes the verbs work without PYKDUMPPATH
    assert (home / ".profile").read_text() == USER_PROFILE
    for verb in ("whoholds", "argrecover", "deadlock", "load"):
        assert (prefix / "pykdump" / (verb + ".py")).exists()
    assert (prefix / "lib" / "crash_ext" / "core" / "port.py").exists()
    # crash_ext needs no other package inside crash
    assert sorted(p.name for p in (prefix / "lib").iterdir()) == ["crash_ext"]

    r = _run(home, "--uninstall")
    assert r.returncode == 0, r.stderr
    assert (home / ".crashrc").read_text() == USER_CRASHRC
    assert (home / ".profile").read_text() == USER_PROFILE
    assert not prefix.exists()


def test_install_removes_the_profile_block_of_earlier_versions(home):
    old = "# >>> crash-ext >>>\nexport PYKDUMPPATH=/x\n# <<< crash-ext <<<\n"
    (home / ".profile").write_text(USER_PROFILE + old)
    mp = str(home.parent / "ext" / "mpykdump.so")
    assert _run(home, "--mpykdump", mp, "--no-cli").returncode == 0
    assert (home / ".profile").read_text() == USER_PROFILE


def test_without_pykdump_says_where_to_get_it(home):
    r = _run(home, "--no-cli")
    assert r.returncode == 0, r.stderr
    assert "mpykdump.so not found" in r.stdout and "crash-ext VERB" in r.stdout
    assert (home / ".crashrc").read_text() == USER_CRASHRC


def test_console_script_installed_and_removed(home):
    with open(os.path.join(ROOT, "requirements-build.txt")) as f:
        pins = [l.strip().replace("==", "-") for l in f if l.strip() and l[0] != "#"]
    have = os.listdir(WHEELS) if os.path.isdir(WHEELS) else []
    for pin in pins:
        assert any(n.startswith(pin + "-") for n in have), \
            "%s not in %s: make venv downloads it" % (pin, WHEELS)
    r = _run(home)
    assert r.returncode == 0, r.stderr
    script = home / ".local" / "bin" / "crash-ext"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "deadlock" in out.stderr + out.stdout
    assert _run(home, "--uninstall").returncode == 0
    assert not script.exists() and not script.is_symlink()


def test_bad_option_is_one_line_error(home):
    r = _run(home, "--frobnicate")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
