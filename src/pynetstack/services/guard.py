"""What every TCP service on the stack keeps to: a cap on the connections it serves at once, and
idle timeouts, so a client that goes quiet or vanishes holds nothing for long.

A ``ServiceGuard`` wraps a service's handler factory (``serve_guarded`` is ``serve_events`` with a
guard).  Each connection gets one timer on the TCP layer (``TcpLayer.call_at``), checked lazily:
when it fires, the deadline is computed afresh from the connection's last received segment
(``TcpConnection.last_recv``) and the handler's phase, and the timer re-armed if it moved.  So
traffic costs nothing here; only the timers of quiet connections do any work.

* A handler may say when it times out with ``idle_deadline(last_recv, limits) -> float``
  (HTTP has a short keep-alive timeout and a longer one while a request is read); the default
  is ``last_recv + limits.idle_timeout``.
* Timing out closes with a FIN when everything was handed over to TCP, and resets the
  connection when data is still waiting for a peer that made no progress for the whole
  timeout (nginx's send_timeout with reset_timedout_connection).
* After the service closed, the connection may still wait in FIN-WAIT for a peer that is gone:
  it is reset once nothing has been heard from the peer for ``LINGER`` seconds, as Linux ends
  orphaned sockets early (tcp_orphan_retries), rather than after the full retransmission limit.
"""

from __future__ import annotations

import logging
from typing import Optional

from ..api.tcp import TcpHandler, serve_events, tcp_layer
from ..transport.tcp import CLOSED, TIME_WAIT

log = logging.getLogger("pynetstack")

# Defaults like common servers.  1024 connections per service: nginx's stock worker_connections.
# 300 s of silence ends an echo or discard session (nginx's stream proxy_timeout is 600 s,
# HAProxy's examples use 30 s to a few minutes).  HTTP: 5 s between requests (Apache's
# KeepAliveTimeout), 60 s to read a request or see the answer progress (nginx's
# client_header_timeout, client_body_timeout and send_timeout).
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_KEEPALIVE_TIMEOUT = 5.0
DEFAULT_REQUEST_TIMEOUT = 60.0
LINGER = 60.0  # seconds of silence tolerated from a peer after the service closed (Linux tcp_fin_timeout)


class ServiceLimits:
    """Per-service limits; every value must be positive."""

    __slots__ = ("max_connections", "idle_timeout", "keepalive_timeout", "request_timeout")

    def __init__(self, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT):
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError(f"max_connections must be a positive integer, not {max_connections!r}")
        for name, value in (("idle_timeout", idle_timeout), ("keepalive_timeout", keepalive_timeout),
                            ("request_timeout", request_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        self.max_connections = max_connections
        self.idle_timeout = float(idle_timeout)
        self.keepalive_timeout = float(keepalive_timeout)
        self.request_timeout = float(request_timeout)

    def __repr__(self):
        return (f"ServiceLimits(max_connections={self.max_connections}, idle_timeout={self.idle_timeout}, "
                f"keepalive_timeout={self.keepalive_timeout}, request_timeout={self.request_timeout})")


class _Guarded(TcpHandler):
    """Stands between the transport and the service's handler: admission and the idle timer."""

    __slots__ = ("guard", "inner", "conn", "lost", "armed")

    def __init__(self, guard: ServiceGuard, inner):
        self.guard = guard
        self.inner = inner
        self.conn = None
        self.lost = False
        self.armed = None  # when the pending timer fires

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.conn = transport.get_extra_info("connection")
        if not self.guard.admit(self):
            self.lost = True
            transport.abort()
            return
        self.inner.connection_made(transport)
        self._arm(self.guard.deadline(self))

    def _arm(self, when: float) -> None:
        self.armed = when
        self.guard.layer.call_at(when, lambda now: self.check(now, when))

    def _moved(self) -> None:
        """The handler may have entered a phase with an earlier deadline (HTTP: an answer was
        sent, the short keep-alive timeout starts): arm a timer for it.  A later deadline
        needs nothing, the armed timer finds it when it fires."""
        if not self.lost:
            deadline = self.guard.deadline(self)
            if deadline < self.armed:
                self._arm(deadline)

    def data_received(self, data: bytes) -> None:
        if not self.lost:
            self.inner.data_received(data)
            self._moved()

    def eof_received(self) -> None:
        if not self.lost:
            self.inner.eof_received()
            self._moved()

    def writable(self) -> None:
        if not self.lost:
            self.inner.writable()
            self._moved()

    def connection_lost(self, error) -> None:
        if self.lost:
            return
        self.lost = True
        self.guard.release(self)
        self.inner.connection_lost(error)

    def check(self, now: float, when: float) -> None:
        """The idle timer: act if the deadline has passed, else re-arm at the new one."""
        conn = self.conn
        if self.lost or when != self.armed or conn.state in (CLOSED, TIME_WAIT):
            return  # gone, or a timer superseded by an earlier one
        deadline = self.guard.deadline(self)
        if deadline > now:
            self._arm(deadline)
            return
        transport = self.transport
        if transport.is_closing():
            self.guard.lingered += 1
            conn.abort(now, "peer silent after the service closed")
            return
        self.guard.timed_out += 1
        if transport.get_write_buffer_size() or conn.snd_buf:
            transport.abort()  # our data waits for a peer that took nothing for the whole timeout
            return
        transport.close()
        if conn.state not in (CLOSED, TIME_WAIT):
            self._arm(self.guard.deadline(self))


class ServiceGuard:
    """Connection cap and idle timeouts for one service (see the module notes)."""

    def __init__(self, stack, limits: Optional[ServiceLimits] = None, name: str = "service"):
        self.stack = stack
        self.layer = tcp_layer(stack)
        self.limits = limits or ServiceLimits()
        self.name = name
        self.serving = set()
        self.refused = 0     # connections reset because the service was at its cap
        self.timed_out = 0   # connections closed by an idle timeout
        self.lingered = 0    # connections reset while the peer stayed silent after our close

    def factory(self, make_handler):
        """A handler factory for ``serve_events`` that puts every handler under this guard."""
        return lambda: _Guarded(self, make_handler())

    def admit(self, guarded: _Guarded) -> bool:
        serving = self.serving
        if len(serving) >= self.limits.max_connections:
            # the slots of connections the service has closed are free (nginx counts descriptors)
            for other in [g for g in serving if g.transport.is_closing()]:
                serving.discard(other)
            if len(serving) >= self.limits.max_connections:
                self.refused += 1
                self.layer.count(f"{self.name}-connection-limit")
                if self.refused == 1 or self.refused % 1000 == 0:
                    log.warning("%s: %d connections served at once: resetting new ones (max_connections)",
                                self.name, len(serving))
                return False
        serving.add(guarded)
        return True

    def release(self, guarded: _Guarded) -> None:
        self.serving.discard(guarded)

    def deadline(self, guarded: _Guarded) -> float:
        conn = guarded.conn
        if guarded.transport.is_closing():
            return conn.last_recv + LINGER
        ask = getattr(guarded.inner, "idle_deadline", None)
        if ask is not None:
            return ask(conn.last_recv, self.limits)
        return conn.last_recv + self.limits.idle_timeout

    def stats(self) -> dict:
        return {"serving": len(self.serving), "refused": self.refused, "timed_out": self.timed_out,
                "lingered": self.lingered}


def serve_guarded(stack, port: int, make_handler, host: str = "0.0.0.0",
                  limits: Optional[ServiceLimits] = None, name: str = "service"):
    """``serve_events`` with a ``ServiceGuard``; the returned server has it as ``.guard``."""
    guard = ServiceGuard(stack, limits, name)
    server = serve_events(stack, port, guard.factory(make_handler), host)
    server.guard = guard
    return server
