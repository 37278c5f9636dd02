"""The blocking UDP socket API over a real Stack (loop thread, real clock), through the stack's
own loopback path: it should behave like ``socket.socket(AF_INET, SOCK_DGRAM)`` on Linux."""

import socket
import time

import pytest

from pynetstack.api.udp import UdpSocket
from pynetstack.dns.stackio import StackTransport

from tests.stacks import running_stack

ADDR = "10.78.0.1"


@pytest.fixture
def stack():
    with running_stack(ADDR, "udpapi") as st:
        yield st


def test_sendto_recvfrom_round_trip(stack):
    with UdpSocket(stack) as server, UdpSocket(stack) as client:
        server.bind((ADDR, 0))
        port = server.getsockname()[1]
        server.settimeout(5)
        client.sendto(b"ping", (ADDR, port))
        data, peer = server.recvfrom(100)
        assert data == b"ping"
        assert peer == (ADDR, client.getsockname()[1])


def test_nonblocking_recvfrom_raises_blocking_io_error(stack):
    with UdpSocket(stack) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.settimeout(0)
        with pytest.raises(BlockingIOError):
            sock.recvfrom(100)
        sock.setblocking(False)
        assert sock.gettimeout() == 0.0 and not sock.getblocking()
        started = time.monotonic()
        with pytest.raises(BlockingIOError):
            sock.recv(100)
        assert time.monotonic() - started < 1
        sock.setblocking(True)
        assert sock.gettimeout() is None and sock.getblocking()
        with pytest.raises(ValueError):
            sock.settimeout(-1)


def test_timeout_still_raises_timeout_error(stack):
    with UdpSocket(stack) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            sock.recvfrom(100)


def test_unconnected_socket_ignores_port_unreachable(stack):
    with UdpSocket(stack) as sock:
        sock.settimeout(0.5)
        sock.sendto(b"anyone?", (ADDR, 9))  # nothing there: the stack answers port unreachable
        with pytest.raises(TimeoutError):
            sock.recvfrom(100)
        # ...and the socket keeps working
        sock.sendto(b"me", (ADDR, sock.getsockname()[1]))
        assert sock.recvfrom(100)[0] == b"me"


def test_connected_socket_reports_port_unreachable(stack):
    with UdpSocket(stack) as sock:
        sock.settimeout(5)
        sock.connect((ADDR, 9))
        assert sock.getpeername() == (ADDR, 9)
        sock.send(b"anyone?")
        with pytest.raises(ConnectionRefusedError):
            sock.recv(100)
        # reported once, as the kernel's pending socket error
        sock.settimeout(0)
        with pytest.raises(BlockingIOError):
            sock.recv(100)


def test_connected_socket_send_recv_and_peer_filter(stack):
    with UdpSocket(stack) as server, UdpSocket(stack) as client, UdpSocket(stack) as other:
        server.bind((ADDR, 0))
        port = server.getsockname()[1]
        server.settimeout(5)
        client.settimeout(5)
        client.connect((ADDR, port))
        assert client.send(b"hello") == 5
        data, peer = server.recvfrom(100)
        assert data == b"hello"
        other.sendto(b"stranger", (ADDR, client.getsockname()[1]))  # not the peer: dropped
        server.sendto(b"reply", peer)
        assert client.recv(100) == b"reply"
        client.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client.recv(100)


def test_send_unconnected_and_getpeername(stack):
    with UdpSocket(stack) as sock:
        with pytest.raises(OSError) as e:
            sock.send(b"x")
        assert e.value.errno == 89
        with pytest.raises(OSError) as e:
            sock.getpeername()
        assert e.value.errno == 107


def test_closed_socket_raises_ebadf(stack):
    sock = UdpSocket(stack)
    sock.close()
    for call in (lambda: sock.bind(("0.0.0.0", 0)), lambda: sock.sendto(b"x", (ADDR, 9)),
                 lambda: sock.recvfrom(10), lambda: sock.connect((ADDR, 9)), sock.getsockname):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == 9
    sock.close()  # idempotent


def test_bad_destination_is_os_error(stack):
    with UdpSocket(stack) as sock:
        with pytest.raises(socket.gaierror):
            sock.sendto(b"x", ("no.such.host.invalid", 53))
        with pytest.raises(OSError):
            sock.sendto(b"x", ("999.1.1.1", 53))
        with pytest.raises(OverflowError):
            sock.sendto(b"x", (ADDR, 70000))
        with pytest.raises(TypeError):
            sock.sendto(b"x", ADDR)
        with pytest.raises(ValueError):
            sock.recvfrom(-1)


def test_dns_exchanger_still_works(stack):
    """``dns/stackio.py`` uses unconnected sockets with sendto/recvfrom and timeouts."""
    def answer(data, peer):
        return data[:2] + b"answer"
    port = stack.add_udp_service(0, answer)
    exchanger = StackTransport(stack)
    assert exchanger.exchange(b"\x12\x34query", (ADDR, port), False, 5) == b"\x12\x34answer"
    started = time.monotonic()
    assert exchanger.exchange(b"\x12\x34query", (ADDR, 9), False, 0.3) is None  # refused: waits it out
    assert time.monotonic() - started >= 0.25
