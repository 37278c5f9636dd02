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


def tcp_pair(sim, client_stack, server_stack, server_ip: int, port: int, wait: float = 5.0):
    """(client end, accepted server end) of a TCP connection from ``client_stack`` to
    ``server_ip``:``port`` where ``server_stack`` listens, on the simulation's clock; the server
    end is None when no handshake finished within ``wait`` seconds."""
    from pynetstack.api.tcp import tcp_layer
    listener = tcp_layer(server_stack).listen(port)
    client = tcp_layer(client_stack).connect(server_ip, port, sim.now)
    sim.run(duration=wait, until=lambda: bool(listener.accept_queue))
    return client, listener.accept()


def exchange(sim, client, server, up: bytes, down: bytes, limit: float):
    """Both ends send at once (``up`` from the client, ``down`` from the server), each closing its
    side when done, until both saw the other's end or ``limit`` seconds passed: (bytes the server
    received, bytes the client received)."""
    from .tcp.tcp_harness import BulkApp
    app_c, app_s = BulkApp(client, up), BulkApp(server, down)

    def done():
        app_c.pump(sim.now)
        app_s.pump(sim.now)
        return app_c.eof and app_s.eof
    sim.run(duration=limit, until=done)
    return bytes(app_s.received), bytes(app_c.received)
