"""The loop's busy-poll mode against the kernel: over a TAP and over a veth with a receive ring,
ping is answered from the spin (no sleep in between), an API call from another thread still
gets out while the loop spins, and an idle loop goes back to sleep after its budget."""

from __future__ import annotations

import re
import socket
import time

import pytest

from pynetstack.link.netns import netns
from pynetstack.link.packet import PacketDevice
from pynetstack.link.tap import TapDevice
from pynetstack.stack import Stack


@pytest.fixture(scope="module")
def busy_lab(lab):
    host = lab.netns("bhost")
    stack_ns = lab.netns("bstack")
    lab.veth(host, "pnbpk0", stack_ns, "pnbps0", address_a="10.99.21.1/24")
    stack = Stack(busy_poll=0.05)
    stack.add_interface(TapDevice("pnbptap0", host_address="10.99.20.1/24", netns=host), "10.99.20.2/24")
    veth = PacketDevice("pnbps0", promiscuous=True, netns=stack_ns)
    stack.add_interface(veth, "10.99.21.2/24")
    stack.start_background()
    try:
        yield lab, host, stack, veth
    finally:
        stack.close()


@pytest.mark.parametrize("target", ["10.99.20.2", "10.99.21.2"], ids=["tap", "veth-ring"])
def test_ping_is_answered_from_the_spin(busy_lab, target):
    lab, host, stack, veth = busy_lab
    assert veth.ring  # the veth side runs on the receive ring, read without a system call
    lab.run(host, "ping", "-c", "3", "-i", "0.2", target)  # ARP settled
    hits = stack.loop_stats["spin_hits"]
    # -w: wait for every reply (without it ping gives the last one only two round trips, and a
    # late reply -- a garbage collection -- would count as lost)
    result = lab.run(host, "ping", "-q", "-c", "200", "-i", "0.002", "-w", "10", target)
    assert " 0% packet loss" in result.stdout, result.stdout
    assert re.search(r"= [\d.]+/[\d.]+/", result.stdout)
    # requests 2 ms apart, a 50 ms budget: nearly every one is caught while spinning
    assert stack.loop_stats["spin_hits"] - hits >= 150


def test_api_call_gets_out_while_the_loop_spins(busy_lab):
    lab, host, stack, _ = busy_lab
    with netns(host):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("10.99.20.1", 9999))
    sink.settimeout(2.0)
    try:
        lab.run(host, "ping", "-c", "1", "10.99.20.2")  # the neighbour is known
        for i in range(5):
            stack.send_udp(4000, b"from the API %d" % i, ("10.99.20.1", 9999))
            data, _ = sink.recvfrom(100)
            assert data == b"from the API %d" % i
    finally:
        sink.close()


def test_idle_loop_goes_back_to_sleep(busy_lab):
    _, _, stack, _ = busy_lab
    sleeps = stack.loop_stats["sleeps"]
    time.sleep(0.5)  # nothing arrives: after each 50 ms budget the loop sleeps in the selector
    assert stack.loop_stats["sleeps"] > sleeps
