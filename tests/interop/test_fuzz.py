"""Random and mutated frames through a real TAP: nothing escapes, every drop has a reason."""

from __future__ import annotations

import random
import socket
import time

from pynetstack.link.netns import netns
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.arp import REQUEST, Arp
from pynetstack.wire.ethernet import ETH_ARP, ETH_IPV4, build_frame
from pynetstack.wire.icmp import build_echo
from pynetstack.wire.ipv4 import IPv4, build_ipv4
from pynetstack.wire.udp import build_udp

from .conftest import KERNEL_TAP, STACK_TAP
from .waiting import settled, wait_for

FRAMES = 20000
TIME_LIMIT = 60.0


def seed_frames(dst_mac, src_mac):
    us, them = ip_to_int(KERNEL_TAP), ip_to_int(STACK_TAP)
    datagrams = [
        build_ipv4(us, them, 1, build_echo(True, 9, 1, bytes(range(64)))),
        build_ipv4(us, them, 17, build_udp(us, them, 4000, 7, b"fuzz" * 50)),
        build_ipv4(us, them, 6, bytes.fromhex("c35000500000000100000000500220001234000000")),
        IPv4(us, them, 17, build_udp(us, them, 1, 7, bytes(3000))[:1480], ident=5, mf=True).build(),
        IPv4(us, them, 17, bytes(800), ident=5, frag_offset=1480).build(),
        IPv4(us, them, 1, build_echo(True, 9, 2, b"opt"), options=b"\x07\x07\x04" + bytes(4) + b"\x01").build(),
    ]
    frames = [build_frame(dst_mac, src_mac, ETH_IPV4, d) for d in datagrams]
    # The ARP seed speaks for an address nobody uses: a mutated sender MAC must not be able to
    # (legitimately, per RFC 826) re-point the kernel's own address elsewhere.
    bystander = ip_to_int("10.99.0.77")
    frames.append(build_frame(b"\xff" * 6, src_mac, ETH_ARP, Arp(REQUEST, src_mac, bystander, bytes(6), them).build()))
    return frames


def mutate(rng, frame):
    data = bytearray(frame)
    choice = rng.randrange(6)
    if choice == 0:
        for _ in range(rng.randint(1, 6)):
            position = rng.randrange(14, len(data))
            data[position] = rng.randrange(256)
    elif choice == 1:
        data = data[:rng.randrange(14, len(data))]
    elif choice == 2:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 100)))
    elif choice == 3:  # absurd IPv4 header fields
        field = rng.choice([14, 16, 17, 20, 21, 22, 23])
        data[field] = rng.randrange(256)
    elif choice == 4:
        data = data[:14] + bytearray(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    else:
        data[12:14] = rng.choice([b"\x81\x00", b"\x88\xa8", b"\x08\x06", b"\x86\xdd", b"\x00\x10"])
    return bytes(data)


def test_fuzzed_frames_leave_the_stack_answering(tap_lab):
    stack = tap_lab.stack
    tap_lab.run("ping", "-c", "1", "-W", "2", STACK_TAP)
    their_mac = stack.interfaces["pnstap0"].mac
    with netns(tap_lab.host):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sock.bind(("pnstap0", 0))
    kernel_mac = bytes.fromhex(tap_lab.run("cat", "/sys/class/net/pnstap0/address").stdout.strip().replace(":", ""))
    seeds = seed_frames(their_mac, kernel_mac)
    rng = random.Random(20261124)
    with stack.lock:
        before = stack.drops.total
        received_before = stack.interfaces["pnstap0"].rx_frames

    def received_frames():
        with stack.lock:
            return stack.interfaces["pnstap0"].rx_frames

    def caught_up(accepted):
        """A predicate: the stack has read every frame the kernel took, or stopped reading for 0.2 s."""
        last = {"frames": -1, "still": 0}

        def check():
            frames = received_frames()
            last["still"] = last["still"] + 1 if frames == last["frames"] else 0
            last["frames"] = frames
            return frames - received_before >= accepted or last["still"] >= 10
        return check
    start = time.monotonic()
    sent = accepted = 0
    for sent in range(1, FRAMES + 1):
        frame = mutate(rng, rng.choice(seeds))
        try:
            sock.send(frame)
            accepted += 1
        except OSError:
            pass  # the kernel refuses a few sizes; that is fine
        if sent % 500 == 0:
            # the stack empties the TAP's queue (500 frames) before the next 500: how much of a
            # burst it reads in a fixed 10 ms pause depends on the machine's load, not on it
            wait_for(caught_up(accepted), timeout=5, interval=0.02)
        if time.monotonic() - start > TIME_LIMIT:
            break
    sock.close()
    wait_for(settled(received_frames), timeout=10)  # the stack has read what the TAP queued
    with stack.lock:
        drops = dict(stack.drops)
        dropped = stack.drops.total - before
        received = stack.interfaces["pnstap0"].rx_frames - received_before
    assert stack._thread.is_alive()
    assert drops.get("internal-error", 0) == 0, drops
    assert received > sent * 0.5, (received, sent)
    assert dropped > received * 0.3, drops
    assert all(isinstance(reason, str) and reason for reason in drops)
    result = tap_lab.run("ping", "-c", "3", "-i", "0.2", "-W", "2", STACK_TAP)
    assert "3 received" in result.stdout, result.stdout
