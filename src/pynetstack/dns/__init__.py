"""DNS: zones, authoritative answers, a recursive resolver with a cache, and the server.

The message codec lives in ``pynetstack.wire.dns``. Typical use::

    from pynetstack.dns import DnsServer, HostServer, Resolver, load_zone
    server = DnsServer([load_zone("example.zone")])
    with HostServer(server, "127.0.0.1", 5353):
        ...
    resolver = Resolver(forwarders=["127.0.0.1:5353"])
    resolver.resolve("www.example.com", "A").values()
"""
from .authority import Authority
from .cache import Cache
from .hostio import HostServer, SocketTransport
from .resolver import Resolver, Result
from .server import DnsServer, udp_handler
from .zone import Zone, ZoneError, load_zone, parse_zone_text

__all__ = ["Authority", "Cache", "DnsServer", "HostServer", "Resolver", "Result", "SocketTransport",
           "Zone", "ZoneError", "load_zone", "parse_zone_text", "udp_handler"]
