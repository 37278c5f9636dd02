"""The ICMP echo responder on the receive fast path (net/icmp.py ``_icmp_fast``) against the
full path: the same reply bytes for any request, the same drops, the full path when tracing."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pynetstack.link.base import Device
from pynetstack.stack import Stack
from pynetstack.wire import checksum
from pynetstack.wire import icmp as icmpw
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.ethernet import build_frame
from pynetstack.wire.ipv4 import build_ipv4

OURS, PEER = ip_to_int("10.5.0.2"), ip_to_int("10.5.0.1")
OUR_MAC, PEER_MAC = bytes.fromhex("020000000a02"), bytes.fromhex("020000000a01")


class Capture(Device):
    name = "cap0"
    mac = OUR_MAC

    def __init__(self):
        self.sent = []

    def send(self, frame, now):
        self.sent.append(bytes(frame))


def make_stack():
    device = Capture()
    stack = Stack()
    iface = stack.add_interface(device, "10.5.0.2/24")
    iface.neighbours.update(PEER, PEER_MAC, 0.0)
    # the first frame finds the fast path's hook check stale and takes the full path
    stack.host.receive_frame(iface, request(0, 0, 0, b"warm-up"), 0.5)
    assert stack.host.counters["icmp_echo_replies"] == 1
    assert stack.host._rx_fast_gen == stack.host.hooks.generation  # the next frame may take it
    device.sent.clear()
    stack.host.counters.clear()
    return stack, iface, device


def request(code: int, ident: int, seq: int, payload: bytes, tos: int = 0, corrupt: bool = False) -> bytes:
    message = bytearray(icmpw.build_icmp(icmpw.ECHO_REQUEST, code, (ident << 16) | seq, payload))
    if corrupt:
        message[-1] ^= 0x40
    return build_frame(OUR_MAC, PEER_MAC, 0x0800, build_ipv4(PEER, OURS, 1, bytes(message), ident=9, tos=tos))


def answer(frame: bytes, trace: bool = False):
    stack, iface, device = make_stack()
    if trace:
        stack.host.trace(type("Tracer", (), {"__call__": lambda self, f: True, "emit": lambda self, f, s: None})())
    stack.host.receive_frame(iface, frame, 1.0)
    return device.sent, stack


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=300),
       st.sampled_from([0, 0x10, 0xB8]))
@example(0, 0, 0, b"", 0)  # the reply is all zero but its checksum: 0xFFFF
@example(0, 0xFFFF, 0, b"", 0)  # the reply's words sum to 0xFFFF: checksum 0
@example(0, 0x1234, 0, b"\xed\xcb", 0)  # the same with data
def test_fast_reply_is_the_full_paths(code, ident, seq, payload, tos):
    frame = request(code, ident, seq, payload, tos)
    fast, stack = answer(frame)
    full, _ = answer(frame, trace=True)  # a traced frame takes the full path
    assert len(fast) == 1 and len(full) == 1
    reply = fast[0]
    # the same frame but for the IPv4 identification (each host counts its own) and so its checksum
    assert reply[:18] + reply[20:24] + reply[26:] == full[0][:18] + full[0][20:24] + full[0][26:]
    message = icmpw.build_icmp(icmpw.ECHO_REPLY, 0, (ident << 16) | seq, payload)
    assert reply[34:34 + len(message)] == message  # (a short frame is padded to 60 bytes)
    assert reply[15] == tos and reply[22] == 64
    assert stack.host.counters["icmp_echo_replies"] == 1 and stack.host.counters["icmp_in"] == 1


def test_bad_checksum_is_dropped_on_both_paths():
    frame = request(0, 1, 1, b"x" * 56, corrupt=True)
    for trace in (False, True):
        sent, stack = answer(frame, trace)
        assert sent == []
        assert stack.drops["icmp-bad-checksum"] == 1


def test_other_messages_take_the_full_path():
    stack, iface, device = make_stack()
    seen = []
    stack.host.echo_listeners.append(lambda ip, msg, now: seen.append((ip.ttl, msg.ident, msg.seq)))
    reply = icmpw.build_echo(False, 7, 3, b"pong")
    stack.host.receive_frame(iface, build_frame(OUR_MAC, PEER_MAC, 0x0800, build_ipv4(PEER, OURS, 1, reply, ttl=61)), 1.0)
    assert seen == [(61, 7, 3)] and device.sent == []


def test_no_reply_when_echo_reply_is_off():
    stack, iface, device = make_stack()
    stack.host.echo_reply = False
    stack.host.receive_frame(iface, request(0, 1, 1, b"x"), 1.0)
    assert device.sent == [] and stack.host.counters["icmp_echo_replies"] == 0


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=300),
       st.sampled_from([0, 0x10, 0xB8]))
def test_replies_through_the_cached_way_out_are_the_full_paths(code, ident, seq, payload, tos):
    """A pinger's later replies leave through a cached OutputPath: the same bytes as the full
    path's (DF clear, TOS kept, a valid header checksum), identifications from the host's one
    counter, whatever else the host sends between them."""
    frame = request(code, ident, seq, payload, tos)
    stack, iface, device = make_stack()
    host = stack.host
    host.receive_frame(iface, frame, 1.0)
    host.ip_send(OURS, PEER, 17, bytes(8), 1.05)  # another datagram between two replies
    host.receive_frame(iface, frame, 1.1)
    host.receive_frame(iface, frame, 1.2)
    full, _ = answer(frame, trace=True)
    assert len(device.sent) == 4
    assert host.counters["output_paths_made"] == 1  # made after the first reply, taken by the others
    idents = [int.from_bytes(sent[18:20], "big") for sent in device.sent]
    # one counter: each datagram takes the next number (making the cached path took one too)
    assert all((b - a) & 0xFFFF in (1, 2) for a, b in zip(idents, idents[1:]))
    for reply in device.sent[:1] + device.sent[2:]:
        assert reply[:18] + reply[20:24] + reply[26:] == full[0][:18] + full[0][20:24] + full[0][26:]
        assert checksum.verify(reply[14:34]) and reply[20] & 0x40 == 0


def test_a_new_neighbour_address_is_used_at_once():
    stack, iface, device = make_stack()
    host = stack.host
    frame = request(0, 1, 1, b"x" * 56)
    host.receive_frame(iface, frame, 1.0)
    host.receive_frame(iface, frame, 1.1)
    moved = bytes.fromhex("020000000aff")
    iface.neighbours.update(PEER, moved, 1.2)
    host.receive_frame(iface, frame, 1.3)
    assert [sent[:6] for sent in device.sent] == [PEER_MAC, PEER_MAC, moved]
