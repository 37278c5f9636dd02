"""Real peers: dig and kdig against `pynetstack dns serve`, and a differential test against NSD.

Everything listens on 127.0.0.1 high ports chosen at run time; processes are stopped afterwards.
"""
import os
import re

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import pytest

from dnsinterop import run, start_nsd, start_pynetstack
from dnstest_helpers import DATA

pytestmark = pytest.mark.interop
ZONE = os.path.join(DATA, "example.zone")
DIFF_ZONE = os.path.join(DATA, "diff.zone")


@pytest.fixture(scope="module")
def pyserver():
    proc, port = start_pynetstack("--zone", ZONE)
    yield port
    proc.stop()


@pytest.fixture(scope="module")
def pyserver_both():
    proc, port = start_pynetstack("--zone", ZONE, "--zone", DIFF_ZONE)  # full responses: the default
    yield port
    proc.stop()


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    proc, port = start_nsd(str(tmp_path_factory.mktemp("nsd")), [("example.test", ZONE), ("diff.test", DIFF_ZONE)])
    yield port
    proc.stop()


def dig(port, *args):
    return run("dig", "@127.0.0.1", "-p", str(port), "+norec", *args)


def header(out):
    status = re.search(r"status: (\w+)", out).group(1)
    flags = set(re.search(r";; flags: ([a-z ]*);", out).group(1).split())
    return status, flags


@pytest.mark.parametrize("name,qtype,expected", [
    ("www.example.test", "A", ["192.0.2.10", "192.0.2.11"]),
    ("www.example.test", "AAAA", ["2001:db8::10"]),
    ("alias.example.test", "CNAME", ["www.example.test."]),
    ("example.test", "MX", ["10 mail.example.test.", "20 mail2.other.test."]),
    ("example.test", "NS", ["ns1.example.test.", "ns2.example.test."]),
    ("rev.example.test", "PTR", ["www.example.test."]),
    ("example.test", "SOA", ["ns1.example.test. hostmaster.example.test. 2024010101 7200 900 1209600 300"]),
    ("text.example.test", "TXT", ['"hello world" "with \\"quotes\\" and \\\\ backslash" "AB"', '"unquoted"']),
    ("_sip._udp.example.test", "SRV", ["10 60 5060 sip.example.test."]),
    ("opaque.example.test", "TYPE65280", ["\\# 4 0A0B0C0D"]),
    ("x.y.wild.example.test", "A", ["192.0.2.99"]),
])
def test_dig_every_record_type(pyserver, name, qtype, expected):
    out = dig(pyserver, name, qtype, "+short")
    assert sorted(out.split("\n")[:-1]) == sorted(expected)


def test_dig_answer_flags_and_edns(pyserver):
    out = dig(pyserver, "www.example.test", "A")
    status, flags = header(out)
    assert status == "NOERROR" and flags == {"qr", "aa"}
    assert "; EDNS: version: 0, flags:; udp: 1232" in out
    out = dig(pyserver, "www.example.test", "A", "+noedns")
    assert "EDNS" not in out and "192.0.2.10" in out
    out = dig(pyserver, "www.example.test", "A", "+edns=1", "+noednsnegotiation")
    assert header(out)[0] == "BADVERS"


def test_dig_nxdomain_and_nodata(pyserver):
    out = dig(pyserver, "nope.example.test", "A")
    assert header(out)[0] == "NXDOMAIN" and "ANSWER: 0, AUTHORITY: 1" in out
    assert re.search(r"example\.test\.\s+300\s+IN\s+SOA", out)
    out = dig(pyserver, "www.example.test", "MX")
    assert header(out) == ("NOERROR", {"qr", "aa"}) and "ANSWER: 0, AUTHORITY: 1" in out


def test_dig_delegation(pyserver):
    out = dig(pyserver, "host.child.example.test", "A")
    status, flags = header(out)
    assert status == "NOERROR" and "aa" not in flags
    assert re.search(r"child\.example\.test\.\s+3600\s+IN\s+NS\s+ns\.child\.example\.test\.", out)
    assert re.search(r"ns\.child\.example\.test\.\s+3600\s+IN\s+A\s+192\.0\.2\.53", out)


def test_dig_refused_outside_zone(pyserver):
    assert header(dig(pyserver, "www.other.test", "A"))[0] == "REFUSED"


def test_dig_tcp_and_truncation_retry(pyserver):
    out = dig(pyserver, "big.example.test", "TXT", "+tcp")
    assert "(TCP)" in out and "ANSWER: 6" in out
    out = dig(pyserver, "big.example.test", "TXT", "+bufsize=512")
    assert "Truncated, retrying in TCP mode" in out and "ANSWER: 6" in out
    out = dig(pyserver, "big.example.test", "TXT", "+bufsize=512", "+ignore")
    status, flags = header(out)
    assert "tc" in flags and "ANSWER: 0" in out


def test_kdig(pyserver):
    out = run("kdig", "@127.0.0.1", "-p", str(pyserver), "+norec", "www.example.test", "A")
    assert "status: NOERROR" in out and "qr aa" in out and "192.0.2.11" in out
    out = run("kdig", "@127.0.0.1", "-p", str(pyserver), "+tcp", "_sip._udp.example.test", "SRV")
    assert "10 60 5060 sip.example.test." in out and "TCP" in out
    out = run("kdig", "@127.0.0.1", "-p", str(pyserver), "+bufsize=512", "big.example.test", "TXT")
    assert "retrying over TCP" in out and "ANSWER: 6" in out
    out = run("kdig", "@127.0.0.1", "-p", str(pyserver), "nope.example.test", "A")
    assert "status: NXDOMAIN" in out


# --- differential against NSD -----------------------------------------------------------------

CORPUS = [
    ("www.example.test.", "A"), ("WWW.Example.TEST.", "A"), ("www.example.test.", "AAAA"),
    ("www.example.test.", "MX"), ("example.test.", "MX"), ("example.test.", "NS"),
    ("example.test.", "SOA"), ("EXAMPLE.test.", "NS"), ("NS2.example.test.", "AAAA"), ("example.test.", "TXT"), ("alias.example.test.", "A"),
    ("alias.example.test.", "CNAME"), ("chain.example.test.", "AAAA"), ("outside.example.test.", "A"),
    ("loop1.example.test.", "A"), ("nope.example.test.", "A"), ("deep.nope.example.test.", "TXT"),
    ("sub.example.test.", "A"), ("ent.sub.example.test.", "A"), ("deep.ent.sub.example.test.", "A"),
    ("a.wild.example.test.", "A"), ("x.y.wild.example.test.", "TXT"), ("a.wild.example.test.", "MX"),
    ("host.wild.example.test.", "A"), ("host.wild.example.test.", "TXT"),
    ("sub.host.wild.example.test.", "A"), ("wild.example.test.", "A"), ("foo.cnw.example.test.", "A"),
    ("child.example.test.", "NS"), ("a.child.example.test.", "A"), ("ns.child.example.test.", "A"),
    ("_sip._udp.example.test.", "SRV"), ("rev.example.test.", "PTR"), ("opaque.example.test.", "TYPE65280"),
    ("text.example.test.", "TXT"), ("ns2.example.test.", "AAAA"), ("mail.example.test.", "A"),
    ("www.other.test.", "A"), ("big.example.test.", "TXT"),
]


# diff.zone: apex with three NS (one out of zone), delegations with in-bailiwick, sibling and
# no glue, a delegation two labels down, wildcards (plain, CNAME, beside an empty non-terminal,
# occluded under a cut), CNAMEs into the zone, into a delegation and out of it, MX/SRV targets.
DIFF_CORPUS = [tuple(q.split()) for q in """
diff.test. SOA|diff.test. NS|diff.test. MX|diff.test. A|diff.test. TXT|DIFF.TEST. MX|ns1.diff.test. A
ns1.diff.test. AAAA|ns2.diff.test. A|ns2.diff.test. AAAA|www.diff.test. A|www.diff.test. TXT|web.diff.test. A
WEB.diff.test. TXT|deep.chain.diff.test. A|chain.diff.test. A|tozone.diff.test. AAAA|todeleg.diff.test. A
away.diff.test. A|away.diff.test. CNAME|srv.diff.test. SRV|deleg.diff.test. NS|deleg.diff.test. A
host.deleg.diff.test. A|ns.deleg.diff.test. A|x.deleg.diff.test. TXT|sib.diff.test. NS|a.sib.diff.test. MX
oob.diff.test. NS|host.oob.diff.test. A|b.diff.test. A|a.b.diff.test. A|far.a.b.diff.test. NS
x.far.a.b.diff.test. A|nothing.diff.test. TXT|nothing.diff.test. A|q.w.diff.test. A|q.w.diff.test. MX
q.w.diff.test. AAAA|r.q.w.diff.test. A|w.diff.test. A|z.cn.diff.test. A|z.cn.diff.test. CNAME|ent.diff.test. A
y.ent.diff.test. A|z.ent.diff.test. A|x.y.ent.diff.test. A|q.x.y.ent.diff.test. A|mx.sub.diff.test. A
sub.diff.test. A|x.sub.diff.test. A|nope.other.test. A""".replace("\n", "|").split("|") if q.strip()]
MODES = {"udp": dict(use_edns=False), "edns": dict(use_edns=0, payload=1232),
         "edns512": dict(use_edns=0, payload=512), "tcp": dict(use_edns=0, payload=1232)}


def _summary(reply):
    flags = {f for f in ("AA", "TC", "RA", "RD") if reply.flags & getattr(dns.flags, f)}
    lines = {}
    for name in ("answer", "authority", "additional"):
        lines[name] = sorted(line.lower() for rrset in getattr(reply, name)
                             for line in rrset.to_text().split("\n"))
    return reply.rcode(), flags, lines, reply.question[0].name.to_text()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_same_answers_as_nsd(pyserver_both, nsd, mode):
    """rcode, flags and every section (authority and additional included), query by query."""
    corpus = CORPUS + DIFF_CORPUS
    ask = dns.query.tcp if mode == "tcp" else dns.query.udp
    differences = []
    for name, qtype in corpus:
        q = dns.message.make_query(name, dns.rdatatype.from_text(qtype), **MODES[mode])
        q.flags &= ~dns.flags.RD
        ours = _summary(ask(q, "127.0.0.1", port=pyserver_both, timeout=3))
        theirs = _summary(ask(q, "127.0.0.1", port=nsd, timeout=3))
        if ours != theirs:
            differences.append((name, qtype, ours, theirs))
    for d in differences:
        print("DIFF", d[0], d[1], "\n  ours  ", d[2], "\n  theirs", d[3])
    print(f"NSD differential ({mode}): {len(corpus)} queries compared, {len(corpus) - len(differences)} equal")
    assert differences == []
