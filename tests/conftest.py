"""Shared fixtures: one crash session per lab dump for the whole test run.

    def test_x(lab):                 # lab(scenario) -> (LabDump, CrashProcess)
        dump, crash = lab("seed")

Sessions start lazily (crash takes a few seconds to open a dump) and close at the end.
The lab module's symbols and types are loaded (``mod -s``) so module frames resolve.
"""

import pytest

from crash_ext.adapters.crashproc import CrashProcess
from tests.lab.labdumps import get_dump


@pytest.fixture(scope="session")
def lab():
    sessions = {}

    def open_session(scenario, n=None):
        key = (scenario, n)
        if key not in sessions:
            dump = get_dump(scenario) if n is None else get_dump(scenario, n=n)
            crash = CrashProcess(dump.vmlinux, dump.vmcore, crash=dump.crash, timeout=600)
            crash.command("mod -s crashext_lab %s" % dump.module_ko)
            sessions[key] = (dump, crash)
        return sessions[key]

    yield open_session
    for _, crash in sessions.values():
        crash.close()
