"""Master file parsing (RFC 1035 section 5), with dnspython's zone reader as a cross-check."""
import os

import dns.zone
import pytest

from pynetstack.dns.zone import ZoneError, load_zone, parse_zone_text
from pynetstack.wire import dns as w

from dnstest_helpers import DATA
from test_dns_codec import ours_from_dnspython_rdata


def test_example_zone_matches_dnspython(example_zone):
    theirs = dns.zone.from_file(os.path.join(DATA, "example.zone"), relativize=False)
    expected = set()
    for name, ttl, rd in theirs.iterate_rdatas():
        expected.add((name.to_text().lower(), rd.rdtype, ttl, ours_from_dnspython_rdata(rd)))
    ours = {(rr.name.lower(), rr.rtype, rr.ttl, rr.data) for rr in example_zone.records()}
    assert ours == expected
    assert len(ours) == 38


def test_txt_escapes_and_unquoted(example_zone):
    txt = example_zone.rrset("text.example.test.", w.TXT)
    assert txt[0].data.strings == (b"hello world", b'with "quotes" and \\ backslash', b"AB")
    assert txt[1].data.strings == (b"unquoted",)


def test_defaults_ttl_owner_class_and_units():
    text = """$ORIGIN z.test.
$TTL 1h30m
@ IN SOA ns admin 1 2 3 4 5
  NS ns
ns A 192.0.2.1
a 60 A 192.0.2.2
  IN 120 AAAA 2001:db8::1
  TXT "previous owner, $TTL"
b.z.test. IN 2d A 192.0.2.3
"""
    recs = {(r.name, r.rtype): r for r in parse_zone_text(text, ".")}
    assert recs[("z.test.", w.NS)].ttl == 5400
    assert recs[("a.z.test.", w.A)].ttl == 60
    assert recs[("a.z.test.", w.AAAA)].ttl == 120
    assert recs[("a.z.test.", w.TXT)].ttl == 5400
    assert recs[("b.z.test.", w.A)].ttl == 172800


def test_ttl_falls_back_to_previous_record_without_dollar_ttl():
    recs = parse_zone_text("@ 100 IN SOA ns admin 1 2 3 4 5\n@ NS ns\n", "q.test.")
    assert [r.ttl for r in recs] == [100, 100]


def test_include_with_origin_restores_origin(tmp_path):
    (tmp_path / "sub.inc").write_text("host A 192.0.2.9\n")
    main = tmp_path / "main.zone"
    main.write_text("$TTL 60\n@ SOA ns admin 1 2 3 4 5\n@ NS ns\n"
                    "$INCLUDE sub.inc sub.m.test.\nafter A 192.0.2.10\n")
    zone = load_zone(str(main), "m.test.")
    names = {rr.name for rr in zone.records()}
    assert "host.sub.m.test." in names and "after.m.test." in names


def test_generic_rdata_forms():
    recs = parse_zone_text("$TTL 5\na A \\# 4 c0000201\nb TYPE65280 \\# 3 010203\nc TYPE65281 \\# 0\n", "g.test.")
    assert recs[0].data == w.ARdata("192.0.2.1")
    assert recs[1].data == w.UnknownRdata(65280, b"\x01\x02\x03")
    assert recs[2].data == w.UnknownRdata(65281, b"")


def test_escaped_owner_names():
    recs = parse_zone_text("$TTL 5\na\\.b A 192.0.2.1\n", "e.test.")
    assert w.name_labels(recs[0].name) == (b"a.b", b"e", b"test")


@pytest.mark.parametrize("body,line,words", [
    ("$TTL 60\n@ SOA ns admin ( 1 2 3 4 5\n", 2, "missing ')'"),
    ("$TTL 60\n\nwww A 999.1.1.1\n", 3, "bad address"),
    ("$TTL 60\nwww BOGUS 1\n", 2, "unknown record type"),
    ("www A 192.0.2.1\n", 1, "no TTL"),
    ("$TTL 60\n$INCLUDE missing.inc\n", 2, "cannot be read"),
    ("$TTL 60\nx TXT \"open\n", 2, "unterminated"),
    ("$TTL 60\nx MX 10\n", 2, "MX takes 2 fields"),
    ("$TTL 60\nx A \\# 4 c00002\n", 2, "says 4 bytes"),
    ("$TTL 60\n$GENERATE 1-2 a$ A 1.2.3.$\n", 2, "unsupported directive"),
    ("$TTL 60\n" + "a" * 64 + " A 192.0.2.1\n", 2, "longer than 63"),
    ("$TTL 60\n  A 192.0.2.1\n", 2, "no previous owner"),
])
def test_errors_name_file_and_line(tmp_path, body, line, words):
    path = tmp_path / "bad.zone"
    path.write_text(body)
    with pytest.raises(ZoneError) as e:
        load_zone(str(path), "bad.test.")
    assert str(e.value).startswith(f"{path}:")
    assert words in str(e.value)
    if line:
        assert e.value.line == line


@pytest.mark.parametrize("body,words", [
    ("@ SOA ns admin 1 2 3 4 5\n@ NS ns\nx CNAME a\nx A 192.0.2.1\n", "CNAME and other data"),
    ("@ SOA ns admin 1 2 3 4 5\n@ NS ns\nout.other. A 192.0.2.1\n", "outside the zone"),
    ("@ NS ns\n", "exactly one SOA"),
    ("@ SOA ns admin 1 2 3 4 5\n", "no NS"),
])
def test_zone_consistency_errors(tmp_path, body, words):
    path = tmp_path / "bad.zone"
    path.write_text("$TTL 60\n" + body)
    with pytest.raises(ZoneError) as e:
        load_zone(str(path), "bad.test.")
    assert words in str(e.value) and str(path) in str(e.value)
