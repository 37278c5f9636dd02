"""Build a Stack from a TOML file (or the dict it parses to), with errors that name the key.

    [stack]
    forwarding = false
    [[interface]]
    tap = "pns0"                  # or: interface = "veth1"  (AF_PACKET on an existing NIC)
    address = "10.0.0.2/24"       # or a list of CIDRs
    host_address = "10.0.0.1/24"  # TAP only: the kernel side's address
    mtu = 1500
    offload = true                # TAP only: checksum and segmentation offload (default: on unless forwarding)
    mac = "02:00:00:00:00:02"
    promiscuous = true            # AF_PACKET only
    pcap = "stack.pcap"           # record this interface's frames
    [[route]]
    destination = "0.0.0.0/0"
    gateway = "10.0.0.1"
    [services]
    icmp_echo = true
    udp_echo = 7                  # each service: a port, or false to turn it off
    tcp_echo = 7
    discard = 9
    http = 80
    max_connections = 1024        # per TCP service; beyond it new connections are reset
    idle_timeout = 300.0          # seconds of silence before echo/discard close a connection
    http_keepalive_timeout = 5.0  # HTTP: seconds between requests on a kept-alive connection
    http_request_timeout = 60.0   # HTTP: seconds to read a request header, or between reads/writes
"""

from __future__ import annotations

import os
from typing import Any, Dict

try:
    import tomllib
except ImportError:  # Python < 3.11 (PyPy 3.9)
    import tomli as tomllib

from . import config_router
from .configcheck import check_keys
from .wire.addr import ip_to_int, mac_to_bytes, parse_cidr, prefix_mask


class ConfigError(ValueError):
    """A configuration problem, with a message that names the file and key."""


_STACK_KEYS = {"forwarding", "busy_poll_us"}
_INTERFACE_KEYS = {"tap", "interface", "name", "address", "host_address", "mtu", "mac", "promiscuous", "pcap",
                   "offload"}
_SERVICE_KEYS = {"icmp_echo", "udp_echo", "tcp_echo", "discard", "http", "max_connections", "idle_timeout",
                 "http_keepalive_timeout", "http_request_timeout"}
_LIMIT_KEYS = {"max_connections": "max_connections", "idle_timeout": "idle_timeout",
               "http_keepalive_timeout": "keepalive_timeout", "http_request_timeout": "request_timeout"}
SERVICE_PORTS = {"udp_echo": 7, "tcp_echo": 7, "discard": 9, "http": 80}
_TOP_KEYS = {"stack", "interface", "route", "rule", "routing", "netfilter", "services", "dns", "gateway", "monitoring",
             "ids", "lb", "qos"}


def load(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file in UTF-8") from None


def _check_keys(table: dict, allowed: set, where: str) -> None:
    check_keys(table, allowed, where, ConfigError)


def _cidrs(value, where: str, many: bool = True) -> list:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values) \
            or (len(values) > 1 and not many):
        kind = "a CIDR string like '10.0.0.2/24'" + (" or a list of them" if many else "")
        raise ConfigError(f"{where}: expected {kind}, not {value!r}")
    for cidr in values:
        try:
            parse_cidr(cidr)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return values


def _host_cidrs(value, where: str, many: bool = True) -> list:
    """CIDRs that name a host on a subnet: not 0.0.0.0, not multicast, not the subnet's broadcast."""
    values = _cidrs(value, where, many)
    for cidr in values:
        address, length = parse_cidr(cidr)
        mask = prefix_mask(length)
        if address == 0 or length == 0 or address >> 28 >= 14 or (length < 31 and address | mask == 0xFFFFFFFF):
            raise ConfigError(f"{where}: {cidr!r} is not a usable host address")
    return values


def _ip(value, where: str) -> str:
    try:
        ip_to_int(value if isinstance(value, str) else "")
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an IPv4 address") from None
    return value


def _typed(table: dict, key: str, kind, where: str, default=None):
    value = table.get(key, default)
    if key in table and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        names = {str: "a string", bool: "true or false", int: "an integer"}
        raise ConfigError(f"{where}: {key} must be {names.get(kind, kind.__name__)}, not {value!r}")
    return value


def validate(config: Dict[str, Any], source: str = "config", base_dir: str = ".") -> Dict[str, Any]:
    """Check the whole configuration before anything is created; raise ConfigError."""
    _check_keys(config, _TOP_KEYS, source)
    _check_keys(config.get("stack", {}), _STACK_KEYS, f"{source}: [stack]")
    _typed(config.get("stack", {}), "forwarding", bool, f"{source}: [stack]")
    busy = config.get("stack", {}).get("busy_poll_us", 0)
    if isinstance(busy, bool) or not isinstance(busy, (int, float)) or not 0 <= busy <= 1_000_000:
        raise ConfigError(f"{source}: [stack] busy_poll_us must be microseconds within 0..1000000, not {busy!r}")
    interfaces = config.get("interface", [])
    if not isinstance(interfaces, list):
        raise ConfigError(f"{source}: 'interface' must be an array of tables ([[interface]])")
    if not interfaces:
        raise ConfigError(f"{source}: no interface: add an [[interface]] table with 'tap' or 'interface'")
    names: Dict[str, str] = {}
    addresses: Dict[int, str] = {}
    for i, table in enumerate(interfaces):
        where = f"{source}: interface #{i + 1}"
        _check_keys(table, _INTERFACE_KEYS, where)
        if ("tap" in table) == ("interface" in table):
            raise ConfigError(f"{where}: give exactly one of 'tap' (create a TAP) or 'interface' (AF_PACKET)")
        for key in ("tap", "interface", "name"):
            value = _typed(table, key, str, where)
            if key in table and not 0 < len(value.encode()) <= 15:
                raise ConfigError(f"{where}: {key} {value!r} must be 1 to 15 bytes long")
        name = table.get("name") or table.get("tap") or table.get("interface")
        if name in names:
            raise ConfigError(f"{where}: the name {name!r} is used by {names[name]} already")
        names[name] = f"interface #{i + 1}"
        if "address" not in table:
            raise ConfigError(f"{where}: 'address' is required (a CIDR like '10.0.0.2/24')")
        for cidr in _host_cidrs(table["address"], f"{where}: address"):
            address = parse_cidr(cidr)[0]
            if address in addresses:
                raise ConfigError(f"{where}: address {cidr} is on {addresses[address]} already")
            addresses[address] = f"interface #{i + 1}"
        if "host_address" in table:
            if "tap" not in table:
                raise ConfigError(f"{where}: host_address applies to a TAP only")
            host = _host_cidrs(table["host_address"], f"{where}: host_address", many=False)[0]
            if parse_cidr(host)[0] in addresses:
                raise ConfigError(f"{where}: host_address {host} is the stack's own address; give the kernel another")
        mtu = table.get("mtu", 1500)
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not 68 <= mtu <= 65535:
            raise ConfigError(f"{where}: mtu must be an integer within 68..65535, not {mtu!r}")
        if "mac" in table:
            try:
                mac = mac_to_bytes(table["mac"])
            except (ValueError, AttributeError):
                raise ConfigError(f"{where}: mac {table['mac']!r} is not a MAC address") from None
            if mac[0] & 1 or not any(mac):
                raise ConfigError(f"{where}: mac {table['mac']!r} is not a unicast address")
        _typed(table, "promiscuous", bool, where)
        if _typed(table, "offload", bool, where) is not None and "tap" not in table:
            raise ConfigError(f"{where}: offload applies to a TAP only")
        _typed(table, "pcap", str, where)
    try:
        if "ids" in config:
            from .ids.config import validate as validate_ids
            validate_ids(config["ids"], source)
        config_router.validate(config, source, names)
        from .lb.config import validate as check_lb
        check_lb(config, source)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    ruleset = config.get("netfilter", {}).get("ruleset")
    if ruleset is not None:  # a broken ruleset stops the stack before any device exists
        from .netfilter import nft
        path = os.path.join(base_dir, ruleset)
        try:
            nft.load(path)
        except nft.NftError as exc:
            raise ConfigError(f"{source}: [netfilter] ruleset:\n{exc}") from None
    if "gateway" in config:
        _ip(config["gateway"], f"{source}: gateway")
    services = config.get("services", {})
    _check_keys(services, _SERVICE_KEYS, f"{source}: [services]")
    if not isinstance(services.get("icmp_echo", True), bool):
        raise ConfigError(f"{source}: [services] icmp_echo must be true or false")
    for name, default in SERVICE_PORTS.items():
        port = services.get(name, default)
        if port is not False and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
            raise ConfigError(f"{source}: [services] {name} must be a port number or false")
    try:
        service_limits(services)
    except ValueError as exc:
        raise ConfigError(f"{source}: [services] {exc}") from None
    if "monitoring" in config:
        from .monitor.config import parse as check_monitoring
        try:
            check_monitoring(config["monitoring"], f"{source}: [monitoring]", base_dir)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if "qos" in config:
        from .qos.config import parse as check_qos
        try:
            check_qos(config["qos"], f"{source}: [qos]", list(names))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return config


def service_limits(services: dict):
    """The ``ServiceLimits`` that [services] asks for (defaults like common servers')."""
    from .services.guard import ServiceLimits
    try:
        return ServiceLimits(**{field: services[key] for key, field in _LIMIT_KEYS.items() if key in services})
    except ValueError as exc:  # name the key as the file spells it
        message = str(exc)
        for key, field in _LIMIT_KEYS.items():
            if message.startswith(field + " "):
                message = key + message[len(field):]
        raise ValueError(message) from None


def build_stack(config, base_dir: str = ".", source: str = "config"):
    """A Stack from a TOML path or dict. Devices are created only after the whole file checks out."""
    from .link.pcap import PcapDevice
    from .services import discard, http, tcp_echo, udp_echo
    from .stack import Stack

    if isinstance(config, (str, os.PathLike)):
        source = str(config)
        base_dir = os.path.dirname(os.path.abspath(source))
        config = load(source)
    validate(config, source, base_dir)
    dns_server = None
    if "dns" in config:  # zones are read before any device exists: a bad one stops nothing half-made
        from .dns.config import build_from_config
        try:
            dns_server = build_from_config(config["dns"], base_dir)
        except (ValueError, OSError, TypeError, IndexError, AttributeError, OverflowError) as exc:
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"{source}: {message}") from None
    stack = Stack(forwarding=bool(config.get("stack", {}).get("forwarding", False)),
                  echo_reply=bool(config.get("services", {}).get("icmp_echo", True)),
                  busy_poll=config.get("stack", {}).get("busy_poll_us", 0) / 1e6)
    try:
        forwarding = bool(config.get("stack", {}).get("forwarding", False))
        for table in config.get("interface", []):
            device = _make_device(table, forwarding)
            if table.get("pcap"):
                device = PcapDevice(device, os.path.join(base_dir, table["pcap"]))
            stack.add_interface(device, table.get("address"), mac=table.get("mac"), name=table.get("name"),
                                mtu=table.get("mtu"))
        config_router.build(stack, config, base_dir)
        if "ids" in config:
            from .ids.config import build as build_ids
            build_ids(stack, config["ids"], base_dir, source)
        from .lb.config import build as build_lb
        build_lb(stack, config, source)
        if config.get("gateway"):
            stack.set_default_gateway(config["gateway"])
        services = config.get("services", {})
        installers = {"udp_echo": udp_echo.install, "tcp_echo": tcp_echo.install, "discard": discard.install,
                      "http": http.install}
        limits = service_limits(services)
        for name, default in SERVICE_PORTS.items():
            port = services.get(name, default)
            if port:
                if name == "udp_echo":
                    installers[name](stack, port)
                else:
                    installers[name](stack, port, limits=limits)
        if dns_server is not None:
            from .dns.stackio import serve_on_stack
            serve_on_stack(stack, dns_server)  # UDP and TCP port 53; the resolver runs in the stack's loop
        if "monitoring" in config:
            from .monitor.config import build as build_monitor
            build_monitor(stack, config["monitoring"], base_dir, source)
        if "qos" in config:
            from .qos.config import build as build_qos
            build_qos(stack, config["qos"], f"{source}: [qos]")
    except (ValueError, OSError, TypeError, IndexError, AttributeError, OverflowError) as exc:
        # Validation above covers the stack's own keys; this catches what a section it hands on
        # (such as [dns]) let through, so a bad file still ends in one line, never a traceback.
        stack.close()
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if not message.startswith(f"{source}: "):  # some sections name the file themselves
            message = f"{source}: {message}"
        raise ConfigError(message) from None
    return stack


def _make_device(table: dict, forwarding: bool = False):
    from .link.packet import PacketDevice
    from .link.tap import TapDevice

    if "tap" in table:
        # Offloads hand over 64 KB TCP segments that a router could not forward: off when forwarding.
        offload = table.get("offload", not forwarding)
        return TapDevice(table["tap"], mtu=table.get("mtu", 1500), host_address=table.get("host_address"),
                         offload=offload)
    return PacketDevice(table["interface"], promiscuous=table.get("promiscuous", True))
