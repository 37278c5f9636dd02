"""The Linux kernel and its everyday tools against the stack, over a TAP and over AF_PACKET."""

from __future__ import annotations

import re
import sys

from pynetstack.api.udp import UdpSocket

from .conftest import KERNEL_TAP, KERNEL_VETH, STACK_TAP, STACK_VETH
from .waiting import listening, wait_for


def received(output: str) -> int:
    match = re.search(r"(\d+) (?:packets )?received", output)
    return int(match.group(1)) if match else -1


def test_ping(tap_lab):
    result = tap_lab.run("ping", "-c", "5", "-i", "0.2", "-W", "2", STACK_TAP)
    assert received(result.stdout) == 5, result.stdout + result.stderr


def test_ping_fragmented(tap_lab):
    result = tap_lab.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "4000", STACK_TAP)
    assert received(result.stdout) == 3, result.stdout + result.stderr
    assert "4008 bytes from" in result.stdout


def test_ping_large_fragmented(tap_lab):
    result = tap_lab.run("ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "65000", STACK_TAP)
    assert received(result.stdout) == 2, result.stdout + result.stderr


def test_ping_flood_without_loss(tap_lab):
    result = tap_lab.run("ping", "-f", "-q", "-c", "2000", "-w", "60", STACK_TAP, timeout=90)
    assert received(result.stdout) == 2000, result.stdout + result.stderr
    assert " 0% packet loss" in result.stdout


def test_arping(tap_lab):
    result = tap_lab.run("arping", "-c", "3", "-w", "5", "-I", "pnstap0", STACK_TAP)
    assert "3 packets received" in result.stdout, result.stdout + result.stderr
    mac = ":".join(f"{b:02x}" for b in tap_lab.stack.interfaces["pnstap0"].mac)
    assert mac in result.stdout


def test_kernel_learned_our_mac(tap_lab):
    tap_lab.run("ping", "-c", "1", "-W", "2", STACK_TAP)
    neigh = tap_lab.lab.ip("-n", tap_lab.host, "neigh", "show", STACK_TAP)
    mac = ":".join(f"{b:02x}" for b in tap_lab.stack.interfaces["pnstap0"].mac)
    assert mac in neigh


def test_udp_echo_with_nc(tap_lab):
    result = tap_lab.run("nc", "-u", "-w", "1", STACK_TAP, "7", input="hello from nc\n")
    assert result.stdout == "hello from nc\n", result.stderr


def test_udp_echo_with_socat_large_datagram(tap_lab):
    # 6000 bytes: fragmented both ways, reassembled by the stack and by the kernel.
    payload = "".join(chr(65 + i % 26) for i in range(6000))
    result = tap_lab.run("socat", "-T2", "-b", "65536", "-", f"UDP:{STACK_TAP}:7", input=payload)
    assert result.stdout == payload, result.stderr


def test_closed_udp_port_is_refused(tap_lab):
    code = ("import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3);"
            f"s.connect(('{STACK_TAP}', 9)); s.send(b'x');\n"
            "try:\n s.recv(10); print('answered')\n"
            "except ConnectionRefusedError: print('refused')\nexcept socket.timeout: print('timeout')")
    result = tap_lab.run(sys.executable, "-c", code)
    assert result.stdout.strip() == "refused", result.stderr


def test_ping_over_af_packet_veth(tap_lab):
    result = tap_lab.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000", STACK_VETH)
    assert received(result.stdout) == 3, result.stdout + result.stderr


def test_udp_socket_api_to_kernel_server(tap_lab):
    server = tap_lab.lab.popen(tap_lab.host, "socat", "-T5", "UDP-RECVFROM:9100,fork", "SYSTEM:'tr a-z A-Z'")
    try:
        assert wait_for(listening(tap_lab.lab, tap_lab.host, 9100, udp=True)), "socat not listening"
        with UdpSocket(tap_lab.stack) as sock:
            sock.settimeout(2.0)
            sock.sendto(b"shout this", (KERNEL_VETH, 9100))
            answer = sock.recvfrom(100)
        assert answer == (b"SHOUT THIS", (KERNEL_VETH, 9100))
    finally:
        server.terminate()


def test_udp_socket_api_sees_refusal(tap_lab):
    """As on Linux: a connected UDP socket hears of the kernel's port unreachable."""
    with UdpSocket(tap_lab.stack) as sock:
        sock.settimeout(3)
        sock.connect((KERNEL_TAP, 9))
        sock.send(b"anyone?")
        try:
            sock.recv(100)
        except ConnectionRefusedError:
            return
        raise AssertionError("expected ConnectionRefusedError from the kernel's port unreachable")


def test_unconnected_udp_socket_is_not_told_of_refusal(tap_lab):
    with UdpSocket(tap_lab.stack) as sock:
        sock.settimeout(1)
        sock.sendto(b"anyone?", (KERNEL_TAP, 9))
        try:
            sock.recvfrom(100)
        except TimeoutError:
            return
        raise AssertionError("an unconnected socket must not get the refusal (Linux behaviour)")


def test_no_internal_errors(tap_lab):
    """After every test above: the stack took the traffic (both interfaces) without one internal
    error, and still answers."""
    stack = tap_lab.stack
    with stack.lock:
        frames = {name: iface.rx_frames for name, iface in stack.interfaces.items()}
        internal = stack.drops["internal-error"]
    assert frames["pnstap0"] > 2000 and frames["pnss0"] > 0, frames  # the ping flood alone is 2000
    assert internal == 0, dict(stack.drops)
    assert received(tap_lab.run("ping", "-c", "1", "-W", "2", STACK_TAP).stdout) == 1
