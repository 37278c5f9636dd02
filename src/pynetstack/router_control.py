"""What a running stack answers on its control socket about routing, conntrack and nft.

    route show [table T] | route rules | route get ADDR [from S] [iif I] [mark M] [ipproto P] [sport N] [dport N]
    conntrack list | conntrack stats | conntrack flush | conntrack events
    nft list | nft load PATH | nft monitor trace

Each handler takes the stack and the words after the command and returns the reply text, or an
iterator of lines for a reply that streams (``conntrack events``, like ``conntrack -E``;
``nft monitor trace``, the packets a ``meta nftrace set 1`` rule marked).
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, Dict, Iterator, List, Union

from .wire.addr import ip_to_int

Reply = Union[str, Iterator[str]]


class CommandError(ValueError):
    pass


def _route(stack, words: List[str]) -> Reply:
    routes = stack.host.routes
    if not words or words[0] == "show":
        table = words[2] if len(words) >= 3 and words[1] == "table" else "main"
        with stack.lock:
            try:
                return "".join(line + "\n" for line in routes.show(table))
            except ValueError as exc:
                if str(exc).startswith("unknown table"):  # not the Python API's advice (name_table)
                    raise CommandError(f"route show: unknown table {table!r} (a number, or main, local, "
                                       "default)") from None
                raise CommandError(str(exc)) from None
    if words[0] == "rules":
        with stack.lock:
            return "".join(line + "\n" for line in routes.show_rules())
    if words[0] == "get" and len(words) >= 2:
        options = {"from": None, "iif": None, "mark": "0", "ipproto": "0", "sport": "0", "dport": "0"}
        rest = words[2:]
        if len(rest) % 2:
            raise CommandError(f"route get: '{rest[-1]}' needs a value")
        for key, value in zip(rest[::2], rest[1::2]):
            if key not in options:
                raise CommandError(f"route get: unknown selector {key!r} (from, iif, mark, ipproto, sport, dport)")
            options[key] = value
        try:
            dst = ip_to_int(words[1])
            src = ip_to_int(options["from"]) if options["from"] else None
        except ValueError as exc:
            raise CommandError(f"route get: {exc}") from None
        proto = PROTOCOLS.get(options["ipproto"])
        if proto is None:
            proto = _number(options["ipproto"], "ipproto", 255, f"a number or {', '.join(PROTOCOLS)}")
        mark = _number(options["mark"], "mark", 0xFFFFFFFF, "a number like 0x10")
        sport, dport = (_number(options[k], k, 65535, "a port number") for k in ("sport", "dport"))
        with stack.lock:
            if options["iif"] and options["iif"] not in stack.interfaces:
                raise CommandError(f"route get: no interface {options['iif']!r}")
            line = routes.explain(dst, src, options["iif"], mark, proto, sport, dport,
                                  source_for=lambda iface, hop: iface.address_for(hop), now=stack.now())
        if line.startswith("RTNETLINK answers: "):
            raise CommandError(line)  # as `ip route get` fails: on standard error, exit status 1
        return line + "\n"
    raise CommandError("route: show [table T] | rules | get ADDR [from S] [iif I] [mark M] [ipproto P] "
                       "[sport N] [dport N]")


PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}  # the names `ip route get ipproto` takes here


def _number(text: str, key: str, high: int, kind: str) -> int:
    """``text`` as ``ip route get`` reads a selector's value (decimal or 0x hex), within 0..high."""
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value <= high:
        raise CommandError(f"route get: argument {text!r} is wrong: {key} must be {kind} (0..{high})")
    return value


def _router(stack):
    if stack.router is None:
        raise CommandError("this stack runs no conntrack, NAT or ruleset ([netfilter] in the config, or --ruleset)")
    return stack.router


def _conntrack(stack, words: List[str]) -> Reply:
    router = _router(stack)
    what = words[0] if words else "list"
    if what == "list":
        lines = router.conntrack_list()
        return "".join(line + "\n" for line in lines) + (
            f"conntrack v1.4 (pynetstack): {len(lines)} flow entries have been shown.\n")
    if what == "stats":
        with stack.lock:
            stats = router.conntrack.stats()
        return " ".join(f"{key}={value}" for key, value in stats.items()) + "\n"
    if what == "flush":
        with stack.lock:
            router.conntrack.flush()
            stack.host.flowtable.flush()
        return "conntrack v1.4 (pynetstack): connection tracking table has been emptied.\n"
    if what == "events":
        conntrack = router.conntrack
        return _stream(stack, conntrack.events, lambda kind, entry: conntrack.format_event(kind, entry, stack.now()))
    raise CommandError("conntrack: list | stats | flush | events")


def _stream(stack, listeners: list, line_of: Callable[..., str]) -> Iterator[str]:
    """Lines as they happen, from a listener put on ``listeners`` while the reader reads; a slow
    reader loses the oldest lines (the queue is bounded), never the stack's time."""
    queue: collections.deque = collections.deque(maxlen=10000)
    ready = threading.Event()

    def listen(*event):
        queue.append(line_of(*event))
        ready.set()
    with stack.lock:
        listeners.append(listen)

    def lines():
        try:
            while True:
                ready.wait(1.0)
                ready.clear()
                while queue:
                    yield queue.popleft() + "\n"
                yield ""  # lets the server notice a reader that went away
        finally:
            with stack.lock:
                listeners.remove(listen)
    return lines()


def _nft(stack, words: List[str]) -> Reply:
    router = _router(stack)
    if not words or words[0] == "list":
        with stack.lock:
            return router.ruleset.list_ruleset(now=stack.now())
    if words[0] == "load" and len(words) == 2:
        router.apply(words[1])  # as nft -f; NftError: the old ruleset stays, the error goes back
        return ""
    if words == ["monitor", "trace"]:
        return _stream(stack, router.trace_monitor.subscribers, lambda line: line)
    raise CommandError("nft: list | load PATH | monitor trace")


def _lb(stack, words: List[str]) -> Reply:
    from .lb.control import answer as lb_answer
    return lb_answer(stack, words)


def _qos(stack, words: List[str]) -> Reply:
    from .qos.control import answer as qos_answer  # says so when the stack shapes nothing
    return qos_answer(stack, words)


HANDLERS: Dict[str, Callable[[object, List[str]], Reply]] = {"route": _route, "conntrack": _conntrack, "nft": _nft,
                                                             "lb": _lb, "qos": _qos}


def answer(stack, command: str):
    """The reply to ``command`` when it is one of these, else None."""
    words = command.split()
    handler = HANDLERS.get(words[0]) if words else None
    if handler is None:
        return None
    try:
        return handler(stack, words[1:])
    except ValueError as exc:  # CommandError, NftError, RouteError: the message is the answer
        return f"error: {exc}\n"
