from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.ids.addresses import contains, parse_addresses, parse_ports
from pynetstack.ids.content import ByteTest, Content, IsDataAt, Pcre
from pynetstack.ids.prefilter import Prefilter
from pynetstack.ids.rules import RuleError, Unsupported, load_rules, parse_rule
from pynetstack.wire.addr import ip_to_int

FULL = ('drop tcp $HOME_NET [1024:,!2000] <> ![1.2.3.0/24,5.6.7.8] $HTTP_PORTS (msg:"all \\"the\\" keywords\\; ok"; '
        'content:"GET|20|/"; nocase; depth:10; offset:0; fast_pattern; content:!"x"; distance:0; '
        'content:"y"; distance:1; within:5; isdataat:!2,relative; pcre:"/a[b\\;]c/Ri"; byte_test:2,>=,5,0,relative,little; '
        'flow:established,to_server; flags:S+,12; flowbits:set,a&b; flowbits:isnotset,c|d; dsize:<100; ttl:>1; '
        'itype:8; icode:0; icmp_id:3; icmp_seq:4; ip_proto:tcp; noalert; '
        'threshold: type limit, track by_src, count 2, seconds 60; detection_filter: track by_dst, count 3, seconds 5; '
        'classtype:trojan-activity; priority:2; reference:url,example.com; metadata: created_at 2024, x y; '
        'gid:1; sid:1000001; rev:7;)')


def test_every_keyword_parses():
    rule = parse_rule(FULL, "t.rules", 3)
    assert (rule.action, rule.proto, rule.bidirectional, rule.sid, rule.rev, rule.gid) == ("drop", 6, True, 1000001, 7, 1)
    assert rule.msg == 'all "the" keywords; ok'
    assert [type(i) for i in rule.items] == [Content, Content, Content, IsDataAt, Pcre, ByteTest]
    first, negated, rel = rule.items[:3]
    assert first.pattern == b"GET /" and first.nocase and first.depth == 10 and first.fast_pattern
    assert negated.negated and negated.relative and rel.distance == 1 and rel.within == 5
    assert rule.fast == ("payload", b"get /")
    assert rule.flow == {"established": True, "to_server": True}
    assert rule.flowbits == [("set", ("a", "b")), ("isnotset_any", ("c", "d"))]
    assert rule.noalert and rule.threshold == {"type": "limit", "track": "by_src", "count": 2, "seconds": 60}
    assert rule.detection_filter == {"track": "by_dst", "count": 3, "seconds": 5}
    assert rule.category == "A Network Trojan was detected" and rule.severity == 2
    assert rule.metadata == ["created_at 2024", "x y"] and len(rule.checks) == 8
    assert contains(rule.sport, 1024) and not contains(rule.sport, 2000) and not contains(rule.sport, 80)
    assert not contains(rule.dst, ip_to_int("1.2.3.9")) and contains(rule.dst, ip_to_int("9.9.9.9"))


def test_dns_query_sticky_buffer():
    rule = parse_rule('alert dns any any -> any any (dns.query; content:"evil"; nocase; endswith; sid:2;)')
    assert rule.app == "dns" and rule.items == [] and rule.buffers["dns.query"][0].endswith
    assert rule.fast == ("dns.query", b"evil")


MALFORMED = [
    ('alert tcp any any -> any any msg:"x"; sid:1;', "no '(...)'"),
    ('alert tcp any any any any (sid:1;)', "6 fields"),
    ('yell tcp any any -> any any (sid:1;)', "unknown action"),
    ('alert tcp any any => any any (sid:1;)', "bad direction"),
    ('alert tcp 1.2.3.999 any -> any any (sid:1;)', "bad address"),
    ('alert tcp any 70000 -> any any (sid:1;)', "bad port"),
    ('alert tcp [1.1.1.1 any -> any any (sid:1;)', "unbalanced"),
    ('alert tcp $NOPE any -> any any (sid:1;)', "unknown address variable"),
    ('alert tcp any any -> any any (msg:"x"; sid:1)', "does not end with ';'"),
    ('alert tcp any any -> any any (msg:"x";)', "no sid"),
    ('alert tcp any any -> any any (content:"|0g|"; sid:1;)', "bad hex"),
    ('alert tcp any any -> any any (content:"|0d"; sid:1;)', "closing '|'"),
    ('alert tcp any any -> any any (nocase; content:"a"; sid:1;)', "needs a content"),
    ('alert tcp any any -> any any (content:"abc"; depth:2; sid:1;)', "shorter than the content"),
    ('alert tcp any any -> any any (content:"a"; depth:3; distance:1; sid:1;)', "distance with depth"),
    ('alert tcp any any -> any any (pcre:"abc"; sid:1;)', "not /regex/flags"),
    ('alert tcp any any -> any any (flow:sideways; sid:1;)', "unknown option"),
    ('alert tcp any any -> any any (flow:to_server,to_client; sid:1;)', "together"),
    ('alert tcp any any -> any any (flags:Q; sid:1;)', "unknown TCP flag"),
    ('alert tcp any any -> any any (flowbits:launch,x; sid:1;)', "unknown command"),
    ('alert tcp any any -> any any (threshold:type limit, count 1, seconds 1; sid:1;)', "missing track"),
    ('alert tcp any any -> any any (dsize:5<>2; sid:1;)', "empty"),
    ('alert tcp any any -> any any (sid:abc;)', "not a number"),
    ('alert tcp any any -> any any (classtype:made-up; sid:1;)', "unknown classtype"),
    ('alert tcp any any -> any any (byte_test:2,~,1,0; sid:1;)', "bad operator"),
    ('alert tcp any any -> any any (udp.hdr; content:"a"; sid:1;)', "does not apply"),
    ('alert udp any any -> any any (content:"a"; dotprefix; sid:1;)', "dotprefix goes after a sticky buffer"),
    ('alert udp any any -> any any (bsize:3; sid:1;)', "needs a sticky buffer"),
    ('alert udp any any -> any any (byte_jump:2,0,sideways; sid:1;)', "unknown option"),
]


@pytest.mark.parametrize("text,message", MALFORMED)
def test_malformed_rules_name_file_and_line(text, message):
    with pytest.raises(RuleError) as err:
        load_rules("# comment\n\n" + text + "\n", "local.rules", strict=True)
    assert str(err.value).startswith("local.rules:3: ") and message in str(err.value)


def test_loading_statistics_count_unsupported_keywords_and_failures():
    text = "\n".join([
        'alert tcp any any -> any any (content:"a"; sid:1;)',
        'alert tls any any -> any any (content:"a"; sid:2;)',
        'alert tcp any any -> any any (content:"a"; byte_extract:2,0,size; sid:3;)',
        'alert tcp any any -> any any (tls.sni; content:"a"; sid:4;)',
        'alert tcp any any -> any any (content:"a"; byte_extract:4,0,len; sid:5;)',
        'alert tcp any any -> any any (content:"a" sid:6;)',
        'alert tcp any any -> any any (content:"a"; \\',
        '  sid:7;)',
    ])
    ruleset = load_rules(text, "x.rules")
    assert ruleset.loaded == 2 and [r.sid for r in ruleset.rules] == [1, 7]
    assert dict(ruleset.skipped) == {"protocol tls": 1, "byte_extract": 2, "tls.sni": 1}
    assert len(ruleset.failed) == 1 and ruleset.failed[0].startswith("x.rules:6: ")
    assert "4 rules skipped" in ruleset.summary() and "byte_extract" in ruleset.summary()
    with pytest.raises(Unsupported):
        parse_rule('alert tcp any any -> any any (xbits:set,a,track ip_src; sid:1;)')


def test_duplicate_sid_keeps_the_higher_revision():
    ruleset = load_rules('alert tcp any any -> any any (msg:"old"; sid:1; rev:1;)\n'
                         'alert tcp any any -> any any (msg:"new"; sid:1; rev:2;)\n')
    assert ruleset.loaded == 1 and ruleset.rules[0].msg == "new" and ruleset.duplicates == 1


def _brute_ports(items):
    plus = set()
    minus = set()
    for neg, lo, hi in items:
        (minus if neg else plus).update(range(lo, hi + 1))
    base = plus if any(not n for n, _, _ in items) else set(range(65536))
    return base - minus


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 65535), st.integers(0, 300)), min_size=1, max_size=5),
       st.lists(st.integers(0, 65535), max_size=20))
def test_port_lists_match_a_brute_force_reference(items, probes):
    items = [(neg, lo, min(lo + span, 65535)) for neg, lo, span in items]
    text = "[" + ",".join(f"{'!' if neg else ''}{lo}:{hi}" for neg, lo, hi in items) + "]"
    want = _brute_ports(items)
    if not want:
        return
    ranges = parse_ports(text)
    for port in probes + [lo for _, lo, _ in items] + [hi for _, _, hi in items]:
        assert contains(ranges, port) == (port in want)


def test_addresses_negation_and_variables():
    ranges = parse_addresses("[10.0.0.0/8,!10.1.0.0/16]")
    assert contains(ranges, ip_to_int("10.2.3.4")) and not contains(ranges, ip_to_int("10.1.2.3"))
    external = parse_addresses("$EXTERNAL_NET")
    assert contains(external, ip_to_int("8.8.8.8")) and not contains(external, ip_to_int("192.168.1.1"))
    assert parse_addresses("any") is None and parse_addresses("[any]") is None


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=10), min_size=1, max_size=30), st.binary(max_size=64),
       st.integers(0, 5), st.sampled_from([0, 4, 48]))
def test_prefilter_finds_exactly_the_patterns_present(patterns, data, at, direct_max):
    table = {}
    for i, pattern in enumerate(patterns):
        table.setdefault(pattern.lower(), []).append(i)
    data = data[:at] + patterns[0] + data[at:]  # at least one hit, at any alignment
    want = {i for pattern, keys in table.items() if pattern in data.lower() for i in keys}
    assert Prefilter(table, direct_max=direct_max).candidates(data.lower()) == want
