"""The host-socket server and transport on 127.0.0.1, driven by dnspython as the client."""
import os
import socket
import struct
import subprocess
import sys

import dns.flags
import dns.message
import dns.query
import pytest

from dnstest_helpers import DATA
from pynetstack.dns import DnsServer, HostServer, Resolver, SocketTransport
from pynetstack.dns.config import build_from_config
from pynetstack.wire import dns as w

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.fixture
def host_server(example_zone):
    with HostServer(DnsServer([example_zone]), "127.0.0.1", 0) as srv:
        yield srv


def test_udp_and_tcp_with_dnspython(host_server):
    host, port = host_server.address
    q = dns.message.make_query("www.example.test.", "A")
    r = dns.query.udp(q, host, port=port, timeout=2)
    assert sorted(rd.address for rd in r.answer[0]) == ["192.0.2.10", "192.0.2.11"]
    r = dns.query.tcp(dns.message.make_query("big.example.test.", "TXT"), host, port=port, timeout=2)
    assert len(r.answer[0]) == 6


def test_several_queries_on_one_tcp_connection_pipelined(host_server):
    names = ["www.example.test.", "mail.example.test.", "nope.example.test.", "ns1.example.test."]
    with socket.create_connection(host_server.address, timeout=2) as sock:
        blob = b""
        for i, name in enumerate(names):
            q = w.make_query(name, w.A, id=100 + i)
            blob += struct.pack("!H", len(q)) + q
        sock.sendall(blob[:7])  # split frames across segments too
        sock.sendall(blob[7:])
        got = {}
        buf = b""
        while len(got) < len(names):
            buf += sock.recv(4096)
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                n = struct.unpack("!H", buf[:2])[0]
                m = w.Message.decode(buf[2:2 + n])
                got[m.id] = m
                buf = buf[2 + n:]
    assert got[102].rcode == w.NXDOMAIN and got[101].answer[0].data.address == "192.0.2.25"


def test_socket_transport_and_resolver_forwarding(host_server):
    host, port = host_server.address
    reply = SocketTransport().exchange(w.make_query("www.example.test.", w.A, id=77), (host, port), False, 2)
    assert w.Message.decode(reply).id == 77
    assert SocketTransport().exchange(w.make_query("www.example.test.", w.A), (host, port), True, 2)
    resolver = Resolver(forwarders=[f"{host}:{port}"])
    assert resolver.resolve("mail.example.test", "A").values() == ["192.0.2.25"]


def test_recursive_host_server_drives_the_resolver_in_its_loop():
    """One thread: the recursive server's selector loop carries the resolver's queries, UDP
    and (huge.h.test does not fit in 1232 bytes) TCP, and answers clients over both."""
    import threading

    from dnstest_helpers import zone_from_text
    text = ("$TTL 60\n@ SOA ns admin 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n"
            "huge TXT " + " ".join('"' + c * 200 + '"' for c in "abcdefgh") + "\n")
    with HostServer(DnsServer([zone_from_text(text, "h.test.")]), "127.0.0.1", 0) as upstream:
        # (2 s, not 0.5: an upstream answering later on a loaded machine would be asked again,
        # and the exact count of queries sent below would be off)
        resolver = Resolver(forwarders=["%s:%d" % upstream.address], timeout=2.0)
        threads = set(threading.enumerate())  # (which, not how many: an earlier test's may end meanwhile)
        with HostServer(DnsServer([], resolver=resolver, recursion=True), "127.0.0.1", 0) as rec:
            assert len(set(threading.enumerate()) - threads) == 1   # the loop itself, no worker pool
            host, port = rec.address
            r = dns.query.udp(dns.message.make_query("www.h.test.", "A"), host, port=port, timeout=10)
            assert r.flags & dns.flags.RA and [rd.address for rd in r.answer[0]] == ["192.0.2.10"]
            big = dns.query.tcp(dns.message.make_query("huge.h.test.", "TXT"), host, port=port, timeout=10)
            assert len(big.answer[0][0].strings) == 8
            assert rec.resolver_io.stats["tcp-sent"] == 1 and rec.resolver_io.stats["udp-sent"] == 2


def test_resolve_on_host_times_out_on_the_host_clock():
    import time
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))   # receives the queries, never answers
        resolver = Resolver(forwarders=["%s:%d" % silent.getsockname()], timeout=0.05)
        start = time.monotonic()
        result = resolver.resolve("www.example.test", "A")
        took = time.monotonic() - start
    assert result.rcode == w.SERVFAIL and 0.7 < took < 2.0   # 0.05 + 0.1 + 0.2 + 0.4: four tries, backing off
    assert resolver.stats["timeouts"] == 4


def test_malformed_udp_does_not_stop_the_server(host_server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", host_server.address)
        assert w.Message.decode(s.recv(600)).rcode == w.FORMERR
        s.sendto(b"\x00", host_server.address)
        s.sendto(w.make_query("www.example.test.", w.A, id=9), host_server.address)
        assert w.Message.decode(s.recv(600)).id == 9


def test_config_builds_server(tmp_path):
    server = build_from_config({"zones": [os.path.join(DATA, "example.zone")], "recursion": True,
                                "forwarders": ["127.0.0.1:5399"], "cache_size": 50, "listen": "127.0.0.1:53"},
                               str(tmp_path))
    assert server.recursion and server.resolver.cache.max_entries == 50 and server.listen == "127.0.0.1:53"
    rel = build_from_config({"zones": [{"file": "example.zone", "origin": "example.test."}]}, DATA)
    assert "example.test." in rel.authority.zones and not rel.recursion
    assert not rel.authority.minimal   # NSD's full responses by default...
    minimal = build_from_config({"zones": [os.path.join(DATA, "example.zone")], "minimal_responses": True}, DATA)
    assert minimal.authority.minimal   # ...BIND's minimal-responses as the switch


@pytest.mark.parametrize("table,key", [
    ({"zone": []}, "dns.zone"),
    ({"zones": "x.zone"}, "dns.zones"),
    ({"zones": ["missing.zone"]}, "dns.zones[0]"),
    ({"recursion": "yes"}, "dns.recursion"),
    ({"recursion": True}, "dns.recursion"),
    ({"recursion": True, "forwarders": ["not an address"]}, "dns.forwarders"),
    ({"cache_size": 0}, "dns.cache_size"),
    ({"cache_size": True}, "dns.cache_size"),
    ({"minimal_responses": "yes"}, "dns.minimal_responses"),
])
def test_config_errors_name_the_key(tmp_path, table, key):
    with pytest.raises(ValueError) as e:
        build_from_config(table, str(tmp_path))
    assert key in str(e.value)


def run_cli(*args, timeout=20):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    return subprocess.run([sys.executable, "-m", "pynetstack.dns.cli", "dns", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("args,words", [
    (["serve", "--zone", "/nonexistent.zone", "--listen", "127.0.0.1:0"], "cannot read"),
    (["serve", "--listen", "127.0.0.1:0"], "nothing to serve"),
    (["serve", "--zone", os.path.join(DATA, "example.zone"), "--listen", "nohost:port"], "bad address"),
    (["serve", "--recursion", "--listen", "127.0.0.1:0"], "--root-hint or --forwarder"),
    (["query", "www.example.test", "BOGUS"], "unknown record type"),
])
def test_cli_errors_are_one_line(args, words, tmp_path):
    p = run_cli(*args)
    assert p.returncode != 0 and words in p.stderr and "Traceback" not in p.stderr


def test_cli_bad_zone_line(tmp_path):
    bad = tmp_path / "bad.zone"
    bad.write_text("$TTL 60\n@ SOA ns admin 1 2 3 4 5\n@ NS ns\nwww A 300.1.1.1\n")
    p = run_cli("serve", "--zone", f"{bad}@bad.test", "--listen", "127.0.0.1:0")
    assert p.returncode != 0 and f"{bad}:4:" in p.stderr and "Traceback" not in p.stderr


def test_cli_query_against_host_server(host_server):
    host, port = host_server.address
    p = run_cli("query", "www.example.test", "A", "--server", f"{host}:{port}")
    assert p.returncode == 0 and "192.0.2.10" in p.stdout and "status: NOERROR" in p.stdout
    p = run_cli("query", "big.example.test", "TXT", "--server", f"{host}:{port}", "--tcp")
    assert p.stdout.count("IN TXT \"") == 6


def test_cli_resolve_through_a_forwarder(host_server):
    host, port = host_server.address
    p = run_cli("resolve", "alias.example.test", "A", "--forwarder", f"{host}:{port}")
    assert p.returncode == 0 and "status: NOERROR" in p.stdout
    assert "CNAME www.example.test." in p.stdout and "192.0.2.11" in p.stdout
    p = run_cli("resolve", "nope.example.test", "--forwarder", f"{host}:{port}")
    assert p.returncode == 0 and "status: NXDOMAIN" in p.stdout and " SOA " in p.stdout


def test_socket_transport_uses_random_source_ports():
    import threading
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as responder:
        responder.bind(("127.0.0.1", 0))
        responder.settimeout(3)
        ports = []

        def serve():
            for _ in range(6):
                data, peer = responder.recvfrom(512)
                ports.append(peer[1])
                responder.sendto(data[:2] + b"\x81\x80" + data[4:], peer)

        t = threading.Thread(target=serve)
        t.start()
        transport = SocketTransport()
        for i in range(6):
            assert transport.exchange(w.make_query("a.test.", w.A, id=i), responder.getsockname(), False, 2)
        t.join(5)
    assert len(set(ports)) >= 5 and all(p >= 1024 for p in ports)
