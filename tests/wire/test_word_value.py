"""The word sum PyPy's checksums use instead of int.from_bytes (wire/checksum.py), against
int.from_bytes itself: congruent modulo 0xFFFF for every length and content, and 0 only for
all-zero data."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.wire import checksum


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.integers(0, 7))
def test_congruent_to_from_bytes(data, skip):
    view = memoryview(data)[skip:] if skip <= len(data) else memoryview(data)
    expected = int.from_bytes(view, "big")
    got = checksum._word_value_pypy(view, "big")
    assert got % 0xFFFF == expected % 0xFFFF
    assert (got == 0) == (expected == 0)


def test_long_runs_around_the_threshold_and_odd_tails():
    for n in (511, 512, 513, 514, 515, 1460, 1461, 65535):
        data = bytes((i * 37 + 11) & 0xFF for i in range(n))
        assert checksum._word_value_pypy(data) % 0xFFFF == int.from_bytes(data, "big") % 0xFFFF
        assert checksum._word_value_pypy(bytes(n)) == 0
        assert checksum._word_value_pypy(bytes(n - 1) + b"\x01") != 0


def test_checksums_agree_with_the_reference_sum():
    data = bytes(range(256)) * 7 + b"\x05"
    reference = 0
    padded = data + b"\x00"
    for i in range(0, len(padded) - 1, 2):
        reference += (padded[i] << 8) | padded[i + 1]
    while reference > 0xFFFF:
        reference = (reference & 0xFFFF) + (reference >> 16)
    assert checksum.ones_sum(data) == reference
