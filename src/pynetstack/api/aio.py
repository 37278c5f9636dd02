"""asyncio streams over a Stack: ``open_connection`` and ``start_server`` equivalents.

The stack's loop thread runs TCP; connection events are forwarded to the asyncio loop with
``call_soon_threadsafe``.  Readers take data straight from the TCP receive buffer, so an
application that stops reading closes the advertised window (real backpressure).
"""

from __future__ import annotations

import asyncio
from typing import Optional

from ..transport.tcp import CLOSED, SYN_RECEIVED, SYN_SENT, TIME_WAIT
from .tcp import _address, tcp_layer
from .tcp_events import extra_info

HIGH_WATER = 256 * 1024


def _abort(stack, conn, why: str) -> None:
    """Reset ``conn`` unless it is already gone (CLOSED) or done (TIME-WAIT)."""
    with stack.lock:
        if conn.state not in (CLOSED, TIME_WAIT):
            conn.abort(stack.now(), why)
    stack.wake()


class _Bridge:
    """Turns TCP events (stack thread) into asyncio wake-ups (event-loop thread)."""

    def __init__(self, stack, conn, loop):
        self.stack = stack
        self.conn = conn
        self.loop = loop
        self.waiters = []
        conn.on_event = self._event

    def _event(self, conn, kind) -> None:  # stack thread, lock held
        try:
            self.loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the asyncio loop is closed
            pass

    def _wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def waiter(self):
        fut = self.loop.create_future()
        self.waiters.append(fut)
        return fut


class StreamReader:
    def __init__(self, bridge: _Bridge):
        self._bridge = bridge
        self._buffer = bytearray()   # only what readline/readuntil looked at and did not return

    def at_eof(self) -> bool:
        conn = self._bridge.conn
        return not self._buffer and conn.fin_received and not conn.readable_bytes()

    async def _fill(self, n: int) -> bool:
        """Move up to n bytes from TCP into the local buffer; False at EOF."""
        b = self._bridge
        stack, conn = b.stack, b.conn
        while True:
            with stack.lock:
                if conn.readable_bytes():
                    self._buffer += conn.recv(n, stack.now())
                    got = True
                elif conn.fin_received:
                    return False
                elif conn.state == CLOSED:
                    if conn.error is not None:
                        raise conn.error
                    return False
                else:
                    got = False
                    fut = b.waiter()
            if got:
                stack.wake()
                return True
            await fut

    async def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        if n < 0:
            while await self._fill(1 << 20):
                pass
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        if not self._buffer:
            await self._fill(n)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if not await self._fill(n - len(self._buffer)):
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, n)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readuntil(self, separator: bytes = b"\n", limit: int = 1 << 20) -> bytes:
        start = 0
        while True:
            pos = self._buffer.find(separator, start)
            if pos >= 0:
                end = pos + len(separator)
                data = bytes(self._buffer[:end])
                del self._buffer[:end]
                return data
            if len(self._buffer) > limit:
                raise asyncio.LimitOverrunError("separator not found within the limit", len(self._buffer))
            start = max(0, len(self._buffer) - len(separator) + 1)
            if not await self._fill(65536):
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, None)

    async def readline(self) -> bytes:
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class StreamWriter:
    def __init__(self, bridge: _Bridge):
        self._bridge = bridge
        self._pending = bytearray()
        self._closing = False

    @property
    def transport(self):
        return self

    def _flush(self) -> None:
        b = self._bridge
        if not self._pending:
            return
        with b.stack.lock:
            n = b.conn.send(self._pending, b.stack.now())
        if n:
            del self._pending[:n]
            b.stack.wake()

    def write(self, data) -> None:
        if self._closing:
            raise ConnectionResetError("writer is closing")
        self._pending += data
        self._flush()

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    async def drain(self) -> None:
        b = self._bridge
        while True:
            self._flush()
            if len(self._pending) <= HIGH_WATER:
                return
            with b.stack.lock:
                if b.conn.state == CLOSED:
                    raise b.conn.error or ConnectionResetError("connection closed")
                fut = b.waiter()
            await fut

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self._closing = True
        b = self._bridge
        if self._pending:
            asyncio.ensure_future(self._close_after_flush(full=False))
            return
        with b.stack.lock:
            b.conn.shutdown(b.stack.now())
        b.stack.wake()

    async def _close_after_flush(self, full: bool) -> None:
        b = self._bridge
        while self._pending and b.conn.state != CLOSED:
            with b.stack.lock:
                fut = b.waiter()
            self._flush()
            if self._pending:
                await fut
        with b.stack.lock:
            if full:
                b.conn.close(b.stack.now())
            else:
                b.conn.shutdown(b.stack.now())
        b.stack.wake()

    def close(self) -> None:
        if self._closing and not self._pending:
            with self._bridge.stack.lock:
                self._bridge.conn.close(self._bridge.stack.now())
            self._bridge.stack.wake()
            return
        self._closing = True
        self._closer = asyncio.ensure_future(self._close_after_flush(full=True))

    def is_closing(self) -> bool:
        return self._closing

    async def wait_closed(self) -> None:
        closer = getattr(self, "_closer", None)
        if closer is not None:
            await closer

    def get_extra_info(self, name, default=None):
        return extra_info(self._bridge.conn, name, default)


async def open_connection(stack, host: str, port: int, timeout: Optional[float] = None):
    """Connect to ``host:port`` through ``stack``; returns (StreamReader, StreamWriter)."""
    loop = asyncio.get_running_loop()
    layer = tcp_layer(stack)
    with stack.lock:
        conn = layer.connect(_address(host), port, stack.now())
        bridge = _Bridge(stack, conn, loop)
    stack.wake()

    async def established():
        while True:
            with stack.lock:
                if conn.state not in (SYN_SENT, SYN_RECEIVED):
                    if conn.state == CLOSED:
                        raise conn.error or ConnectionRefusedError(111, "Connection refused")
                    return
                fut = bridge.waiter()
            await fut
    try:
        await asyncio.wait_for(established(), timeout)
    except asyncio.TimeoutError:
        _abort(stack, conn, "connect timeout")
        raise TimeoutError("connect timed out") from None
    except BaseException:  # cancelled: leave no SYN-SENT connection retrying behind
        _abort(stack, conn, "connect cancelled")
        raise
    return StreamReader(bridge), StreamWriter(bridge)


class Server:
    def __init__(self, stack, listener, callback, loop):
        self.stack = stack
        self.listener = listener
        self.callback = callback
        self.loop = loop
        self.tasks = set()
        self._closed = loop.create_future()
        listener.on_accept = self._on_accept

    @property
    def port(self) -> int:
        return self.listener.port

    def _on_accept(self, listener) -> None:  # stack thread
        try:
            self.loop.call_soon_threadsafe(self._accept_all)
        except RuntimeError:
            pass

    def _accept_all(self) -> None:
        while True:
            with self.stack.lock:
                conn = self.listener.accept()
                if conn is None:
                    return
                bridge = _Bridge(self.stack, conn, self.loop)
            task = self.loop.create_task(self.callback(StreamReader(bridge), StreamWriter(bridge)))
            self.tasks.add(task)
            task.add_done_callback(lambda task, conn=conn: self._handler_done(task, conn))

    def _handler_done(self, task, conn) -> None:
        """As asyncio does, a handler that raised is reported to the loop's exception handler,
        and its connection (like a cancelled handler's) is not left open: it is reset."""
        self.tasks.discard(task)
        if task.cancelled():
            _abort(self.stack, conn, "client_connected_cb cancelled")
            return
        exc = task.exception()
        if exc is None:
            return
        self.loop.call_exception_handler({
            "message": "Unhandled exception in client_connected_cb",
            "exception": exc,
            "task": task,
        })
        _abort(self.stack, conn, "client_connected_cb failed")

    def close(self) -> None:
        with self.stack.lock:
            self.listener.close(self.stack.now())
        self.stack.wake()
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await self._closed

    async def serve_forever(self) -> None:
        await self._closed

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()
        await self.wait_closed()


async def start_server(stack, client_connected_cb, host: str = "0.0.0.0", port: int = 0,
                       backlog: int = 1024) -> Server:
    """Serve ``port``: each accepted connection runs ``client_connected_cb(reader, writer)``."""
    loop = asyncio.get_running_loop()
    layer = tcp_layer(stack)
    with stack.lock:
        listener = layer.listen(port, _address(host), backlog)
        server = Server(stack, listener, client_connected_cb, loop)
    return server
