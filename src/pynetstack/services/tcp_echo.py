"""TCP echo (RFC 862) on port 7, event-driven in the stack's loop thread.

Backpressure: when the echo cannot be sent as fast as it arrives, reading pauses, the
receive window closes and the peer slows down; nothing is buffered without bound.
"""

from __future__ import annotations

from ..api.tcp import TcpHandler
from .guard import ServiceLimits, serve_guarded

HIGH_WATER = 256 * 1024


class EchoHandler(TcpHandler):
    def data_received(self, data: bytes) -> None:
        t = self.transport
        t.write(data)
        if t.get_write_buffer_size() > HIGH_WATER:
            t.pause_reading()

    def writable(self) -> None:
        self.transport.resume_reading()


def install(stack, port: int = 7, host: str = "0.0.0.0", limits: ServiceLimits = None):
    """Serve TCP echo; returns the ``EventServer`` (``.close()`` stops it)."""
    return serve_guarded(stack, port, EchoHandler, host, limits, "tcp-echo")
