"""A blocking UDP socket over a Stack, shaped like ``socket.socket(AF_INET, SOCK_DGRAM)``."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Optional, Tuple

from ..net.drops import DropReason
from ..wire.addr import ip_to_int, ip_to_str


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
        self._closed = False
        self._error: Optional[OSError] = None

    # -- the handler the UDP layer calls, under the stack lock
    def _deliver(self, payload, src, src_port, dst, now) -> None:
        if self._queued_bytes + len(payload) > self.receive_buffer:
            self.stack.drops.drop(DropReason.UDP_RCVBUF_FULL)
            return
        self._queue.append((payload, (ip_to_str(src), src_port)))
        self._queued_bytes += len(payload)
        self._ready.notify()

    def _icmp_error(self, icmp_type, code, dst, dst_port) -> None:
        if icmp_type == 3 and code == 3:
            self._error = ConnectionRefusedError(111, f"port unreachable: {ip_to_str(dst)}:{dst_port}")
            self._ready.notify_all()

    def bind(self, address: Tuple[str, int]) -> None:
        host, port = address
        local = ip_to_int(host) if host not in ("", "0.0.0.0") else 0
        with self.stack.lock:
            if self._port:
                raise OSError(22, "socket is already bound")
            self._port = self.stack.udp.bind(port, self._deliver, local)
            self._address = local
            self.stack.udp.error_listeners[self._port] = self._icmp_error

    def sendto(self, data: bytes, address: Tuple[str, int]) -> int:
        if self._closed:
            raise OSError(9, "bad file descriptor")
        if not self._port:
            self.bind(("0.0.0.0", 0))
        dst = ip_to_int(address[0])
        with self.stack.lock:
            ok = self.stack.udp.sendto(bytes(data), self._port, dst, address[1], self.stack.now(),
                                       src=self._address or None)
        self.stack.wake()
        if not ok:
            raise OSError(101, f"network is unreachable: {address[0]}")
        return len(data)

    def recvfrom(self, bufsize: int = 65535) -> Tuple[bytes, Tuple[str, int]]:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._ready:
            while not self._queue:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                if self._closed:
                    raise OSError(9, "bad file descriptor")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("timed out")
                self._ready.wait(remaining)
            payload, peer = self._queue.popleft()
            self._queued_bytes -= len(payload)
        return payload[:bufsize], peer

    def recv(self, bufsize: int = 65535) -> bytes:
        return self.recvfrom(bufsize)[0]

    def settimeout(self, timeout: Optional[float]) -> None:
        self._timeout = timeout

    def getsockname(self) -> Tuple[str, int]:
        return ip_to_str(self._address), self._port

    def close(self) -> None:
        with self.stack.lock:
            if self._port:
                self.stack.udp.unbind(self._port, self._address)
            self._closed = True
            self._ready.notify_all()

    def __enter__(self) -> UdpSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
