"""Shared fixtures: one crash session per lab dump for the whole test run.

    def test_x(lab):        # lab(scenario, n=None, kernel=None, target=None)
        dump, crash = lab("seed")                 # Debian 12's 6.1 kernel
        dump, crash = lab("seed", kernel="6.12")  # bookworm-backports' 6.12
        dump, crash = lab("seed", target="7@9.0.2")   # sid's 7.x read by crash 9.0.2

Targets (``KERNEL@CRASH``) come from ``tests.lab.labdumps.targets()``; the kernels from
``$CRASH_EXT_KERNELS`` (comma-separated; default all of labdumps.KERNELS), the crash
versions from ``$CRASH_EXT_CRASHES``.  Tests run grouped by target and scenario
(collection order kept within one), and at most ``$CRASH_EXT_LAB_SESSIONS`` (default 8)
crash sessions stay open: the least recently used is closed (a crash session on a 6.x
dump holds ~0.6 GB).

Sessions start lazily (crash takes a few seconds to open a dump) and close at the end.
The lab module's symbols and types are loaded (``mod -s``) so module frames resolve.

Type facts kept on disk (``crash_ext/ports/typestore.py``) go to a store made empty
for each test run: the first session of each kernel asks gdb, later ones read the store,
so both paths run every time.
"""

import collections
import os
import shutil
import tempfile

import pytest
from hypothesis import settings as hypothesis_settings

from crash_ext.ports.crashproc import CrashProcess
from tests.lab.labdumps import get_dump, get_target_dump

# Hypothesis: `make test` runs the same examples every time (derandomised, no example
# database); `make explore` (CRASH_EXT_HYPOTHESIS=explore) draws new ones, 20x as many.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("CRASH_EXT_HYPOTHESIS", "ci"))


@pytest.fixture(scope="session", autouse=True)
def type_store():
    """An empty type store for the run (``CRASH_EXT_TYPES``); returns its directory."""
    d = tempfile.mkdtemp(prefix="crash-ext-types-")
    old = os.environ.get("CRASH_EXT_TYPES")
    os.environ["CRASH_EXT_TYPES"] = d
    yield d
    if old is None:
        os.environ.pop("CRASH_EXT_TYPES", None)
    else:
        os.environ["CRASH_EXT_TYPES"] = old
    shutil.rmtree(d, ignore_errors=True)


def pytest_collection_modifyitems(session, config, items):
    """Run the tests of one lab target (``KERNEL@CRASH``) together and, within it, those
    of one scenario together, so that each crash session is opened once (crash takes
    ~10 s to open a 6.x dump, and the per-session caches of code summaries go with it);
    tests without a target come first, then those of a target without a scenario
    parameter, each group in collection order."""
    def key(item):
        cs = getattr(item, "callspec", None)
        params = cs.params if cs is not None else {}
        t, s = params.get("target"), params.get("scenario")
        return (t if isinstance(t, str) else "", s if isinstance(s, str) else "")
    items[:] = sorted(items, key=key)


@pytest.fixture(scope="session")
def lab():
    sessions = collections.OrderedDict()
    cap = max(1, int(os.environ.get("CRASH_EXT_LAB_SESSIONS", "8")))

    def open_session(scenario, n=None, kernel=None, target=None):
        key = (scenario, n, kernel, target)
        if key in sessions:
            sessions.move_to_end(key)
        else:
            while len(sessions) >= cap:
                _, (_, old) = sessions.popitem(last=False)
                old.close()
            kw = {k: v for k, v in (("n", n), ("kernel", kernel)) if v is not None}
            if target is not None:
                dump = get_target_dump(scenario, target, **kw)
            else:
                dump = get_dump(scenario, **kw)
            crash = CrashProcess(dump.vmlinux, dump.vmcore, crash=dump.crash, timeout=600)
            crash.command("mod -s crashext_lab %s" % dump.module_ko)
            sessions[key] = (dump, crash)
        return sessions[key]

    yield open_session
    for _, crash in sessions.values():
        crash.close()
