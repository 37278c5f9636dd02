"""One TCP layer, the recording fake IP layer and a virtual clock: craft segments, assert emissions."""

from __future__ import annotations

from pynetstack.transport.tcp import TcpConfig, TcpLayer
from pynetstack.wire import tcp as T
from pynetstack.wire.ipv4 import IPv4

from .fake_ip import FakeIp

LOCAL = 0x0A000001
PEER = 0x0A000002
LPORT = 80
PPORT = 40000
PEER_ISN = 1000


class Rig:
    def __init__(self, mtu=1500, gso=0, **cfg):
        self.ip = FakeIp(LOCAL, mtu, gso)
        self.layer = TcpLayer(self.ip, TcpConfig(**cfg), secret=b"rig-secret")
        self.now = 100.0
        self.events = []

    # -- input
    def inject(self, flags, seq, ack=0, payload=b"", win=65535, sport=PPORT, dport=LPORT, mss=None,
               wscale=None, sack_permitted=False, ts=None, sack=()):
        opts = T.build_options(mss=mss, wscale=wscale, sack_permitted=sack_permitted, ts=ts,
                               sack_blocks=sack)
        raw = T.build_tcp(PEER, LOCAL, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, win,
                          payload, opts)
        self.layer.receive(IPv4(PEER, LOCAL, 6, memoryview(raw)), self.now)

    # -- output
    def sent(self):
        out = [T.Tcp.parse(raw, src, dst) for src, dst, raw in self.ip.sent]
        self.ip.sent.clear()
        return out

    def one(self):
        segs = self.sent()
        assert len(segs) == 1, segs
        return segs[0]

    def none(self):
        segs = self.sent()
        assert segs == [], segs

    def advance(self, dt):
        self.now += dt
        self.layer.poll(self.now)

    def run_until(self, t):
        """Fire every timer up to absolute time t, one deadline at a time."""
        while True:
            d = self.layer.next_deadline()
            if d is None or d > t:
                break
            self.now = max(self.now, d)
            self.layer.poll(self.now)
        self.now = t

    # -- handshakes
    def listen(self, **kw):
        self.listener = self.layer.listen(LPORT, **kw)
        return self.listener

    def passive_open(self, mss=1460, wscale=None, sack_permitted=False, ts=None, win=65535):
        """Peer SYN -> our SYN-ACK -> peer ACK. Returns (conn, our ISS)."""
        self.listen()
        self.inject(T.SYN, PEER_ISN, mss=mss, wscale=wscale, sack_permitted=sack_permitted, ts=ts,
                    win=win)
        synack = self.one()
        iss = synack.seq
        self.inject(T.ACK, PEER_ISN + 1, iss + 1, win=win,
                    ts=(ts[0] + 1, synack.ts_val) if ts else None)
        conn = self.listener.accept()
        assert conn is not None and conn.state == "ESTABLISHED"
        conn.on_event = lambda c, kind: self.events.append(kind)
        return conn, iss

    def active_open(self, mss=1460, wscale=None, sack_permitted=False, ts=None, win=65535, **kw):
        conn = self.layer.connect(PEER, LPORT, self.now, **kw)
        syn = self.one()
        assert syn.flags == T.SYN
        ts_opt = (ts, syn.ts_val) if ts is not None else None
        self.inject(T.SYN | T.ACK, PEER_ISN, syn.seq + 1, sport=LPORT, dport=conn.local_port, mss=mss,
                    wscale=wscale, sack_permitted=sack_permitted, ts=ts_opt, win=win)
        ack = self.one()
        assert ack.flags == T.ACK and conn.state == "ESTABLISHED"
        conn.on_event = lambda c, kind: self.events.append(kind)
        return conn, syn.seq
