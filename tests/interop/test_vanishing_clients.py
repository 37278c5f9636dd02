"""A soak: a thousand kernel clients connect to the stack's services and vanish mid-connection
(their link goes down, so not even their FIN arrives); the stack reclaims every connection and
its timers, and serves again afterwards."""

from __future__ import annotations

import os
import sys

import pytest

from pynetstack.link.tap import TapDevice
from pynetstack.services import guard, http, tcp_echo
from pynetstack.services.guard import ServiceLimits
from pynetstack.stack import Stack

from .waiting import wait_for

CLIENTS = 1000
CLIENT_SCRIPT = r"""
import socket, sys, time
n = int(sys.argv[1])
socks = []
for i in range(n):
    s = socket.create_connection(("10.99.5.2", 7 if i % 2 else 80), timeout=10)
    s.sendall(b"hello" if i % 2 else b"GET / HTTP/1.1\r\nHost: x\r\n")  # HTTP: half a request
    socks.append(s)
print("connected", len(socks), flush=True)
time.sleep(60)
"""


@pytest.fixture
def short_linger(monkeypatch):
    monkeypatch.setattr(guard, "LINGER", 3.0)


def test_thousands_of_vanished_clients_are_reclaimed(lab, short_linger):
    host = lab.netns("soak")
    stack = Stack()
    stack.add_interface(TapDevice("pnssoak0", host_address="10.99.5.1/24", netns=host), "10.99.5.2/24")
    limits = ServiceLimits(idle_timeout=3.0, request_timeout=3.0, max_connections=4096)
    echo = tcp_echo.install(stack, limits=limits)
    web = http.install(stack, limits=limits)
    stack.start_background()
    try:
        lab.run(host, "sysctl", "-qw", "net.ipv4.ip_local_port_range=20000 60000")
        client = lab.popen(host, sys.executable, "-c", CLIENT_SCRIPT, str(CLIENTS))
        assert wait_for(lambda: len(stack.tcp.connections) >= CLIENTS, 60), len(stack.tcp.connections)
        lab.run(host, "ip", "link", "set", "pnssoak0", "down")  # the clients vanish
        client.kill()
        assert wait_for(lambda: not stack.tcp.connections, 30), \
            sorted({c.state for c in list(stack.tcp.connections.values())})
        assert echo.guard.stats()["serving"] == 0 and web.guard.stats()["serving"] == 0
        assert echo.guard.timed_out + web.guard.timed_out == CLIENTS
        assert wait_for(lambda: len(stack.tcp._app_timers) == 0, 10), len(stack.tcp._app_timers)
        # ...and it serves again
        lab.run(host, "ip", "link", "set", "pnssoak0", "up")
        result = lab.run(host, "curl", "-s", "-m", "5", "http://10.99.5.2/bytes/5", "-o", os.devnull,
                         "-w", "%{http_code}")
        assert result.stdout == "200", result.stdout + result.stderr
    finally:
        stack.close()
