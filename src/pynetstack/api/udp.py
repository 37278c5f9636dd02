"""A blocking UDP socket over a Stack, shaped like ``socket.socket(AF_INET, SOCK_DGRAM)``.

As on Linux, an ICMP port unreachable is reported (``ConnectionRefusedError`` from the next
``send``/``recv``) only on a *connected* socket, and only for its peer; an unconnected
socket (``sendto``/``recvfrom``) never sees it. A connected socket also accepts datagrams
from its peer only.
"""

from __future__ import annotations

import socket as _socket
import threading
import time
from collections import deque
from typing import Optional, Tuple

from ..net.drops import DropReason
from ..wire.addr import ip_to_int, ip_to_str


def _resolve(address, what: str) -> Tuple[int, int]:
    """(host, port) -> (address int, port), with the errors ``socket`` raises for bad ones.
    The stack does no name resolution here: a host name is a ``socket.gaierror``."""
    if not isinstance(address, tuple):
        raise TypeError(f"{what}(): AF_INET address must be tuple, not {type(address).__name__}")
    if len(address) != 2:
        raise TypeError("AF_INET address must be a pair (host, port)")
    host, port = address
    if not isinstance(host, str):
        raise TypeError(f"str, bytes or bytearray expected, not {type(host).__name__}")
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
    if not 0 <= port <= 65535:
        raise OverflowError(f"{what}(): port must be 0-65535.")
    if host in ("", "0.0.0.0"):
        return 0, port
    if host == "localhost":
        host = "127.0.0.1"
    try:
        return ip_to_int(host), port
    except ValueError:
        raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known") from None


class UdpSocket:
    def __init__(self, stack, receive_buffer: int = 212992):
        self.stack = stack
        self._ready = threading.Condition(stack.lock)
        self._queue: deque = deque()
        self._queued_bytes = 0
        self.receive_buffer = receive_buffer
        self._timeout: Optional[float] = None
        self._address = 0
        self._port = 0
        self._peer: Optional[Tuple[int, int]] = None  # (address, port) once connect()ed
        self._closed = False
        self._error: Optional[OSError] = None

    def __repr__(self):
        peer = f" -> {ip_to_str(self._peer[0])}:{self._peer[1]}" if self._peer else ""
        state = " closed" if self._closed else ""
        return f"<UdpSocket {ip_to_str(self._address)}:{self._port}{peer}{state}>"

    # -- the handlers the UDP layer calls, under the stack lock
    def _deliver(self, payload, src, src_port, dst, now) -> None:
        peer = self._peer
        if peer is not None and (src, src_port) != peer:
            self.stack.drops.drop(DropReason.UDP_NO_SOCKET)  # Linux: not for a socket connected elsewhere
            return
        if self._queued_bytes + len(payload) > self.receive_buffer:
            self.stack.drops.drop(DropReason.UDP_RCVBUF_FULL)
            return
        self._queue.append((payload, (ip_to_str(src), src_port)))
        self._queued_bytes += len(payload)
        self._ready.notify()

    def _icmp_error(self, icmp_type, code, dst, dst_port) -> None:
        # Linux (without IP_RECVERR) reports ICMP errors only on a connected socket.
        if self._peer is None or (dst, dst_port) != self._peer:
            return
        if icmp_type == 3 and code == 3:
            self._error = ConnectionRefusedError(111, "Connection refused")
            self._ready.notify_all()

    # -- helpers
    def _check_open(self) -> None:
        if self._closed:
            raise OSError(9, "Bad file descriptor")

    def _take_error(self) -> None:
        """Raise (and clear) a pending error, as the kernel's sock_error() does; lock held."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _bind_locked(self, local: int, port: int) -> None:
        self._port = self.stack.udp.bind(port, self._deliver, local)
        self._address = local
        self.stack.udp.error_listeners[self._port] = self._icmp_error

    # -- setup
    def bind(self, address: Tuple[str, int]) -> None:
        self._check_open()
        local, port = _resolve(address, "bind")
        with self.stack.lock:
            self._check_open()
            if self._port:
                raise OSError(22, "Invalid argument (socket is already bound)")
            self._bind_locked(local, port)

    def connect(self, address: Tuple[str, int]) -> None:
        """Fix the peer: ``send``/``recv`` use it, only its datagrams are received, and an ICMP
        port unreachable from it makes the next call raise ``ConnectionRefusedError``."""
        self._check_open()
        peer = _resolve(address, "connect")
        with self.stack.lock:
            self._check_open()
            if not self._port:
                self._bind_locked(0, 0)
            self._peer = peer
            self._error = None

    def connect_ex(self, address) -> int:
        try:
            self.connect(address)
        except OSError as exc:
            return exc.errno or 1
        return 0

    # -- data
    def sendto(self, data, address: Tuple[str, int]) -> int:
        self._check_open()
        dst, dst_port = _resolve(address, "sendto")
        return self._send(data, dst, dst_port, address[0])

    def send(self, data) -> int:
        self._check_open()
        peer = self._peer
        if peer is None:
            raise OSError(89, "Destination address required")
        return self._send(data, peer[0], peer[1], ip_to_str(peer[0]))

    def _send(self, data, dst: int, dst_port: int, host: str) -> int:
        payload = bytes(memoryview(data))
        with self.stack.lock:
            self._check_open()
            self._take_error()
            if not self._port:
                self._bind_locked(0, 0)
            ok = self.stack.udp.sendto(payload, self._port, dst, dst_port, self.stack.now(),
                                       src=self._address or None)
        self.stack.wake()
        if not ok:
            raise OSError(101, f"Network is unreachable: {host}")
        return len(payload)

    def recvfrom(self, bufsize: int = 65535) -> Tuple[bytes, Tuple[str, int]]:
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        timeout = self._timeout
        deadline = None if not timeout else time.monotonic() + timeout
        with self._ready:
            while True:
                self._check_open()
                self._take_error()
                if self._queue:
                    break
                if timeout == 0:
                    raise BlockingIOError(11, "Resource temporarily unavailable")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("timed out")
                self._ready.wait(remaining)
            payload, peer = self._queue.popleft()
            self._queued_bytes -= len(payload)
        return payload[:bufsize], peer

    def recv(self, bufsize: int = 65535) -> bytes:
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        return self.recvfrom(bufsize)[0]

    # -- options and names
    def settimeout(self, timeout: Optional[float]) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = None if timeout is None else float(timeout)

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def getsockname(self) -> Tuple[str, int]:
        self._check_open()
        return ip_to_str(self._address), self._port

    def getpeername(self) -> Tuple[str, int]:
        self._check_open()
        if self._peer is None:
            raise OSError(107, "Transport endpoint is not connected")
        return ip_to_str(self._peer[0]), self._peer[1]

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        with self.stack.lock:
            if self._port and not self._closed:
                self.stack.udp.unbind(self._port, self._address)
            self._closed = True
            self._ready.notify_all()

    def __enter__(self) -> UdpSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
