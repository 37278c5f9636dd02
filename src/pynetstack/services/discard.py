"""TCP discard (RFC 863) on port 9: reads everything, answers nothing, counts bytes."""

from __future__ import annotations

from ..api.tcp import TcpHandler
from .guard import ServiceLimits, serve_guarded


class DiscardHandler(TcpHandler):
    total = 0  # bytes discarded by every handler of this class (for the status page)

    def data_received(self, data: bytes) -> None:
        DiscardHandler.total += len(data)


def install(stack, port: int = 9, host: str = "0.0.0.0", limits: ServiceLimits = None):
    return serve_guarded(stack, port, DiscardHandler, host, limits, "discard")
