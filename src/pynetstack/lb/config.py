"""The ``[lb]`` section of the stack's TOML: virtual services as ipvsadm would set them up.

    [lb]
    timeouts = { ESTABLISHED = 900, FIN_WAIT = 120, UDP = 300 }   # ipvsadm --set tcp tcpfin udp

    [[lb.service]]
    protocol = "tcp"                 # or "udp"
    address = "10.0.9.100"           # the virtual address (routed to, or held by, this stack)
    port = 80
    scheduler = "wlc"                # rr wrr lc wlc sed nq sh dh mh
    forward = "nat"                  # or "dr" (direct routing)
    persistence = 0                  # seconds, as ipvsadm -p (0: none)
    netmask = "255.255.255.255"      # persistence granularity, as ipvsadm -M
    flags = []                       # sh-port, sh-fallback, mh-port, mh-fallback
    health = { type = "http", path = "/", expect = 200, interval = 2, timeout = 2, rise = 2, fall = 3 }

    [[lb.service.server]]
    address = "10.0.1.2"
    port = 80
    weight = 1
"""

from __future__ import annotations

from typing import List

from ..configcheck import check_keys
from .health import HealthCheckConfig
from .service import LbError, VirtualService

_LB_KEYS = {"service", "timeouts", "max_connections"}
_SERVICE_KEYS = {"protocol", "address", "port", "scheduler", "forward", "persistence", "netmask", "flags",
                 "health", "server", "expire_quiescent"}
_SERVER_KEYS = {"address", "port", "weight", "forward", "u_threshold", "l_threshold"}
_HEALTH_KEYS = {"type", "port", "path", "expect", "interval", "timeout", "rise", "fall", "error_limit", "host"}


def _keys(table, allowed, where: str) -> None:
    check_keys(table, allowed, where, LbError)


def parse(section: dict, where: str = "[lb]") -> dict:
    """Check ``[lb]`` and build its objects (not yet on a stack); raise LbError naming the place."""
    _keys(section, _LB_KEYS, where)
    services = section.get("service", [])
    if not isinstance(services, list):
        raise LbError(f"{where}: 'service' must be an array of tables ([[lb.service]])")
    built: List[VirtualService] = []
    seen = {}
    for i, table in enumerate(services):
        here = f"{where} service #{i + 1}"
        _keys(table, _SERVICE_KEYS, here)
        for key in ("address", "port"):
            if key not in table:
                raise LbError(f"{here}: '{key}' is required")
        try:
            service = VirtualService(table.get("protocol", "tcp"), table["address"], table["port"],
                                     scheduler=table.get("scheduler", "wlc"),
                                     persistence=table.get("persistence", 0),
                                     netmask=table.get("netmask", "255.255.255.255"),
                                     forward=table.get("forward", "nat"), flags=table.get("flags", ()),
                                     expire_quiescent=bool(table.get("expire_quiescent", False)))
            if service.key in seen:
                raise LbError(f"the same service as {seen[service.key]}")
            seen[service.key] = here
            if "health" in table:
                _keys(table["health"], _HEALTH_KEYS, f"{here} health")
                service.health = HealthCheckConfig(**table["health"])
        except (LbError, TypeError) as exc:
            raise LbError(f"{here}: {exc}") from None
        servers = table.get("server", [])
        if not isinstance(servers, list) or not servers:
            raise LbError(f"{here}: give its real servers as [[lb.service.server]] tables")
        for j, server in enumerate(servers):
            there = f"{here} server #{j + 1}"
            _keys(server, _SERVER_KEYS, there)
            if "address" not in server:
                raise LbError(f"{there}: 'address' is required")
            try:
                service.add_server(server["address"], server.get("port"), server.get("weight", 1),
                                   server.get("forward"), server.get("u_threshold", 0), server.get("l_threshold", 0))
            except LbError as exc:
                raise LbError(f"{there}: {exc}") from None
        built.append(service)
    timeouts = section.get("timeouts", {})
    if not isinstance(timeouts, dict):
        raise LbError(f"{where}: timeouts must be a table of state = seconds")
    from .conn import ConnectionTable
    try:
        ConnectionTable(timeouts)
    except ValueError as exc:
        raise LbError(f"{where}: {exc}") from None
    max_connections = section.get("max_connections", 1 << 20)
    if not isinstance(max_connections, int) or isinstance(max_connections, bool) or max_connections < 1:
        raise LbError(f"{where}: max_connections must be a positive integer")
    return {"services": built, "timeouts": timeouts, "max_connections": max_connections}


def validate(config: dict, source: str = "config") -> None:
    if "lb" in config:
        parse(config["lb"], f"{source}: [lb]")


def build(stack, config: dict, source: str = "config"):
    """Put the ``[lb]`` services on ``stack`` (nothing if the section is absent)."""
    if "lb" not in config:
        return None
    from .function import install_lb
    parsed = parse(config["lb"], f"{source}: [lb]")
    return install_lb(stack, parsed["services"], parsed["timeouts"], parsed["max_connections"])
