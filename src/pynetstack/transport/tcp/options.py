"""What the SYNs negotiate and what the options do afterwards: MSS (RFC 9293 3.7.1, RFC 6691),
window scale and timestamps (RFC 7323 2, 3), SACK-permitted (RFC 2018), and PAWS (RFC 7323 5).

A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

from . import congestion
from .seq import seq_lt

DEFAULT_PEER_MSS = 536      # RFC 9293 3.7.1, when the SYN carries no MSS option
TS_OPTION_LEN = 12          # NOP NOP TS: what timestamps take from every segment's payload room
PAWS_IDLE = 24 * 86400.0    # RFC 7323 5.5: ts_recent is invalid after 24 days idle
MIN_MSS = 64                # what a very small path MTU still leaves us


def rcv_wscale_for(rcvbuf: int) -> int:
    """The smallest shift (RFC 7323 2.3, at most 14) that lets the window field cover ``rcvbuf``."""
    shift = 0
    while (rcvbuf >> shift) > 0xFFFF and shift < 14:
        shift += 1
    return shift


class OptionsMixin:
    __slots__ = ()

    def _choose_rcv_wscale(self) -> int:
        return rcv_wscale_for(self.config.rcvbuf)

    def _negotiate(self, seg, now: float, offered: bool) -> None:
        """Take the peer's SYN options. ``offered``: the peer's SYN came first (we answer)."""
        cfg = self.config
        self.peer_mss = seg.mss if seg.mss else DEFAULT_PEER_MSS
        if seg.wscale is not None and cfg.window_scaling:
            self.ws_ok = True
            self.snd_wscale = seg.wscale
            if offered:
                self.rcv_wscale = self._choose_rcv_wscale()
        else:
            self.ws_ok = False
            self.snd_wscale = 0
            self.rcv_wscale = 0
        if seg.ts_val is not None and cfg.timestamps:
            self.ts_ok = True
            self.ts_recent = seg.ts_val
            self.ts_recent_age = now
        else:
            self.ts_ok = False
        self.sack_ok = bool(seg.sack_permitted and cfg.sack)
        self._finish_negotiation()

    def _finish_negotiation(self) -> None:
        """The effective send MSS: the peer's, the path MTU's, less the timestamp option."""
        pmtu_mss = self.layer.ip.path_mtu(self.remote_ip) - 40
        mss = min(self.peer_mss, pmtu_mss)
        if self.ts_ok:
            mss -= TS_OPTION_LEN
        self.mss = max(mss, MIN_MSS)
        self.rcv_mss = self.adv_mss - (TS_OPTION_LEN if self.ts_ok else 0)
        if self.cc is None:
            self.cc = congestion.make(self.config.congestion, self.mss)
        else:
            self.cc.set_mss(self.mss)

    def _paws_rejects(self, seg, now: float) -> bool:
        """RFC 7323 5.3 R1-R3, before the sequence check: True when ``seg`` is an old duplicate
        (its TSval is older than TS.Recent).  A TS.Recent idle for 24 days is stale (5.5)."""
        if now - self.ts_recent_age > PAWS_IDLE:
            self.ts_recent = seg.ts_val
            return False
        self.layer.count("paws")
        self.ack_now = True
        return True

    def _remember_timestamp(self, ts_val: int, now: float) -> None:
        """RFC 7323 4.3: TS.Recent takes the TSval of a segment that covers the left edge of the
        window (SEG.SEQ <= Last.ACK.sent, checked by the caller), unless it is older."""
        if self.ts_recent is None or not seq_lt(ts_val, self.ts_recent or 0):
            self.ts_recent = ts_val
            self.ts_recent_age = now
