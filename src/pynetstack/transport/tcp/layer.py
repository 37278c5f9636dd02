"""The TCP layer: the ``TransportProtocol`` registered for IP protocol 6.

It demultiplexes segments to connections and listeners, answers segments for nothing with RST
(RFC 9293 3.10.7.1), owns the bounded listen backlogs and SYN cookies (RFC 4987), initial
sequence numbers (RFC 6528), the RFC 5961 challenge-ACK rate limit and one timer heap for all
connections.  Nothing raises out of ``receive``: bad input is counted in ``drops`` and dropped.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import struct
import traceback
from collections import Counter
from typing import Optional

from ...wire.errors import MalformedPacket
from ...wire.tcp import ACK, FIN, PROTO, RST, SYN, Tcp, build_tcp
from .config import TcpConfig
from .cookies import COOKIE_MSS, COOKIE_PERIOD, SynCookieMixin  # noqa: F401 (re-exported)
from .connection import TcpConnection
from .gro import COALESCE_PAYS, SegmentMerge
from .listener import Listener
from .state import ESTABLISHED, LISTEN, SYN_RECEIVED, TIME_WAIT
from .seq import MASK, unwrap

_key_pack = struct.Struct("!IHIH").pack
_unpack_ports_seq = struct.Struct("!HHI").unpack_from

def _is_unicast(address: int) -> bool:
    return address != 0 and address != 0xFFFFFFFF and (address >> 28) != 0xE


class TcpLayer(SynCookieMixin):
    """``TransportProtocol`` for TCP. ``ip`` implements ``net.protocol.IpOutput``."""

    def __init__(self, ip, config: Optional[TcpConfig] = None, secret: Optional[bytes] = None):
        self.ip = ip
        self.config = config or TcpConfig()
        secret = secret if secret is not None else os.urandom(32)
        self._isn_key = hashlib.blake2s(secret + b"isn").digest()
        self._cookie_key = hashlib.blake2s(secret + b"cookie").digest()
        self._ts_key = hashlib.blake2s(secret + b"ts").digest()
        self._port_key = hashlib.blake2s(secret + b"port").digest()
        self._next_ephemeral = 0  # RFC 6056 algorithm 3's counter, one step per port tried
        self.connections = {}
        self.listeners = {}
        self.drops = Counter()
        self.counters = Counter()
        self.time_wait_count = 0
        self._timers = []
        self._timer_seq = 0
        self._app_timers = []   # (when, seq, callback): timers of the applications on this layer
        self._challenge_tokens = float(self.config.challenge_ack_limit)
        self._challenge_time = None
        self.on_state_change = None   # optional observer: (conn, old, new, why, now)
        self.last_error = None
        self._events = []
        self._accept_ready = []
        self._delivering = False
        self._max_segment = getattr(ip, "max_segment", None)
        self._output_path = getattr(ip, "output_path", None)
        # an IP layer that polls after every batch of received datagrams lets connections
        # answer a batch once (see TcpConnection.segment_arrives); others get answers at once
        self.batching = bool(getattr(ip, "delivers_in_batches", False))
        self.deferred = []
        # and in-order data segments of a batch are merged before their connection sees them
        coalesce = self.config.coalesce
        if coalesce is None:
            coalesce = COALESCE_PAYS
        self.merge = SegmentMerge(self) if self.batching and coalesce else None

    @property
    def coalescing(self) -> bool:
        """Whether a batch's in-order data segments are merged (gro.py); settable between
        batches (``stack.tcp.coalescing = False``).  Only an IP layer that delivers in batches
        can have it."""
        return self.merge is not None

    @coalescing.setter
    def coalescing(self, on: bool) -> None:
        if on and not self.batching:
            raise ValueError("receive coalescing needs an IP layer that delivers in batches")
        if self.merge is not None and self.merge.held:
            raise RuntimeError("receive coalescing can be switched between batches only (under the stack's lock)")
        if on != self.coalescing:
            self.merge = SegmentMerge(self) if on else None

    # -- helpers used by connections -------------------------------------------------------------

    def post_event(self, conn, kind: str) -> None:
        self._events.append((conn, kind))

    def deliver_events(self) -> None:
        """Run application callbacks queued by connections (see ``TcpConnection._notify``)."""
        if self._delivering:
            return
        self._delivering = True
        try:
            events = self._events
            rounds = 0
            while events and rounds < 10000:
                rounds += 1
                self._events = []
                for conn, kind in events:
                    if kind == "readable":
                        conn.readable_posted = False
                    cb = conn.on_event
                    if cb is None:
                        continue
                    try:
                        cb(conn, kind)
                    except Exception:  # an application callback must not break the stack
                        self.drops["app-callback-error"] += 1
                        self.last_error = traceback.format_exc()
                events = self._events
            ready, self._accept_ready = self._accept_ready, []
            for listener in ready:
                listener.notify_pending = False
                cb = listener.on_accept
                if cb is not None:
                    try:
                        cb(listener)
                    except Exception:
                        self.drops["app-callback-error"] += 1
                        self.last_error = traceback.format_exc()
        finally:
            self._delivering = False

    def count(self, reason: str) -> None:
        self.drops[reason] += 1

    def output(self, conn, segment: bytes, now: float, gso_size: int = 0) -> None:
        if gso_size:
            ok = self.ip.ip_send(conn.local_ip, conn.remote_ip, PROTO, segment, now, gso_size=gso_size)
        else:
            ok = self.ip.ip_send(conn.local_ip, conn.remote_ip, PROTO, segment, now)
        if not ok:
            self.counters["unroutable"] += 1

    def output_path(self, conn, now: float):
        """The IP layer's cached way out for ``conn`` (an ``OutputPath``), or None."""
        make = self._output_path
        return make(conn.local_ip, conn.remote_ip, PROTO, now) if make is not None else None

    def max_segment(self, remote_ip: int) -> int:
        """The largest datagram the IP layer takes towards ``remote_ip`` for segmentation
        offload (0: none; an ``IpOutput`` without ``max_segment`` never offloads)."""
        probe = self._max_segment
        return probe(remote_ip) if probe is not None else 0

    def advertised_mss(self, remote_ip: int, config: TcpConfig) -> int:
        if config.mss:
            return config.mss
        return max(self.ip.path_mtu(remote_ip) - 40, 88)

    def _hash32(self, key: bytes, data: bytes) -> int:
        return int.from_bytes(hashlib.blake2s(data, key=key, digest_size=4).digest(), "big")

    def isn(self, key, now: float) -> int:
        """RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a 4 us clock."""
        return (int(now * 250000.0) + self._hash32(self._isn_key, _key_pack(*key))) & MASK

    def ts_offset(self, key) -> int:
        """A per-connection random timestamp offset (RFC 7323 7.1), 0 for nobody in particular."""
        return self._hash32(self._ts_key, _key_pack(*key))

    def schedule(self, conn, deadline: float) -> None:
        conn._sched = deadline
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, conn))
        if len(self._timers) > 2 * len(self.connections) + 1024:
            self._compact_timers()

    def _compact_timers(self) -> None:
        timers = []
        for conn in self.connections.values():
            if conn.deadline is not None:
                self._timer_seq += 1
                conn._sched = conn.deadline
                timers.append((conn.deadline, self._timer_seq, conn))
        heapq.heapify(timers)
        self._timers = timers

    def state_changed(self, conn, old: str, new: str, why: str, now: float) -> None:
        if new == TIME_WAIT:
            self.time_wait_count += 1
        if old == TIME_WAIT:
            self.time_wait_count -= 1
        if old == SYN_RECEIVED and conn.listener is not None:
            conn.listener.pending.discard(conn)
        self.counters["state:" + new] += 1
        observer = self.on_state_change
        if observer is not None:
            try:
                observer(conn, old, new, why, now)
            except Exception:
                self.count("observer-error")

    def remove(self, conn) -> None:
        if self.connections.get(conn.key) is conn:
            del self.connections[conn.key]
        if conn.listener is not None:
            conn.listener.pending.discard(conn)

    def time_wait_allowed(self) -> bool:
        return self.time_wait_count <= self.config.max_time_wait

    def challenge_ack_allowed(self, now: float) -> bool:
        """RFC 5961 7: a token bucket of ``challenge_ack_limit`` per second for the layer."""
        limit = self.config.challenge_ack_limit
        if self._challenge_time is not None:
            self._challenge_tokens = min(float(limit),
                                         self._challenge_tokens + (now - self._challenge_time) * limit)
        self._challenge_time = now
        if self._challenge_tokens >= 1.0:
            self._challenge_tokens -= 1.0
            self.counters["challenge-acks"] += 1
            return True
        return False

    def send_reset_for(self, local_ip: int, remote_ip: int, seg, now: float) -> None:
        """RFC 9293 3.10.7.1: the RST that answers ``seg`` (never a RST for a RST)."""
        if seg.flags & RST or not _is_unicast(remote_ip):
            return
        if seg.flags & ACK:
            seq, ack, flags = seg.ack, 0, RST
        else:
            seq = 0
            ack = (seg.seq + len(seg.payload) + (1 if seg.flags & SYN else 0)
                   + (1 if seg.flags & FIN else 0)) & MASK
            flags = RST | ACK
        raw = build_tcp(local_ip, remote_ip, seg.dst_port, seg.src_port, seq, ack, flags, 0)
        self.counters["resets-sent"] += 1
        self.ip.ip_send(local_ip, remote_ip, PROTO, raw, now)

    # -- user API ----------------------------------------------------------------------------------

    def _port_free(self, local_ip: int, port: int) -> bool:
        return (local_ip, port) not in self.listeners and (0, port) not in self.listeners

    def connect(self, remote_ip: int, remote_port: int, now: float, local_ip: Optional[int] = None,
                local_port: int = 0, config: Optional[TcpConfig] = None, on_event=None) -> TcpConnection:
        """Active OPEN. Raises OSError when there is no route or no free port."""
        if not 0 < remote_port <= 0xFFFF or not _is_unicast(remote_ip):
            raise OSError(22, "invalid TCP destination")
        if local_ip is None or local_ip == 0:
            local_ip = self.ip.source_address_for(remote_ip)
            if local_ip is None:
                raise OSError(101, "Network is unreachable")
        if len(self.connections) >= self.config.max_connections:
            raise OSError(105, "No buffer space available (TCP connection table full)")
        if local_port:
            key = (local_ip, local_port, remote_ip, remote_port)
            if key in self.connections:
                raise OSError(98, "Address already in use")
        else:
            low, high = self.config.ephemeral_ports
            span = high - low + 1
            # RFC 6056 algorithm 3: a keyed-hash offset per destination plus a counter that
            # advances with every port tried, so the next connect starts past the ports just taken
            offset = self._hash32(self._port_key, _key_pack(local_ip, 0, remote_ip, remote_port))
            for _ in range(span):
                port = low + (offset + self._next_ephemeral) % span
                self._next_ephemeral += 1
                key = (local_ip, port, remote_ip, remote_port)
                if key not in self.connections and self._port_free(local_ip, port):
                    break
            else:
                raise OSError(99, "Cannot assign requested address (no ephemeral port)")
            local_port = port
        conn = TcpConnection(self, local_ip, local_port, remote_ip, remote_port,
                             config or self.config, now)
        conn.on_event = on_event
        self.connections[conn.key] = conn
        conn.open_active(self.isn(conn.key, now), now)
        return conn

    def listen(self, port: int, ip: int = 0, backlog: int = 128,
               config: Optional[TcpConfig] = None) -> Listener:
        if not 0 < port <= 0xFFFF:
            raise OSError(22, "invalid TCP port")
        if (ip, port) in self.listeners:
            raise OSError(98, "Address already in use")
        listener = Listener(self, ip, port, backlog, config or self.config)
        self.listeners[(ip, port)] = listener
        return listener

    def connection_info(self):
        """One dict per connection, like ``ss -tia``."""
        rows = [dict(conn.info(), local=conn.key[:2], remote=conn.key[2:])
                for conn in list(self.connections.values())]
        for lst in list(self.listeners.values()):
            rows.append({"state": LISTEN, "local": (lst.ip, lst.port), "remote": (0, 0),
                         "accept_queue": len(lst.accept_queue), "half_open": len(lst.pending),
                         "backlog": lst.backlog})
        return rows

    # -- TransportProtocol -------------------------------------------------------------------------

    def receive(self, ip, now: float) -> None:
        self.receive_segment(ip.src, ip.dst, ip.payload, now, not ip.csum_ok)

    def receive_segment(self, src: int, dst: int, data, now: float, check: bool = True) -> None:
        """A segment ``src`` -> ``dst`` (the IPv4 payload); ``check``: verify its checksum.
        The IP layer's receive fast path calls this without making an IPv4 object."""
        merge = self.merge
        if merge is not None and merge.held and merge.extend(src, dst, data, check, now):
            return  # it continued a merge (gro.py)
        try:
            seg = Tcp.parse(data, src, dst, check)
        except MalformedPacket as exc:
            self.drops[exc.reason] += 1
            return
        if merge is not None and merge.hold(dst, src, seg, now):
            return  # held for a merge with the next segments of the batch
        self.dispatch(dst, src, seg, now)
        if (self._events or self._accept_ready) and not self.batching:
            self.deliver_events()  # batching: after the batch, in flush(), so data arrives in one piece

    def dispatch(self, local_ip: int, remote_ip: int, seg, now: float) -> None:
        """Hand a parsed segment to its connection or listener (or answer it with RST)."""
        try:
            self._dispatch(local_ip, remote_ip, seg, now)
        except Exception:  # a bug must not take the stack down: count it, keep the trace
            self.drops["internal-error"] += 1
            self.last_error = traceback.format_exc()

    def _dispatch(self, local_ip: int, remote_ip: int, seg, now: float) -> None:
        if seg.src_port == 0 or seg.dst_port == 0:
            self.drops["port-zero"] += 1
            return
        if not _is_unicast(remote_ip):
            self.drops["bad-source"] += 1
            return
        conn = self.connections.get((local_ip, seg.dst_port, remote_ip, seg.src_port))
        if conn is not None:
            conn.segment_arrives(seg, now)
            return
        listener = self.listeners.get((local_ip, seg.dst_port)) or self.listeners.get((0, seg.dst_port))
        if listener is not None:
            self._listen_input(listener, local_ip, remote_ip, seg, now)
        else:
            self.drops["no-socket"] += 1
            self.send_reset_for(local_ip, remote_ip, seg, now)

    def reopen_from_time_wait(self, conn, seg, now: float) -> None:
        """RFC 9293 3.6.1 / RFC 6191: a new SYN above the old sequence space ends TIME-WAIT."""
        conn._close_now(now, "new SYN in TIME-WAIT", None)
        self.counters["time-wait-reopened"] += 1
        self._dispatch(conn.local_ip, conn.remote_ip, seg, now)

    def _listen_input(self, listener: Listener, local_ip: int, remote_ip: int, seg, now: float) -> None:
        flags = seg.flags
        if flags & RST:
            self.drops["rst-to-listener"] += 1
            return
        if flags & ACK:
            if not flags & SYN and self.config.syncookies and listener.cookie_time is not None \
                    and now - listener.cookie_time < 2 * COOKIE_PERIOD:
                if self._cookie_ack(listener, local_ip, remote_ip, seg, now):
                    return
                self.drops["bad-cookie"] += 1
            self.send_reset_for(local_ip, remote_ip, seg, now)
            return
        if not flags & SYN:
            self.drops["listener-no-syn"] += 1
            return
        if listener.accept_queue_full():
            self.drops["listen-overflow"] += 1
            return
        if len(listener.pending) >= self.config.syn_backlog:
            if self.config.syncookies:
                self._send_cookie(listener, local_ip, remote_ip, seg, now)
            else:
                self.drops["syn-backlog-full"] += 1
            return
        if len(self.connections) >= self.config.max_connections:
            self.drops["connection-table-full"] += 1
            return
        key = (local_ip, seg.dst_port, remote_ip, seg.src_port)
        conn = TcpConnection(self, local_ip, seg.dst_port, remote_ip, seg.src_port, listener.config, now)
        self.connections[key] = conn
        listener.pending.add(conn)
        conn.open_passive(seg, seg.seq, listener, self.isn(key, now), now)

    # -- ICMP, timers ------------------------------------------------------------------------------

    def icmp_error_acceptable(self, inner_ip, inner_payload) -> bool:
        """Whether an ICMP error quoting ``inner_ip`` (and the first bytes of its segment) may be
        believed, before the IP layer acts on it (a path MTU): it must quote a connection we
        have and a sequence number in flight, SND.UNA <= SEG.SEQ <= SND.MAX (RFC 5927 4.1, as
        Linux checks), or anyone could lower our path MTU with one forged message."""
        if len(inner_payload) < 8:
            self.drops["icmp-short-quote"] += 1
            return False
        sport, dport, wire_seq = _unpack_ports_seq(inner_payload)
        conn = self.connections.get((inner_ip.src, sport, inner_ip.dst, dport))
        if conn is None:
            self.drops["icmp-no-connection"] += 1
            return False
        una = conn.snd_una
        if not una <= unwrap(wire_seq, una) <= conn.snd_max:
            self.drops["icmp-bad-seq"] += 1
            return False
        return True

    def icmp_error(self, icmp_type: int, code: int, info: int, inner_ip, inner_payload: bytes,
                   now: float) -> None:
        try:
            if len(inner_payload) < 8:
                self.drops["icmp-short-quote"] += 1
                return
            sport, dport, seq = _unpack_ports_seq(inner_payload)
            conn = self.connections.get((inner_ip.src, sport, inner_ip.dst, dport))
            if conn is None:
                self.drops["icmp-no-connection"] += 1
                return
            conn.icmp_error(icmp_type, code, info, seq, now)
        except Exception:
            self.drops["internal-error"] += 1
            self.last_error = traceback.format_exc()
        self.deliver_events()

    def call_at(self, when: float, callback) -> None:
        """Run ``callback(now)`` from ``poll`` once ``when`` has passed, in the loop thread with
        the stack's lock held: how services built on this layer keep their timers (idle timeouts)
        on the stack's clock, virtual in a simulation.  A callback that is no longer wanted
        should return at once; keeping at most one armed per connection bounds the heap."""
        self._timer_seq += 1
        heapq.heappush(self._app_timers, (when, self._timer_seq, callback))

    def _run_app_timers(self, now: float) -> None:
        timers = self._app_timers
        while timers and timers[0][0] <= now:
            callback = heapq.heappop(timers)[2]
            try:
                callback(now)
            except Exception:  # an application timer must not break the stack
                self.drops["app-callback-error"] += 1
                self.last_error = traceback.format_exc()

    def flush(self, now: float) -> None:
        """Answer the batch of segments received since the last poll: the applications take
        their data first, so the ACK that follows advertises the window their reads opened."""
        self.deliver_events()
        while self.deferred:
            pending, self.deferred = self.deferred, []
            for conn in pending:
                try:
                    conn.flush(now)
                except Exception:
                    self.drops["internal-error"] += 1
                    self.last_error = traceback.format_exc()
            self.deliver_events()

    def poll(self, now: float) -> None:
        merge = self.merge
        if merge is not None and merge.held:
            merge.release_all(now)
        if self.deferred or self._events:
            self.flush(now)
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, conn = heapq.heappop(timers)
            if conn._sched != deadline:
                continue  # superseded
            conn._sched = None
            try:
                if conn.deadline is not None and conn.deadline <= now:
                    conn.on_timer(now)
                elif conn.deadline is not None:
                    self.schedule(conn, conn.deadline)
            except Exception:
                self.drops["internal-error"] += 1
                self.last_error = traceback.format_exc()
        if self._app_timers and self._app_timers[0][0] <= now:
            self._run_app_timers(now)
        self.deliver_events()

    def next_deadline(self) -> Optional[float]:
        if self.deferred or self._events or self._accept_ready:
            return 0.0  # work for the next pass (Stack.wake_needed relies on this too)
        timers = self._timers
        while timers and timers[0][2]._sched != timers[0][0]:
            heapq.heappop(timers)
        first = timers[0][0] if timers else None
        if self._app_timers and (first is None or self._app_timers[0][0] < first):
            first = self._app_timers[0][0]
        return first

    def idle_connections_established(self) -> int:
        return sum(1 for c in self.connections.values() if c.state == ESTABLISHED)
