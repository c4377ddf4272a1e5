"""args.sources_for: recoveries shared across the ports of one crash session (pykdump
makes a port per verb call); memory words kept only where memory does not change."""

from crash_ext.code import sources as A
from crash_ext.core.port import Port


class _Session:
    pass


class _Port(Port):
    def __init__(self, session, fixed):
        self.session_identity = session
        self._fixed = fixed

    def memory_fixed(self):
        return self._fixed


def test_ports_of_one_session_share_recoveries():
    s = _Session()
    a, b = _Port(s, True), _Port(s, True)
    src = A.sources_for(a)
    src.templates["shape"] = ["t"]
    src._words[8] = 1
    assert A.sources_for(b) is src and src.port is b
    assert src.templates == {"shape": ["t"]} and src._words == {8: 1}
    assert A.sources_for(_Port(_Session(), True)) is not src


def test_live_session_reads_memory_again():
    s = _Session()
    src = A.sources_for(_Port(s, False))
    src.templates["shape"] = ["t"]
    src._words[8] = 1
    assert A.sources_for(_Port(s, False)) is src
    assert src.templates == {"shape": ["t"]} and src._words == {}


def test_port_without_identity_has_its_own():
    class P(Port):
        pass
    p, q = P(), P()
    assert A.sources_for(p) is A.sources_for(p)
    assert A.sources_for(p) is not A.sources_for(q)


def test_caches_end_with_their_port():
    # the CLI's port is its own key: a cache holding it strongly never ended (each
    # crash session of a process kept its code, prototypes and recoveries: ~30 MB)
    import gc
    import weakref
    from crash_ext.code import holds as H

    class P(Port):
        pass
    p = P()
    src = A.sources_for(p)
    an = H.analyser_for(p)
    assert src.port is p and an.port is p and an.src is src
    gone = weakref.ref(src), weakref.ref(an), weakref.ref(p)
    del p, src, an
    gc.collect()
    assert [r() for r in gone] == [None, None, None]


def test_ports_of_one_session_share_the_holds_analysis():
    from crash_ext.code import holds as H
    s = _Session()
    a, b = _Port(s, True), _Port(s, True)
    an = H.analyser_for(a)
    an.summaries[(1, 1)] = None
    an.tasks["k"] = "held"
    assert H.analyser_for(b) is an and an.port is b and an.src is A.sources_for(b)
    assert an.summaries == {(1, 1): None} and an.tasks == {"k": "held"}
    live = _Session()
    an = H.analyser_for(_Port(live, False))
    an.tasks["k"] = "held"
    an.summaries[(1, 1)] = None
    assert H.analyser_for(_Port(live, False)) is an
    assert an.tasks == {} and an.summaries == {(1, 1): None}   # a live system's stacks move
    assert H.analyser_for(_Port(_Session(), True)) is not an
