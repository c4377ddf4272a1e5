"""The opt-in in-crash run refuses, in one line, a file that is not a pykdump crash loads.

``make test-incrash MPYKDUMP=PATH`` runs the in-crash comparison with the user's own
mpykdump.so; a wrong PATH must fail with a clear reason (crash's own words about it), not a
traceback from crash or a run of skipped tests.  The real crash on the seed dump is asked.
"""

import os
import shutil

import pytest

from tests import incrash


@pytest.fixture(scope="module")
def seed(lab):
    return lab("seed")[0]


def _refusal(path, dump):
    with pytest.raises(incrash.MpykdumpError) as e:
        incrash.check_mpykdump(path, dump)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("MPYKDUMP=%s" % path), msg
    return msg


def test_missing_file(seed, tmp_path):
    assert _refusal(str(tmp_path / "mpykdump.so"), seed).endswith(": no such file")


def test_not_elf(seed, tmp_path):
    p = tmp_path / "mpykdump.so"
    p.write_text("#!/bin/sh\n")
    assert _refusal(str(p), seed).endswith(": not an ELF shared object")


def test_truncated_elf_is_refused_with_crashs_words(seed, tmp_path):
    """ELF magic and nothing else: crash's extend cannot dlopen it; the reason quotes it."""
    p = tmp_path / "mpykdump.so"
    p.write_bytes(b"\x7fELF" + b"\0" * 60)
    msg = _refusal(str(p), seed)
    assert "is not a loadable mpykdump.so for %s" % seed.crash in msg
    assert "extend" in msg and str(p) in msg.split(": ", 1)[1], msg


def test_a_real_library_that_is_not_pykdump(seed, tmp_path):
    """A shared object crash can dlopen but that registers no crash command (libz): crash
    unloads it, and the run says so rather than starting the in-crash tests."""
    lib = next((p for p in ("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1")
                if os.path.exists(p)), None)
    if lib is None:
        pytest.skip("no libz.so.1 on this machine")
    p = tmp_path / "mpykdump.so"
    shutil.copy(lib, p)
    msg = _refusal(str(p), seed)
    assert "is not a loadable mpykdump.so" in msg or "not pykdump" in msg, msg


def test_unset_means_skipped(monkeypatch):
    monkeypatch.delenv("MPYKDUMP", raising=False)
    assert incrash.mpykdump() is None
    monkeypatch.setenv("MPYKDUMP", "  ")
    assert incrash.mpykdump() is None
    monkeypatch.setenv("MPYKDUMP", "x/mpykdump.so")
    assert incrash.mpykdump() == os.path.abspath("x/mpykdump.so")
