"""The one rule for "crash reads the running kernel" (core/live.py), as each layer that
asks it sees it: crash's ``sys`` text, the CLI's dump file, the type store's choice."""

import pytest

from crash_ext.core.live import reads_running_kernel
from crash_ext.ports.crashproc import CrashProcess
from crash_ext.ports.typestore import session_files
from crash_ext.session.taskview import is_live

SYS = """      KERNEL: /usr/lib/debug/boot/vmlinux-6.1.0-57-amd64
%s        CPUS: 2
        DATE: Mon Dec  7 19:00:00 UTC 2026
"""


@pytest.mark.parametrize("dumpfile,live", [
    (None, True), ("/proc/kcore", True), ("/dev/crash", True), ("/dev/mem", True),
    ("/var/crash/127.0.0.1-2026-12-07/vmcore", False), ("vmcore", False),
    ("/root/dev/vmcore", False), ("/tmp/proc/vmcore", False)])
def test_each_layer_answers_the_same(dumpfile, live):
    assert reads_running_kernel(dumpfile) is live
    text = SYS % ("    DUMPFILE: %s\n" % dumpfile if dumpfile else "")
    assert is_live(text) is live
    assert session_files(text) == ("/usr/lib/debug/boot/vmlinux-6.1.0-57-amd64", live)
    port = CrashProcess.__new__(CrashProcess)      # no crash started: only the rule
    port.vmcore = dumpfile
    assert port.memory_fixed() is (not live)
