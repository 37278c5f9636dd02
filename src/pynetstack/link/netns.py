"""Network namespaces: enter one for the calling thread, to open a device inside it.

A TAP or packet socket opened inside a namespace stays there after the thread returns, so
one process can run a stack whose devices live in namespaces a test or the demo created.
"""

from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager
from typing import Iterator, Optional

CLONE_NEWNET = 0x40000000
_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def netns(name: Optional[str]) -> Iterator[None]:
    """Run the body in network namespace ``name`` (as made by ``ip netns add``); None: stay."""
    if not name:
        yield
        return
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    except OSError:
        raise OSError(2, f"no network namespace {name!r} (see 'ip netns list')") from None
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)
