"""args.sources_for: recoveries shared across the ports of one crash session (pykdump
makes a port per verb call); memory words kept only where memory does not change."""

from crash_ext.analyses import args as A


class _Session:
    pass


class _Port:
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
    class P:
        pass
    p, q = P(), P()
    assert A.sources_for(p) is A.sources_for(p)
    assert A.sources_for(p) is not A.sources_for(q)
