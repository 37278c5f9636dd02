"""Echo, discard and HTTP services on a real Stack, driven by the blocking socket API."""

import hashlib
import os
import threading

import pytest

from pynetstack.api.tcp import create_connection
from pynetstack.link.memory import memory_pair
from pynetstack.services import discard, http, tcp_echo
from pynetstack.stack import Stack

ADDR = "10.78.0.1"


@pytest.fixture(scope="module")
def stack():
    st = Stack()
    a, _b = memory_pair(names=("tcpsvc0", "tcpsvc1"))
    st.add_interface(a, f"{ADDR}/24")
    tcp_echo.install(st)
    discard.install(st)
    http.install(st)
    st.start_background()
    try:
        yield st
    finally:
        st.close()


def read_all(sock):
    out = bytearray()
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return bytes(out)
        out += chunk


def read_response(sock, buf):
    """One HTTP response from ``sock`` (buf: leftover bytes). Returns (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before headers"
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if status == 100:
        return read_response(sock, bytearray(rest))
    length = int(headers["content-length"])
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(1 << 20)
        assert chunk
        body += chunk
    return status, headers, bytes(body[:length]), bytearray(body[length:])


def test_echo_two_megabytes_with_backpressure(stack):
    data = os.urandom(2 << 20)
    sock = create_connection(stack, (ADDR, 7), timeout=30)
    got = []
    t = threading.Thread(target=lambda: got.append(read_all(sock)), daemon=True)
    t.start()
    sock.sendall(data)
    sock.shutdown(1)
    t.join(60)
    assert hashlib.sha256(got[0]).hexdigest() == hashlib.sha256(data).hexdigest()
    sock.close()


def test_discard(stack):
    before = discard.DiscardHandler.total
    sock = create_connection(stack, (ADDR, 9), timeout=10)
    sock.sendall(b"x" * 300_000)
    sock.shutdown(1)
    assert read_all(sock) == b""
    assert discard.DiscardHandler.total - before == 300_000
    sock.close()


def test_http_sha256_body_then_pipelined_request_in_one_write(stack):
    # the body is hashed as it arrives (no buffering) until its last bytes, which come in the
    # same write as the next request: that request must still be read and answered
    sock = create_connection(stack, (ADDR, 80), timeout=30)
    upload = os.urandom(200_001)
    sock.sendall(b"POST /sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(upload))
    sock.sendall(upload[:150_000])
    sock.sendall(upload[150_000:] + b"POST /sha256 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    buf = bytearray()
    status, headers, body, buf = read_response(sock, buf)
    assert status == 200 and body.decode().strip() == hashlib.sha256(upload).hexdigest()
    status, headers, body, buf = read_response(sock, buf)
    assert status == 200 and body.decode().strip() == hashlib.sha256(b"abc").hexdigest()
    sock.close()


def test_http_bytes_sha256_keepalive_and_status(stack):
    sock = create_connection(stack, (ADDR, 80), timeout=30)
    buf = bytearray()
    sock.sendall(b"GET /bytes/1000003 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body, buf = read_response(sock, buf)
    assert status == 200 and headers["content-length"] == "1000003"
    assert body == http.deterministic_bytes(0, 1000003)
    upload = os.urandom(3_000_000)
    sock.sendall(b"POST /sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                 b"Expect: 100-continue\r\n\r\n" % len(upload))
    sock.sendall(upload)
    status, headers, body, buf = read_response(sock, buf)
    assert status == 200 and body.decode().strip() == hashlib.sha256(upload).hexdigest()
    # chunked upload, pipelined with a status request
    sock.sendall(b"POST /sha256 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    status, headers, body, buf = read_response(sock, buf)
    assert body.decode().strip() == hashlib.sha256(b"hello world").hexdigest()
    status, headers, body, buf = read_response(sock, buf)
    assert status == 200 and b"ESTABLISHED" in body and b"LISTEN" in body
    sock.sendall(b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
    status, headers, body, buf = read_response(sock, buf)
    assert status == 404 and headers["connection"] == "close"
    assert sock.recv(10) == b""
    sock.close()


def test_deterministic_bytes_blocks():
    a = http.deterministic_bytes(0, 200_000)
    assert http.deterministic_bytes(65_000, 1000) == a[65_000:66_000]
    assert len(a) == 200_000
