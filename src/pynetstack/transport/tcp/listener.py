"""A passive OPEN (RFC 9293 3.5): a listener in state LISTEN with its bounded set of half-open
connections and its accept queue.  The layer owns the SYN handling (``TcpLayer._listen_input``,
SYN cookies in cookies.py); a listener keeps what the handshakes leave."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Optional

from .config import TcpConfig
from .state import CLOSED, LISTEN

if TYPE_CHECKING:
    from .connection import TcpConnection


class Listener:
    """A passive OPEN: state LISTEN, a bounded set of half-open connections, an accept queue."""

    __slots__ = ("layer", "ip", "port", "backlog", "config", "accept_queue", "pending",
                 "on_accept", "cookie_time", "closed", "state", "notify_pending")

    def __init__(self, layer, ip: int, port: int, backlog: int, config: TcpConfig):
        self.layer = layer
        self.ip = ip
        self.port = port
        self.backlog = max(1, backlog)
        self.config = config
        self.accept_queue = deque()
        self.pending = set()
        self.on_accept = None
        self.notify_pending = False
        self.cookie_time = None
        self.closed = False
        self.state = LISTEN

    def __repr__(self):
        return f"<Listener port {self.port} queued {len(self.accept_queue)} half-open {len(self.pending)}>"

    def accept_queue_full(self) -> bool:
        return len(self.accept_queue) >= self.backlog

    def handshake_done(self, conn, now: float) -> None:
        self.pending.discard(conn)
        if self.closed:
            conn.abort(now, "listener closed")
            return
        self.accept_queue.append(conn)
        if not self.notify_pending:
            self.notify_pending = True
            self.layer._accept_ready.append(self)

    def accept(self) -> Optional[TcpConnection]:
        return self.accept_queue.popleft() if self.accept_queue else None

    def close(self, now: float) -> None:
        """Stop listening; queued and half-open connections are reset."""
        if self.closed:
            return
        self.closed = True
        self.state = CLOSED
        layer = self.layer
        if layer.listeners.get((self.ip, self.port)) is self:
            del layer.listeners[(self.ip, self.port)]
        for conn in list(self.pending) + list(self.accept_queue):
            conn.abort(now, "listener closed")
        self.pending.clear()
        self.accept_queue.clear()
