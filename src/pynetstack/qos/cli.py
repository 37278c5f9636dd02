"""``pynetstack qos show [dev IFACE]``: a running stack's egress classes, like ``tc -s class show``."""

from __future__ import annotations



def _qos(args) -> int:
    from ..routercli import ask
    return ask(args, "qos " + " ".join(list(args.words) or ["show"]))


def register(sub) -> None:
    qos = sub.add_parser("qos", help="a running stack's QoS classes: show [dev IFACE] (like tc -s class show)")
    qos.add_argument("words", nargs="*", metavar="show [dev IFACE] | json")
    qos.add_argument("--control", metavar="PATH", help="the stack's control socket (default: the only one)")
    qos.set_defaults(func=_qos)
