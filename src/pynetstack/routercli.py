"""``pynetstack route``, ``pynetstack conntrack`` and ``pynetstack nft``: the router's commands,
spoken like iproute2, conntrack-tools and nft, answered by a running stack (router_control)."""

from __future__ import annotations

import os
import sys


# commands that change a running stack (the others only read it)
CHANGING = ("conntrack flush", "nft load", "lb add-server", "lb edit-server", "lb del-server")


def choose_stack(control, command: str) -> str:
    """The control socket ``command`` goes to.  With no ``--control`` and no stack in this network
    namespace, find_socket picks the one running elsewhere: say so on stderr, and refuse a command
    that would change it (flushing another namespace's conntrack table by mistake)."""
    from .control import describe_socket, find_socket
    path = find_socket(control)
    if control is None:
        describe = describe_socket(path)
        if "ANOTHER network namespace" in describe:
            if command.startswith(CHANGING):
                raise OSError(1, f"no stack runs in this network namespace, and '{command.split(' /')[0]}' would "
                                 f"change {describe}: give --control {path} if that is the one")
            print(f"# {describe}", file=sys.stderr, flush=True)
    return path


def ask(args, command: str, stream: bool = False) -> int:
    """Send ``command`` to the stack at ``args.control``; print the reply (an error on stderr)."""
    from .control import query
    path = choose_stack(args.control, command)
    if stream:
        try:
            query(command, path, timeout=None, out=sys.stdout)
        except KeyboardInterrupt:
            pass
        return 0
    reply = query(command, path)
    if reply.startswith("error: "):
        print(f"pynetstack: {reply[7:]}", end="", file=sys.stderr)
        return 1
    print(reply, end="")
    return 0


def _route(args) -> int:
    words = args.words or ["show"]
    if words[0] not in ("show", "list", "rules", "get"):
        print("pynetstack: route: show [table T] | rules | get ADDR [from S] [iif I] [mark M] [ipproto P] "
              "[sport N] [dport N]", file=sys.stderr)
        return 2
    if words[0] == "list":
        words[0] = "show"
    return ask(args, "route " + " ".join(words))


def _conntrack(args) -> int:
    if args.events:
        return ask(args, "conntrack events", stream=True)
    what = "stats" if args.stats else "flush" if args.flush else "list"
    return ask(args, f"conntrack {what}")


def _nft(args) -> int:
    from .netfilter import nft
    if args.file:
        path = os.path.abspath(args.file)
        try:
            nft.load(path)  # errors name file, line and column, as nft's do
        except nft.NftError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        if args.check:
            return 0
        return ask(args, f"nft load {path}")
    if args.check:
        print("pynetstack: nft: -c needs -f FILE", file=sys.stderr)
        return 2
    if args.words == ["monitor", "trace"]:
        return ask(args, "nft monitor trace", stream=True)
    if args.words[:2] not in (["list", "ruleset"], []):
        print("pynetstack: nft: list ruleset | monitor trace | -f FILE | -c -f FILE", file=sys.stderr)
        return 2
    return ask(args, "nft list")


def register(sub) -> None:
    route = sub.add_parser("route", help="a running stack's routes: show, rules, get ADDR (like ip route)")
    route.add_argument("words", nargs="*", metavar="show|rules|get ADDR [from S] [iif I] [ipproto P] [dport N]")
    route.set_defaults(func=_route)

    ct = sub.add_parser("conntrack", help="a running stack's connection table (like conntrack -L/-E/-S/-F)")
    mode = ct.add_mutually_exclusive_group()
    mode.add_argument("-L", "--dump", action="store_true", help="list the entries (default)")
    mode.add_argument("-E", "--event", dest="events", action="store_true", help="print events as they happen")
    mode.add_argument("-S", "--stats", action="store_true", help="statistics")
    mode.add_argument("-F", "--flush", action="store_true", help="empty the table")
    ct.set_defaults(func=_conntrack)

    nf = sub.add_parser("nft", help="a running stack's nftables ruleset: list ruleset, monitor trace, -f FILE, "
                                    "-c -f FILE")
    nf.add_argument("-f", "--file", metavar="FILE", help="replace the ruleset with FILE, atomically")
    nf.add_argument("-c", "--check", action="store_true", help="only check FILE (no stack needed)")
    nf.add_argument("words", nargs="*", metavar="list ruleset | monitor trace")
    nf.set_defaults(func=_nft)

    for parser in (route, ct, nf):
        parser.add_argument("--control", metavar="PATH", help="the stack's control socket (default: the only one)")
