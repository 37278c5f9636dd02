"""writev(2) and reads without exceptions for PyPy (link/syscalls.py), through cffi."""

from __future__ import annotations

import errno
import os
import select
import threading

import pytest

from pynetstack.link import syscalls, tap


def _writev():
    writev = syscalls.writev_cffi
    if writev is None:
        pytest.skip("cffi is not installed for this interpreter")
    return writev


def test_parts_of_every_buffer_kind_arrive_in_order():
    writev = _writev()
    parts = (b"\x01" * 10, b"", bytearray(b"\x02" * 54), memoryview(bytes(range(256)) * 300)[7:65007])
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
    assert tap.writev is getattr(os, "writev", None) or tap.writev is not syscalls.writev_joined


def test_reader_says_none_for_nothing_and_raises_other_errors():
    if syscalls._ffi is None:
        pytest.skip("cffi is not installed for this interpreter")
    reader = syscalls.Reader(2048)
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        assert reader.read(r) is None
        os.write(w, b"frame one")
        assert reader.read(r) == b"frame one"
        assert reader.read(r) is None
    finally:
        os.close(r)
        os.close(w)
    with pytest.raises(OSError) as info:
        reader.read(r)
    assert info.value.errno == errno.EBADF
