"""Wire-level regression guard for the TCP tests: every segment a TCP layer receives or hands to
its IP layer is hashed, in order, per test; the digest must match the one recorded in
``data/emitted_segments.json`` (made before connection.py was split along its jobs).

A test whose digest differed between two recording runs (real threads, wall clock) is not in the
file and is not compared.  After a deliberate change of behaviour, record twice with
``PYNETSTACK_RECORD_SEGMENTS=<out.json> pytest tests/tcp`` and copy into the fixture the entries
that both runs agree on (and only those of the tests whose segments were meant to change).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

import pytest

from pynetstack.transport.tcp import TcpConfig
from pynetstack.transport.tcp import layer as layer_module

FIXTURE = pathlib.Path(__file__).parent / "data" / "emitted_segments.json"
RECORD_TO = os.environ.get("PYNETSTACK_RECORD_SEGMENTS")


class SegmentLog:
    """An order-sensitive digest of the segments seen by every TCP layer during one test."""

    def __init__(self):
        self.sha = hashlib.sha256()
        self.count = 0

    def add(self, tag: bytes, src: int, dst: int, data, now: float, extra: int = 0) -> None:
        self.count += 1
        self.sha.update(b"%s %d %d %r %d %s\n" % (tag, src, dst, round(now, 9), extra, bytes(data).hex().encode()))

    def digest(self) -> str:
        return self.sha.hexdigest()


_current = None


def _wrap_ip(ip):
    send = getattr(ip, "ip_send", None)
    if send is None or getattr(send, "_segment_log", False):
        return

    def ip_send(src, dst, protocol, payload, now, *args, **kw):
        if _current is not None and protocol == 6:  # TCP segments only (not ICMP errors about them)
            _current.add(b">", src, dst, payload, now, kw.get("gso_size", 0))
        return send(src, dst, protocol, payload, now, *args, **kw)
    ip_send._segment_log = True
    try:
        ip.ip_send = ip_send
    except AttributeError:  # an IP layer with __slots__: outputs are seen by the peer's input only
        pass


@pytest.fixture(autouse=True)
def segment_log(request, monkeypatch):
    global _current
    log = SegmentLog()
    TcpLayer = layer_module.TcpLayer
    original_init = TcpLayer.__init__
    original_receive = TcpLayer.receive_segment

    def __init__(self, ip, config=None, secret=None):
        # a fixed secret (ISNs, ports, timestamp offsets) makes whole-stack runs repeatable, and
        # receive coalescing is on unless a test says otherwise (its default is by interpreter),
        # so PyPy runs it too; the segments are the same either way (recorded with it off and
        # on: every digest equal)
        config = config or TcpConfig()
        if config.coalesce is None:
            config = config.copy(coalesce=True)
        original_init(self, ip, config, secret if secret is not None else b"segment-log-secret")
        _wrap_ip(ip)

    def receive_segment(self, src, dst, data, now, check=True):
        if _current is not None:
            _current.add(b"<", src, dst, data, now)
        return original_receive(self, src, dst, data, now, check)

    monkeypatch.setattr(TcpLayer, "__init__", __init__)
    monkeypatch.setattr(TcpLayer, "receive_segment", receive_segment)
    _current = log
    try:
        yield log
    finally:
        _current = None
    if request.node.get_closest_marker("no_segment_log") is not None:
        return
    node = request.node.nodeid
    if RECORD_TO:
        path = pathlib.Path(RECORD_TO)
        table = json.loads(path.read_text()) if path.exists() else {}
        table[node] = [log.count, log.digest()]
        path.write_text(json.dumps(table, indent=0, sort_keys=True))
        return
    expected = _recorded().get(node)
    if expected is not None and log.count:
        assert [log.count, log.digest()] == expected, (
            f"{node}: the segments on the wire changed ({log.count} now, {expected[0]} recorded)")


_table = None


def _recorded():
    global _table
    if _table is None:
        _table = json.loads(FIXTURE.read_text()) if FIXTURE.exists() else {}
    return _table


def pytest_configure(config):
    config.addinivalue_line("markers", "no_segment_log: do not compare this test's segments with the fixture")
