"""Flows for inspection: direction (to_server / to_client), TCP handshake state, flowbits, and
each direction's stream reassembled in order for content that spans segments.

Bounds: ``max_flows`` flows (the oldest is evicted when a new one needs room), flows idle for
``timeout`` seconds expire in ``expire(now)``, at most ``depth`` stream bytes per direction
(Suricata's stream.reassembly.depth: beyond it packets are inspected alone) and at most
``MAX_PENDING`` out-of-order segments held per direction."""

from __future__ import annotations

import hashlib
from typing import Dict, Optional

MAX_PENDING = 32
TCP_SYN, TCP_SYNACK, TCP_ESTABLISHED, TCP_CLOSED = 1, 2, 3, 4


class Stream:
    """One direction's bytes in sequence order from the handshake on."""

    __slots__ = ("next_seq", "data", "pending", "depth", "full", "inspected", "rules", "closed")

    def __init__(self, isn: int, depth: int):
        self.next_seq = (isn + 1) & 0xFFFFFFFF
        self.data = bytearray()
        self.pending: Dict[int, bytes] = {}
        self.depth = depth
        self.full = False  # depth reached: no more stream bytes are kept
        self.inspected = 0  # bytes of ``data`` the prefilter has seen
        self.rules: set = set()  # rules whose fast pattern is in the stream and that have not matched
        self.closed = False  # FIN or RST seen from this side

    def add(self, seq: int, payload: bytes) -> bool:
        """Take a segment; True when new in-order bytes were appended."""
        if self.full or not payload:
            return False
        offset = (seq - self.next_seq) & 0xFFFFFFFF
        if offset >= 0x80000000:  # starts before next_seq: a retransmission, maybe with new bytes
            overlap = (self.next_seq - seq) & 0xFFFFFFFF
            if overlap >= len(payload):
                return False
            payload = payload[overlap:]
            offset = 0
        if offset:
            if len(self.pending) < MAX_PENDING:
                self.pending.setdefault(seq, bytes(payload))
            return False
        self._append(payload)
        while self.pending and not self.full:  # segments that were waiting for this one
            for pseq in list(self.pending):
                off = (pseq - self.next_seq) & 0xFFFFFFFF
                if off >= 0x80000000 or off == 0:
                    chunk = self.pending.pop(pseq)
                    skip = (self.next_seq - pseq) & 0xFFFFFFFF if off else 0
                    if skip < len(chunk):
                        self._append(chunk[skip:])
                    break
            else:
                break
        return True

    def _append(self, payload) -> None:
        room = self.depth - len(self.data)
        if len(payload) >= room:
            payload = payload[:room]
            self.full = True
            self.pending.clear()
        self.data += payload
        self.next_seq = (self.next_seq + len(payload)) & 0xFFFFFFFF


class Flow:
    __slots__ = ("key", "flow_id", "client", "proto", "start", "last", "tcp_state", "seen_reply", "bits",
                 "streams", "stream_matched", "passed", "dropped", "pkts", "bytes", "alerts", "http",
                 "ever_established", "synack_dir", "app_proto")

    def __init__(self, key, flow_id: int, client, proto: int, now: float):
        self.key = key
        self.flow_id = flow_id
        self.client = client  # (address, port) of the side that opened the flow
        self.proto = proto
        self.start = self.last = now
        self.tcp_state = 0
        self.ever_established = False  # TCP: the handshake completed (a reset later does not undo it)
        self.app_proto = None  # "http" once Suricata would have detected it (see the engine)
        self.synack_dir = 1  # who sends the SYN/ACK: the server, or the client in a split handshake
        self.seen_reply = False
        self.bits: set = set()
        self.streams = [None, None]  # to_server, to_client
        self.stream_matched: set = set()  # (rule order, direction): a stream alerts once per rule
        self.passed = False  # a pass rule matched: the rest of the flow is not inspected
        self.dropped = False  # inline, a drop rule matched: the rest of the flow is dropped unseen
        self.http = None  # HttpParser once the client spoke HTTP; False when it did not
        self.pkts = [0, 0]
        self.bytes = [0, 0]
        self.alerts = 0

    @property
    def established(self) -> bool:
        if self.proto == 6:  # as Suricata: every state from ESTABLISHED on (closing, closed) counts
            return self.ever_established
        return self.seen_reply


def flow_id_of(key) -> int:
    """A stable 51-bit id per flow, as EVE's flow_id (the same in every run)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 13


class FlowTable:
    def __init__(self, max_flows: int = 65536, timeout: float = 120.0, depth: int = 1 << 20,
                 midstream: bool = False):
        # midstream: pick up a TCP flow whose handshake was not seen (Suricata's stream.midstream)
        self.midstream = midstream
        self.flows: Dict[tuple, Flow] = {}
        self.max_flows = max_flows
        self.timeout = timeout
        self.depth = depth
        self.evicted = 0
        self.expired = 0

    def lookup(self, proto: int, src: int, sport: int, dst: int, dport: int, now: float, ct_key=None,
               ct_dir: int = 0):
        """(flow, direction): direction 0 is to_server (from the side that opened it), 1 to_client.

        ``ct_key``: the connection's conntrack original tuple, when conntrack runs. Conntrack has
        already paired the two directions whatever NAT did to their addresses, so the flow is
        found by that tuple and the direction is conntrack's (``ct_dir``: 0 original, 1 reply).
        Without it (the IDS alone, a pcap) the flow is found by its 5-tuple in either order."""
        a, b = (src, sport), (dst, dport)
        if ct_key is not None:
            key = ("ct", ct_key)
            flow = self.flows.get(key)
            if flow is None:
                flow = self._new(key, b if ct_dir else a, proto, now)
            flow.last = now
            return flow, ct_dir
        key = (proto, a, b) if a <= b else (proto, b, a)
        flow = self.flows.get(key)
        if flow is None:
            flow = self._new(key, a, proto, now)
        flow.last = now
        return flow, (0 if a == flow.client else 1)

    def _new(self, key, client, proto: int, now: float) -> Flow:
        if len(self.flows) >= self.max_flows:
            del self.flows[next(iter(self.flows))]
            self.evicted += 1
        flow = self.flows[key] = Flow(key, flow_id_of(key), client, proto, now)
        return flow

    def expire(self, now: float, budget: int = 1024) -> None:
        cutoff = now - self.timeout
        stale = []
        for key, flow in self.flows.items():
            if flow.last < cutoff:
                stale.append(key)
                if len(stale) >= budget:
                    break
        for key in stale:
            del self.flows[key]
        self.expired += len(stale)

    def track_tcp(self, flow: Flow, direction: int, flags: int, seq: int, payload, fast_open: bool = False
                  ) -> Optional[Stream]:
        """Follow the handshake; return the direction's stream when it takes new bytes (or
        closes). ``fast_open``: the SYN carries the TCP Fast Open option, so its data is stream
        data (without the option, Suricata leaves a SYN's data out of the stream).

        Besides SYN, SYN/ACK, ACK, the split handshakes are followed as Suricata follows them:
        the server answers the SYN with a SYN of its own, the client sends the SYN/ACK and the
        server the final ACK (4-way); an ACK from the server before its SYN is ignored (5-way)."""
        if flags & 0x05 and flow.streams[direction] is not None and flow.tcp_state == TCP_ESTABLISHED:
            stream = flow.streams[direction]
            fresh = bool(payload) and stream.add(seq, payload)
            stream.closed = True
            if flags & 0x04:
                flow.tcp_state = TCP_CLOSED
            return stream if fresh or not stream.full else None
        state = flow.tcp_state
        syn, ack = flags & 0x02, flags & 0x10
        if flags & 0x04:  # RST
            flow.tcp_state = TCP_CLOSED
        elif syn and not ack and direction == 0 and state in (0, TCP_SYN, TCP_CLOSED):
            flow.tcp_state = TCP_SYN
            flow.ever_established = False
            flow.synack_dir = 1
            flow.streams[0] = stream = Stream(seq, self.depth)
            if payload and fast_open:  # TCP Fast Open: data with the SYN, after its sequence number
                stream.add((seq + 1) & 0xFFFFFFFF, payload)
                return stream
            return None
        elif syn and not ack and direction == 1 and state == TCP_SYN:  # split handshake
            flow.synack_dir = 0
            flow.streams[1] = Stream(seq, self.depth)
        elif syn and ack and direction == flow.synack_dir and state in (TCP_SYN, TCP_SYNACK):
            flow.tcp_state = TCP_SYNACK
            if direction == 1:
                flow.streams[1] = Stream(seq, self.depth)
        elif ack and not syn and direction != flow.synack_dir and state == TCP_SYNACK:
            flow.tcp_state = TCP_ESTABLISHED
            flow.ever_established = True
        elif self.midstream and state == 0 and ack and not syn:
            flow.tcp_state = TCP_ESTABLISHED  # taken up in the middle: both directions from here
            flow.ever_established = True
            flow.streams[direction] = Stream((seq - 1) & 0xFFFFFFFF, self.depth)
        if self.midstream and flow.tcp_state == TCP_ESTABLISHED and flow.streams[direction] is None:
            flow.streams[direction] = Stream((seq - 1) & 0xFFFFFFFF, self.depth)
        stream = flow.streams[direction]
        if stream is not None and payload and flow.tcp_state == TCP_ESTABLISHED:
            if stream.add(seq, payload):
                return stream
        return None
