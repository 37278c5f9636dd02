"""A running stack on an in-memory link, for tests of the socket APIs (real loop thread, real clock)."""

from __future__ import annotations

from contextlib import contextmanager

from pynetstack.link.memory import memory_pair
from pynetstack.stack import Stack


@contextmanager
def running_stack(address: str, name: str):
    """A stack with ``address``/24 on one end of a memory link, its loop in a background thread."""
    stack = Stack()
    device, _peer = memory_pair(names=(f"{name}0", f"{name}1"))
    stack.add_interface(device, f"{address}/24")
    stack.start_background()
    try:
        yield stack
    finally:
        stack.close()
