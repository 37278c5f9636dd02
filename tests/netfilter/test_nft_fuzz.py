"""Fuzzing the parser: whatever the text, loads() returns a Ruleset or raises NftError, never
anything else (no traceback from deep inside)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynetstack.netfilter.nft import NftError, Ruleset, loads

from .nftstub import DATA, EXAMPLES

SOURCES = []
for _name in EXAMPLES:
    with open(os.path.join(DATA, _name)) as _fh:
        SOURCES.append(_fh.read())

WORDS = ["table", "chain", "ip", "inet", "nat", "filter", "type", "hook", "priority", "policy", "accept",
         "drop", "reject", "with", "icmp", "icmpx", "tcp", "udp", "dport", "sport", "saddr", "daddr", "snat",
         "dnat", "masquerade", "redirect", "to", "jump", "goto", "return", "define", "$X", "include",
         "counter", "limit", "rate", "over", "burst", "packets", "ct", "state", "meta", "mark", "set",
         "flags", "syn", "ack", "10.0.0.1", "1.2.3.0/24", "80", "65536", "0x10", "-", "+", ":", ",", ";",
         "{", "}", "(", ")", "/", "&", "|", "==", "!=", "<", ">=", "\n", '"eth*"', '"', "#", "add", "rule",
         "flush", "ruleset", "prerouting", "postrouting", "input", "srcnat", "dstnat", "X", "=", "log",
         "prefix", "random", "persistent", "fully-random", "new", "established", "\\\n", "insert", "@",
         "@blocklist", "elements", "interval", "ipv4_addr", "inet_service", "typeof", "th", "vmap", "comment"]

text_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse(text: str) -> None:
    try:
        rs = loads(text, "fuzz.nft")
    except NftError as err:
        assert str(err)  # the message renders
        return
    assert isinstance(rs, Ruleset)
    # a listing loads back; from the second listing on it is a fixed point (the first may still
    # spell out what nft infers, as nft itself does: "meta l4proto icmp icmp type 8 reject")
    second = loads(rs.list_ruleset()).list_ruleset()
    assert loads(second).list_ruleset() == second


@text_settings
@given(st.text(max_size=200))
def test_random_text(text):
    _parse(text)


@text_settings
@given(st.lists(st.sampled_from(WORDS), max_size=60))
def test_random_token_soup(words):
    _parse(" ".join(words))


@text_settings
@given(st.sampled_from(SOURCES), st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 3),
                                                    st.sampled_from(WORDS + list("{};:-/\"$#\n \t"))),
                                          min_size=1, max_size=4))
def test_mutated_valid_files(source, edits):
    text = source
    for pos, kind, piece in edits:
        pos %= len(text) + 1
        if kind == 0:
            text = text[:pos] + text[pos + 1:]  # delete a character
        elif kind == 1:
            text = text[:pos] + piece + text[pos:]  # insert a token
        elif kind == 2:
            text = text[:pos] + piece + text[pos + len(piece):]  # overwrite
        else:
            text = text[:pos]  # truncate
    _parse(text)


@text_settings
@given(st.sampled_from(SOURCES), st.integers(0, 10 ** 6), st.integers(1, 40))
def test_deleted_spans(source, pos, length):
    pos %= len(source) + 1
    _parse(source[:pos] + source[pos + length:])


def test_deep_nesting_and_recursive_defines_are_errors_not_crashes():
    _parse("define A = $B\ndefine B = $A\ntable ip t {\n chain c { tcp dport $A; }\n}\n")
    _parse("{" * 5000)
    _parse("table ip t {\n chain c { tcp dport " + "{ " * 3000 + "\n}\n")
