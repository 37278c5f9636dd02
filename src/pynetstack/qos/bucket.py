"""A token bucket with tc's semantics: ``rate`` bytes per second fill a bucket of ``burst``
bytes (tc's ``burst``/``buffer``); it starts full.

Two ways to use one, as the kernel does:

- shaping (HTB): a class may send while its tokens are not negative, and is charged after the
  packet left, so the balance may go below zero by one packet and the debt is paid back by
  waiting.  Over a long run the bytes sent are ``rate * time + burst`` to within one packet.
- policing (tc's ``police``, TBF's conformance): a packet conforms when the bucket holds its
  whole size; a packet that does not is dropped, not delayed.

Sans-I/O: every method takes ``now`` (seconds on the stack's clock).
"""

from __future__ import annotations

UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9}
SIZE_UNITS = {"b": 1, "k": 1024, "kb": 1024, "m": 1 << 20, "mb": 1 << 20}


class RateError(ValueError):
    """A rate or a size that cannot be read."""


def parse_rate(value, where: str = "rate") -> float:
    """A rate as tc writes it ('50mbit', '1gbit', '100kbps' = bytes) or bits per second as a
    number; returns bytes per second."""
    if isinstance(value, bool) or value is None:
        raise RateError(f"{where}: {value!r} is not a rate (write e.g. \"50mbit\")")
    if isinstance(value, (int, float)):
        bits = float(value)
    else:
        text = str(value).strip().lower()
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(number):] or "bit"
        if unit not in UNITS:
            raise RateError(f"{where}: unknown unit {unit!r} in {value!r} (bit, kbit, mbit, gbit, bps, kbps, mbps)")
        try:
            bits = float(number) * UNITS[unit]
        except ValueError:
            raise RateError(f"{where}: {value!r} is not a rate (write e.g. \"50mbit\")") from None
    if not bits > 0:
        raise RateError(f"{where}: {value!r} must be more than zero")
    return bits / 8.0


def parse_size(value, where: str = "burst") -> int:
    """A size as tc writes it ('15k', '1514b', 3000) in bytes."""
    if isinstance(value, bool):
        raise RateError(f"{where}: {value!r} is not a size")
    if isinstance(value, (int, float)):
        size = float(value)
    else:
        text = str(value).strip().lower()
        number = text.rstrip("bkm")
        unit = text[len(number):] or "b"
        if unit not in SIZE_UNITS:
            raise RateError(f"{where}: unknown unit {unit!r} in {value!r} (b, k, m)")
        try:
            size = float(number) * SIZE_UNITS[unit]
        except ValueError:
            raise RateError(f"{where}: {value!r} is not a size (write e.g. \"15k\")") from None
    if not size >= 1:
        raise RateError(f"{where}: {value!r} must be at least one byte")
    return int(size)


TICK = 0.004  # seconds of rate in a default burst


def default_burst(rate: float, mtu: int = 1514) -> int:
    """tc's default for HTB is what the rate sends in one timer tick plus one MTU, with the
    kernel's 1 ms tick.  A userspace loop wakes less precisely (epoll rounds its timeout up to a
    millisecond, then the scheduler adds its own delay), and tokens a full bucket cannot hold
    are lost, so the tick here is 4 ms: a late wake-up costs no rate."""
    return int(rate * TICK) + mtu


SLACK = 1e-6  # bytes: a balance this close to zero is zero (time arithmetic rounds)


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float = 0.0):
        self.rate = float(rate)  # bytes per second
        self.burst = float(burst)  # bytes
        self.tokens = float(burst)
        self.stamp = now

    def refill(self, now: float) -> float:
        elapsed = now - self.stamp
        if elapsed > 0:
            tokens = self.tokens + elapsed * self.rate
            self.tokens = tokens if tokens < self.burst else self.burst
            self.stamp = now
        return self.tokens

    # shaping: send while not in debt, pay afterwards
    def ready(self, now: float) -> bool:
        return self.refill(now) >= -SLACK

    def charge(self, size: int) -> None:
        self.tokens -= size

    def ready_at(self) -> float:
        """When the balance is back to zero (a time in the past when it is not negative)."""
        tokens = self.tokens
        return self.stamp if tokens >= 0.0 else self.stamp - tokens / self.rate

    # policing: the whole packet must fit
    def conform(self, size: int, now: float) -> bool:
        """Take ``size`` bytes when the bucket holds them (a packet bigger than the bucket
        conforms to a full bucket, so a small burst does not ban large packets); else False."""
        tokens = self.refill(now)
        if tokens >= size or tokens >= self.burst:
            self.tokens = tokens - size
            return True
        return False
