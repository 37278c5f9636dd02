"""The two stand-ins for int.from_bytes that the checksums use (wire/checksum.py): PyPy's word
sum and CPython's folded value, against int.from_bytes itself: congruent modulo 0xFFFF for
every length and content, and 0 only for all-zero data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.wire import checksum


STAND_INS = pytest.mark.parametrize("word_value", [checksum._word_value_pypy, checksum._word_value_folded],
                                    ids=["pypy-word-sum", "cpython-folded"])


@STAND_INS
@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=0, max_size=3000), skip=st.integers(0, 7))
def test_congruent_to_from_bytes(word_value, data, skip):
    view = memoryview(data)[skip:] if skip <= len(data) else memoryview(data)
    expected = int.from_bytes(view, "big")
    got = word_value(view, "big")
    assert got % 0xFFFF == expected % 0xFFFF
    assert (got == 0) == (expected == 0)


@STAND_INS
def test_long_runs_around_the_thresholds_and_odd_tails(word_value):
    # 192 and 1536 bytes: where the folds start and where halving starts; 65535: a whole datagram
    for n in (191, 192, 193, 511, 512, 513, 514, 515, 1460, 1461, 1535, 1536, 1537, 9000, 65535):
        data = bytes((i * 37 + 11) & 0xFF for i in range(n))
        assert word_value(data) % 0xFFFF == int.from_bytes(data, "big") % 0xFFFF
        assert word_value(bytes(n)) == 0
        assert word_value(bytes(n - 1) + b"\x01") != 0
        assert word_value(b"\xff" * n) % 0xFFFF == int.from_bytes(b"\xff" * n, "big") % 0xFFFF


def test_cpython_folded_value_is_small():
    assert checksum._word_value_folded(b"\xff" * 65535).bit_length() <= 1540


def test_checksums_agree_with_the_reference_sum():
    data = bytes(range(256)) * 7 + b"\x05"
    reference = 0
    padded = data + b"\x00"
    for i in range(0, len(padded) - 1, 2):
        reference += (padded[i] << 8) | padded[i + 1]
    while reference > 0xFFFF:
        reference = (reference & 0xFFFF) + (reference >> 16)
    assert checksum.ones_sum(data) == reference
