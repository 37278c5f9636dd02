"""``pynetstack dns ...``: serve zones / recursion on host sockets, send a query, resolve a name.

The main CLI calls ``register(subparsers)``; each subcommand sets ``func(args) -> int``.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from ..wire import dns as w


def _address(text: str, default_port: int = 53):
    from .upstreams import parse_server as _parse_server
    try:
        host, port = _parse_server(text, default_port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad address {text!r} (want HOST or HOST:PORT)") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"port {port} out of range")
    return host, port


def _rtype(text: str) -> int:
    try:
        return w.type_code(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def register(subparsers) -> None:
    dns = subparsers.add_parser("dns", help="DNS server, resolver and queries")
    sub = dns.add_subparsers(dest="dns_command", metavar="COMMAND")
    sub.required = True

    serve = sub.add_parser("serve", help="serve zones (and optionally recursion) on host sockets")
    serve.add_argument("--zone", action="append", default=[], metavar="FILE[@ORIGIN]",
                       help="zone file to serve (repeatable); origin defaults to the SOA owner")
    serve.add_argument("--listen", type=_address, default=("127.0.0.1", 53), metavar="HOST:PORT")
    serve.add_argument("--recursion", action="store_true", help="answer RD queries by recursion")
    serve.add_argument("--root-hint", action="append", default=[], metavar="[NAME=]ADDR",
                       help="root server address for iterative resolution (repeatable)")
    serve.add_argument("--forwarder", action="append", default=[], metavar="HOST[:PORT]",
                       help="forward recursive queries here instead of iterating (repeatable)")
    serve.add_argument("--upstream-port", type=_port, default=53,
                       help="port of name servers found by iteration (for test labs)")
    serve.add_argument("--cache-size", type=_positive, default=10000, help="cache entries")
    serve.add_argument("--no-tcp", action="store_true", help="UDP only")
    serve.add_argument("--minimal-responses", action="store_true",
                       help="leave the zone's NS set and addresses out of positive answers (BIND's "
                            "minimal-responses; by default they are there, as NSD has them)")
    serve.add_argument("--full-responses", action="store_false", dest="minimal_responses",
                       help=argparse.SUPPRESS)  # the default since minimal responses became the switch
    serve.set_defaults(func=cmd_serve)

    query = sub.add_parser("query", help="send one query to a server and print the reply")
    query.add_argument("name")
    query.add_argument("type", nargs="?", default="A", type=_rtype)
    query.add_argument("--server", type=_address, default=("127.0.0.1", 53), metavar="HOST:PORT")
    query.add_argument("--tcp", action="store_true")
    query.add_argument("--no-rd", action="store_true", help="clear the recursion-desired flag")
    query.add_argument("--timeout", type=float, default=2.0)
    query.set_defaults(func=cmd_query)

    resolve = sub.add_parser("resolve", help="resolve a name with the built-in resolver")
    resolve.add_argument("name")
    resolve.add_argument("type", nargs="?", default="A", type=_rtype)
    resolve.add_argument("--root-hint", action="append", default=[], metavar="[NAME=]ADDR")
    resolve.add_argument("--forwarder", action="append", default=[], metavar="HOST[:PORT]")
    resolve.add_argument("--upstream-port", type=_port, default=53)
    resolve.add_argument("--timeout", type=float, default=1.5, help="seconds to wait for one server")
    resolve.set_defaults(func=cmd_resolve)


def _fail(message: str):
    raise SystemExit(f"pynetstack: error: {message}")


def build_server(args):
    from .cache import Cache
    from .resolver import Resolver
    from .server import DnsServer
    from .zone import ZoneError, load_zone
    zones = []
    for spec in args.zone:
        path, _, origin = spec.partition("@")
        if origin and not origin.endswith("."):
            origin += "."
        try:
            zones.append(load_zone(path, origin or None))
        except ZoneError as e:
            _fail(str(e))
    resolver = None
    if args.recursion:
        if not args.root_hint and not args.forwarder:
            _fail("--recursion needs --root-hint or --forwarder")
        try:
            resolver = Resolver(root_hints=args.root_hint, forwarders=args.forwarder,
                                port=args.upstream_port, cache=Cache(args.cache_size))
        except (ValueError, OSError) as e:
            _fail(f"bad --root-hint/--forwarder: {e}")
    if not zones and resolver is None:
        _fail("nothing to serve: give --zone FILE and/or --recursion")
    try:
        return DnsServer(zones, resolver=resolver, recursion=args.recursion,
                         minimal_responses=args.minimal_responses)
    except ValueError as e:
        _fail(str(e))


def cmd_serve(args) -> int:
    from .hostio import HostServer
    server = build_server(args)
    host, port = args.listen
    try:
        host_server = HostServer(server, host, port, tcp=not args.no_tcp)
    except OSError as e:
        _fail(f"cannot listen on {host}:{port}: {e.strerror or e}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    host_server.start()
    zones = ", ".join(z.origin for z in server.authority.zones.values()) or "none"
    print(f"pynetstack dns: serving on {host_server.address[0]}:{host_server.address[1]} "
          f"(zones: {zones}; recursion {'on' if server.recursion else 'off'})", flush=True)
    while not stop.wait(0.5):
        pass
    host_server.stop()
    return 0


def cmd_query(args) -> int:
    import random

    from .hostio import SocketTransport
    from ..wire.errors import MalformedPacket
    name = args.name if args.name.endswith(".") else args.name + "."
    qid = random.SystemRandom().randrange(0x10000)
    try:
        wire = w.Message(id=qid, rd=not args.no_rd, questions=[w.Question(name, args.type)],
                         edns=w.Edns(1232)).encode()
    except ValueError as e:
        _fail(str(e))
    data = SocketTransport().exchange(wire, args.server, args.tcp, args.timeout)
    if data is None:
        _fail(f"no reply from {args.server[0]}:{args.server[1]}")
    try:
        reply = w.Message.decode(data)
    except MalformedPacket as e:
        _fail(f"malformed reply: {e}")
    print(format_message(reply))
    return 0


def cmd_resolve(args) -> int:
    from .hostio import resolve_on_host
    from .resolver import Resolver
    if not args.root_hint and not args.forwarder:
        _fail("resolve needs --root-hint or --forwarder")
    if not 0 < args.timeout < 3600:
        _fail("--timeout must be within 0..3600 seconds")
    try:
        resolver = Resolver(root_hints=args.root_hint, forwarders=args.forwarder, port=args.upstream_port,
                            timeout=args.timeout)
        result = resolve_on_host(resolver, args.name, args.type)
    except (ValueError, OSError) as e:
        _fail(str(e))
    print(f";; status: {w.RCODE_NAMES.get(result.rcode, result.rcode)}")
    for rr in result.answers + result.authority:
        print(rr.to_text())
    return 0 if result.rcode in (w.NOERROR, w.NXDOMAIN) else 1


def format_message(m: w.Message) -> str:
    lines = [f";; id {m.id} status: {w.RCODE_NAMES.get(m.rcode, m.rcode)} flags: {m.flags_text()}"]
    for title, section in (("QUESTION", m.questions), ("ANSWER", m.answer),
                           ("AUTHORITY", m.authority), ("ADDITIONAL", m.additional)):
        if section:
            lines.append(f";; {title}")
            for item in section:
                if isinstance(item, w.Question):
                    lines.append(f";{item.name} IN {w.type_name(item.rtype)}")
                else:
                    lines.append(item.to_text())
    return "\n".join(lines)


def main(argv=None) -> int:
    """Stand-alone entry point (``python -m pynetstack.dns.cli``) until the main CLI hooks us in."""
    parser = argparse.ArgumentParser(prog="pynetstack")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
