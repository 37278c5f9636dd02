"""DNS resolution with pynetstack: the Python counterpart of the seed's DNS usage example.

Everything stays on loopback: an authoritative server for a made-up zone plays the upstream,
a caching resolver forwards to it, and a recursive server is started on an address.

    PYTHONPATH=src python examples/dns_resolution.py
"""
import os
import tempfile

from pynetstack.dns import Cache, DnsServer, HostServer, Resolver, load_zone
from pynetstack.wire import dns as wire

ZONE = """$ORIGIN example.test.
$TTL 300
@    SOA ns1 hostmaster 1 7200 900 1209600 60
     NS  ns1
     MX  10 mail
ns1  A   127.0.0.1
www  A   192.0.2.10
mail A   192.0.2.25
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "example.test.zone")
        with open(path, "w") as f:
            f.write(ZONE)
        upstream = HostServer(DnsServer([load_zone(path)]), "127.0.0.1", 0).start()
        upstream_addr = "%s:%d" % upstream.address
        try:
            # Initialize the DNS resolver (upstream servers, cache size)
            dns = Resolver(forwarders=[upstream_addr], cache=Cache(max_entries=10000))

            # Resolve domains
            result = dns.resolve("www.example.test", "A")
            print("www.example.test A ->", result.values()[0])
            print("example.test MX ->", dns.resolve("example.test", "MX").values())
            print("missing.example.test ->", wire.RCODE_NAMES[dns.resolve("missing.example.test").rcode])

            # Start a DNS server (recursion through the same resolver and cache)
            server = HostServer(DnsServer([], resolver=dns, recursion=True), "127.0.0.1", 0).start()
            try:
                from pynetstack.dns.hostio import SocketTransport
                reply = SocketTransport().exchange(wire.make_query("mail.example.test.", wire.A, id=1),
                                                   server.address, False, 2.0)
                answer = wire.Message.decode(reply)
                print("server on %s:%d answered:" % server.address, answer.answer[0].to_text(),
                      "RA" if answer.ra else "")
            finally:
                server.stop()
            print("cache:", dns.cache.stats.as_dict())
        finally:
            upstream.stop()


if __name__ == "__main__":
    main()
