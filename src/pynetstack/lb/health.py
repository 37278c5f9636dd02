"""Health checks run by the stack itself, over its own TCP, on the stack's clock.

Active checks as HAProxy runs them: every ``interval`` (default 2 s) a TCP connect, or an HTTP
GET whose status must be ``expect``; no answer within ``timeout`` (default: the interval) is a
failure.  A server that is up goes down after ``fall`` (3) failures in a row, a server that is
down comes back after ``rise`` (2) successes in a row; servers start up, as HAProxy's do.
Passive checks (HAProxy's ``observe layer4``): resets answering a client's SYN and client
connections that time out unanswered count as errors; ``error_limit`` (10) in a row take the
server down at once (``on-error mark-down``), and the active checks bring it back.

A server that goes down leaves the scheduler's list (no new connections; the ones it has go
on, as IPVS keeps them); one that comes back rejoins it.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from .service import LbError

CHECK_TYPES = ("tcp", "http")
MAX_RESPONSE = 4096


class HealthCheckConfig:
    __slots__ = ("type", "port", "path", "expect", "interval", "timeout", "rise", "fall", "error_limit", "host")

    def __init__(self, type: str = "tcp", port: Optional[int] = None, path: str = "/", expect: int = 200,
                 interval: float = 2.0, timeout: Optional[float] = None, rise: int = 2, fall: int = 3,
                 error_limit: int = 10, host: Optional[str] = None):
        if type not in CHECK_TYPES:
            raise LbError(f"health check type must be tcp or http, not {type!r}")
        for name, value in (("interval", interval), ("timeout", interval if timeout is None else timeout)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise LbError(f"health check {name} must be a positive number of seconds, not {value!r}")
        for name, value in (("rise", rise), ("fall", fall), ("error_limit", error_limit)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LbError(f"health check {name} must be a positive integer, not {value!r}")
        if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
            raise LbError(f"health check port must be 1..65535, not {port!r}")
        if not isinstance(expect, int) or isinstance(expect, bool) or not 100 <= expect <= 599:
            raise LbError(f"health check expect must be an HTTP status (100..599), not {expect!r}")
        if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in " \r\n"):
            raise LbError(f"health check path must start with '/' and hold no spaces, not {path!r}")
        self.type = type
        self.port = port
        self.path = path
        self.expect = expect
        self.interval = float(interval)
        self.timeout = float(interval if timeout is None else timeout)
        self.rise = rise
        self.fall = fall
        self.error_limit = error_limit
        self.host = host


class ServerCheck:
    """One server's checks: the state machine and the check in flight."""

    __slots__ = ("server", "service", "config", "successes", "failures", "errors", "due", "conn", "deadline",
                 "response", "checks", "last", "transitions")

    def __init__(self, server, service, config: HealthCheckConfig, now: float):
        self.server = server
        self.service = service
        self.config = config
        self.successes = 0  # in a row
        self.failures = 0  # in a row
        self.errors = 0  # passive errors in a row
        self.due = now
        self.conn = None
        self.deadline = None
        self.response = bytearray()
        self.checks = 0
        self.last = ""  # what the last check found
        self.transitions: List[tuple] = []  # (time, "up"/"down", why), the last few

    def result(self, ok: bool, why: str, now: float) -> None:
        """A check ended: count it and move the server up or down as rise/fall say."""
        self.checks += 1
        self.last = why
        config = self.config
        if ok:
            self.successes += 1
            self.failures = 0
            if not self.server.up and self.successes >= config.rise:
                self.set(True, why, now)
        else:
            self.failures += 1
            self.successes = 0
            if self.server.up and self.failures >= config.fall:
                self.set(False, why, now)

    def set(self, up: bool, why: str, now: float) -> None:
        self.service.set_up(self.server, up)
        self.errors = 0
        self.transitions.append((now, "up" if up else "down", why))
        del self.transitions[:-8]


class HealthMonitor:
    """The checks of every watched service, driven by the load balancer's poll."""

    def __init__(self, stack):
        self.stack = stack
        self.services: List = []
        self.checks: Dict[int, ServerCheck] = {}  # id(server) -> its checks
        self._seen = None  # the services' versions at the last sync

    def watch(self, service) -> None:
        if service not in self.services:
            self.services.append(service)

    def forget(self, service) -> None:
        if service in self.services:
            self.services.remove(service)
        for key in [k for k, c in self.checks.items() if c.service is service]:
            self._abort(self.checks.pop(key))

    def check_of(self, server) -> Optional[ServerCheck]:
        return self.checks.get(id(server))

    def _versions(self):
        return tuple((id(s), s.version, s.health is not None) for s in self.services)

    def _sync(self, now: float) -> None:
        """Checks for servers added since, none for servers removed."""
        versions = self._versions()
        if versions == self._seen:
            return
        self._seen = versions
        current = {}
        for service in self.services:
            if service.health is None:
                continue
            for server in service.servers:
                check = self.checks.get(id(server))
                if check is None or check.server is not server:
                    check = ServerCheck(server, service, service.health, now)
                current[id(server)] = check
        for key, check in self.checks.items():
            if key not in current:
                self._abort(check)
        self.checks = current

    # -- passive -------------------------------------------------------------------------------------

    def passive_error(self, server, kind: str, now: float) -> None:
        check = self.checks.get(id(server))
        if check is None:
            return
        check.errors += 1
        if server.up and check.errors >= check.config.error_limit:
            check.failures = check.config.fall
            check.successes = 0
            check.set(False, f"{check.errors} {kind}s in a row seen on client connections", now)

    # -- active ----------------------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        self._sync(now)
        for check in self.checks.values():
            if check.conn is not None and check.deadline is not None and now >= check.deadline:
                self._finish(check, False, f"no answer in {check.config.timeout:g} s", now)
            if check.conn is None and now >= check.due:
                self._start(check, now)

    def next_deadline(self) -> Optional[float]:
        if self._versions() != self._seen:
            return 0.0  # servers to start checking: now
        times = []
        for check in self.checks.values():
            times.append(check.deadline if check.conn is not None else check.due)
        return min(times) if times else None

    def _start(self, check: ServerCheck, now: float) -> None:
        from ..api.tcp import tcp_layer
        config = check.config
        check.due = now + config.interval
        check.deadline = now + config.timeout
        check.response = bytearray()
        server = check.server
        try:
            check.conn = tcp_layer(self.stack).connect(server.addr, config.port or server.port, now,
                                                       on_event=lambda conn, kind: self._event(check, conn, kind))
        except OSError as exc:
            check.conn = None
            check.result(False, f"connect: {exc.strerror or exc}", now)

    def _event(self, check: ServerCheck, conn, kind: str) -> None:
        if conn is not check.conn:
            return
        now = self.stack.now()
        config = check.config
        if kind == "connected":
            if config.type == "tcp":
                self._finish(check, True, "TCP connect", now)
                return
            host = config.host or f"{check.server.name}"
            request = f"GET {config.path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: pynetstack-health\r\n\r\n"
            conn.send(request.encode(), now)
        elif kind == "readable":
            check.response += conn.recv(MAX_RESPONSE, now)
            self._read_status(check, now, final=False)
        elif kind == "closed":
            if check.conn is conn:
                if config.type == "http" and check.response:
                    self._read_status(check, now, final=True)
                else:
                    error = getattr(conn, "error", None)
                    self._finish(check, False, f"connection closed ({error or 'refused'})", now)

    def _read_status(self, check: ServerCheck, now: float, final: bool) -> None:
        data = bytes(check.response)
        end = data.find(b"\r\n")
        if end < 0 and not final and len(data) < MAX_RESPONSE:
            return
        line = data[:end if end >= 0 else len(data)].decode("latin-1", "replace")
        parts = line.split()
        status = int(parts[1]) if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit() else None
        if status == check.config.expect:
            self._finish(check, True, f"HTTP {status}", now)
        else:
            self._finish(check, False, f"HTTP {status if status is not None else 'bad response'} "
                                       f"(expected {check.config.expect})", now)

    def _finish(self, check: ServerCheck, ok: bool, why: str, now: float) -> None:
        self._abort(check)
        check.result(ok, why, now)

    def _abort(self, check: ServerCheck) -> None:
        conn, check.conn, check.deadline = check.conn, None, None
        if conn is not None:
            conn.on_event = None
            try:
                conn.abort(self.stack.now())  # a reset, not a close: HAProxy leaves no TIME_WAIT behind
            except OSError:
                pass
