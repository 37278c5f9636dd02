"""One TCP connection: the RFC 9293 state machine, sans-I/O.

A connection is driven by three entry points, each given ``now``: ``segment_arrives`` (a
parsed ``wire.tcp.Tcp``), ``on_timer`` (when ``deadline`` has passed) and the user calls
(``send``, ``recv``, ``shutdown``, ``close``, ``abort``).  It emits segments through its layer
(``layer.output``) and tells the application what happened through ``on_event(conn, kind)``
with kind in "connected", "readable", "writable", "closed".

Sequence numbers are unwrapped ints (see ``seq.py``): ``wire & 0xFFFFFFFF`` on output, and
``seq.unwrap`` against RCV.NXT / SND.UNA on input.

The class is assembled from one mixin per job, each in its own module (a map with the RFC
sections is docs/TCP.md):

    state.py      the states and the transition table        (RFC 9293 3.3.2)
    handshake.py  opening: active, passive, simultaneous, SYN cookie (RFC 9293 3.5, RFC 4987)
    options.py    MSS, window scale, timestamps, SACK-permitted, PAWS (RFC 7323, RFC 2018)
    rtt.py        RTT samples and the RTO, Karn's rule       (RFC 6298)
    timers.py     the five timers behind one object          (RFC 6298, RFC 9293 3.8, RFC 1122)
    sender.py     the send buffer, windows, Nagle, sender SWS, ACK processing
    recovery.py   duplicate ACKs, NewReno, SACK recovery, RTO go-back-N (RFC 5681/6582/6675)
    receiver.py   reassembly, the advertised window, the ACK policy, the FIN
    input.py      segment arrival, RFC 9293 3.10.7's steps as named methods
    emit.py       the segment writer every segment leaves through
    icmp.py       ICMP errors and path MTU (RFC 1122 4.2.3.9, RFC 1191, RFC 5927)

The mixins share the one ``__slots__`` below (attribute access as fast as in one class);
this module keeps what is left: construction, the state change, closing, and ``info``.
"""

from __future__ import annotations

from .buffers import ReceiveBuffer, SendBuffer
from .emit import EmitMixin
from .handshake import HandshakeMixin
from .icmp import IcmpMixin
from .input import InputMixin
from .options import DEFAULT_PEER_MSS, TS_OPTION_LEN, OptionsMixin  # noqa: F401 (re-exported)
from .receiver import STRETCH_ACK_SEGMENTS, ReceiverMixin  # noqa: F401 (re-exported)
from .recovery import RecoveryMixin
from .rtt import RttMixin
from .sender import GSO_HEADROOM, SenderMixin  # noqa: F401 (re-exported)
from .state import (CLOSE_WAIT, CLOSED, CLOSING, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2,  # noqa: F401
                    LAST_ACK, LISTEN, STATES, SYN_RECEIVED, SYN_SENT, SYNCHRONIZED, TIME_WAIT,
                    check_transition)
from .timers import ConnectionTimers, TimerMixin

PROTO_TCP = 6


class TcpConnection(InputMixin, HandshakeMixin, SenderMixin, RecoveryMixin, ReceiverMixin, EmitMixin,
                    TimerMixin, OptionsMixin, RttMixin, IcmpMixin):
    __slots__ = (
        "layer", "config", "local_ip", "local_port", "remote_ip", "remote_port", "key", "state",
        "passive", "listener", "on_event", "error", "soft_error", "log", "user_closed",
        # send side
        "iss", "snd_una", "snd_nxt", "snd_max", "snd_wnd", "snd_wl1", "snd_wl2", "max_snd_wnd",
        "snd_buf", "snd_buf_seq", "fin_queued", "snd_wscale", "mss", "peer_mss", "snd_up",
        # receive side
        "irs", "rcv_nxt", "rcv_adv", "rcv_buf", "rcv_wscale", "adv_mss", "rcv_mss", "reorder",
        "fin_received", "ack_pending", "ack_now", "last_ack_sent", "readable_posted", "rcv_up",
        # options
        "ts_ok", "ts_offset", "ts_recent", "ts_recent_age", "sack_ok", "ws_ok",
        # RTT / RTO (RFC 6298)
        "srtt", "rttvar", "rto", "backoff", "rtt_seq", "rtt_time", "rexmit_count", "first_rexmit",
        "rexmit_ts",
        # congestion / recovery
        "cc", "dupacks", "in_recovery", "recover", "scoreboard", "high_rxt",
        # timers: the deadlines (ConnectionTimers), the earliest one and the layer's heap entry
        "timers", "persist_backoff", "keep_probes", "last_recv", "deadline", "_sched",
        # output: deferred to the end of a batch, the offload size, the cached IP output path
        "deferred", "gso", "path", "csum_base",
        # statistics
        "segs_in", "segs_out", "bytes_acked", "bytes_received", "retransmits", "fast_retransmits",
        "timeouts", "dup_segments", "ooo_segments",
    )

    def __init__(self, layer, local_ip, local_port, remote_ip, remote_port, config, now):
        self.layer = layer
        self.config = config
        self.local_ip = local_ip
        self.local_port = local_port
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.key = (local_ip, local_port, remote_ip, remote_port)
        self.state = CLOSED
        self.passive = False
        self.listener = None
        self.on_event = None
        self.error = None
        self.soft_error = None
        self.log = []
        self.user_closed = False
        self.iss = 0
        self.snd_una = self.snd_nxt = self.snd_max = 0
        self.snd_wnd = 0
        self.snd_wl1 = self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.snd_buf = SendBuffer()
        self.snd_buf_seq = 0
        self.fin_queued = False
        self.snd_up = None  # SND.UP: the end of the urgent data we send, while it is unacknowledged
        self.snd_wscale = 0
        self.adv_mss = layer.advertised_mss(remote_ip, config)
        self.peer_mss = DEFAULT_PEER_MSS
        self.mss = min(DEFAULT_PEER_MSS, self.adv_mss)
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0
        self.rcv_buf = ReceiveBuffer()
        self.readable_posted = False
        self.rcv_wscale = 0
        self.rcv_mss = self.adv_mss
        self.reorder = None
        self.fin_received = False
        self.rcv_up = None  # RCV.UP: the end of the peer's urgent data, once it sent some
        self.ack_pending = 0
        self.ack_now = False
        self.last_ack_sent = 0
        self.ts_ok = False
        self.ts_offset = 0
        self.ts_recent = None
        self.ts_recent_age = now
        self.sack_ok = False
        self.ws_ok = False
        self.srtt = None
        self.rttvar = 0.0
        self.rto = config.rto_initial
        self.backoff = 0
        self.rtt_seq = None
        self.rtt_time = 0.0
        self.rexmit_count = 0
        self.first_rexmit = None
        self.rexmit_ts = None
        self.cc = None
        self.dupacks = 0
        self.in_recovery = False
        self.recover = 0
        self.scoreboard = None
        self.high_rxt = 0
        self.timers = ConnectionTimers()
        self.persist_backoff = 0
        self.keep_probes = 0
        self.last_recv = now
        self.deadline = None
        self._sched = None
        self.deferred = False
        self.gso = 0  # payload bytes per segment with segmentation offload at the last output
        self.path = None  # the IP layer's cached OutputPath for this flow (made on first send)
        # the constant part of the checksum: pseudo-header addresses and protocol, our ports
        # (a 32-bit value is congruent to the sum of its 16-bit halves modulo 0xFFFF)
        self.csum_base = local_ip + remote_ip + PROTO_TCP + local_port + remote_port
        self.segs_in = self.segs_out = 0
        self.bytes_acked = self.bytes_received = 0
        self.retransmits = self.fast_retransmits = self.timeouts = 0
        self.dup_segments = self.ooo_segments = 0

    def __repr__(self):
        return f"<TcpConnection {self.name()} {self.state}>"

    def name(self) -> str:
        from ...wire.addr import ip_to_str
        return (f"{ip_to_str(self.local_ip)}:{self.local_port}-"
                f"{ip_to_str(self.remote_ip)}:{self.remote_port}")

    # == state, events ===========================================================================

    def _set_state(self, new: str, now: float, why: str) -> None:
        old = self.state
        if old == new:
            return
        check_transition(old, new, why)
        self.state = new
        log = self.log
        log.append((now, old, new, why))
        if len(log) > self.layer.config.event_log_size:
            del log[0]
        self.layer.state_changed(self, old, new, why, now)

    def _notify(self, kind: str) -> None:
        # Delivered by the layer once the current segment/timer is fully processed, so an
        # application callback that sends or closes never re-enters a half-done transition.
        # A "readable" already queued and not yet delivered covers new data too (the callback
        # reads what is there when it runs): one per batch, not one per segment.
        if self.on_event is not None:
            if kind == "readable":
                if self.readable_posted:
                    return
                self.readable_posted = True
            self.layer.post_event(self, kind)

    # == closing (RFC 9293 3.6) ==================================================================

    def shutdown(self, now: float) -> None:
        """Close the sending direction: queue a FIN after the data (half close)."""
        st = self.state
        if self.fin_queued or st in (CLOSED, LISTEN):
            return
        if st == SYN_SENT:
            self._close_now(now, "close in SYN-SENT", None)
            return
        self.fin_queued = True
        if st == ESTABLISHED:
            # from SYN-RECEIVED the FIN waits until the handshake completes (_established)
            self._set_state(FIN_WAIT_1, now, "close")
        elif st == CLOSE_WAIT:
            self._set_state(LAST_ACK, now, "close")
        self._output(now)
        self._update_deadline()

    def close(self, now: float) -> None:
        """Full close. Unread received data makes it an abort (RST), as Linux does (RFC 2525)."""
        self.user_closed = True
        if self.rcv_buf and self.state in SYNCHRONIZED:
            self.abort(now, "close with unread data")
            return
        self.shutdown(now)
        if self.state == FIN_WAIT_2 and self.timers.linger is None:
            self.timers.linger = now + self.config.fin_timeout
            self._update_deadline()

    def abort(self, now: float, why: str = "abort") -> None:
        """ABORT: send RST when synchronized, drop everything, enter CLOSED."""
        if self.state in SYNCHRONIZED or self.state == SYN_RECEIVED:
            if self.state != TIME_WAIT:
                self._send_rst(self.snd_nxt, now)
        self._close_now(now, why, None)

    def _close_now(self, now: float, why: str, error) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.timers.cancel_all()
        self.deadline = None
        if self.state != CLOSED:
            self._set_state(CLOSED, now, why)
            self.layer.remove(self)
            self._notify("closed")

    def _enter_time_wait(self, now: float, why: str) -> None:
        timers = self.timers
        timers.rexmit = timers.persist = timers.keepalive = None
        self._set_state(TIME_WAIT, now, why)
        if not self.layer.time_wait_allowed():
            self.ack_now = True
            self._output(now)
            self._close_now(now, "TIME-WAIT table full", None)
            return
        timers.linger = now + 2 * self.config.msl
        self.reorder = None
        self.snd_buf = SendBuffer()

    # == introspection ===========================================================================

    def info(self) -> dict:
        """Like ``ss -ti``: state, windows, RTT, retransmissions."""
        cc = self.cc
        return {
            "state": self.state,
            "local": (self.local_ip, self.local_port),
            "remote": (self.remote_ip, self.remote_port),
            "mss": self.mss,
            "snd_wnd": self.snd_wnd,
            "rcv_wnd": max(0, self.rcv_adv - self.rcv_nxt),
            "cwnd": cc.cwnd if cc else None,
            "ssthresh": cc.ssthresh if cc else None,
            "congestion": cc.name if cc else self.config.congestion,
            "srtt_ms": None if self.srtt is None else round(self.srtt * 1000, 3),
            "rto_ms": round(self._current_rto() * 1000, 1),
            "unacked": self.snd_max - self.snd_una,
            "send_queue": len(self.snd_buf),
            "recv_queue": len(self.rcv_buf),
            "retransmits": self.retransmits,
            "fast_retransmits": self.fast_retransmits,
            "timeouts": self.timeouts,
            "bytes_acked": self.bytes_acked,
            "bytes_received": self.bytes_received,
            "options": [name for name, on in (("ts", self.ts_ok), ("sack", self.sack_ok),
                                               ("wscale", self.ws_ok)) if on],
            "wscale": (self.snd_wscale, self.rcv_wscale) if self.ws_ok else None,
            "events": list(self.log),
        }
