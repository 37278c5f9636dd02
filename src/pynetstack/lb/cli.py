"""``pynetstack lb``: a running stack's virtual services, like ``ipvsadm``.

    pynetstack lb list [--stats | --rate]
    pynetstack lb add-server 10.0.9.100:80 10.0.1.4:80 --weight 2
    pynetstack lb edit-server 10.0.9.100:80 10.0.1.4:80 --weight 0      (drain)
    pynetstack lb del-server 10.0.9.100:80 10.0.1.4:80
"""

from __future__ import annotations

import sys


def _run(args) -> int:
    from ..routercli import ask
    if args.action == "list":
        command = "lb list" + (" --stats" if args.stats else " --rate" if args.rate else "")
    else:
        if not args.service or not args.server:
            print(f"pynetstack: lb {args.action}: give the service (VIP:PORT) and the server (RIP:PORT)",
                  file=sys.stderr)
            return 2
        command = f"lb {args.action} {args.protocol} {args.service} {args.server}"
        if args.weight is not None:
            command += f" weight {args.weight}"
    return ask(args, command)


def register(sub) -> None:
    lb = sub.add_parser("lb", help="a running stack's load balancer: list (like ipvsadm -Ln), add/edit/del servers")
    lb.add_argument("action", nargs="?", default="list", choices=("list", "add-server", "edit-server", "del-server"))
    lb.add_argument("service", nargs="?", help="the virtual service, VIP:PORT")
    lb.add_argument("server", nargs="?", help="the real server, ADDRESS:PORT")
    lb.add_argument("--protocol", default="tcp", choices=("tcp", "udp"))
    lb.add_argument("--weight", type=int, help="the server's weight (0 drains it)")
    rate = lb.add_mutually_exclusive_group()
    rate.add_argument("--stats", action="store_true", help="packet and byte counters, like ipvsadm -Ln --stats")
    rate.add_argument("--rate", action="store_true", help="rates, like ipvsadm -Ln --rate")
    lb.add_argument("--control", metavar="PATH", help="the stack's control socket (default: the only one running)")
    lb.set_defaults(func=_run)
