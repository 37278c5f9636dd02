"""``lb`` on the control socket: list like ``ipvsadm -Ln`` (``--stats``, ``--rate``) and change
servers at run time like ``ipvsadm -a/-e/-d``.

    lb list [--stats|--rate]
    lb add-server  [tcp|udp] VIP:PORT RIP:PORT [weight N]
    lb edit-server [tcp|udp] VIP:PORT RIP:PORT weight N        (weight 0 drains)
    lb del-server  [tcp|udp] VIP:PORT RIP:PORT
"""

from __future__ import annotations

from typing import List

from ..wire.addr import ip_to_str
from .service import FORWARD_NAMES, PROTOCOL_NAMES, LbError

HEADER = "IP Virtual Server version 1.2.1 (size=4096) (pynetstack)\n"
USAGE = ("lb: list [--stats|--rate] | add-server SERVICE RIP:PORT [weight N] | edit-server SERVICE RIP:PORT "
         "weight N | del-server SERVICE RIP:PORT   (SERVICE: [tcp|udp] VIP:PORT)")


def _service_title(service) -> str:
    text = f"{PROTOCOL_NAMES[service.protocol]}  {ip_to_str(service.vip)}:{service.port}"
    return text


def format_list(lb, mode: str = "") -> str:
    """The table ``ipvsadm -Ln`` prints (``--stats`` or ``--rate`` as ``mode``)."""
    out = [HEADER]
    if mode == "stats":
        out.append("Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
                   "  -> RemoteAddress:Port\n")
    elif mode == "rate":
        out.append("Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
                   "  -> RemoteAddress:Port\n")
    else:
        out.append("Prot LocalAddress:Port Scheduler Flags\n"
                   "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
    for service in lb.service_list():
        title = _service_title(service)
        if mode == "stats":
            out.append(f"{title:<33}" + "".join(f" {v:>8}" for v in service.stats.totals()) + "\n")
        elif mode == "rate":
            out.append(f"{title:<33}" + "".join(f" {round(v):>8}" for v in service.stats.rates) + "\n")
        else:
            line = f"{title} {service.scheduler.name}"
            if service.flags:
                line += f" ({','.join(service.flags)})"
            if service.persistence:
                line += f" persistent {service.persistence}"
                if service.netmask != 0xFFFFFFFF:
                    line += f" mask {ip_to_str(service.netmask)}"
            out.append(line + "\n")
        for server in service.servers:
            name = f"{ip_to_str(server.addr)}:{server.port}"
            if mode == "stats":
                out.append(f"  -> {name:<28}" + "".join(f" {v:>8}" for v in server.stats.totals()) + "\n")
            elif mode == "rate":
                out.append(f"  -> {name:<28}" + "".join(f" {round(v):>8}" for v in server.stats.rates) + "\n")
            else:
                state = "" if server.up else "   (down: health check)"
                out.append(f"  -> {name:<28} {FORWARD_NAMES[server.forward]:<7} {server.weight:<6} "
                           f"{server.active:<10} {server.inactive:<10}".rstrip() + state + "\n")
    return "".join(out)


def _server_words(lb, words: List[str]):
    """SERVICE RIP:PORT [weight N] -> (service, address, port, weight or None)."""
    if words and words[0].lower() in ("tcp", "udp"):
        service_text, words = " ".join(words[:2]), words[2:]
    else:
        service_text, words = (words[0] if words else ""), words[1:]
    service = lb.find_service(service_text)
    if not words:
        raise LbError("give the real server as ADDRESS:PORT")
    try:
        address, port = words[0].rsplit(":", 1)
        port = int(port)
    except ValueError:
        raise LbError(f"a real server is ADDRESS:PORT, not {words[0]!r}") from None
    weight = None
    rest = words[1:]
    if rest:
        if len(rest) != 2 or rest[0] != "weight":
            raise LbError(f"expected 'weight N', not {' '.join(rest)!r}")
        try:
            weight = int(rest[1])
        except ValueError:
            raise LbError(f"weight must be an integer, not {rest[1]!r}") from None
    return service, address, port, weight


def answer(stack, words: List[str]) -> str:
    lb = getattr(stack, "lb", None)
    if lb is None:
        raise LbError("this stack runs no load balancer ([lb] in the config)")
    what = words[0] if words else "list"
    if what == "list":
        mode = ""
        if "--stats" in words[1:]:
            mode = "stats"
        elif "--rate" in words[1:]:
            mode = "rate"
        with stack.lock:
            return format_list(lb, mode)
    if what in ("add-server", "edit-server", "del-server"):
        with stack.lock:
            service, address, port, weight = _server_words(lb, words[1:])
            if what == "add-server":
                service.add_server(address, port, 1 if weight is None else weight)
            elif what == "edit-server":
                if weight is None:
                    raise LbError("edit-server needs 'weight N'")
                service.edit_server(address, port, weight)
            else:
                service.remove_server(address, port)
        stack.wake()
        return ""
    raise LbError(USAGE)
