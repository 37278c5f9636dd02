"""Congestion control behind one small interface: Reno (RFC 5681) and CUBIC (RFC 9438).

The connection owns loss detection and recovery (fast retransmit, NewReno, SACK); a controller
only answers "how big is cwnd now": it is told about ACKed bytes, congestion events and
retransmission timeouts.  Windows are in bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional


SS_ACK_LIMIT = 16  # segments one ACK may add to cwnd in slow start (see _slow_start)


def initial_window(mss: int) -> int:
    """RFC 6928: min(10*MSS, max(2*MSS, 14600))."""
    return min(10 * mss, max(2 * mss, 14600))


class CongestionControl(ABC):
    """Interface. ``cwnd`` and ``ssthresh`` are public attributes, in bytes."""

    name = "base"
    __slots__ = ("mss", "cwnd", "ssthresh", "_acc")

    def __init__(self, mss: int):
        self.mss = mss
        self.cwnd = initial_window(mss)
        self.ssthresh = 1 << 30
        self._acc = 0

    def set_mss(self, mss: int) -> None:
        self.mss = mss
        if self.cwnd < mss:
            self.cwnd = mss

    @abstractmethod
    def on_ack(self, acked: int, now: float, rtt: Optional[float]) -> None:
        """New data was cumulatively ACKed outside loss recovery."""

    @abstractmethod
    def on_congestion(self, now: float, flight: int) -> None:
        """Loss found by duplicate ACKs / SACK: set ssthresh (the caller sets cwnd for recovery)."""

    def on_timeout(self, now: float, flight: int) -> None:
        """Retransmission timeout: ssthresh from flight size, cwnd to one segment (RFC 5681 3.1)."""
        self.on_congestion(now, flight)
        self.cwnd = self.mss

    def on_recovery_exit(self, now: float) -> None:
        self.cwnd = max(self.ssthresh, 2 * self.mss)

    def _slow_start(self, acked: int) -> int:
        """Appropriate byte counting (RFC 3465) with L = SS_ACK_LIMIT*SMSS. Returns bytes left over.

        RFC 3465 2.3 bounds the growth per ACK by L = 2*SMSS so that a receiver's stretch
        ACKs (or ACK loss) cannot let one ACK release a line-rate burst, and calls larger L
        something for experiment.  But with L = 2*SMSS a receiver that ACKs once per batch
        of segments (as ours and Linux with GRO do) turns slow start nearly linear.  Linux
        (tcp_slow_start) counts every segment an ACK covers, with no L at all; we count the
        ACKed bytes up to SS_ACK_LIMIT segments per ACK, which covers a batch's stretch ACK
        (STRETCH_ACK_SEGMENTS in connection.py) and still bounds what one ACK can add after,
        say, a run of lost ACKs."""
        room = self.ssthresh - self.cwnd
        grow = min(acked, SS_ACK_LIMIT * self.mss, room) if room > 0 else 0
        self.cwnd += grow
        return acked - grow if self.cwnd >= self.ssthresh else 0


class Reno(CongestionControl):
    name = "reno"
    __slots__ = ()

    def on_ack(self, acked, now, rtt):
        if self.cwnd < self.ssthresh:
            acked = self._slow_start(acked)
            if not acked:
                return
        # congestion avoidance: one MSS per cwnd of ACKed bytes
        self._acc += acked
        if self._acc >= self.cwnd:
            self._acc -= self.cwnd
            self.cwnd += self.mss

    def on_congestion(self, now, flight):
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self._acc = 0


class Cubic(CongestionControl):
    """CUBIC with the Reno-friendly region and fast convergence (RFC 9438 4.2-4.7)."""

    name = "cubic"
    C = 0.4
    BETA = 0.7
    __slots__ = ("w_max", "k", "epoch", "w_est", "last_rtt")

    def __init__(self, mss):
        super().__init__(mss)
        self.w_max = 0.0     # segments
        self.k = 0.0
        self.epoch = None    # start of the current congestion-avoidance epoch
        self.w_est = 0.0     # segments
        self.last_rtt = 0.1

    def on_ack(self, acked, now, rtt):
        if rtt:
            self.last_rtt = rtt
        if self.cwnd < self.ssthresh:
            acked = self._slow_start(acked)
            if not acked:
                return
        mss = self.mss
        cwnd_seg = self.cwnd / mss
        if self.epoch is None:
            self.epoch = now
            if self.w_max <= cwnd_seg:  # e.g. leaving slow start: no plateau to return to
                self.w_max = cwnd_seg
                self.k = 0.0
            else:
                self.k = ((self.w_max - cwnd_seg) / self.C) ** (1.0 / 3.0)
            self.w_est = cwnd_seg
        t = now - self.epoch + self.last_rtt
        target = self.C * (t - self.k) ** 3 + self.w_max
        if target < cwnd_seg:
            target = cwnd_seg
        elif target > 1.5 * cwnd_seg:
            target = 1.5 * cwnd_seg
        alpha = 3.0 * (1.0 - self.BETA) / (1.0 + self.BETA)
        self.w_est += alpha * (acked / mss) / cwnd_seg
        if self.w_est > target:
            target = self.w_est
        # grow by (target - cwnd)/cwnd segments per segment ACKed
        self._acc += (target - cwnd_seg) / cwnd_seg * acked
        if self._acc >= 1.0:
            whole = int(self._acc)
            self.cwnd += whole
            self._acc -= whole

    def on_congestion(self, now, flight):
        cwnd_seg = self.cwnd / self.mss
        if cwnd_seg < self.w_max:  # fast convergence
            self.w_max = cwnd_seg * (1.0 + self.BETA) / 2.0
        else:
            self.w_max = cwnd_seg
        self.ssthresh = max(int(self.cwnd * self.BETA), 2 * self.mss)
        self.epoch = None
        self._acc = 0

    def on_timeout(self, now, flight):
        super().on_timeout(now, flight)
        self.epoch = None


ALGORITHMS = {"reno": Reno, "cubic": Cubic}


def make(name: str, mss: int) -> CongestionControl:
    try:
        return ALGORITHMS[name](mss)
    except KeyError:
        raise ValueError(f"unknown congestion control {name!r} (have {', '.join(ALGORITHMS)})") from None
