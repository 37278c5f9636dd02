"""Event-driven TCP servers (no thread per connection): ``TcpHandler`` callbacks run in the
stack's loop thread over a ``TcpTransport``; ``serve_events`` listens with them."""

from __future__ import annotations

import logging
from typing import Optional

from ..transport.tcp import CLOSED, TcpConfig
from ..wire.addr import ip_to_str
from .stack_tcp import _address, tcp_layer

log = logging.getLogger("pynetstack")
WRITE_HIGH_WATER = 256 * 1024  # an event transport stops reading while more than this waits to be sent
WRITE_HARD_LIMIT = 16 * 1024 * 1024  # ...and drops a peer that makes it buffer this much anyway


# == event-driven servers (no thread per connection) ==============================================
#
# Handlers run in the stack's loop thread with ``stack.lock`` held, like asyncio protocols:
# ``connection_made(transport)``, ``data_received(data)``, ``eof_received()``, ``writable()``
# (send space was freed) and ``connection_lost(error)``.  Pausing reading leaves data in the
# TCP receive buffer, so the advertised window closes: backpressure reaches the peer.



def extra_info(conn, name: str, default=None):
    """asyncio's ``Transport.get_extra_info`` for a connection: peername, sockname, connection."""
    if name == "peername":
        return ip_to_str(conn.remote_ip), conn.remote_port
    if name == "sockname":
        return ip_to_str(conn.local_ip), conn.local_port
    if name == "connection":
        return conn
    return default

class TcpHandler:
    transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        """The peer closed its sending side. Default: close ours too (after pending writes)."""
        self.transport.close()

    def writable(self) -> None:
        pass

    def urgent_received(self, remaining: int) -> None:
        """The peer marked data urgent (TCP's URG): the next ``remaining`` bytes of the stream,
        read in order as any others, end with its urgent data.  Default: nothing."""

    def connection_lost(self, error) -> None:
        pass


class TcpTransport:
    """A connection as seen by a ``TcpHandler``: write/close/abort/pause_reading/resume_reading."""

    __slots__ = ("stack", "conn", "handler", "_pending", "_paused", "_closing", "_eof_seen", "_lost",
                 "_flow_paused")

    def __init__(self, stack, conn, handler):
        self.stack = stack
        self.conn = conn
        self.handler = handler
        self._pending = bytearray()
        self._paused = False
        self._closing = False
        self._eof_seen = False
        self._lost = False
        self._flow_paused = False
        conn.on_event = self._event

    def get_extra_info(self, name, default=None):
        return extra_info(self.conn, name, default)

    def write(self, data) -> None:
        if self._closing or self._lost:
            return
        if self._pending:
            self._pending += data
        else:
            try:
                n = self.conn.send(data, self.stack.now())
            except OSError:
                return
            if n < len(data):
                self._pending += memoryview(data)[n:]
        pending = len(self._pending)
        if pending > WRITE_HARD_LIMIT:
            # A peer that sends requests but never reads the answers: drop it, not the memory.
            log.warning("aborting %s: %d bytes of replies it does not read", self.get_extra_info("peername"), pending)
            self.abort()
        elif pending > WRITE_HIGH_WATER and not self._paused:
            self._flow_paused = self._paused = True  # read no more until the peer takes what it asked for

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def send_space(self) -> int:
        return self.conn.send_space() - len(self._pending)

    def _flush(self) -> None:
        if self._pending and not self._lost:
            try:
                n = self.conn.send(self._pending, self.stack.now())
            except OSError:
                self._pending.clear()
                return
            del self._pending[:n]
        if not self._pending and self._closing and not self._lost:
            self.conn.close(self.stack.now())

    def close(self) -> None:
        """Close once pending data is handed to TCP (an orderly FIN, not a reset)."""
        self._closing = True
        self._flush()

    def abort(self) -> None:
        self._closing = True
        self._pending.clear()
        self.conn.abort(self.stack.now())

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._readable()

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def _readable(self) -> None:
        conn = self.conn
        if self._closing:  # we closed: what still arrives is thrown away, not buffered
            while conn.readable_bytes():
                conn.recv_chunk(1 << 20, self.stack.now())
            return
        while not self._paused and conn.readable_bytes():
            self.handler.data_received(conn.recv_chunk(1 << 20, self.stack.now()))
        if not self._paused and conn.fin_received and not conn.readable_bytes() and not self._eof_seen:
            self._eof_seen = True
            self.handler.eof_received()

    def _event(self, conn, kind) -> None:
        try:
            if kind == "readable":
                self._readable()
            elif kind == "writable":
                self._flush()
                if self._flow_paused and len(self._pending) <= WRITE_HIGH_WATER // 4:
                    self._flow_paused = False
                    self.resume_reading()
                if not self._pending and not self._closing:
                    self.handler.writable()
            elif kind == "urgent":
                self.handler.urgent_received(conn.urgent_remaining())
            elif kind == "closed":
                if not self._lost:
                    self._lost = True
                    if conn.readable_bytes() and not self._paused:
                        self._readable()
                    self.handler.connection_lost(conn.error)
        except Exception:
            self.conn.layer.drops["handler-error"] += 1
            if not self._lost:
                self.abort()
            raise


class EventServer:
    """A listener whose connections are served by ``factory()`` handlers in the loop thread."""

    def __init__(self, stack, port: int, factory, host: str = "0.0.0.0", backlog: int = 1024,
                 config: Optional[TcpConfig] = None):
        self.stack = stack
        self.factory = factory
        self.layer = tcp_layer(stack)
        self.connections = 0
        with stack.lock:
            self.listener = self.layer.listen(port, _address(host), backlog, config)
            self.listener.on_accept = self._accept

    @property
    def port(self) -> int:
        return self.listener.port

    def _accept(self, listener) -> None:
        while True:
            conn = listener.accept()
            if conn is None:
                return
            self.connections += 1
            handler = self.factory()
            transport = TcpTransport(self.stack, conn, handler)
            handler.connection_made(transport)
            if conn.readable_bytes() or conn.fin_received:
                transport._readable()
            if conn.state == CLOSED:
                transport._event(conn, "closed")

    def close(self) -> None:
        with self.stack.lock:
            self.listener.close(self.stack.now())
        self.stack.wake()


def serve_events(stack, port: int, factory, host: str = "0.0.0.0", backlog: int = 1024) -> EventServer:
    return EventServer(stack, port, factory, host, backlog)
