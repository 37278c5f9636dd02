"""A small HTTP/1.1 server with keep-alive, event-driven in the stack's loop thread.

* ``GET /``          a status page of the stack (interfaces, counters, a bounded summary of the
                     TCP connections: counts by state and the first rows, like ``ss``)
* ``GET /bytes/N``   N deterministic pseudo-random bytes (see ``deterministic_bytes``)
* ``POST /sha256``   the hex SHA-256 of the request body, then a newline

Bodies are streamed both ways: an upload is hashed as it arrives, a download is generated as
send space frees up, so 100 MB move through a few hundred KB of memory.  Request bodies may
use Content-Length or chunked encoding; ``Expect: 100-continue`` is answered.
"""

from __future__ import annotations

import hashlib
import random
import weakref

from ..api.tcp import TcpHandler, tcp_layer
from ..status import status_page, tcp_table  # noqa: F401 - tcp_table re-exported (examples use it)
from .guard import ServiceLimits, serve_guarded

PIPELINE_HIGH_WATER = 256 * 1024  # pipelined requests wait while this much of the answers is unsent
BLOCK = 65536
MAX_HEADER = 16 * 1024
MAX_BYTES = 1 << 40
STATUS_ROWS = 50  # connections listed on the status page; the rest are counted by state
SERVER = "pynetstack"
# Extra GET routes per stack (the monitor's /metrics): path -> handler() -> (content type, body)
_ROUTES = weakref.WeakKeyDictionary()


def add_route(stack, path: str, handler) -> None:
    """Answer ``GET path`` on ``stack``'s HTTP service with ``handler() -> (content_type, body)``."""
    _ROUTES.setdefault(stack, {})[path] = handler


# Generating 64 KiB with the Mersenne Twister costs about 110 us, as much as the TCP work of
# sending them with segmentation offload; a window into a fixed random buffer costs a copy.
_BASE = random.Random(0x706E73).randbytes(2 * BLOCK)
_BASE_VIEW = memoryview(_BASE)


def _block_start(index: int) -> int:
    """Where block ``index`` starts in ``_BASE``: a multiplicative hash, so consecutive blocks
    (and a segment misplaced by any offset) see different bytes."""
    return ((index * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF) >> 16


def _block(index: int) -> bytes:
    start = _block_start(index)
    return _BASE[start:start + BLOCK]


def deterministic_bytes(offset: int, length: int) -> bytes:
    """Bytes [offset, offset+length) of the /bytes/ stream: block i (64 KiB) is the 64 KiB
    window of a fixed random buffer (``random.Random(0x706e73).randbytes(131072)``) at
    ``_block_start(i)``; /bytes/N serves the first N bytes."""
    out = bytearray()
    while length > 0:
        index, start = divmod(offset, BLOCK)
        chunk = _block(index)[start:start + length]
        out += chunk
        offset += len(chunk)
        length -= len(chunk)
    return bytes(out)


class _BytesBody:
    __slots__ = ("offset", "remaining", "cache")

    def __init__(self, total: int):
        self.offset = 0
        self.remaining = total
        self.cache = None

    def take(self, limit: int) -> bytes:
        n = min(limit, self.remaining)
        index, start = divmod(self.offset, BLOCK)
        if self.cache is None or self.cache[0] != index:
            # a view of the fixed buffer, not a copy: TCP's send buffer takes the one copy
            start_of_block = _block_start(index)
            self.cache = (index, _BASE_VIEW[start_of_block:start_of_block + BLOCK])
        data = self.cache[1][start:start + min(n, BLOCK - start)]
        self.offset += len(data)
        self.remaining -= len(data)
        return data


class HttpHandler(TcpHandler):
    def __init__(self, stack):
        self.stack = stack
        self.buffer = bytearray()
        self.state = "headers"       # headers | body | chunk-size | chunk-data | chunk-crlf | trailer
        self.body_left = 0
        self.hasher = None
        self.keep_alive = True
        self.request = None
        self.streaming = None        # a _BytesBody being sent
        self.closing = False
        self.requests = 0
        self.eof = False
        self.waiting_since = stack.now()   # since when the next request is awaited
        self.request_since = 0.0           # when the first byte of the request being read came

    # -- timeouts (asked by the ServiceGuard) ------------------------------------------------------

    def idle_deadline(self, last_recv: float, limits: ServiceLimits) -> float:
        if self.streaming is not None or self.state != "headers" or self.transport.get_write_buffer_size():
            return last_recv + limits.request_timeout  # a body or an answer on the way: progress counts
        if self.buffer:
            return self.request_since + limits.request_timeout  # the whole header in this time
        if not self.requests:
            return self.waiting_since + limits.request_timeout
        return max(last_recv, self.waiting_since) + limits.keepalive_timeout

    # -- input -------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self.buffer:
            if self.state == "headers":
                self.request_since = self.stack.now()
            elif (self.state == "body" and self.streaming is None and not self.closing
                  and self.transport.get_write_buffer_size() < PIPELINE_HIGH_WATER):
                # a large upload: hash the data as it comes instead of buffering it (as the
                # "body" step of _process_requests would, two copies fewer)
                n = min(len(data), self.body_left)
                self.hasher.update(data if n == len(data) else memoryview(data)[:n])
                self.body_left -= n
                if self.body_left == 0:
                    self._finish_request()
                if n == len(data):
                    self._process()
                    return
                data = memoryview(data)[n:]
        self.buffer += data
        self._process()

    def eof_received(self) -> None:
        # Nothing more will arrive: complete requests still get their answers, then the
        # connection closes; a request cut short by the FIN is never answered (and must not
        # keep the connection in CLOSE-WAIT).
        self.keep_alive = False
        self.eof = True
        self._process()

    def _process(self) -> None:
        self._process_requests()
        if (self.eof and self.streaming is None and not self.closing
                and self.transport.get_write_buffer_size() < PIPELINE_HIGH_WATER):
            self.closing = True
            self.transport.close()

    def _process_requests(self) -> None:
        while (self.buffer and self.streaming is None and not self.closing
               and self.transport.get_write_buffer_size() < PIPELINE_HIGH_WATER):
            if self.state == "headers":
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_HEADER:
                        self._error(431, "Request Header Fields Too Large")
                    return
                head = bytes(self.buffer[:end]).decode("latin-1")
                del self.buffer[:end + 4]
                self._start_request(head)
            elif self.state == "body":
                n = min(len(self.buffer), self.body_left)
                self.hasher.update(self.buffer[:n])
                del self.buffer[:n]
                self.body_left -= n
                if self.body_left == 0:
                    self._finish_request()
            elif self.state == "chunk-size":
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    if len(self.buffer) > 1024:
                        self._error(400, "Bad Request")
                    return
                line = bytes(self.buffer[:end]).split(b";")[0].strip()
                del self.buffer[:end + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    self._error(400, "Bad Request")
                    return
                if size == 0:
                    self.state = "trailer"
                else:
                    self.body_left = size
                    self.state = "chunk-data"
            elif self.state == "chunk-data":
                n = min(len(self.buffer), self.body_left)
                self.hasher.update(self.buffer[:n])
                del self.buffer[:n]
                self.body_left -= n
                if self.body_left == 0:
                    self.state = "chunk-crlf"
            elif self.state == "chunk-crlf":
                if len(self.buffer) < 2:
                    return
                del self.buffer[:2]
                self.state = "chunk-size"
            elif self.state == "trailer":
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    return
                del self.buffer[:end + 2]
                if end == 0:
                    self._finish_request()
        if self.streaming is None and not self.buffer and not self.keep_alive and self.state == "headers":
            self.closing = True
            self.transport.close()

    def _start_request(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._error(400, "Bad Request")
            return
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self._error(400, "Bad Request")
                return
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in connection
        else:
            self.keep_alive = "close" not in connection
        if self.eof:
            self.keep_alive = False
        self.request = (method, target, version, headers)
        self.requests += 1
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if method == "POST":
            if target != "/sha256":
                self._error(404, "Not Found", drain=True)
                return
            self.hasher = hashlib.sha256()
            if headers.get("expect", "").lower() == "100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if chunked:
                self.state = "chunk-size"
                return
            try:
                self.body_left = int(length or 0)
                if self.body_left < 0:
                    raise ValueError
            except ValueError:
                self._error(400, "Bad Request")
                return
            if self.body_left == 0:
                self._finish_request()
            else:
                self.state = "body"
            return
        if chunked or (length and length != "0"):
            self._error(400, "Bad Request")  # no bodies on GET/HEAD here
            return
        self._finish_request()

    def _finish_request(self) -> None:
        method, target, version, headers = self.request
        self.state = "headers"
        if method == "POST":
            body = (self.hasher.hexdigest() + "\n").encode()
            self.hasher = None
            self._respond(200, "OK", body, "text/plain")
        elif method in ("GET", "HEAD"):
            if target == "/":
                body = status_page(self.stack, max_rows=STATUS_ROWS).encode()
                self._respond(200, "OK", body, "text/plain; charset=utf-8", head=method == "HEAD")
            elif target.startswith("/bytes/"):
                try:
                    n = int(target[7:])
                    if not 0 <= n <= MAX_BYTES:
                        raise ValueError
                except ValueError:
                    self._error(400, "Bad Request")
                    return
                self._respond_header(200, "OK", n, "application/octet-stream")
                if method == "GET" and n:
                    self.streaming = _BytesBody(n)
                    self.transport.pause_reading()  # pipelined requests wait in the TCP buffer
                    self.writable()
                    return
                self._after_response()
            elif target.split("?")[0] in _ROUTES.get(self.stack, ()):
                ctype, body = _ROUTES[self.stack][target.split("?")[0]]()
                self._respond(200, "OK", body, ctype, head=method == "HEAD")
            else:
                self._error(404, "Not Found")
        else:
            self._error(405, "Method Not Allowed")

    # -- output ------------------------------------------------------------------------------------

    def _respond_header(self, code, reason, length, ctype) -> None:
        conn = "keep-alive" if self.keep_alive else "close"
        self.transport.write((f"HTTP/1.1 {code} {reason}\r\nServer: {SERVER}\r\n"
                              f"Content-Type: {ctype}\r\nContent-Length: {length}\r\n"
                              f"Connection: {conn}\r\n\r\n").encode())

    def _respond(self, code, reason, body: bytes, ctype, head=False) -> None:
        self._respond_header(code, reason, len(body), ctype)
        if not head:
            self.transport.write(body)
        self._after_response()

    def _error(self, code, reason, drain=False) -> None:
        self.keep_alive = False
        self._respond(code, reason, f"{code} {reason}\n".encode(), "text/plain")
        self.buffer.clear()
        self.closing = True

    def _after_response(self) -> None:
        self.request = None
        self.waiting_since = self.stack.now()
        if not self.keep_alive:
            self.closing = True
            self.transport.close()

    def writable(self) -> None:
        body = self.streaming
        if body is None:
            self._process()  # pipelined requests that waited for the answers to drain
            return
        t = self.transport
        while body.remaining:
            space = t.send_space()
            if space <= 0:
                return
            t.write(body.take(space))
        self.streaming = None
        self._after_response()
        if not self.closing:
            t.resume_reading()
            self._process()


def install(stack, port: int = 80, host: str = "0.0.0.0", limits: ServiceLimits = None):
    """Serve HTTP; returns the ``EventServer`` (``.guard`` holds its limits and counts)."""
    tcp_layer(stack)
    return serve_guarded(stack, port, lambda: HttpHandler(stack), host, limits, "http")
