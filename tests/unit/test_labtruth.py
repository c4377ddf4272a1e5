"""The lab's truth read off a guest's console (tests/lab/mklab.extract_truth)."""

import pytest

from tests.lab import mklab

TRUTH = '{"scenario": "semaphore", "verified": true,\n "locks": [],\n "waits": []}\n'


def test_truth_between_the_markers():
    con = "boot\nLAB-TRUTH-BEGIN\n%sLAB-TRUTH-END\nLAB-DONE\n" % TRUTH
    assert mklab.extract_truth(con)["scenario"] == "semaphore"


def test_kernel_log_lines_inside_the_block_are_left_out():
    """A kdump guest's sysrq panic reaches the serial port before the tty has drained
    the truth (seen on a 6.1 semaphore staging)."""
    con = ("LAB-TRUTH-BEGIN\n" + TRUTH + "[    4.549588] sysrq: Trigger a crash\n"
           "[    4.550223] Kernel panic - not syncing: sysrq triggered crash\n"
           "LAB-TRUTH-END\n")
    assert mklab.extract_truth(con)["verified"] is True


def test_no_truth_is_a_lab_error():
    with pytest.raises(mklab.LabError):
        mklab.extract_truth("LAB-TRUTH-BEGIN\n{\"scenario\": \nLAB-TRUTH-END\n")
    with pytest.raises(mklab.LabError):
        mklab.extract_truth(
            'LAB-TRUTH-BEGIN\n{"verified": false, "verify_message": "x"}\nLAB-TRUTH-END')
