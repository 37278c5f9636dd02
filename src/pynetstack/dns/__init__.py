"""DNS: zones, authoritative answers, a recursive resolver with a cache, and the server.

The message codec lives in ``pynetstack.wire.dns``. Typical use::

    from pynetstack.dns import DnsServer, HostServer, Resolver, load_zone, resolve_on_host
    server = DnsServer([load_zone("example.zone")])
    with HostServer(server, "127.0.0.1", 5353):
        ...
    resolver = Resolver(forwarders=["127.0.0.1:5353"])      # sans-I/O: start/receive/poll
    resolve_on_host(resolver, "www.example.com", "A").values()  # driven over host sockets
"""
from .authority import Authority
from .cache import Cache
from .hostio import HostResolverIO, HostServer, SocketTransport, resolve_on_host
from .resolver import Resolver, Result
from .server import DnsServer, udp_handler
from .zone import Zone, ZoneError, load_zone, parse_zone_text

__all__ = ["Authority", "Cache", "DnsServer", "HostResolverIO", "HostServer", "Resolver", "Result",
           "SocketTransport", "Zone", "ZoneError", "load_zone", "parse_zone_text", "resolve_on_host",
           "udp_handler"]
