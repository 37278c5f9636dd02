"""Classification: RFC 4594 codepoints, rules, the guess for unmarked traffic, re-marking."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from pynetstack.qos.classify import (BACKGROUND, BULK, DSCP, INTERACTIVE, VIDEO, VOICE, ClassifyError, Classifier,
                                     Rule, remark)
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.checksum import internet_checksum, verify

from .shaping import frame

RFC4594 = {"ef": VOICE, "voice-admit": VOICE, "cs5": VOICE, "cs4": VOICE, "af41": VIDEO, "af42": VIDEO,
           "af43": VIDEO, "af31": VIDEO, "af33": VIDEO, "cs3": VIDEO, "af21": INTERACTIVE, "af23": INTERACTIVE,
           "cs2": INTERACTIVE, "cs6": INTERACTIVE, "cs7": INTERACTIVE, "af11": BULK, "af13": BULK, "le": BACKGROUND,
           "cs1": BACKGROUND}


def with_csum(data: bytes) -> bytes:
    out = bytearray(data)
    out[24:26] = internet_checksum(bytes(out[14:34])).to_bytes(2, "big")
    return bytes(out)


@pytest.mark.parametrize("name,klass", sorted(RFC4594.items()))
def test_dscp_maps_to_the_rfc4594_class(name, klass):
    assert Classifier().classify(frame(tos=DSCP[name] << 2)) == klass


def test_unknown_codepoints_are_bulk_and_untrusted_dscp_is_ignored():
    assert Classifier().classify(frame(tos=5 << 2, sport=40000, dport=40001)) == BULK  # marked, not guessed
    assert Classifier(trust_dscp=False, auto=False).classify(frame(tos=46 << 2)) == BULK


def test_rules_come_first_and_match_every_field():
    rules = [Rule(VIDEO, protocol="udp", dport="5004-5010", src="10.0.0.0/24", iif="lan"),
             Rule(BACKGROUND, mark="0x10/0xf0"),
             Rule(VOICE, dscp=["af41"], oif="wan")]
    clf = Classifier(rules)
    assert clf.classify(frame(dport=5006), iif="lan") == VIDEO
    assert clf.classify(frame(dport=5006), iif="wan") != VIDEO
    assert clf.classify(frame(dport=5006, src=ip_to_int("10.0.1.1")), iif="lan") != VIDEO
    assert clf.classify(frame(tos=46 << 2), mark=0x1F) == BACKGROUND
    assert clf.classify(frame(tos=DSCP["af41"] << 2), oif="wan") == VOICE
    assert rules[0].hits == 1 and clf.counts["rule"] == 3


@pytest.mark.parametrize("fields,message", [({"protocol": "sctp"}, "protocol"), ({"dport": "9-1"}, "dport"),
                                            ({"src": "10.0.0.300"}, "src"), ({"mark": "x"}, "mark"),
                                            ({"dscp": "ef2"}, "dscp"), ({"colour": 1}, "unknown field")])
def test_bad_rules_are_refused_with_a_clear_message(fields, message):
    with pytest.raises(ClassifyError, match=message):
        Rule(BULK, "qos rule 1", **fields)


def test_unmarked_traffic_is_guessed():
    clf = Classifier(sparse_bytes=10000)
    assert clf.classify(frame(100, proto=17, sport=40000, dport=53)) == INTERACTIVE
    assert clf.classify(frame(proto=6, sport=22, dport=50000)) == INTERACTIVE
    assert clf.classify(frame(200, proto=17, sport=20000, dport=20002)) == VOICE
    assert clf.classify(frame(100, proto=1)) == INTERACTIVE
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)
    assert clf.classify(arp) == INTERACTIVE
    upload = frame(proto=6, sport=40000, dport=5201)
    classes = [clf.classify(upload) for _ in range(20)]
    assert classes[0] == INTERACTIVE and classes[-1] == BULK  # a flow is interactive while it is small


def test_flow_memory_is_bounded():
    clf = Classifier(max_flows=16)
    for port in range(100):
        clf.classify(frame(proto=6, sport=port + 1024, dport=80))
    assert len(clf.flows) == 16


@given(st.integers(0, 63), st.integers(0, 255))
def test_remark_keeps_ecn_and_a_valid_checksum(dscp, tos):
    original = with_csum(frame(tos=tos))
    marked = remark(original, dscp)
    assert marked[15] == (dscp << 2) | (tos & 3)
    assert verify(marked[14:34])
    assert marked[:15] == original[:15] and marked[16:24] == original[16:24] and marked[26:] == original[26:]
