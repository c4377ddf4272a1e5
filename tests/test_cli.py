"""crash-ext outside crash: the console script end to end on a lab dump, exit codes a
runbook can test (0 nothing found, 1 deadlock/hang found, 2 usage or input error)."""

import json
import subprocess
import sys

from tests.lab.labdumps import get_dump


def _cli(*args):
    d = get_dump("seed")
    cmd = [sys.executable, "-m", "crash_ext.cli"] + list(args) + [
        "--vmlinux", d.vmlinux, "--vmcore", d.vmcore, "--crash", d.crash,
        "--mod", "crashext_lab=" + d.module_ko]
    return d, subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_deadlock_json_exit_1_with_the_cycle():
    d, r = _cli("deadlock", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    rubies = sorted(t["pid"] for t in d.truth["tasks"] if t["comm"] == "ruby")
    assert len(doc["cycles"]) == 1
    assert sorted(s["task"]["pid"] for s in doc["cycles"][0]["steps"]) == rubies


def test_input_error_exit_2_one_line():
    _, r = _cli("whoholds", "0")
    assert r.returncode == 2
    assert r.stdout.strip().count("\n") == 0 and "error" in r.stdout + r.stderr


def test_usage_errors():
    r = subprocess.run([sys.executable, "-m", "crash_ext.cli", "nosuchverb"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown verb" in r.stderr
    r = subprocess.run([sys.executable, "-m", "crash_ext.cli", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "deadlock" in r.stderr
