"""``pynetstack qos show [dev IFACE]``: a running stack's egress classes, like ``tc -s class show``."""

from __future__ import annotations

import sys


def _qos(args) -> int:
    from ..control import query
    words = list(args.words) or ["show"]
    reply = query("qos " + " ".join(words), args.control)
    if reply.startswith("error: "):
        print(f"pynetstack: {reply[7:]}", end="", file=sys.stderr)
        return 1
    print(reply, end="")
    return 0


def register(sub) -> None:
    qos = sub.add_parser("qos", help="a running stack's QoS classes: show [dev IFACE] (like tc -s class show)")
    qos.add_argument("words", nargs="*", metavar="show [dev IFACE] | json")
    qos.add_argument("--control", metavar="PATH", help="the stack's control socket (default: the only one)")
    qos.set_defaults(func=_qos)
