"""A SYN proxy for forwarded TCP, like nft's ``synproxy``: a protected server sees a connection
only once the client has proven, with a SYN cookie, that it receives at its source address.  A
spoofed SYN flood never reaches the server, and leaves no state here or in conntrack.

    proxy = SynProxy(servers=["10.0.2.10"], ports=[80, 443])
    stack.register(proxy)                       # with install_router(stack, ...) for conntrack

How (RFC 4987 3.6; Linux's nf_synproxy does the same):

1. A client's SYN to a protected server:port is answered here, from the server's address, with
   a SYN-ACK whose sequence number is a SYN cookie (the TCP layer's layout: 5 bits of a 64 s
   counter, 3 bits of MSS index from ``transport.tcp.layer.COOKIE_MSS``, 24 bits of a keyed
   hash of the four-tuple, counter and the client's ISN).  The SYN goes no further: no state.
2. The client's ACK carries the cookie back (ack - 1).  A valid one opens the connection to the
   server on the client's behalf: a SYN with the client's ISN and MSS (sent through OUTPUT, so
   conntrack and the filter's output chain see it).  An invalid one is dropped and counted.
3. The server's SYN-ACK (after conntrack has seen it) is answered with the ACK completing its
   handshake, and not passed on: the client believes it is established already.
4. From then on the two sequence spaces differ by ``delta`` = server ISN - cookie: the client's
   acknowledgements are raised by delta before conntrack (so conntrack sees the server's
   numbers throughout), the server's sequence numbers lowered by delta after conntrack.

The proxy's SYN-ACK offers an MSS and nothing else (no window scaling, SACK or timestamps) and
its SYN to the server offers the same, so both ends agree on plain TCP.  Data the client sends
before the server answered is dropped (TCP retransmits it).  Proxied flows are bounded
(``max_flows``, least recently used evicted, idle ones expire) and every step is counted.
The flow table is off while the proxy runs (``sees_every_packet``): it rewrites every segment.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections import OrderedDict
from typing import Iterable, Optional

from ..net import hooks as hk
from ..transport.tcp.layer import COOKIE_MSS, COOKIE_PERIOD
from ..wire.addr import ip_to_int
from ..wire.tcp import ACK, FIN, RST, SYN, build_options, build_tcp
from .nat_rewrite import adjust, writable

MASK = 0xFFFFFFFF
SYN_SENT, ESTABLISHED = 1, 2
HANDSHAKE_TIMEOUT = 10.0  # seconds the server has to answer the proxy's SYN
IDLE_TIMEOUT = 600.0  # a proxied flow with no segment for this long is forgotten
SYNACK_WINDOW = 65535


class ProxiedFlow:
    __slots__ = ("state", "client_isn", "cookie", "delta", "mss", "window", "seen", "pending")

    def __init__(self, client_isn: int, cookie: int, mss: int, window: int, now: float):
        self.state = SYN_SENT
        self.client_isn = client_isn
        self.cookie = cookie
        self.delta = 0
        self.mss = mss
        self.window = window
        self.seen = now
        self.pending: Optional[bytes] = None  # the client's first data segment, kept for the server


def _seq_delta_sum(old: int, new: int) -> int:
    return ((new >> 16) + (new & 0xFFFF) - (old >> 16) - (old & 0xFFFF)) % 0xFFFF


def _rewrite(ip, offset: int, value: int) -> None:
    """Set the 32-bit field at ``offset`` of the TCP header, fixing the checksum incrementally."""
    _rewrite_buffer(writable(ip), offset, value)


def _rewrite_buffer(buf, offset: int, value: int) -> None:
    old = int.from_bytes(buf[offset:offset + 4], "big")
    buf[offset:offset + 4] = value.to_bytes(4, "big")
    csum = (buf[16] << 8) | buf[17]
    csum = adjust(csum, _seq_delta_sum(old, value))
    buf[16], buf[17] = csum >> 8, csum & 0xFF


class SynProxy(hk.NetworkFunction):
    name = "synproxy"
    sees_every_packet = True

    def __init__(self, servers: Iterable[str], ports: Iterable[int], max_flows: int = 65536,
                 secret: Optional[bytes] = None, mss: int = 1460):
        self.servers = frozenset(ip_to_int(s) if isinstance(s, str) else s for s in servers)
        self.ports = frozenset(ports)
        if not self.servers or not self.ports:
            raise ValueError("a SYN proxy needs at least one server and one port")
        self.max_flows = max_flows
        self.mss = mss
        self._key = hashlib.blake2s((secret if secret is not None else os.urandom(32)) + b"synproxy").digest()
        self.flows: "OrderedDict" = OrderedDict()  # (client, cport, server, sport) -> ProxiedFlow
        self.counters = {"syn-answered": 0, "cookie-valid": 0, "cookie-invalid": 0, "handshakes": 0,
                         "flows-evicted": 0, "flows-expired": 0, "early-data-dropped": 0, "server-refused": 0}

    def stages(self):
        return [(hk.PREROUTING, hk.PRIORITY_CONNTRACK - 100, self.before_conntrack, "synproxy"),
                (hk.PREROUTING, hk.PRIORITY_CONNTRACK + 50, self.after_conntrack, "synproxy reply")]

    # -- cookies -----------------------------------------------------------------------------
    def _hash(self, client: int, cport: int, server: int, sport: int, t: int, isn: int) -> int:
        data = struct.pack("!IHIHII", client, cport, server, sport, t, isn)
        return int.from_bytes(hashlib.blake2s(data, key=self._key, digest_size=4).digest(), "big") & 0xFFFFFF

    def cookie(self, client: int, cport: int, server: int, sport: int, isn: int, mss: int, now: float) -> int:
        index = 0
        for i, value in enumerate(COOKIE_MSS):
            if value <= mss:
                index = i
        t = int(now // COOKIE_PERIOD) & 0x1F
        return (t << 27) | (index << 24) | self._hash(client, cport, server, sport, t, isn)

    def check_cookie(self, client: int, cport: int, server: int, sport: int, isn: int, cookie: int,
                     now: float) -> Optional[int]:
        """The MSS the cookie encodes, or None when it is not one of ours (or too old)."""
        t_now = int(now // COOKIE_PERIOD)
        t = cookie >> 27
        if t not in (t_now & 0x1F, (t_now - 1) & 0x1F):
            return None
        if self._hash(client, cport, server, sport, t, isn) != cookie & 0xFFFFFF:
            return None
        return COOKIE_MSS[(cookie >> 24) & 7]

    # -- the packet path ---------------------------------------------------------------------
    def before_conntrack(self, ctx: hk.PacketContext) -> str:
        if ctx.proto != 6:
            return hk.ACCEPT
        ip = ctx.ip
        if ip.dst in self.servers and ctx.dport in self.ports:
            return self._from_client(ctx, ip)
        return hk.ACCEPT

    def after_conntrack(self, ctx: hk.PacketContext) -> str:
        if ctx.proto != 6:
            return hk.ACCEPT
        ip = ctx.ip
        if ip.src not in self.servers or ctx.sport not in self.ports:
            return hk.ACCEPT
        key = (ip.dst, ctx.dport, ip.src, ctx.sport)
        flow = self.flows.get(key)
        if flow is None:
            return hk.ACCEPT
        seg = ip.payload
        flags = ctx.tcp_flags
        if flow.state == SYN_SENT:
            if flags & (SYN | ACK) == SYN | ACK and int.from_bytes(seg[8:12], "big") == (flow.client_isn + 1) & MASK:
                server_isn = int.from_bytes(seg[4:8], "big")
                flow.delta = (server_isn - flow.cookie) & MASK
                flow.state = ESTABLISHED
                flow.seen = ctx.now
                self.counters["handshakes"] += 1
                # complete the server's handshake as the client would have
                ack = build_tcp(ip.dst, ip.src, ctx.dport, ctx.sport, (flow.client_isn + 1) & MASK,
                                (server_isn + 1) & MASK, ACK, flow.window)
                ctx.host.ip_send(ip.dst, ip.src, 6, ack, ctx.now)
                if flow.pending is not None:  # the client's first data, its ack now in the server's space
                    data = bytearray(flow.pending)
                    flow.pending = None
                    _rewrite_buffer(data, 8, (int.from_bytes(data[8:12], "big") + flow.delta) & MASK)
                    ctx.host.ip_send(ip.dst, ip.src, 6, bytes(data), ctx.now)
                return hk.STOLEN
            if flags & RST:
                self._refused(ctx, key, flow)
                return hk.STOLEN
            return ctx.drop("synproxy-unexpected")
        flow.seen = ctx.now
        self.flows.move_to_end(key)
        if flow.delta:
            _rewrite(ip, 4, (int.from_bytes(seg[4:8], "big") - flow.delta) & MASK)
        if flags & RST:
            del self.flows[key]
        return hk.ACCEPT

    def _from_client(self, ctx: hk.PacketContext, ip) -> str:
        seg = ip.payload
        if len(seg) < 20:
            return hk.ACCEPT
        flags = ctx.tcp_flags
        key = (ip.src, ctx.sport, ip.dst, ctx.dport)
        flow = self.flows.get(key)
        now = ctx.now
        if flags & SYN:
            if flags & ACK:
                return ctx.drop("synproxy-unexpected")
            if flow is not None and flow.state == ESTABLISHED:
                del self.flows[key]  # a new connection on the same ports: start again
            return self._answer_syn(ctx, ip, seg)
        if flow is None:
            if flags & (ACK | RST | FIN) == ACK:
                return self._cookie_ack(ctx, ip, seg, key)
            return ctx.drop("synproxy-no-flow")
        if flow.state == SYN_SENT:
            if flags & RST:
                return self._client_reset(key)
            if len(seg) > (seg[12] >> 4) * 4 and flow.pending is None and seg[8:12] == \
                    ((flow.cookie + 1) & MASK).to_bytes(4, "big"):
                flow.pending = bytes(seg)  # sent on once the server is connected
                return hk.STOLEN
            self.counters["early-data-dropped"] += 1
            return ctx.drop("synproxy-handshake-pending")
        flow.seen = now
        self.flows.move_to_end(key)
        if flags & ACK and flow.delta:
            _rewrite(ip, 8, (int.from_bytes(seg[8:12], "big") + flow.delta) & MASK)
        if flags & RST:
            del self.flows[key]
        return hk.ACCEPT

    def _answer_syn(self, ctx: hk.PacketContext, ip, seg) -> str:
        isn = int.from_bytes(seg[4:8], "big")
        mss = _option_mss(seg) or 536
        cookie = self.cookie(ip.src, ctx.sport, ip.dst, ctx.dport, isn, mss, ctx.now)
        synack = build_tcp(ip.dst, ip.src, ctx.dport, ctx.sport, cookie, (isn + 1) & MASK, SYN | ACK,
                           SYNACK_WINDOW, b"", build_options(mss=self.mss))
        self.counters["syn-answered"] += 1
        ctx.host.ip_send(ip.dst, ip.src, 6, synack, ctx.now)
        return hk.STOLEN

    def _cookie_ack(self, ctx: hk.PacketContext, ip, seg, key) -> str:
        seq = int.from_bytes(seg[4:8], "big")
        cookie = (int.from_bytes(seg[8:12], "big") - 1) & MASK
        isn = (seq - 1) & MASK
        mss = self.check_cookie(ip.src, ctx.sport, ip.dst, ctx.dport, isn, cookie, ctx.now)
        if mss is None:
            self.counters["cookie-invalid"] += 1
            return ctx.drop("synproxy-bad-cookie")
        self.counters["cookie-valid"] += 1
        self._expire(ctx.now)
        if len(self.flows) >= self.max_flows:
            self.flows.popitem(last=False)
            self.counters["flows-evicted"] += 1
        window = (seg[14] << 8) | seg[15]
        self.flows[key] = ProxiedFlow(isn, cookie, mss, window, ctx.now)
        syn = build_tcp(ip.src, ip.dst, ctx.sport, ctx.dport, isn, 0, SYN, window, b"", build_options(mss=mss))
        ctx.host.ip_send(ip.src, ip.dst, 6, syn, ctx.now)
        if len(seg) > (seg[12] >> 4) * 4:
            self.flows[key].pending = bytes(seg)
        return hk.STOLEN

    def _refused(self, ctx: hk.PacketContext, key, flow: ProxiedFlow) -> None:
        """The server refused: tell the client with a reset in its sequence space."""
        client, cport, server, sport = key
        del self.flows[key]
        self.counters["server-refused"] += 1
        rst = build_tcp(server, client, sport, cport, (flow.cookie + 1) & MASK, 0, RST, 0)
        ctx.host.ip_send(server, client, 6, rst, ctx.now)

    def _client_reset(self, key) -> str:
        del self.flows[key]
        return hk.STOLEN

    def _expire(self, now: float) -> None:
        """Forget up to a few stale flows from the least recently used end."""
        for _ in range(8):
            if not self.flows:
                return
            key, flow = next(iter(self.flows.items()))
            limit = HANDSHAKE_TIMEOUT if flow.state == SYN_SENT else IDLE_TIMEOUT
            if now - flow.seen < limit:
                return
            del self.flows[key]
            self.counters["flows-expired"] += 1

    def poll(self, now: float) -> None:
        self._expire(now)

    def stats(self) -> dict:
        out = dict(self.counters)
        out["flows"] = len(self.flows)
        return out


def _option_mss(seg) -> Optional[int]:
    end = (seg[12] >> 4) * 4
    i = 20
    while i < end:
        kind = seg[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end:
            break
        length = seg[i + 1]
        if length < 2:
            break
        if kind == 2 and length == 4 and i + 4 <= end:
            return (seg[i + 2] << 8) | seg[i + 3]
        i += length
    return None
