"""Internet checksum (RFC 1071), incremental update (RFC 1624) and the TCP/UDP pseudo-header.

The ones' complement sum of 16-bit words equals the big-endian integer value of the data
modulo 0xFFFF, because 2**16 is congruent to 1 modulo 0xFFFF.  ``int.from_bytes`` and one
``%`` by a single-digit divisor both run in C, so no Python loop touches each byte.
"""

from __future__ import annotations

import sys
from array import array

_from_bytes = int.from_bytes
_PYPY_FROM = 512  # below this many bytes int.from_bytes is the faster on PyPy too


def _word_value_pypy(data, _byteorder: str = "big") -> int:
    """An int congruent, modulo 0xFFFF, to ``int.from_bytes(data, "big")``, and 0 only for
    all-zero data: what every checksum here needs.  PyPy's big-int ``from_bytes`` is 2.5x
    slower than this sum of 32-bit words in machine order (an array, summed by the runtime);
    a little-endian word sum times 256 is congruent to the big-endian one (256 * 256 = 65536,
    1 modulo 0xFFFF, so 256 swaps the bytes of a 16-bit sum), and for an odd length the sum,
    padded with a zero byte, is 256 times the unpadded value, so the sum itself is the answer."""
    n = len(data)
    if n < _PYPY_FROM:
        return _from_bytes(data, "big")
    whole = n & ~3
    words = array("I")
    words.frombytes(data[:whole])
    total = sum(words)
    if whole != n:
        total += _from_bytes(bytes(data[whole:]) + bytes(4 - (n - whole)), sys.byteorder)
    if sys.byteorder == "little":
        return total if n & 1 else total * 256
    return total * 256 if n & 1 else total


_MASK_6144 = (1 << 6144) - 1
_MASK_3072 = (1 << 3072) - 1
_MASK_1536 = (1 << 1536) - 1


def _word_value_folded(data, _byteorder: str = "big") -> int:
    """``int.from_bytes(data, "big")`` folded to about 1,540 bits, congruent modulo 0xFFFF and
    0 only for all-zero data.  CPython divides a big int by 0xFFFF one 30-bit digit at a time
    with a hardware division each: 1.6 us for a full segment, more than reading its bytes.
    Shifting and adding are cheap, and since 2**16 is 1 modulo 0xFFFF, ``hi * 2**k + lo`` is
    congruent to ``hi + lo`` for any ``k`` that is a multiple of 16: three such folds and the
    division that follows take half the time of the division alone."""
    value = _from_bytes(data, "big")
    bits = value.bit_length()
    if bits > 1536:
        while bits > 12288:  # more than a 1500-byte MTU's worth: halve until it is not
            k = (bits >> 1) & ~15
            value = (value >> k) + (value & ((1 << k) - 1))
            bits = value.bit_length()
        value = (value >> 6144) + (value & _MASK_6144)
        value = (value >> 3072) + (value & _MASK_3072)
        value = (value >> 1536) + (value & _MASK_1536)
    return value


# ``word_value(data, "big")``: the value the checksums reduce modulo 0xFFFF: on CPython the
# folded ``int.from_bytes`` above, on PyPy the word sum.
word_value = (_word_value_pypy if sys.implementation.name == "pypy" and array("I").itemsize == 4
              else _word_value_folded)


def ones_sum(data) -> int:
    """Ones' complement sum of ``data`` as 16-bit big-endian words, in 0..0xFFFF.

    0 is returned only for all-zero data; a non-zero multiple of 0xFFFF gives 0xFFFF
    ("negative zero"), exactly as the word-by-word algorithm does.
    """
    value = word_value(data, "big")
    if len(data) & 1:
        value <<= 8
    if not value:
        return 0
    return value % 0xFFFF or 0xFFFF


def internet_checksum(data) -> int:
    """The 16-bit checksum to store in a header whose checksum field is zero in ``data``."""
    return ~ones_sum(data) & 0xFFFF


def verify(data) -> bool:
    """True when ``data`` (checksum field included) sums to 0xFFFF, i.e. the checksum holds."""
    return ones_sum(data) == 0xFFFF


def pseudo_header_sum(src: int, dst: int, protocol: int, length: int) -> int:
    """The IPv4 pseudo-header of RFC 793/768 as a value congruent, modulo 0xFFFF, to its word sum
    (a 32-bit address is congruent to the sum of its two halves), to add to a segment's value."""
    return src + dst + protocol + length


def transport_checksum(src: int, dst: int, protocol: int, segment) -> int:
    """Checksum of a UDP/TCP segment (checksum field zero) with its IPv4 pseudo-header."""
    value = word_value(segment, "big")
    if len(segment) & 1:
        value <<= 8
    value += src + dst + protocol + len(segment)
    return ~(value % 0xFFFF or 0xFFFF) & 0xFFFF


def transport_verify(src: int, dst: int, protocol: int, segment) -> bool:
    """True when a received UDP/TCP segment's checksum holds."""
    value = word_value(segment, "big")
    if len(segment) & 1:
        value <<= 8
    # (reduced before the pseudo-header is added: no big-int addition)
    return (value % 0xFFFF + src + dst + protocol + len(segment)) % 0xFFFF == 0


def update16(checksum: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3: the checksum after one 16-bit word changes from ``old`` to ``new``."""
    total = (~checksum & 0xFFFF) + (~old & 0xFFFF) + new
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def update32(checksum: int, old: int, new: int) -> int:
    """RFC 1624 update for a 32-bit field (an IPv4 address) changing from ``old`` to ``new``."""
    checksum = update16(checksum, old >> 16, new >> 16)
    return update16(checksum, old & 0xFFFF, new & 0xFFFF)
