"""A blocking TCP socket over a Stack, shaped like ``socket.socket(AF_INET, SOCK_STREAM)``.

The stack's loop thread owns the protocol; a socket call takes ``stack.lock``, changes the
connection (which may send at once), ``wake()``s the loop so it re-plans its timers, and
waits on a ``threading.Condition(stack.lock)`` that connection events notify.
"""

from __future__ import annotations

import io
import socket as _socket
import sys
import threading
import time
import weakref
from typing import Optional, Tuple

from ..transport.tcp import CLOSE_WAIT, CLOSED, ESTABLISHED, SYN_RECEIVED, SYN_SENT, TIME_WAIT, TcpConfig
from ..wire.addr import ip_to_str
from .stack_tcp import _address, tcp_layer

SOL_SOCKET = _socket.SOL_SOCKET
IPPROTO_TCP = _socket.IPPROTO_TCP
SHUT_RD, SHUT_WR, SHUT_RDWR = _socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR
_OPTIONS = {
    (IPPROTO_TCP, _socket.TCP_NODELAY): ("nodelay", bool),
    (SOL_SOCKET, _socket.SO_KEEPALIVE): ("keepalive", bool),
    (SOL_SOCKET, _socket.SO_RCVBUF): ("rcvbuf", int),
    (SOL_SOCKET, _socket.SO_SNDBUF): ("sndbuf", int),
    (IPPROTO_TCP, getattr(_socket, "TCP_KEEPIDLE", 4)): ("keepidle", float),
    (IPPROTO_TCP, getattr(_socket, "TCP_KEEPINTVL", 5)): ("keepintvl", float),
    (IPPROTO_TCP, getattr(_socket, "TCP_KEEPCNT", 6)): ("keepcnt", int),
    (IPPROTO_TCP, getattr(_socket, "TCP_USER_TIMEOUT", 18)): ("user_timeout", float),
}




class _SocketIO(io.RawIOBase):
    """The raw stream under ``TcpSocket.makefile``."""

    def __init__(self, sock, reading: bool, writing: bool):
        super().__init__()
        self._sock, self._reading, self._writing = sock, reading, writing

    def readable(self) -> bool:
        return self._reading

    def writable(self) -> bool:
        return self._writing

    def readinto(self, buffer) -> int:
        return self._sock.recv_into(buffer)

    def write(self, data) -> int:
        self._sock.sendall(data)
        return len(data)


_CAST_SLICES_FAST = sys.implementation.name != "pypy"


def _byte_view(data) -> memoryview:
    """``data`` (any buffer) as a flat memoryview of bytes to slice while sending.  A view of
    bytes is taken as it is: PyPy copies a slice of a ``cast`` view a byte at a time (3.4 ms
    for 64 KB against 5 us for a plain view: 14 MB/s through ``sendall``), so a buffer of
    another shape is cast on CPython and copied once on PyPy."""
    view = memoryview(data)
    if not view.c_contiguous:  # as socket.send: PyPy would slice a strided view wrongly
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B") if _CAST_SLICES_FAST else memoryview(view.tobytes())


def _release(stack, owned) -> None:
    """Finalizer of a TcpSocket dropped without ``close()``: as CPython closes the descriptor,
    its listener stops and its connection is aborted. Holds no reference to the socket.

    A finalizer may run at any allocation (always so on PyPy), also in a thread that holds
    ``stack.lock`` in the middle of protocol work, or one holding a lock the loop thread
    wants; so it acts inline only if it gets the lock without waiting and without
    re-entering it, and otherwise hands the work to a short-lived thread."""
    conn, listener = owned
    if conn is None and listener is None:
        return

    def release() -> None:
        now = stack.now()
        if listener is not None:
            listener.close(now)
        if conn is not None and conn.state not in (CLOSED, TIME_WAIT):
            conn.abort(now, "socket garbage-collected without close()")

    def in_thread() -> None:
        try:
            with stack.lock:
                release()
            stack.wake()
        except Exception:  # the stack may be closed by now
            pass

    lock = stack.lock
    is_owned = getattr(lock, "_is_owned", None)
    if is_owned is not None and not is_owned() and lock.acquire(blocking=False):
        try:
            release()
        except Exception:
            pass
        finally:
            lock.release()
        stack.wake()
    else:
        threading.Thread(target=in_thread, name="pynetstack-release", daemon=True).start()


class TcpSocket:
    """Blocking by default; ``settimeout(t)`` makes calls raise ``TimeoutError`` after t
    seconds, ``settimeout(0)`` / ``setblocking(False)`` makes them raise ``BlockingIOError``.

    A socket garbage-collected without ``close()`` aborts its connection (and stops its
    listener), as CPython closes the descriptor of a dropped socket; nothing the stack
    holds refers back to the socket, so dropping the last reference is enough."""

    def __init__(self, stack, config: Optional[TcpConfig] = None, _conn=None):
        self.stack = stack
        self.layer = tcp_layer(stack)
        self._cond = threading.Condition(stack.lock)
        self._config = config or self.layer.config
        self._conn = None
        self._listener = None
        self._local = (0, 0)
        self._timeout: Optional[float] = None
        self._closed = False
        self._read_shut = False
        self._owned = [None, None]  # (connection, listener) for the finalizer
        self._finalizer = weakref.finalize(self, _release, stack, self._owned)
        self._finalizer.atexit = False
        if _conn is not None:
            self._attach(_conn)

    def __repr__(self):
        state = self._conn.state if self._conn else ("LISTEN" if self._listener else "unconnected")
        return f"<TcpSocket {self._local[0] and ip_to_str(self._local[0])}:{self._local[1]} {state}>"

    # -- plumbing ----------------------------------------------------------------------------------

    def _attach(self, conn) -> None:
        self._conn = conn
        self._owned[0] = conn
        self._local = (conn.local_ip, conn.local_port)
        conn.on_event = self._notifier()

    def _notifier(self):
        """The event callback (loop thread, lock held): it wakes waiters through the condition
        only, so the stack holds no reference to the socket and a dropped one can be collected."""
        cond = self._cond

        def notify(*_args) -> None:
            cond.notify_all()
        return notify

    def _wait(self, ready, deadline) -> None:
        """Wait (lock held) until ``ready()``; raise on timeout/would-block."""
        while not ready():
            if self._timeout == 0:
                raise BlockingIOError(11, "Resource temporarily unavailable")
            if deadline is None:
                self._cond.wait(1.0)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            self._cond.wait(remaining)

    def _deadline(self):
        return None if not self._timeout else time.monotonic() + self._timeout

    def _need_conn(self):
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        if self._conn is None:
            raise OSError(107, "Transport endpoint is not connected")
        return self._conn

    # -- setup -------------------------------------------------------------------------------------

    def bind(self, address: Tuple[str, int]) -> None:
        host, port = address
        if self._local[1] or self._conn or self._listener:
            raise OSError(22, "Invalid argument (already bound)")
        self._local = (_address(host), port)

    def listen(self, backlog: int = 128) -> None:
        if self._listener is not None:
            self._listener.backlog = max(1, backlog)
            return
        ip, port = self._local
        if not port:
            raise OSError(22, "bind() a port before listen()")
        with self.stack.lock:
            self._listener = self.layer.listen(port, ip, backlog, self._config)
            self._owned[1] = self._listener
            self._listener.on_accept = self._notifier()

    def accept(self):
        if self._listener is None:
            raise OSError(22, "Invalid argument (not listening)")
        deadline = self._deadline()
        with self._cond:
            self._wait(lambda: self._closed or self._listener.accept_queue, deadline)
            if self._closed:
                raise OSError(9, "Bad file descriptor")
            conn = self._listener.accept()
            sock = TcpSocket(self.stack, self._config, _conn=conn)
        # as socket.accept(): the new socket is blocking unless a default timeout is set
        sock._timeout = _socket.getdefaulttimeout()
        return sock, (ip_to_str(conn.remote_ip), conn.remote_port)

    def connect(self, address: Tuple[str, int]) -> None:
        if self._conn is not None:
            raise OSError(106, "Transport endpoint is already connected")
        remote = _address(address[0])
        deadline = self._deadline()
        with self._cond:
            conn = self.layer.connect(remote, address[1], self.stack.now(),
                                      local_ip=self._local[0] or None, local_port=self._local[1],
                                      config=self._config)
            self._attach(conn)
        self.stack.wake()
        with self._cond:
            try:
                self._wait(lambda: conn.state not in (SYN_SENT, SYN_RECEIVED), deadline)
            except TimeoutError:
                conn.abort(self.stack.now(), "connect timeout")
                raise
            if conn.state == CLOSED:
                raise conn.error or ConnectionRefusedError(111, "Connection refused")

    def connect_ex(self, address) -> int:
        try:
            self.connect(address)
        except BlockingIOError:
            return 115
        except OSError as exc:
            return exc.errno or 1
        return 0

    # -- data --------------------------------------------------------------------------------------

    def send(self, data, flags: int = 0) -> int:
        """``flags``: ``socket.MSG_OOB`` makes the last byte sent urgent data (TCP's URG, as
        Linux does; a Linux receiver without SO_OOBINLINE takes it out of the stream as the
        out-of-band byte).  No other flag is supported."""
        if flags & ~_socket.MSG_OOB:
            raise OSError(95, f"send flags {flags:#x} not supported (only MSG_OOB)")
        conn = self._need_conn()
        if not data:
            return 0
        deadline = self._deadline()
        view = data if isinstance(data, (bytes, bytearray)) else _byte_view(data)
        with self._cond:
            self._wait(lambda: conn.send_space() > 0 or conn.state == CLOSED or conn.fin_queued,
                       deadline)
            n = conn.send(view[:conn.send_space()], self.stack.now(), bool(flags))
            wake = self.stack.wake_needed()
        if wake:
            self.stack.wake()
        return n

    def sendall(self, data, flags: int = 0) -> None:
        view = _byte_view(data)
        while len(view):
            n = self.send(view, flags)
            view = view[n:]

    def recv(self, bufsize: int = 65536) -> bytes:
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        conn = self._need_conn()
        if bufsize == 0:
            return b""
        if self._read_shut:
            return b""
        deadline = self._deadline()
        with self._cond:
            self._wait(lambda: conn.readable_bytes() or conn.fin_received or conn.state == CLOSED,
                       deadline)
            wake = False
            if conn.readable_bytes():
                data = conn.recv(bufsize, self.stack.now())
                wake = self.stack.wake_needed()
            elif conn.error is not None and conn.state == CLOSED and not conn.fin_received:
                raise conn.error
            else:
                data = b""
        if wake:
            self.stack.wake()
        return data

    def recv_into(self, buffer, nbytes: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        if nbytes > len(view):
            raise ValueError("buffer too small for requested bytes")
        if not nbytes and not len(view):
            self._need_conn()
            return 0
        data = self.recv(nbytes or len(view))
        view[:len(data)] = data
        return len(data)

    def makefile(self, mode: str = "r", buffering: Optional[int] = None, encoding: Optional[str] = None,
                 errors: Optional[str] = None, newline: Optional[str] = None):
        """A file object over the connection, as ``socket.makefile``: closing it leaves the socket open."""
        if not set(mode) <= {"r", "w", "b"} or not ({"r", "w"} & set(mode)):
            raise ValueError(f"invalid mode {mode!r} (only 'r', 'w' and 'b')")
        raw = _SocketIO(self, "r" in mode, "w" in mode)
        binary = "b" in mode
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        size = io.DEFAULT_BUFFER_SIZE if buffering is None or buffering < 0 else buffering
        if raw.readable() and raw.writable():
            buffer = io.BufferedRWPair(raw, raw, size)
        elif raw.readable():
            buffer = io.BufferedReader(raw, size)
        else:
            buffer = io.BufferedWriter(raw, size)
        return buffer if binary else io.TextIOWrapper(buffer, encoding, errors, newline)

    # -- closing -----------------------------------------------------------------------------------

    def shutdown(self, how: int) -> None:
        conn = self._need_conn()
        with self._cond:
            if how in (SHUT_RD, SHUT_RDWR):
                self._read_shut = True
            if how in (SHUT_WR, SHUT_RDWR):
                conn.shutdown(self.stack.now())
        self.stack.wake()

    def close(self) -> None:
        if self._closed:
            return
        self._finalizer.detach()
        with self._cond:
            self._closed = True
            if self._listener is not None:
                self._listener.close(self.stack.now())
            if self._conn is not None:
                self._conn.close(self.stack.now())
            self._cond.notify_all()
        self.stack.wake()

    def abort(self) -> None:
        """Close with RST (like SO_LINGER with a zero timeout)."""
        self._finalizer.detach()
        with self._cond:
            self._closed = True
            if self._conn is not None:
                self._conn.abort(self.stack.now())
        self.stack.wake()

    def __enter__(self) -> TcpSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- options and names -------------------------------------------------------------------------

    def settimeout(self, timeout: Optional[float]) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = timeout

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def setsockopt(self, level: int, option: int, value) -> None:
        try:
            name, kind = _OPTIONS[(level, option)]
        except KeyError:
            raise OSError(92, f"Protocol not available (option {level}/{option})") from None
        with self.stack.lock:
            self._config = self._config.copy(**{name: kind(value)})
            conn = self._conn
            if conn is not None:
                conn.config = self._config
                if name == "keepalive":
                    conn._arm_keepalive(self.stack.now())
                    conn._update_deadline()
                elif name == "nodelay" and value:
                    conn._output(self.stack.now())  # TCP_NODELAY flushes what Nagle held
            if self._listener is not None:
                self._listener.config = self._config
        self.stack.wake()

    def getsockopt(self, level: int, option: int, buflen: int = 0):
        try:
            name, kind = _OPTIONS[(level, option)]
        except KeyError:
            raise OSError(92, f"Protocol not available (option {level}/{option})") from None
        value = getattr(self._config, name)
        return int(value) if kind in (bool, int) else value

    def getsockname(self) -> Tuple[str, int]:
        return ip_to_str(self._local[0]), self._local[1]

    def getpeername(self) -> Tuple[str, int]:
        conn = self._need_conn()
        return ip_to_str(conn.remote_ip), conn.remote_port

    def fileno(self) -> int:
        return -1

    def urgent_remaining(self) -> int:
        """How many of the next bytes ``recv`` returns end with the peer's urgent data (TCP's
        URG; 0 when none is pending).  The urgent data is in the stream, in order, as with
        SO_OOBINLINE, which RFC 6093 recommends: there is no out-of-band byte to fetch apart."""
        with self.stack.lock:
            return self._conn.urgent_remaining() if self._conn else 0

    @property
    def connection(self):
        """The underlying ``TcpConnection`` (state, ``info()``, event log)."""
        return self._conn

    def info(self) -> dict:
        with self.stack.lock:
            return self._conn.info() if self._conn else {}


def create_connection(stack, address: Tuple[str, int], timeout: Optional[float] = None,
                      source_address: Optional[Tuple[str, int]] = None) -> TcpSocket:
    sock = TcpSocket(stack)
    if source_address:
        sock.bind(source_address)
    sock.settimeout(timeout)
    sock.connect(address)
    return sock


def create_server(stack, address: Tuple[str, int], backlog: int = 128) -> TcpSocket:
    sock = TcpSocket(stack)
    sock.bind(address)
    sock.listen(backlog)
    return sock


__all__ = ["TcpSocket", "create_connection", "create_server", "tcp_layer", "ESTABLISHED", "CLOSE_WAIT",
           "TcpHandler", "TcpTransport", "EventServer", "serve_events"]


# the event-driven servers live in tcp_events.py; importers find them here too
from .tcp_events import (WRITE_HARD_LIMIT, WRITE_HIGH_WATER, EventServer, TcpHandler,  # noqa: E402,F401
                         TcpTransport, serve_events)
