"""Which failed stagings the lab stages again (tests/lab/mklab.died_booting), on real
consoles of 6.12.95 guests (QEMU TCG, two vCPUs)."""

import os

from tests.lab import mklab

DATA = os.path.join(os.path.dirname(__file__), "data")


def _console(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def test_a_kernel_that_died_booting_is_staged_again():
    """A fresh-machine `make test` (2026-12-07): the guest staging rwsem-readers died
    1.4 s into boot, in the kernel's own initcalls, before init loaded any module."""
    text = _console("console_612_boot_int3.txt")
    assert mklab.died_booting(text) == "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI"


def test_a_panic_of_the_lab_s_making_is_not():
    """The seed's kdump guest panics by the hung-task detector after staging: a panic
    with the lab's tasks, not a boot failure."""
    text = _console("console_612_seed_hung_task.txt")
    assert "Kernel panic - not syncing: hung_task" in text
    assert mklab.died_booting(text) is None


def test_an_oops_with_the_lab_module_loaded_is_not():
    text = _console("console_612_boot_int3.txt").replace(
        "] Modules linked in:", "] Modules linked in: crashext_lab qemu_fw_cfg")
    assert mklab.died_booting(text) is None
    # and a console with no oops at all (the guest hung, or was slow)
    assert mklab.died_booting("[    0.000000] Linux version 6.12.95\n") is None
