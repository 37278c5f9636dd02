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
               wscale=None, sack_permitted=False, ts=None, sack=(), urgent=0):
        opts = T.build_options(mss=mss, wscale=wscale, sack_permitted=sack_permitted, ts=ts,
                               sack_blocks=sack)
        raw = T.build_tcp(PEER, LOCAL, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, win,
                          payload, opts, urgent)
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

    # -- whole-segment comparison
    def expect(self, conn, flags, seq=None, ack=None, window=None, payload=b"", sack=(), options=None):
        """Take the one emitted segment and compare ALL of it with what ``conn`` should send:
        ports, sequence and acknowledgment numbers, flags, window, urgent pointer, payload and
        every option (absent unless given; timestamps as the connection's clock says).  The
        defaults are SND.MAX, RCV.NXT and the window the connection advertised last."""
        got = self.one()
        ts = (conn._ts_now(self.now), conn.ts_recent or 0) if conn.ts_ok else None
        expected = dict(src_port=conn.local_port, dst_port=conn.remote_port,
                        seq=(conn.snd_max if seq is None else seq) & 0xFFFFFFFF,
                        ack=(conn.rcv_nxt if ack is None else ack) & 0xFFFFFFFF, flags=flags,
                        window=window if window is not None else got.window, urgent=0, payload=bytes(payload),
                        mss=None, wscale=None, sack_permitted=False, sack_blocks=tuple(sack),
                        ts_val=ts[0] if ts else None, ts_ecr=ts[1] if ts else 0, unknown_options=())
        expected.update(options or {})
        fields = segment_fields(got)
        assert fields == expected, {k: (fields[k], expected[k]) for k in expected if fields[k] != expected[k]}
        return got


def segment_fields(seg) -> dict:
    """Every field of a parsed segment (the checksum was verified when it was parsed)."""
    return dict(src_port=seg.src_port, dst_port=seg.dst_port, seq=seg.seq, ack=seg.ack, flags=seg.flags,
                window=seg.window, urgent=seg.urgent, payload=bytes(seg.payload), mss=seg.mss,
                wscale=seg.wscale, sack_permitted=seg.sack_permitted, sack_blocks=tuple(seg.sack_blocks),
                ts_val=seg.ts_val, ts_ecr=seg.ts_ecr, unknown_options=tuple(seg.unknown_options))


# -- a builder per TCP state (as smoltcp's socket_fin_wait_1()): a rig and a connection in that
# state, nothing left to read in rig.sent().  The connection is passive (we are port LPORT) and
# negotiated no options unless asked, so windows are plain 16-bit numbers.

def syn_sent(**cfg):
    rig = Rig(**cfg)
    conn = rig.layer.connect(PEER, LPORT, rig.now)
    rig.sent()
    conn.on_event = lambda c, kind: rig.events.append(kind)
    return rig, conn


def syn_received(**cfg):
    rig = Rig(**cfg)
    rig.listen()
    rig.inject(T.SYN, PEER_ISN, mss=1460)
    rig.sent()
    return rig, next(iter(rig.layer.connections.values()))


def established(**cfg):
    rig = Rig(**cfg)
    conn, _ = rig.passive_open()
    rig.sent()
    return rig, conn


def fin_wait_1(**cfg):
    rig, conn = established(**cfg)
    conn.shutdown(rig.now)
    rig.sent()  # our FIN
    assert conn.state == "FIN-WAIT-1"
    return rig, conn


def fin_wait_2(**cfg):
    rig, conn = fin_wait_1(**cfg)
    rig.inject(T.ACK, PEER_ISN + 1, conn.snd_max)
    rig.none()
    assert conn.state == "FIN-WAIT-2"
    return rig, conn


def closing(**cfg):
    rig, conn = fin_wait_1(**cfg)
    rig.inject(T.FIN | T.ACK, PEER_ISN + 1, conn.snd_una)  # the peer's FIN, not acking ours
    rig.sent()  # our ACK of it
    assert conn.state == "CLOSING"
    return rig, conn


def time_wait(**cfg):
    rig, conn = fin_wait_2(**cfg)
    rig.inject(T.FIN | T.ACK, PEER_ISN + 1, conn.snd_max)
    rig.sent()
    assert conn.state == "TIME-WAIT"
    return rig, conn


def close_wait(**cfg):
    rig, conn = established(**cfg)
    rig.inject(T.FIN | T.ACK, PEER_ISN + 1, conn.snd_max)
    rig.sent()
    assert conn.state == "CLOSE-WAIT"
    return rig, conn


def last_ack(**cfg):
    rig, conn = close_wait(**cfg)
    conn.close(rig.now)
    rig.sent()  # our FIN
    assert conn.state == "LAST-ACK"
    return rig, conn
