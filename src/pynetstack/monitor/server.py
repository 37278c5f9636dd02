"""The monitor's host-side HTTP server: a plain socket on the host (not on the stack), threaded,
so a scrape or a dashboard never waits for the packet path and vice versa.

    GET /metrics        Prometheus text format (prometheus-client)
    GET /               the live dashboard (dashboard.py), charts from the vendored uPlot
    GET /events         server-sent events: one JSON snapshot a second (``Live.snapshot``)
    GET /api/snapshot   the same JSON once (``pynetstack top`` polls it)
    GET /api/alerts     alert instances and their states
    GET /static/NAME    the vendored chart library
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from .exposition import CONTENT_TYPE

log = logging.getLogger("pynetstack.monitor")
MAX_EVENT_CLIENTS = 16
EVENT_PERIOD = 1.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class MonitorServer:
    """Serve ``monitor`` (a monitor.Monitor) on ``address`` (host, port); port 0 picks one."""

    def __init__(self, monitor, address: tuple):
        self.monitor = monitor
        self.clients = 0
        self.closing = threading.Event()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_obj": self})
        self.httpd = _Server(address, handler)
        self.address = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="pynetstack-monitor-http", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_obj: Optional[MonitorServer] = None
    protocol_version = "HTTP/1.1"
    server_version = "pynetstack-monitor"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, code: int, ctype: str, body: bytes, head: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802
        self.do_GET(head=True)

    def do_GET(self, head: bool = False):  # noqa: N802
        from . import dashboard
        server = self.server_obj
        monitor = server.monitor
        path = self.path.split("?")[0]
        try:
            if path == "/metrics":
                self._send(200, CONTENT_TYPE, monitor.exposition.text(), head)
            elif path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", dashboard.page().encode(), head)
            elif path.startswith("/static/") and dashboard.asset(path[8:]) is not None:
                ctype, body = dashboard.asset(path[8:])
                self._send(200, ctype, body, head)
            elif path == "/api/snapshot":
                self._send(200, "application/json", json.dumps(monitor.live.snapshot()).encode(), head)
            elif path == "/api/alerts":
                self._send(200, "application/json", json.dumps(monitor.alert_table()).encode(), head)
            elif path == "/events" and not head:
                self._events(server, monitor)
            else:
                self._send(404, "text/plain", b"404 Not Found\n", head)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _events(self, server: MonitorServer, monitor) -> None:
        with server._lock:
            if server.clients >= MAX_EVENT_CLIENTS:
                self._send(503, "text/plain", b"too many dashboards open\n")
                return
            server.clients += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.close_connection = True
            next_at = time.monotonic()
            while not server.closing.is_set():
                data = json.dumps(monitor.live.snapshot(), separators=(",", ":"))
                self.wfile.write(f"event: snapshot\ndata: {data}\n\n".encode())
                self.wfile.flush()
                next_at += EVENT_PERIOD
                server.closing.wait(max(0.0, next_at - time.monotonic()))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            with server._lock:
                server.clients -= 1
