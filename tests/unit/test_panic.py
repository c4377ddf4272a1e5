"""session.panic on crash's ``sys`` and ``log`` text as the lab's kdump dumps show it
(lines from the 6.1.0-57 seed guest's console; 6.12's panic line adds ``UID:``)."""

from crash_ext.session.panic import PanicFacts, parse_panic
from crash_ext.core.excluded import EXCLUDED, explain, is_excluded

LOG_61 = """\
[    6.671938] INFO: task ruby:102 blocked for more than 2 seconds.
[    6.672003]       Tainted: G           OE      6.1.0-57-amd64 #1 Debian 6.1.192-3
[    6.680149] INFO: task ruby:103 blocked for more than 2 seconds.
[    6.684150] INFO: task rm:104 blocked for more than 2 seconds.
[    6.688897] Kernel panic - not syncing: hung_task: blocked tasks
[    6.689099] CPU: 1 PID: 30 Comm: khungtaskd Kdump: loaded Tainted: G           OE      6.1.0-57-amd64 #1  Debian 6.1.192-3
[    6.689200] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)
"""
SYS = """\
      KERNEL: vmlinux
    DUMPFILE: seed.kdump  [PARTIAL DUMP]
        CPUS: 2
       PANIC: "Kernel panic - not syncing: hung_task: blocked tasks"
"""


def test_hung_task_panic_on_61():
    f = parse_panic(SYS, LOG_61)
    assert f.reason == "Kernel panic - not syncing: hung_task: blocked tasks"
    assert (f.pid, f.comm, f.cpu) == (30, "khungtaskd", 1)
    assert f.hung == {102: ("ruby", 2), 103: ("ruby", 2), 104: ("rm", 2)}
    assert f.header_lines()[0] == ("PANIC: Kernel panic - not syncing: hung_task: blocked "
                                   "tasks; panic task: PID 30 (khungtaskd) on CPU 1")
    assert "104 (rm)" in f.header_lines()[1]
    assert "task rm:104 blocked for more than 2 seconds" in f.hung_evidence(104)
    assert f.hung_evidence(30) is None


def test_sysrq_panic_on_612_with_uid_and_a_comm_with_a_colon():
    log = ("[    4.70] sysrq: Trigger a crash\n"
           "[    4.71] Kernel panic - not syncing: sysrq triggered crash\n"
           "[    4.72] CPU: 0 UID: 0 PID: 211 Comm: sh Kdump: loaded Not tainted 6.12.95\n"
           "[    5.00] INFO: task a:b:77 blocked for more than 120 seconds.\n")
    f = parse_panic('       PANIC: "sysrq triggered crash"\n', log)
    assert f.reason == "sysrq triggered crash"
    assert (f.pid, f.comm, f.cpu) == (211, "sh", 0)
    assert f.hung == {77: ("a:b", 120)}


def test_no_panic_no_header():
    f = parse_panic("      KERNEL: vmlinux\n", "")
    assert f.reason is None and f.header_lines() == [] and PanicFacts().to_json()["pid"] is None


def test_excluded_words():
    crash = 'rd: page excluded: kernel virtual address: ffff8c2e03f00000  type: "64-bit KVADDR"'
    assert is_excluded(crash) and not is_excluded("rd: invalid kernel virtual address")
    assert explain(crash).startswith(EXCLUDED + ": rd: page excluded")
    assert explain(explain(crash)) == explain(crash)
    assert explain("rd: seek error") == "rd: seek error"
