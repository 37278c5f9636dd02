"""wire/dns.py against dnspython as an independent oracle, plus hostile inputs."""
import struct

import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynetstack.wire import dns as w
from pynetstack.wire.errors import MalformedPacket

# --- strategies ---------------------------------------------------------------------------

_label_bytes = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1,
            max_size=20).map(lambda s: s.encode()),
    st.binary(min_size=1, max_size=63),
)


@st.composite
def names(draw):
    labels = draw(st.lists(_label_bytes, max_size=6))
    while sum(len(x) + 1 for x in labels) + 1 > 255:
        labels.pop()
    return w.labels_to_name(labels)


ipv4 = st.integers(0, 2**32 - 1).map(lambda v: "%d.%d.%d.%d" % tuple(v.to_bytes(4, "big")))
ipv6 = st.binary(min_size=16, max_size=16).map(
    lambda b: __import__("socket").inet_ntop(__import__("socket").AF_INET6, b))
u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)

rdatas = st.one_of(
    ipv4.map(w.ARdata), ipv6.map(w.AAAARdata),
    names().map(w.CNAMERdata), names().map(w.NSRdata), names().map(w.PTRRdata),
    st.builds(w.MXRdata, u16, names()),
    st.builds(w.SOARdata, names(), names(), u32, u32, u32, u32, u32),
    st.lists(st.binary(max_size=40), min_size=1, max_size=4).map(w.TXTRdata),
    st.builds(w.SRVRdata, u16, u16, u16, names()),
    st.builds(w.UnknownRdata, st.sampled_from([4000, 65280, 65534]), st.binary(max_size=30)),
)


@st.composite
def records(draw):
    data = draw(rdatas)
    return w.Record(draw(names()), data.rtype, w.IN, draw(st.integers(0, 2**31 - 1)), data)


@st.composite
def messages(draw):
    edns = draw(st.one_of(st.none(), st.builds(
        w.Edns, st.integers(512, 4096), st.just(0), st.booleans(), st.just(0),
        st.lists(st.tuples(st.integers(65001, 65534), st.binary(max_size=8)), max_size=2))))
    rcode = draw(st.integers(0, 4095 if edns else 15))
    if rcode > 15 and rcode >> 4 == 0:
        rcode = 0
    return w.Message(
        id=draw(u16), qr=draw(st.booleans()), opcode=draw(st.sampled_from([0, 2, 4])),
        aa=draw(st.booleans()), tc=draw(st.booleans()), rd=draw(st.booleans()),
        ra=draw(st.booleans()), ad=draw(st.booleans()), cd=draw(st.booleans()), rcode=rcode,
        questions=draw(st.lists(st.builds(w.Question, names(), st.sampled_from([1, 15, 28, 255, 4000])),
                                max_size=2)),
        answer=draw(st.lists(records(), max_size=4)),
        authority=draw(st.lists(records(), max_size=3)),
        additional=draw(st.lists(records(), max_size=3)), edns=edns)


# --- conversion from dnspython -----------------------------------------------------------


def ours_from_dnspython_rdata(rd) -> w.Rdata:
    t = rd.rdtype
    if t == w.A:
        return w.ARdata(rd.address)
    if t == w.AAAA:
        return w.AAAARdata(rd.address)
    if t in (w.CNAME, w.NS, w.PTR):
        return w.RDATA_CLASSES[t](rd.target.to_text())
    if t == w.MX:
        return w.MXRdata(rd.preference, rd.exchange.to_text())
    if t == w.SOA:
        return w.SOARdata(rd.mname.to_text(), rd.rname.to_text(), rd.serial, rd.refresh, rd.retry,
                          rd.expire, rd.minimum)
    if t == w.TXT:
        return w.TXTRdata(rd.strings)
    if t == w.SRV:
        return w.SRVRdata(rd.priority, rd.weight, rd.port, rd.target.to_text())
    return w.UnknownRdata(t, rd.to_digestable())


def records_from_dnspython(section):
    out = []
    for rrset in section:
        for rd in rrset:
            out.append(w.Record(rrset.name.to_text(), rrset.rdtype, rrset.rdclass, rrset.ttl,
                                ours_from_dnspython_rdata(rd)))
    return out


def to_dnspython(m: w.Message) -> dns.message.Message:
    d = dns.message.Message(id=m.id)
    d.flags = m.header_flags() & ~0xF
    d.set_rcode(m.rcode)
    d.set_opcode(m.opcode)
    for q in m.questions:
        d.question.append(dns.rrset.RRset(dns.name.from_text(q.name), q.rclass, q.rtype))
    for ours, theirs in ((m.answer, d.answer), (m.authority, d.authority), (m.additional, d.additional)):
        for rr in ours:
            rrset = dns.rrset.RRset(dns.name.from_text(rr.name), rr.rclass, rr.rtype)
            rrset.add(dns.rdata.from_text(rr.rclass, rr.rtype, rr.data.to_text()), rr.ttl)
            theirs.append(rrset)
    if m.edns is not None:
        opts = [dns.edns.GenericOption(c, v) for c, v in m.edns.options]
        d.use_edns(0, dns.flags.DO if m.edns.dnssec_ok else 0, m.edns.payload, options=opts)
        d.set_rcode(m.rcode)
    return d


def assert_same(ours: w.Message, theirs: dns.message.Message):
    assert ours.id == theirs.id
    assert ours.header_flags() & ~0xF == theirs.flags & ~0xF
    assert ours.rcode == theirs.rcode()
    assert [(q.name, q.rtype, q.rclass) for q in ours.questions] == [
        (r.name.to_text(), r.rdtype, r.rdclass) for r in theirs.question]
    assert ours.answer == records_from_dnspython(theirs.answer)
    assert ours.authority == records_from_dnspython(theirs.authority)
    assert ours.additional == records_from_dnspython(theirs.additional)
    if ours.edns is None:
        assert theirs.edns < 0
    else:
        assert theirs.edns == ours.edns.version
        assert theirs.payload == ours.edns.payload
        assert bool(theirs.ednsflags & dns.flags.DO) == ours.edns.dnssec_ok
        assert [(o.otype, o.to_wire()) for o in theirs.options] == list(ours.edns.options)


# --- round trips --------------------------------------------------------------------------

_slow = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_slow
@given(messages())
def test_ours_encode_dnspython_decodes(m):
    wire = m.encode()
    theirs = dns.message.from_wire(wire, one_rr_per_rrset=True)
    assert_same(m, theirs)
    assert w.Message.decode(wire).encode() == wire


@_slow
@given(messages())
def test_dnspython_encodes_ours_decodes(m):
    theirs = to_dnspython(m)
    ours = w.Message.decode(theirs.to_wire(max_size=65535))
    # dnspython compresses case-insensitively (a later name may take an earlier one's case)
    for mine, original in ((ours.answer, m.answer), (ours.authority, m.authority),
                           (ours.additional, m.additional)):
        assert [_folded(rr) for rr in mine] == [_folded(rr) for rr in original]
    assert [(q.name.lower(), q.rtype) for q in ours.questions] == [
        (q.name.lower(), q.rtype) for q in m.questions]
    assert ours.header_flags() == m.header_flags() and ours.rcode == m.rcode
    assert ours.edns == m.edns


def _folded(rr: w.Record):
    data = rr.data
    fields = tuple(v.lower() if isinstance(v, str) else v for v in data._key())
    return (rr.name.lower(), rr.rtype, rr.rclass, rr.ttl, type(data), fields)


def test_compression_is_used_and_case_preserved():
    m = w.Message(questions=[w.Question("www.Example.COM.", w.A)], answer=[
        w.Record("www.Example.COM.", w.CNAME, w.IN, 60, w.CNAMERdata("web.Example.COM.")),
        w.Record("web.example.com.", w.A, w.IN, 60, w.ARdata("192.0.2.1"))])
    wire = m.encode()
    assert wire.count(b"Example") == 1
    back = w.Message.decode(wire)
    assert back.answer[0].data.target == "web.Example.COM."
    assert back.answer[1].name == "web.example.com."
    assert back.questions[0].name == "www.Example.COM."


def test_golden_query_bytes():
    wire = w.make_query("example.com.", w.AAAA, id=0x1234)
    assert wire == bytes.fromhex("123401000001000000000000076578616d706c6503636f6d00001c0001")
    assert dns.message.from_wire(wire).question[0].rdtype == 28


def test_names_with_special_bytes_round_trip():
    name = w.labels_to_name([b"a.b", b"c\\d", b"\x00\xff", b"ok"])
    assert name == "a\\.b.c\\\\d.\\000\\255.ok."
    assert w.name_labels(name) == (b"a.b", b"c\\d", b"\x00\xff", b"ok")
    assert dns.name.from_text(name).to_text() == name


def test_extended_rcode_via_opt():
    m = w.Message(qr=True, rcode=w.BADVERS, edns=w.Edns(1232))
    back = w.Message.decode(m.encode())
    assert back.rcode == w.BADVERS
    assert dns.message.from_wire(m.encode()).rcode() == 16


def test_invalid_names_rejected_on_build():
    for bad in ["a" * 64 + ".", ".".join(["abcdefghi"] * 30) + ".", "a..b.", "relative"]:
        with pytest.raises(ValueError):
            w.Question(bad, w.A)


# --- hostile input -------------------------------------------------------------------------

HEADER_1Q = struct.pack("!6H", 1, 0, 1, 0, 0, 0)


def _reason(data) -> str:
    with pytest.raises(MalformedPacket) as e:
        w.Message.decode(data)
    return e.value.reason


def test_pointer_to_itself_is_a_loop():
    assert _reason(HEADER_1Q + b"\xc0\x0c" + b"\x00\x01\x00\x01") == "dns-bad-pointer"


def test_two_pointers_forming_a_loop():
    # name at 12: label "a", pointer to 17 (forward); at 17: pointer back to 12
    data = HEADER_1Q + b"\x01a\xc0\x11" + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    assert _reason(data) == "dns-bad-pointer"


def test_pointer_loop_in_rdata():
    ans = struct.pack("!6H", 1, 0x8000, 0, 1, 0, 0)
    rr = b"\x00" + struct.pack("!HHIH", w.CNAME, 1, 0, 2) + b"\xc0\x17"  # points at itself
    assert _reason(ans + rr) == "dns-bad-pointer"


def test_pointer_past_end():
    assert _reason(HEADER_1Q + b"\xff\xff\x00\x01\x00\x01") == "dns-bad-pointer"


def test_oversized_label_type_bits():
    assert _reason(HEADER_1Q + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01") == "dns-bad-label-type"


def test_name_longer_than_255_through_pointers():
    # four 63-octet labels, each ending with a pointer to the previous one: 4*64+1 = 257 octets
    body, prev = bytearray(), None
    for _ in range(4):
        start = 12 + len(body)
        body += b"\x3f" + b"x" * 63
        body += struct.pack("!H", 0xC000 | prev) if prev is not None else b"\x00"
        prev = start
    # the header claims no questions; an answer record whose owner points at the last chain link
    hdr = struct.pack("!6H", 1, 0, 0, 1, 0, 0)
    rr = struct.pack("!H", 0xC000 | prev) + struct.pack("!HHIH", w.A, 1, 0, 4) + b"\x01" * 4
    data = hdr + bytes(body) + rr
    # the junk chain sits where records are expected, so decode the owner directly
    with pytest.raises(MalformedPacket) as e:
        w.read_name(data, len(hdr) + len(body))
    assert e.value.reason == "dns-name-too-long"
    direct = HEADER_1Q + (b"\x3f" + b"x" * 63) * 4 + b"\x00\x00\x01\x00\x01"
    assert _reason(direct) == "dns-name-too-long"


def test_every_truncation_of_a_valid_message_is_malformed():
    m = w.Message(id=7, qr=True, questions=[w.Question("example.com.", w.MX)], answer=[
        w.Record("example.com.", w.MX, w.IN, 300, w.MXRdata(10, "mx.example.com.")),
        w.Record("example.com.", w.TXT, w.IN, 300, w.TXTRdata([b"hello", b"world"]))],
        additional=[w.Record("mx.example.com.", w.A, w.IN, 300, w.ARdata("192.0.2.25"))],
        edns=w.Edns(1232))
    wire = m.encode()
    for cut in range(len(wire)):
        with pytest.raises(MalformedPacket):
            w.Message.decode(wire[:cut])
    with pytest.raises(MalformedPacket):
        w.Message.decode(wire + b"\x00")


def test_rdata_length_mismatch_and_bad_opt():
    ans = struct.pack("!6H", 1, 0x8000, 0, 1, 0, 0)
    assert _reason(ans + b"\x00" + struct.pack("!HHIH", w.A, 1, 0, 5) + b"\x01" * 5) == "dns-bad-rdata"
    assert _reason(ans + b"\x00" + struct.pack("!HHIH", w.MX, 1, 0, 4) + b"\x00\x01\x01a\x00") == "dns-bad-rdata"
    opt = b"\x00" + struct.pack("!HHIH", w.OPT, 1232, 0, 0)
    two = struct.pack("!6H", 1, 0, 0, 0, 0, 2) + opt + opt
    assert _reason(two) == "dns-bad-opt"
    in_answer = struct.pack("!6H", 1, 0, 0, 1, 0, 0) + opt
    assert _reason(in_answer) == "dns-bad-opt"
    bad_option = struct.pack("!6H", 1, 0, 0, 0, 0, 1) + b"\x00" + struct.pack("!HHIH", w.OPT, 1232, 0, 3) + b"\x00\x01\x00"
    assert _reason(bad_option) == "dns-bad-opt"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_malformed(data):
    try:
        w.Message.decode(data)
    except MalformedPacket:
        pass


@settings(max_examples=200, deadline=None)
@given(messages(), st.data())
def test_mutated_messages_raise_only_malformed(m, data):
    wire = bytearray(m.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire[pos] = data.draw(st.integers(0, 255))
    try:
        w.Message.decode(bytes(wire))
    except MalformedPacket:
        pass


def test_pointer_chains_are_bounded():
    """A chain of thousands of backward pointers must be refused at once instead of being
    followed: referenced again and again it made decoding quadratic (RFC 9267)."""
    import struct

    from pynetstack.wire import dns as wdns
    from pynetstack.wire.errors import MalformedPacket
    buf = bytearray(b"\x01a\x00")
    previous = 0
    for _ in range(2000):  # each pointer points at the one before it
        here = len(buf)
        buf += struct.pack("!H", 0xC000 | previous)
        previous = here
    assert wdns.read_name(bytes(buf), 3)[0] is not None  # a short chain is fine
    with pytest.raises(MalformedPacket) as info:
        wdns.read_name(bytes(buf), previous)
    assert info.value.reason == "dns-too-many-pointers"
