"""writev(2) for PyPy (link/tap.py): cffi hands the kernel the parts' own buffers."""

from __future__ import annotations

import errno
import os
import select
import threading

import pytest

from pynetstack.link import tap


def _writev():
    writev = tap._writev_cffi()
    if writev is None:
        pytest.skip("cffi is not installed for this interpreter")
    return writev


def test_parts_of_every_buffer_kind_arrive_in_order():
    writev = _writev()
    parts = (b"\x01" * 10, bytearray(b"\x02" * 54), memoryview(bytes(range(256)) * 300)[7:65007], b"")
    expected = b"".join(parts)
    r, w = os.pipe()
    out = []

    def drain():  # a pipe holds 64 KB: read while the main thread writes
        while sum(map(len, out)) < len(expected):
            select.select([r], [], [], 1.0)
            try:
                out.append(os.read(r, 1 << 16))
            except BlockingIOError:
                pass
    try:
        os.set_blocking(r, False)
        thread = threading.Thread(target=drain)
        thread.start()
        assert writev(w, parts) == len(expected)
        thread.join(timeout=5)
        assert b"".join(out) == expected
    finally:
        os.close(r)
        os.close(w)


def test_error_is_an_oserror_with_its_errno():
    writev = _writev()
    with pytest.raises(OSError) as info:
        writev(-1, (b"x",))
    assert info.value.errno == errno.EBADF


def test_module_writev_is_the_best_available():
    assert tap.writev is getattr(os, "writev", None) or tap.writev is not tap._writev_joined
