"""The unit tests' recordings (tests/unit/data/lab61_*.json) are what
tests/lab/record_fixtures.py records from today's lab.

The recorder runs once into a temporary directory, on today's pinned 6.1 dumps.  Then:

- the unit tests that replay the recordings pass on today's recording too
  (``$CRASH_EXT_FIXTURES``: tests/unit/data/__init__.py), their expected values being that
  recording's truth;
- each committed recording names the dump it came from (``dump``).  Recorded from the
  dump this lab has: it is exactly today's recording.  From another staging of the same
  lab inputs (same input key, other ``built``: another machine's lab, other addresses):
  skipped, said so; the check above covers it.  From other lab inputs (another key: the
  module, guest or lab scripts changed since): it fails, naming the command that
  re-records them.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.lab import labdumps
from tests.lab import record_fixtures as RF
from tests.unit import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMITTED = os.path.dirname(os.path.abspath(data.__file__))
#: the unit tests that read the recordings
READERS = ["tests/unit/test_args_recorded.py", "tests/unit/test_stack_parse.py",
           "tests/unit/test_holds_recorded.py", "tests/unit/test_gdbdis.py",
           "tests/unit/test_waits_recorded.py"]
NAMES = [n for names in RF.FILES.values() for n in names]
RERECORD = "python3 tests/lab/record_fixtures.py (then commit tests/unit/data/lab61_*.json)"

pytestmark = pytest.mark.skipif(
    "6.1" not in labdumps.selected_kernels() or
    set(labdumps.selected_crashes()) != set(labdumps.CRASH_VERSIONS),
    reason="the recordings are made on 6.1 with crash %s (CRASH_EXT_KERNELS, "
           "CRASH_EXT_CRASHES)" % " and ".join(labdumps.CRASH_VERSIONS))


@pytest.fixture(scope="module")
def today(tmp_path_factory):
    out = tmp_path_factory.mktemp("recorded")
    assert RF.main(["--out", str(out)]) == 0
    return str(out)


def test_every_recording_is_recorded(today):
    assert sorted(os.listdir(today)) == sorted(NAMES)
    committed = sorted(n for n in os.listdir(COMMITTED) if n.startswith("lab61_"))
    assert committed == sorted(NAMES)       # none hand-made beside them


def test_unit_tests_hold_on_todays_recording(today):
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"] +
                       READERS, cwd=ROOT, env=dict(os.environ, CRASH_EXT_FIXTURES=today),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout[-4000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout, r.stdout[-2000:]


@pytest.mark.parametrize("name", NAMES)
def test_committed_recording_is_todays(today, name):
    with open(os.path.join(COMMITTED, name)) as f:
        committed = json.load(f)
    with open(os.path.join(today, name)) as f:
        fresh = json.load(f)
    was, now = committed.get("dump", {}), fresh["dump"]
    assert was.get("key") == now["key"], (
        "%s was recorded from %s-%s; today's lab inputs make %s-%s: re-record: %s"
        % (name, was.get("scenario"), was.get("key"), now["scenario"], now["key"], RERECORD))
    if was != now:
        pytest.skip("%s: recorded from another staging of the same lab inputs (%s, built "
                    "%s; this lab's was built %s): its addresses differ; today's recording "
                    "passes the unit tests" % (name, now["key"], was.get("built"),
                                               now["built"]))
    assert committed == fresh
