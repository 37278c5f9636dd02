"""The AF_PACKET device with and without PACKET_MMAP rings, against the kernel on a veth pair.

Both ways must hand the stack the same frames, byte for byte, in the same order: frames with a
VLAN tag the veth stripped get it back, and UDP the kernel sent with checksum offload arrives
with its checksum completed.  The transmit ring must put every frame on the wire.
"""

from __future__ import annotations

import socket
import time

import pytest

from pynetstack import lab as labmod
from pynetstack.link.netns import netns
from pynetstack.link.packet import PacketDevice, interface_index, interface_mtu
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.checksum import transport_verify
from pynetstack.wire.ethernet import ETH_IPV4, build_frame
from pynetstack.wire.ipv4 import build_ipv4
from pynetstack.wire.udp import build_udp

pytestmark = pytest.mark.interop

MAC_A = bytes.fromhex("020000aa0001")
MAC_B = bytes.fromhex("020000bb0002")


@pytest.fixture(scope="module")
def veth():
    reason = labmod.can_run()
    if reason:
        pytest.skip(reason)
    with labmod.Lab("ring") as lab:
        a, b = lab.netns("a"), lab.netns("b")
        lab.veth(a, "pnrga", b, "pnrgb", address_a="10.98.0.1/24", mtu=1600)
        lab.ip("-n", b, "link", "set", "pnrgb", "address", MAC_B.hex(":"))
        lab.ip("-n", a, "neigh", "add", "10.98.0.2", "lladdr", MAC_B.hex(":"), "dev", "pnrga")
        yield lab, a, b


def udp_frame(i: int, size: int = 18) -> bytes:
    src, dst = ip_to_int("10.98.0.9"), ip_to_int("10.98.0.2")
    payload = i.to_bytes(4, "big") + bytes(max(0, size - 4))
    return build_frame(MAC_B, MAC_A, ETH_IPV4, build_ipv4(src, dst, 17, build_udp(src, dst, 5000, 9, payload)))


def raw_socket(ns: str, ifname: str) -> socket.socket:
    with netns(ns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        sock.bind((ifname, 0))
    return sock


def drain(device, expected: int, seconds: float = 3.0) -> list:
    frames = []
    end = time.monotonic() + seconds
    while len(frames) < expected and time.monotonic() < end:
        got = device.receive(0.0, 64)
        frames.extend(bytes(f) for f in got)
        if not got:
            time.sleep(0.001)  # the ring hands a block over after at most 1 ms
    return frames


def test_index_and_mtu_by_ioctl_in_the_namespace(veth):
    lab, a, b = veth
    sock = raw_socket(b, "pnrgb")
    try:
        assert interface_mtu(sock, "pnrgb") == 1600
        link = lab.ip("-n", b, "-o", "link", "show", "pnrgb")
        assert interface_index(sock, "pnrgb") == int(link.split(":")[0])
        with pytest.raises(OSError):
            interface_index(sock, "nosuchif0")
    finally:
        sock.close()


def test_ring_and_plain_receive_the_same_frames(veth):
    lab, a, b = veth
    ring = PacketDevice("pnrgb", netns=b, ring=True)
    plain = PacketDevice("pnrgb", netns=b, ring=False)
    sender = raw_socket(a, "pnrga")
    try:
        assert ring.ring and not plain.ring and ring.mtu == 1600
        sent = [udp_frame(i, size=18 + (i * 37) % 1500) for i in range(200)]
        tagged = bytearray(udp_frame(999))
        tagged[12:12] = b"\x81\x00\x00\x2a"  # VLAN 42: the veth strips it, the device puts it back
        sent.append(bytes(tagged))
        got_ring, got_plain = [], []
        for start in range(0, len(sent), 50):  # chunks: the plain socket's buffer holds ~100 frames
            chunk = sent[start:start + 50]
            for frame in chunk:
                sender.send(frame)
            got_ring += drain(ring, len(chunk))
            got_plain += drain(plain, len(chunk))
        # anything else the kernel sent meanwhile (none expected with IPv6 off) is not ours
        assert [f for f in got_ring if f[6:12] == MAC_A] == sent
        assert [f for f in got_plain if f[6:12] == MAC_A] == sent
    finally:
        sender.close()
        ring.close()
        plain.close()


def test_kernel_udp_with_offloaded_checksum_arrives_complete(veth):
    lab, a, b = veth
    ring = PacketDevice("pnrgb", netns=b, ring=True)
    try:
        with netns(a):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(5):
            udp.sendto(b"checksum me %d" % i, ("10.98.0.2", 7777))
        udp.close()
        frames = [f for f in drain(ring, 5) if f[12:14] == b"\x08\x00" and f[23] == 17]
        assert len(frames) == 5
        for frame in frames:
            ihl = (frame[14] & 15) * 4
            segment = frame[14 + ihl:]
            assert transport_verify(int.from_bytes(frame[26:30], "big"), int.from_bytes(frame[30:34], "big"),
                                    17, segment)
    finally:
        ring.close()


def test_transmit_ring_puts_every_frame_on_the_wire(veth):
    lab, a, b = veth
    ring = PacketDevice("pnrgb", netns=b, ring=True)
    listener = PacketDevice("pnrga", netns=a, ring=False)
    try:
        assert ring._rings.tx_slots > 0
        sent = [udp_frame(i, size=18 + (i * 53) % 1400) for i in range(600)]
        got = []
        for start in range(0, len(sent), 100):
            ring.hold()  # as the stack's loop does: queue a pass, one kick at the end
            for frame in sent[start:start + 100]:
                ring.send(frame, 0.0)
            ring.flush(0.0)
            got.extend(drain(listener, 100))
        assert [f for f in got if f[6:12] == MAC_A] == sent
        assert ring._rings.tx_full == 0
        too_big = udp_frame(1, size=2100)
        ring.send(too_big, 0.0)  # larger than the MTU allows: dropped and counted, never raised
        assert ring._rings.tx_oversize == 1
    finally:
        ring.close()
        listener.close()


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_both_ring_versions_carry_jumbo_and_small_frames(veth, version):
    """V2 slots are 2 KB (4 KB at MTU 1600): a larger frame comes through the socket's queue
    (TP_STATUS_COPY); a V3 block holds it.  Either way the frame arrives whole and in order."""
    lab, a, b = veth
    device = PacketDevice("pnrgb", netns=b, ring=version)  # slots sized for MTU 1600 ...
    lab.ip("-n", a, "link", "set", "pnrga", "mtu", "9000")  # ... then the MTU grows
    lab.ip("-n", b, "link", "set", "pnrgb", "mtu", "9000")
    sender = raw_socket(a, "pnrga")
    try:
        assert device.ring and device._rings.version == (1 if version == "v2" else 2)
        sent = [udp_frame(i, size=(8000 if i % 3 == 1 else 30)) for i in range(30)]
        for frame in sent:
            sender.send(frame)
        assert [f for f in drain(device, len(sent)) if f[6:12] == MAC_A] == sent
        if version == "v2":
            assert device._rings.rx_slot_size < 8000 + 42
    finally:
        sender.close()
        device.close()
        lab.ip("-n", a, "link", "set", "pnrga", "mtu", "1600")
        lab.ip("-n", b, "link", "set", "pnrgb", "mtu", "1600")


def test_bad_ring_choice_is_one_clear_error():
    with pytest.raises(ValueError, match="ring="):
        PacketDevice("lo", ring="v9")


@pytest.mark.parametrize("ring", [True, False], ids=["tx-ring", "sendmsg"])
def test_send_parts_is_the_joined_frame(veth, ring):
    lab, a, b = veth
    device = PacketDevice("pnrgb", netns=b, ring=ring)
    listener = PacketDevice("pnrga", netns=a, ring=False)
    try:
        frames = [udp_frame(i, size=100 + i) for i in range(20)]
        for frame in frames:
            device.send_parts((frame[:14], memoryview(frame)[14:34], bytearray(frame[34:])), 0.0)
        assert [f for f in drain(listener, len(frames)) if f[6:12] == MAC_A] == frames
    finally:
        device.close()
        listener.close()
