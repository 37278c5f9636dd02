"""HTTP/1.x for inspection: requests and responses read from a flow's reassembled streams, each
pair a transaction whose parts are the sticky buffers rules name (http.uri, http.host, ...).

Bounds: headers of at most MAX_HEADER bytes (a flow that sends more is no longer parsed), bodies
kept up to MAX_BODY bytes, at most MAX_TXS transactions waiting for their response."""

from __future__ import annotations

import re
import zlib
from typing import Dict, List, Optional, Tuple
from urllib.parse import unquote_to_bytes

MAX_HEADER = 16384
_HEADER_END = re.compile(rb"\r?\n\r?\n")
MAX_BODY = 65536
MAX_TXS = 32
METHODS = (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"TRACE", b"PATCH", b"PROPFIND",
           b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"PROPPATCH", b"SEARCH", b"SUBSCRIBE", b"NOTIFY")

# buffers read from the request, from the response, and from whichever side the event is on
REQUEST_BUFFERS = {"http.method", "http.uri", "http.uri.raw", "http.protocol", "http.request_line", "http.user_agent",
                   "http.host", "http.host.raw", "http.accept", "http.accept_enc", "http.accept_lang", "http.referer",
                   "http.request_body", "http.client_body"}
RESPONSE_BUFFERS = {"http.stat_code", "http.stat_msg", "http.response_line", "http.server", "http.location",
                    "http.response_body"}
SIDE_BUFFERS = {"http.header", "http.header.raw", "http.header_names", "http.cookie", "http.content_type",
                "http.content_len", "http.connection", "http.start", "file.data"}
BUFFERS = REQUEST_BUFFERS | RESPONSE_BUFFERS | SIDE_BUFFERS
ALIASES = {"http_uri": "http.uri", "http_raw_uri": "http.uri.raw", "http_method": "http.method",
           "http_header": "http.header", "http_raw_header": "http.header.raw", "http_cookie": "http.cookie",
           "http_user_agent": "http.user_agent", "http_host": "http.host", "http_raw_host": "http.host.raw",
           "http_client_body": "http.request_body", "http.client_body": "http.request_body",
           "http_stat_code": "http.stat_code", "http_stat_msg": "http.stat_msg",
           "http_server_body": "http.response_body", "file_data": "file.data", "http_start": "http.start",
           "http_protocol": "http.protocol", "http_request_line": "http.request_line",
           "http_response_line": "http.response_line", "http_header_names": "http.header_names",
           "http_accept": "http.accept", "http_accept_enc": "http.accept_enc", "http_accept_lang": "http.accept_lang",
           "http_referer": "http.referer", "http_connection": "http.connection",
           "http_content_type": "http.content_type", "http_content_len": "http.content_len"}
_HEADER_BUFFERS = {"http.user_agent": b"user-agent", "http.accept": b"accept", "http.accept_enc": b"accept-encoding",
                   "http.accept_lang": b"accept-language", "http.referer": b"referer", "http.server": b"server",
                   "http.location": b"location", "http.content_type": b"content-type",
                   "http.content_len": b"content-length", "http.connection": b"connection"}


class Message:
    """One request or response: start line, headers, body."""

    __slots__ = ("line", "parts", "headers", "raw_headers", "body")

    def __init__(self, line: bytes, raw_headers: bytes):
        self.line = line
        self.parts = line.split(b" ", 2)
        if not line.startswith(b"HTTP/"):  # a request: the URI may hold spaces, the version ends it
            method, _, rest = line.partition(b" ")
            uri, space, version = rest.rpartition(b" ")
            self.parts = [method, uri, version] if space and version.startswith(b"HTTP/") else [method, rest]
        self.raw_headers = raw_headers
        self.headers: List[Tuple[bytes, bytes, bytes]] = []  # (lower name, name, value)
        for row in raw_headers.split(b"\n"):
            row = row.rstrip(b"\r")
            name, colon, value = row.partition(b":")
            if colon:
                self.headers.append((name.strip().lower(), name.strip(), value.strip()))
        self.body = b""

    def header(self, lower: bytes) -> Optional[bytes]:
        values = [v for n, _, v in self.headers if n == lower]
        return b", ".join(values) if values else None


# buffers complete with the request line (libhtp's REQUEST_LINE progress): rules on these alone
# are judged as soon as the line has arrived, before the headers
LINE_BUFFERS = {"http.method", "http.uri", "http.uri.raw", "http.protocol", "http.request_line"}


class Transaction:
    __slots__ = ("request", "response", "cache", "alerted")

    def __init__(self, request: Message):
        self.request = request
        self.response: Optional[Message] = None
        self.cache: Dict[Tuple[str, int], Optional[bytes]] = {}
        self.alerted: set = set()  # rules that matched on the request line: not judged again

    def buffer(self, name: str, direction: int) -> Optional[bytes]:
        """The named buffer; ``direction`` 0 (request side) or 1 (response side) for the
        buffers both sides have."""
        key = (name, direction)
        if key not in self.cache:
            self.cache[key] = self._buffer(name, direction)
        return self.cache[key]

    def _buffer(self, name: str, direction: int) -> Optional[bytes]:
        req, resp = self.request, self.response
        side = resp if direction else req
        if name == "http.method":
            return req.parts[0]
        if name == "http.uri.raw":
            return req.parts[1] if len(req.parts) > 1 else None
        if name == "http.uri":
            return normalize_uri(req.parts[1]) if len(req.parts) > 1 else None
        if name == "http.protocol":
            return side.parts[2] if side is req and len(req.parts) > 2 else side.parts[0] if side else None
        if name == "http.request_line":
            return req.line
        if name in ("http.host", "http.host.raw"):
            host = req.header(b"host")
            if host is None or name == "http.host.raw":
                return host
            return host.rsplit(b":", 1)[0].lower() if not host.endswith(b"]") else host.lower()
        if name in ("http.request_body", "http.client_body"):
            return req.body
        if side is None or (name in RESPONSE_BUFFERS and resp is None):
            return None
        if name == "http.stat_code":
            return resp.parts[1] if len(resp.parts) > 1 else None
        if name == "http.stat_msg":
            return resp.parts[2] if len(resp.parts) > 2 else b""
        if name == "http.response_line":
            return resp.line
        if name in ("http.response_body", "file.data"):
            return side.body if name == "file.data" else resp.body
        if name == "http.header":
            return b"".join(n + b": " + v + b"\r\n" for lower, n, v in side.headers
                            if lower not in (b"cookie", b"set-cookie"))
        if name == "http.header.raw":
            return side.raw_headers
        if name == "http.header_names":
            return b"\r\n" + b"".join(n + b"\r\n" for _, n, _ in side.headers) + b"\r\n"
        if name == "http.cookie":
            return side.header(b"set-cookie" if direction else b"cookie")
        if name == "http.start":
            return side.line + b"\r\n" + side.raw_headers
        header = _HEADER_BUFFERS.get(name)
        if header is not None:
            if name in REQUEST_BUFFERS:
                return req.header(header)
            return side.header(header)
        return None

    def eve(self) -> dict:
        req = self.request
        out = {"http_method": req.parts[0].decode("latin-1")}
        if len(req.parts) > 1:
            out["url"] = req.parts[1].decode("latin-1")
        if len(req.parts) > 2:
            out["protocol"] = req.parts[2].decode("latin-1")
        for key, header in (("hostname", b"host"), ("http_user_agent", b"user-agent")):
            value = req.header(header)
            if value is not None:
                out[key] = value.decode("latin-1")
        if self.response is not None and len(self.response.parts) > 1 and self.response.parts[1].isdigit():
            out["status"] = int(self.response.parts[1])
        return out


def normalize_uri(raw: bytes) -> bytes:
    """Percent-decoded, with '.' and '..' path segments resolved (as libhtp normalises)."""
    path, mark, query = raw.partition(b"?")
    path = unquote_to_bytes(path)
    if b"/." in path:
        out: List[bytes] = []
        for segment in path.split(b"/"):
            if segment == b".":
                continue
            if segment == b"..":
                if len(out) > 1:
                    out.pop()
                continue
            out.append(segment)
        path = b"/".join(out) or b"/"
    return path + mark + unquote_to_bytes(query) if mark else path


def looks_like_http(data: bytes) -> bool:
    """The client's first bytes are a request method and a space (as libhtp probes)."""
    method, space, _ = data[:16].partition(b" ")
    return bool(space) and method in METHODS


class HttpParser:
    """Both directions of one flow. ``feed(direction, stream bytes)`` -> events: ("request", tx)
    when a request is complete, ("response", tx) when its response is."""

    __slots__ = ("offsets", "txs", "pending", "broken", "pending_body", "partial", "junk")

    def __init__(self):
        self.junk = False  # the client sent no HTTP request: its bytes are not parsed further
        self.partial: Optional[Transaction] = None  # a request whose line came, not its headers
        self.offsets = [0, 0]
        self.txs: List[Transaction] = []  # waiting for their responses, oldest first
        self.pending: List[Optional[Message]] = [None, None]  # headers read, body incomplete
        self.pending_body = [0, 0]  # body bytes still expected (-1: chunked, -2: until close)
        self.broken = False

    def junk_request(self, data: bytes) -> None:
        """The client's bytes are no request, yet the server answers in HTTP: one transaction whose
        request line is the client's first line, for the responses to attach to."""
        line = data.split(b"\n", 1)[0].rstrip(b"\r")[:MAX_HEADER]
        self.txs.append(Transaction(Message(line, b"")))
        self.junk = True

    def feed(self, direction: int, data: bytes, closed: bool = False) -> List[Tuple[str, Transaction]]:
        events: List[Tuple[str, Transaction]] = []
        if direction == 0 and self.junk:
            return events
        while not self.broken:
            message = self.pending[direction]
            if message is None:
                message = self._headers(direction, data, closed)
                if message is None:
                    if direction == 0 and self.partial is None and not self.broken:
                        self._request_line(data, events)
                    break
            if not self._body(direction, data, message, closed):
                self.pending[direction] = message
                break
            self.pending[direction] = None
            if direction == 0:
                tx, self.partial = self.partial, None
                if tx is None:
                    tx = Transaction(message)
                else:  # the transaction the request line opened
                    tx.request = message
                    tx.cache.clear()
                if len(self.txs) >= MAX_TXS:
                    self.txs.pop(0)
                self.txs.append(tx)
                events.append(("request", tx))
            elif self.txs:
                tx = self.txs.pop(0)
                tx.response = message
                events.append(("response", tx))
        return events

    def _request_line(self, data: bytes, events: List[Tuple[str, Transaction]]) -> None:
        """A request line that came without its headers (yet): a transaction for the rules on
        the line's buffers (as libhtp's transactions exist from the request line on)."""
        start = self.offsets[0]
        while start < len(data) and data[start] in (10, 13):
            start += 1
        eol = data.find(b"\n", start)
        if eol < 0 or eol - start > MAX_HEADER:
            return
        line = data[start:eol].rstrip(b"\r")
        if line.split(b" ", 1)[0] in METHODS:
            self.partial = Transaction(Message(line, b""))
            events.append(("request_line", self.partial))

    def _headers(self, direction: int, data: bytes, closed: bool = False) -> Optional[Message]:
        start = self.offsets[direction]
        while start < len(data) and data[start] in (10, 13):  # blank lines between messages
            start += 1
        found = _HEADER_END.search(data, start)  # lines may end in LF alone, or mixed
        end, sep = (found.start(), found.end() - found.start()) if found else (-1, 0)
        if end < 0 and closed and start < len(data):
            # the connection closed in the headers: what came is the header block (as libhtp
            # finishes a message at the end of its stream)
            end = len(data)
            while end > start and data[end - 1] in (10, 13):
                end -= 1
            sep = len(data) - end
        if end < 0:
            if len(data) - start > MAX_HEADER:
                self.broken = True
            return None
        head = data[start:end]
        line, _, raw = head.partition(b"\n")
        line = line.rstrip(b"\r")
        if direction == 1 and not line.startswith(b"HTTP/") or direction == 0 and line.split(b" ", 1)[0] not in METHODS:
            self.broken = True
            return None
        message = Message(line, raw + (b"\r\n" if raw else b""))
        self.offsets[direction] = end + sep
        length = message.header(b"content-length")
        chunked = b"chunked" in (message.header(b"transfer-encoding") or b"").lower()
        if direction == 1:
            status = message.parts[1] if len(message.parts) > 1 else b""
            head_request = self.txs and self.txs[0].request.parts[0] == b"HEAD"
            if status[:1] == b"1" or status in (b"204", b"304") or head_request:
                self.pending_body[1] = 0
                return message
        if chunked:
            self.pending_body[direction] = -1
        elif length is not None and length.strip().isdigit():
            self.pending_body[direction] = int(length.strip())
        else:
            self.pending_body[direction] = -2 if direction == 1 else 0
        return message

    def _body(self, direction: int, data: bytes, message: Message, closed: bool = False) -> bool:
        if not self._raw_body(direction, data, message, closed):
            return False
        coding = (message.header(b"content-encoding") or b"").lower()
        if message.body and coding in (b"gzip", b"deflate", b"x-gzip"):
            try:  # bounded: at most MAX_BODY bytes out, whatever the ratio
                inflater = zlib.decompressobj(47 if coding != b"deflate" else zlib.MAX_WBITS)
                message.body = inflater.decompress(message.body, MAX_BODY)
            except zlib.error:
                try:
                    message.body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(message.body, MAX_BODY)
                except zlib.error:
                    pass  # not what it claims: inspect the bytes as they are
        return True

    def _raw_body(self, direction: int, data: bytes, message: Message, closed: bool) -> bool:
        """Take the body when complete (or MAX_BODY of it); False while more is needed."""
        want = self.pending_body[direction]
        start = self.offsets[direction]
        if want == 0:
            return True
        if want > 0:
            have = len(data) - start
            if have < want and have < MAX_BODY:
                return False
            message.body = data[start:start + min(want, MAX_BODY)]
            self.offsets[direction] = start + want
            return True
        if want == -2:  # until the connection closes
            if not closed and len(data) - start < MAX_BODY:
                return False
            message.body = data[start:start + MAX_BODY]
            self.offsets[direction] = len(data)
            return True
        body = bytearray()  # chunked
        at = start
        while True:
            eol = data.find(b"\r\n", at)
            if eol < 0:
                return False
            try:
                size = int(data[at:eol].split(b";")[0].strip() or b"x", 16)
            except ValueError:
                self.broken = True
                return False
            if size == 0:
                end = data.find(b"\r\n\r\n", eol)
                if end < 0 and not data.startswith(b"\r\n", eol + 2):
                    return False
                message.body = bytes(body[:MAX_BODY])
                self.offsets[direction] = (end + 4) if end >= 0 else eol + 4
                return True
            if eol + 2 + size + 2 > len(data):
                return False
            if len(body) < MAX_BODY:
                body += data[eol + 2:eol + 2 + size]
            at = eol + 2 + size + 2
