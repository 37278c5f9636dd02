"""The retransmission timeout: RTT samples, SRTT/RTTVAR and the RTO (RFC 6298), Karn's rule.

Samples come from timestamp echoes (RFC 7323 4) when both ends use timestamps, else from one
timed segment per round trip (``rtt_seq``/``rtt_time``, RFC 6298 3).  Karn's rule: no sample
from a retransmitted segment -- ``rtt_seq`` is dropped when its segment is sent again, and an
echo older than our latest retransmission (``rexmit_ts``) is ignored.

A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

from .seq import MASK, seq_lt

G = 0.001  # clock granularity (RFC 6298 2): our timestamps tick in milliseconds


class RttMixin:
    __slots__ = ()

    def _ts_now(self, now: float) -> int:
        """Our TSval: a millisecond clock plus the connection's random offset (RFC 7323 5.4, 7.1)."""
        return (int(now * 1000.0) + self.ts_offset) & MASK

    def _ts_rtt(self, ts_ecr: int, now: float):
        """The RTT a timestamp echo measures (RFC 7323 4), or None when it is ambiguous.

        Karn's rule for timestamps: an echo older than our latest retransmission is not used.
        The receiver takes TSval only from in-window, in-order segments (RFC 7323 4.3), so
        when the ACK of data (or of a SYN) that got through was lost, the ACK that our
        retransmission elicits -- the retransmission being a duplicate to the receiver --
        still echoes the earlier transmission: it measures the outage (the whole backed-off
        RTO), not the path.  Taken as samples, a few of these pushed SRTT and the RTO to
        seconds on a 4 ms path, so the next loss cost seconds more, and so on."""
        rtt = ((self._ts_now(now) - ts_ecr) & MASK) / 1000.0
        if rtt > 120.0:
            return None  # not an echo of ours (or from long before): no sample
        rexmit_ts = self.rexmit_ts
        if rexmit_ts is not None and seq_lt(ts_ecr, rexmit_ts):
            return None
        return rtt

    def _rtt_sample(self, r: float) -> None:
        """RFC 6298 2.2-2.4: fold one measurement into SRTT and RTTVAR, recompute the RTO."""
        if r < 0:
            return
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2.0
        else:
            self.rttvar += (abs(self.srtt - r) - self.rttvar) * 0.25
            self.srtt += (r - self.srtt) * 0.125
        var = 4.0 * self.rttvar
        rto = self.srtt + (var if var > G else G)
        cfg = self.config
        if rto < cfg.rto_min:
            rto = cfg.rto_min
        elif rto > cfg.rto_max:
            rto = cfg.rto_max
        self.rto = rto
        self.backoff = 0

    def _current_rto(self) -> float:
        """The RTO with exponential backoff (RFC 6298 5.5), at most ``rto_max``."""
        rto = self.rto * (1 << self.backoff) if self.backoff < 16 else self.config.rto_max
        cfg = self.config
        return cfg.rto_max if rto > cfg.rto_max else rto
