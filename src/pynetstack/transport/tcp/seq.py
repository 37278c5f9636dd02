"""Sequence-number arithmetic modulo 2**32 (RFC 9293 3.4, RFC 1982 serial numbers).

Inside a connection sequence numbers are kept *unwrapped*: plain Python ints that start at the
ISN and grow past 2**32.  Wire values are converted once, at the edge, by ``unwrap`` (the
nearest unwrapped value to a reference); every comparison after that is an ordinary integer
comparison, which is both faster and impossible to get wrong across the wrap.
"""

from __future__ import annotations

MASK = 0xFFFFFFFF
HALF = 0x80000000


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b of two 32-bit sequence numbers, in [-2**31, 2**31)."""
    return ((a - b + HALF) & MASK) - HALF


def seq_lt(a: int, b: int) -> bool:
    # seq_diff(a, b) < 0, without the call: the distance a - b is at least half the space
    return ((a - b) & MASK) >= HALF


def seq_le(a: int, b: int) -> bool:
    return seq_diff(a, b) <= 0


def seq_gt(a: int, b: int) -> bool:
    return seq_diff(a, b) > 0


def seq_ge(a: int, b: int) -> bool:
    return ((a - b) & MASK) < HALF  # seq_diff(a, b) >= 0


def seq_add(a: int, n: int) -> int:
    return (a + n) & MASK


def seq_in_window(seq: int, left: int, size: int) -> bool:
    """left <= seq < left + size, modulo 2**32."""
    return 0 <= ((seq - left) & MASK) < size


def unwrap(wire: int, reference: int) -> int:
    """The unwrapped number congruent to ``wire`` (mod 2**32) nearest to unwrapped ``reference``."""
    return reference + (((wire - reference + HALF) & MASK) - HALF)
