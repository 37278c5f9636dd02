"""System calls PyPy 3.9 lacks or makes slow, through cffi; CPython keeps its own ``os`` calls.

* ``writev``: PyPy's ``os`` has none, and joining a 64 KB segment's parts first cost PyPy a
  quarter of its sending time (``b"".join`` is slow there).  Handing the kernel the parts' own
  buffers copies nothing; below ``JOIN_BELOW`` bytes the join is the cheaper of the two.
* ``Reader``: a non-blocking read that says "nothing" with None instead of raising
  BlockingIOError.  PyPy spends 4-15 us raising that exception (CPython about 1 us), and every
  pass of the loop ends a device's batch with one: a third of PyPy's ping round trip.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Callable, Optional

JOIN_BELOW = 4096

try:
    import cffi
except ImportError:  # CPython without cffi installed: os has what it needs
    cffi = None

_ffi = _libc = None
if cffi is not None:
    _ffi = cffi.FFI()
    _ffi.cdef("struct iovec { void *iov_base; size_t iov_len; };"
              "ssize_t writev(int fd, const struct iovec *iov, int iovcnt);"
              "ssize_t read(int fd, void *buf, size_t count);")
    try:
        _libc = _ffi.dlopen(None)
    except OSError:
        _ffi = None


def writev_joined(fd: int, parts) -> int:
    return os.write(fd, b"".join(parts))


def _make_writev_cffi() -> Optional[Callable]:
    if _ffi is None:
        return None
    ffi, from_buffer, new, call = _ffi, _ffi.from_buffer, _ffi.new, _libc.writev

    def writev(fd: int, parts) -> int:
        if len(parts[-1]) < JOIN_BELOW:
            return os.write(fd, b"".join(parts))
        buffers = [from_buffer(part) for part in parts]  # kept alive until the call returns
        iov = new("struct iovec[]", len(buffers))  # per call: the loop and API threads may both send
        for i, buffer in enumerate(buffers):
            iov[i].iov_base = buffer
            iov[i].iov_len = len(buffer)
        written = call(fd, iov, len(buffers))
        if written < 0:
            err = ffi.errno
            raise OSError(err, os.strerror(err))
        return written

    return writev


writev_cffi = _make_writev_cffi()
writev = getattr(os, "writev", None) or writev_cffi or writev_joined


class Reader:
    """Non-blocking reads of up to ``size`` bytes from one descriptor into a buffer of its own
    (one per device: only the loop's thread reads).  ``read(fd)`` returns bytes, or None when
    nothing is waiting; other errors raise OSError as ``os.read`` does."""

    def __init__(self, size: int):
        self._buffer = _ffi.new("char[]", size)
        self._size = size
        self._read = _libc.read
        self._unpack = _ffi.unpack

    def read(self, fd: int) -> Optional[bytes]:
        n = self._read(fd, self._buffer, self._size)
        if n >= 0:
            return self._unpack(self._buffer, n)
        return self._nothing_or_raise()

    def read_view(self, fd: int):
        """As ``read``, but a buffer over this reader's memory instead of a copy: valid until
        the next read, for a caller that copies what it keeps (``vnet.decode``)."""
        n = self._read(fd, self._buffer, self._size)
        if n >= 0:
            return _ffi.buffer(self._buffer, n)
        return self._nothing_or_raise()

    @staticmethod
    def _nothing_or_raise() -> None:
        err = _ffi.errno
        if err == errno.EAGAIN or err == errno.EINTR:
            return None
        raise OSError(err, os.strerror(err))


def reader(size: int) -> Optional[Reader]:
    """A Reader on PyPy (where an exception per empty read is dear); None on CPython, whose
    ``os.read`` with try/except is the faster there."""
    if _ffi is None or sys.implementation.name != "pypy":
        return None
    return Reader(size)
