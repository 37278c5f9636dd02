"""asyncio streams over a real Stack (loopback through the stack)."""

import asyncio
import hashlib
import os

import pytest

from pynetstack.api import aio
from pynetstack.transport.tcp import SYN_SENT

from tests.stacks import running_stack

ADDR = "10.79.0.1"


@pytest.fixture
def stack():
    with running_stack(ADDR, "tcpaio") as st:
        yield st


def test_open_connection_and_start_server(stack):
    async def handle(reader, writer):
        line = await reader.readline()
        writer.write(b"hello " + line)
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await aio.start_server(stack, handle, ADDR, 8123)
        reader, writer = await aio.open_connection(stack, ADDR, 8123, timeout=5)
        writer.write(b"world\n")
        assert await reader.readline() == b"hello world\n"
        payload = os.urandom(1_500_000)

        async def send():
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
        sender = asyncio.ensure_future(send())
        echoed = await reader.read()
        await sender
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
        assert writer.get_extra_info("peername") == (ADDR, 8123)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_open_connection_refused(stack):
    async def main():
        with pytest.raises(ConnectionRefusedError):
            await aio.open_connection(stack, ADDR, 8124, timeout=5)
    asyncio.run(main())


def test_readexactly_incomplete(stack):
    async def handle(reader, writer):
        writer.write(b"abc")
        writer.close()

    async def main():
        server = await aio.start_server(stack, handle, ADDR, 8125)
        reader, writer = await aio.open_connection(stack, ADDR, 8125, timeout=5)
        with pytest.raises(asyncio.IncompleteReadError) as e:
            await reader.readexactly(10)
        assert e.value.partial == b"abc"
        writer.close()
        server.close()
    asyncio.run(asyncio.wait_for(main(), 10))


def _connections_to(stack, port):
    with stack.lock:
        return [c for c in stack.tcp.connections.values() if port in (c.local_port, c.remote_port)]


def test_a_failing_handler_resets_its_connection(stack):
    errors = []

    async def handle(reader, writer):
        await reader.readline()
        raise RuntimeError("handler bug")

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        server = await aio.start_server(stack, handle, ADDR, 8126)
        reader, writer = await aio.open_connection(stack, ADDR, 8126, timeout=5)
        writer.write(b"hello\n")
        with pytest.raises(ConnectionResetError):
            await reader.read()
        server.close()
    asyncio.run(asyncio.wait_for(main(), 10))
    assert _connections_to(stack, 8126) == []  # no ESTABLISHED left on the server side
    assert [type(c.get("exception")) for c in errors] == [RuntimeError]


def test_a_cancelled_open_connection_leaves_no_connection(stack):
    nobody = "10.79.0.2"  # on the link, but nothing answers: the SYN would be retried

    async def main():
        task = asyncio.ensure_future(aio.open_connection(stack, nobody, 8127))
        for _ in range(500):  # the task opens it when the loop runs it: 5 s at most on a loaded machine
            await asyncio.sleep(0.01)
            if _connections_to(stack, 8127):
                break
        assert [c.state for c in _connections_to(stack, 8127)] == [SYN_SENT]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(asyncio.wait_for(main(), 10))
    assert _connections_to(stack, 8127) == []
