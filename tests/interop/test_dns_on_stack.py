"""DNS served by the stack itself (UDP port 53 over a TAP), asked by dig and kdig in a namespace;
in forwarding mode the stack's resolver sends its own queries through the stack."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from pynetstack.config import build_stack

from .waiting import listening, wait_for

ZONE = os.path.join(os.path.dirname(__file__), "..", "dns", "data", "example.zone")
UPSTREAM_ZONE = os.path.join(os.path.dirname(__file__), "data", "upstream.zone")
KERNEL, STACK = "10.99.7.1", "10.99.7.2"


@pytest.fixture(scope="module")
def dns_lab(lab, tmp_path_factory):
    for tool, package in (("dig", "dnsutils"), ("kdig", "knot-dnsutils")):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install {package}")
    host = lab.netns("dns")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    config = {
        "interface": [{"tap": "pnsdns0", "address": f"{STACK}/24", "host_address": f"{KERNEL}/24"}],
        "dns": {"zones": [os.path.abspath(ZONE)], "recursion": True, "forwarders": [f"{KERNEL}"],
                "upstream_port": 5300, "timeout": 2.0},
    }
    # build_stack creates the TAP in the current namespace: enter the lab's for that.
    from pynetstack.link.netns import netns
    with netns(host):
        stack = build_stack(config)
    # the upstream zone plus a TXT set too big for one 1232-byte datagram: the stack's resolver
    # must fetch it over the stack's own TCP
    zone = tmp_path_factory.mktemp("upstream") / "upstream.zone"
    zone.write_text(open(UPSTREAM_ZONE).read() + "huge IN TXT " + " ".join('"' + c * 200 + '"' for c in "abcdefgh") + "\n")
    upstream = lab.popen(host, sys.executable, "-m", "pynetstack", "dns", "serve", "--zone", str(zone),
                         "--listen", f"{KERNEL}:5300", env=env)
    stack.start_background()
    # (30 s: a new PyPy process importing the package on a loaded machine can take over 10)
    assert wait_for(listening(lab, host, 5300, udp=True), timeout=30), "upstream DNS server not listening"
    try:
        yield lab, host, stack
    finally:
        stack.close()
        upstream.terminate()


def dig(lab, host, *args):
    result = lab.run(host, "dig", f"@{STACK}", "+time=2", "+tries=2", *args, timeout=30)
    return result.stdout


def test_authoritative_a(dns_lab):
    out = dig(*dns_lab[:2], "www.example.test", "A")
    assert "status: NOERROR" in out and " aa " in out.split("flags:")[1].split(";")[0] + " "
    assert "192.0.2.10" in out and "192.0.2.11" in out


@pytest.mark.parametrize("name, rtype, expect", [
    ("example.test", "MX", "10 mail.example.test."),
    ("text.example.test", "TXT", '"hello world"'),
    ("_sip._udp.example.test", "SRV", "10 60 5060 sip.example.test."),
    ("alias.example.test", "A", "alias.example.test.\t3600\tIN\tCNAME\twww.example.test."),
    ("x.wild.example.test", "A", "192.0.2.99"),
])
def test_record_types(dns_lab, name, rtype, expect):
    assert expect in dig(*dns_lab[:2], name, rtype)


def test_nxdomain_carries_soa(dns_lab):
    out = dig(*dns_lab[:2], "nothing.example.test", "A")
    assert "status: NXDOMAIN" in out
    assert "AUTHORITY SECTION" in out and "SOA" in out


def test_kdig_edns(dns_lab):
    lab, host, _ = dns_lab
    out = lab.run(host, "kdig", f"@{STACK}", "+edns", "www.example.test", "A", timeout=30).stdout
    assert "EDNS PSEUDOSECTION" in out and "192.0.2.10" in out


def test_forwarding_through_the_stack(dns_lab):
    lab, host, stack = dns_lab
    out = dig(lab, host, "web.upstream.test", "A")
    assert "198.51.100.7" in out, out
    assert " ra" in out.split("flags:")[1].split(";")[0]
    cached = dig(lab, host, "web.upstream.test", "A")
    assert "198.51.100.7" in cached


def test_tcp_on_the_stack(dns_lab):
    out = dig(*dns_lab[:2], "+tcp", "www.example.test", "A")
    assert "192.0.2.10" in out and "(TCP)" in out


def test_truncation_then_retry_over_tcp(dns_lab):
    lab, host, _ = dns_lab
    truncated = lab.run(host, "dig", f"@{STACK}", "+time=2", "+ignore", "+bufsize=512", "big.example.test", "TXT",
                        timeout=30).stdout
    assert " tc" in truncated.split("flags:")[1].split(";")[0], truncated
    retried = dig(lab, host, "+bufsize=512", "big.example.test", "TXT")
    assert "Truncated, retrying in TCP mode" in retried
    assert retried.count("\tTXT\t") == 6 and "(TCP)" in retried


def test_several_queries_on_one_tcp_connection(dns_lab):
    lab, host, _ = dns_lab
    out = lab.run(host, "kdig", f"@{STACK}", "+tcp", "+keepopen", "www.example.test", "A",
                  "mail.example.test", "A", "text.example.test", "TXT", timeout=30).stdout
    assert "192.0.2.10" in out and "192.0.2.25" in out and "hello world" in out


def test_resolver_runs_in_the_stacks_loop_and_falls_back_to_tcp(dns_lab):
    """The forwarder's answer is truncated over UDP: the stack's resolver asks again over the
    stack's TCP (no worker thread anywhere), then dig, truncated in turn, asks the stack over TCP."""
    import threading
    lab, host, stack = dns_lab
    out = dig(lab, host, "huge.upstream.test", "TXT")
    assert out.count("\tTXT\t") == 1 and "a" * 200 in out and "h" * 200 in out, out
    stats = stack.status()["functions"]["dns-resolver"]
    assert stats["tcp-sent"] >= 1 and stats["udp-sent"] >= 1
    assert not [t for t in threading.enumerate() if t.name.startswith("dns")]
