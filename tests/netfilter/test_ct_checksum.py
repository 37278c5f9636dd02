"""Conntrack checks transport checksums as Linux does with nf_conntrack_checksum=1: on PREROUTING
only, a TCP, UDP or ICMP checksum that does not hold makes the packet invalid and leaves no entry;
a UDP checksum of 0 is none; a datagram the device vouched for is not summed."""

from __future__ import annotations

import pytest

from pynetstack.netfilter import conntrack as ctmod
from pynetstack.netfilter.conntrack import Conntrack
from pynetstack.netfilter.router import install_router
from pynetstack.netfilter.types import CT_INVALID, CT_NEW, CT_RELATED
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.icmp import build_echo, build_error
from pynetstack.wire.ipv4 import IPv4
from pynetstack.wire.tcp import SYN, build_tcp
from pynetstack.wire.udp import build_udp

C, S = ip_to_int("192.168.1.2"), ip_to_int("203.0.113.2")


def _l4(proto, corrupt=False, zero=False):
    if proto == 6:
        data = bytearray(build_tcp(C, S, 40000, 80, 1000, 0, SYN, 65535))
        at = 16
    elif proto == 17:
        data = bytearray(build_udp(C, S, 40000, 53, b"query"))
        at = 6
    else:
        data = bytearray(build_echo(True, 7, 1, b"ping"))
        at = 2
    if corrupt:
        data[at] ^= 0x5A
    if zero:
        data[at:at + 2] = b"\0\0"
    return bytes(data)


def _packet(proto, **how):
    return IPv4.parse(IPv4(C, S, proto, _l4(proto, **how)).build())


@pytest.mark.parametrize("proto", [6, 17, 1])
def test_a_bad_checksum_arriving_is_invalid_and_leaves_no_entry(proto):
    ct = Conntrack()
    entry, _, state = ct.track(_packet(proto, corrupt=True), 0.0, prerouting=True)
    assert (entry, state) == (None, CT_INVALID)
    assert ct.stats()["invalid"] == 1 and ct.counters["checksum_invalid"] == 1
    ct.poll(1.0)
    assert len(ct) == 0 and not ct._unconfirmed


@pytest.mark.parametrize("proto", [6, 17, 1])
def test_a_good_checksum_is_tracked_and_marked_as_summed(proto):
    ct = Conntrack()
    ip = _packet(proto)
    entry, _, state = ct.track(ip, 0.0, prerouting=True)
    assert entry is not None and state == CT_NEW
    assert ip.csum_ok, "summed once: the transport does not sum it again"


@pytest.mark.parametrize("proto", [6, 17, 1])
def test_only_prerouting_checks_and_only_with_the_switch_on(proto):
    assert Conntrack().track(_packet(proto, corrupt=True), 0.0)[2] == CT_NEW  # OUTPUT: our own packets
    assert Conntrack(checksum=False).track(_packet(proto, corrupt=True), 0.0, prerouting=True)[2] == CT_NEW


def test_udp_checksum_zero_means_none():
    ip = _packet(17, zero=True)
    assert Conntrack().track(ip, 0.0, prerouting=True)[2] == CT_NEW


@pytest.mark.parametrize("length", [7, 0, 14])
def test_a_udp_length_beyond_the_datagram_or_under_8_is_invalid(length):
    """udp_error's "truncated/malformed packet", on every hook (the datagram is 13 bytes)."""
    data = bytearray(_l4(17))
    data[4:6] = length.to_bytes(2, "big")
    data[6:8] = b"\0\0"
    ip = IPv4.parse(IPv4(C, S, 17, bytes(data)).build())
    assert Conntrack().track(ip, 0.0)[2] == CT_INVALID


def test_a_bad_checksum_on_an_established_connection_changes_nothing():
    ct = Conntrack()
    entry, _, _ = ct.track(_packet(17), 0.0, prerouting=True)
    assert ct.confirm(entry, 0.0)
    packets, deadline = list(entry.counters), entry.deadline
    assert ct.track(_packet(17, corrupt=True), 5.0, prerouting=True)[2] == CT_INVALID
    assert entry.counters == packets and entry.deadline == deadline


def test_an_icmp_error_with_a_bad_checksum_is_not_related():
    ct = Conntrack()
    entry, _, _ = ct.track(_packet(17), 0.0, prerouting=True)
    ct.confirm(entry, 0.0)
    quoted = IPv4(C, S, 17, _l4(17)).build()
    error = bytearray(build_error(3, 3, quoted))
    good = IPv4.parse(IPv4(S, C, 1, bytes(error)).build())
    assert ct.track(good, 1.0, prerouting=True)[2] == CT_RELATED
    error[2] ^= 1
    bad = IPv4.parse(IPv4(S, C, 1, bytes(error)).build())
    assert ct.track(bad, 1.0, prerouting=True)[2] == CT_INVALID


def test_a_vouched_for_datagram_is_not_summed(monkeypatch):
    summed = []
    real = ctmod.checksum_holds
    monkeypatch.setattr(ctmod, "checksum_holds", lambda *a: summed.append(a) or real(*a))
    ct = Conntrack()
    ip = _packet(6, corrupt=True)
    ip.csum_ok = True  # checksum offload: the device checked it (Linux: CHECKSUM_UNNECESSARY)
    assert ct.track(ip, 0.0, prerouting=True)[2] == CT_NEW
    assert summed == []
    ct.track(_packet(17), 0.0, prerouting=True)
    assert len(summed) == 1


RULES = """\
table ip f {
	chain c {
		type filter hook forward priority filter; policy accept;
		ct state invalid counter drop
		ct state new counter accept
	}
}
"""


@pytest.mark.parametrize("proto", [6, 17, 1])
def test_ct_state_invalid_drops_a_bad_checksum_through_the_router(proto):
    sim = Simulation()
    lan, r, wan = sim.routed()
    router = install_router(r, ruleset_text=RULES)
    for corrupt in (True, False):
        lan.host.ip_send(C, S, proto, _l4(proto, corrupt=corrupt), sim.now)
        sim.run(0.2)
    invalid, new = (rule.counter.packets for rule in router.ruleset.rules())
    assert (invalid, new) == (1, 1)
    assert len(router.conntrack.entries()) == (0 if proto == 6 else 1)  # (a RST answered the SYN)


def test_the_configuration_switch(tmp_path):
    from pynetstack import config_router
    sim = Simulation()
    _, r, _ = sim.routed()
    config = {"netfilter": {"conntrack_checksum": False}}
    config_router.validate(config, "router.toml", {})
    config_router.build(r, config, str(tmp_path))
    assert r.router.conntrack.checksum is False
    with pytest.raises(ValueError, match="conntrack_checksum must be true or false"):
        config_router.validate({"netfilter": {"conntrack_checksum": 1}}, "router.toml", {})
    assert install_router(sim.stack()).conntrack.checksum is True  # Linux's default
