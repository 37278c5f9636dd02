"""The stack's TCP layer as the socket APIs find it, and the addresses they take."""

from __future__ import annotations

from ..transport.tcp import TcpLayer
from ..wire.addr import ip_to_int


def tcp_layer(stack) -> TcpLayer:
    """The stack's TCP layer (``stack.tcp``); registered on first use if the stack has none."""
    layer = getattr(stack, "tcp", None)
    if layer is None:
        with stack.lock:
            layer = getattr(stack, "tcp", None)
            if layer is None:
                layer = TcpLayer(stack.host)
                stack.register_transport(6, layer)
                stack.tcp = layer
    return layer


def _address(host: str) -> int:
    if host in ("", "0.0.0.0"):
        return 0
    if host == "localhost":
        host = "127.0.0.1"
    return ip_to_int(host)
