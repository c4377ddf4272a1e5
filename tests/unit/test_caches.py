"""crash_ext.core.caches: every cache in one place, each with its lifetime; which of them
survive a verb call on a live system (inside crash: one port per call, one crash
session, memory that changes between calls)."""

import gc

from crash_ext.core import caches as C
from crash_ext.code import sources as A
from crash_ext.code import holds as H
from crash_ext.models.waitframes import classify_function
from crash_ext.core.port import Port


class _Session:
    """What stays for every call of one crash session (pykdump's crash module)."""


class _Snapshot:
    """What one verb call reads once (a Snapshot)."""


class _LivePort(Port):
    def __init__(self, session):
        self.session_identity = session

    def memory_fixed(self):
        return False


def _key(entry, call):
    """The key ``entry`` keeps its value for in ``call`` (session, port, snapshot)."""
    session, port, snap = call
    return {C.CALL: snap, C.PORT: port, C.SESSION: session,
            C.BUILD: ("/k/vmlinux", 1, 2)}[entry.lifetime]


def test_every_cache_declares_its_lifetime():
    assert C.ENTRIES and all(e.lifetime in C.LIFETIMES and e.what for e in C.ENTRIES)
    assert len({e.name for e in C.ENTRIES}) == len(C.ENTRIES)
    assert C.entries_by_lifetime() == {
        C.CALL: ["snapshot facts"],
        C.PORT: ["lock layouts", "mount points", "task view checked", "dump identity"],
        C.SESSION: ["holds analysers", "argument sources", "pykdump session types",
                    "pykdump memory fixed"],
        C.PURE: ["frame kinds", "parsed code", "printed stack layouts",
                 "printed stack views", "stack shapes"],
        C.BUILD: ["BTF parameter names", "code store"]}


def test_which_caches_survive_a_call_on_a_live_system():
    session = _Session()
    first = (session, _LivePort(session), _Snapshot())
    kept = [e for e in C.ENTRIES if e.lifetime != C.PURE]
    for e in kept:
        e.put(_key(e, first), ["call 1"])
    del first               # the call returns: its port and snapshot go
    gc.collect()
    second = (session, _LivePort(session), _Snapshot())
    survived = sorted(e.name for e in kept if e.peek(_key(e, second)) is not None)
    assert survived == ["BTF parameter names", "argument sources", "code store",
                        "holds analysers", "pykdump memory fixed", "pykdump session types"]
    C.CODE_STORES.put(_key(C.CODE_STORES, second), None)   # not a store: not kept


def test_a_live_sessions_caches_keep_code_and_drop_memory():
    session = _Session()
    port = _LivePort(session)
    src = A.sources_for(port)
    src.templates["shape"] = ["t"]
    src._words[8] = 1
    an = H.analyser_for(port)
    del port
    gc.collect()
    port = _LivePort(session)
    assert A.sources_for(port) is src and H.analyser_for(port) is an
    assert src.templates == {"shape": ["t"]} and src._words == {}


def test_pure_answers_are_kept_for_the_process():
    classify_function("__mutex_lock.constprop.0")
    assert len(C.FRAME_KINDS) >= 1
