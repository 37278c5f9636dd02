"""The echo service of RFC 862 over UDP: every datagram goes back to its sender."""

from __future__ import annotations

ECHO_PORT = 7


def install(stack, port: int = ECHO_PORT) -> int:
    return stack.add_udp_service(port, lambda data, peer: data)
