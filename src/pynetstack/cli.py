"""The ``pynetstack`` command: up, capture, demo, dns."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from typing import List, Optional

from . import __version__, pypy_gc
from .config import ConfigError, build_stack, validate


def _up(args) -> int:
    if args.duration is not None and not (0 < args.duration < float("inf")):
        raise ConfigError(f"--duration must be a positive number of seconds, not {args.duration}")
    if args.config:
        given = [flag for flag, value in (("--tap", args.tap), ("--interface", args.interface),
                                          ("--address", args.address), ("--gateway", args.gateway),
                                          ("--host-address", args.host_address), ("--mtu", args.mtu),
                                          ("--mac", args.mac), ("--pcap", args.pcap),
                                          ("--no-offload", args.no_offload or None)) if value is not None]
        if given:
            raise ConfigError(f"--config FILE describes the whole stack: put {', '.join(given)} in the file instead")
        if args.ruleset or args.busy_poll is not None:
            from .config import load
            config = load(args.config)
            if args.ruleset:
                config.setdefault("netfilter", {})["ruleset"] = os.path.abspath(args.ruleset)
            if args.busy_poll is not None:
                config.setdefault("stack", {})["busy_poll_us"] = args.busy_poll
            stack = build_stack(config, base_dir=os.path.dirname(os.path.abspath(args.config)), source=args.config)
        else:
            stack = build_stack(args.config)
    else:
        if not (args.tap or args.interface):
            raise ConfigError("say which device to use: --tap NAME, --interface NAME or --config FILE")
        if args.tap and args.interface:
            raise ConfigError("--tap and --interface exclude each other")
        table = {"tap": args.tap} if args.tap else {"interface": args.interface}
        if args.address:
            table["address"] = args.address
        if args.host_address:
            table["host_address"] = args.host_address
        if args.mtu is not None:
            table["mtu"] = args.mtu
        if args.mac:
            table["mac"] = args.mac
        if args.pcap:
            table["pcap"] = args.pcap
        if args.no_offload:
            if not args.tap:
                raise ConfigError("--no-offload applies to --tap only")
            table["offload"] = False
        config = {"interface": [table],
                  "services": {"icmp_echo": not args.no_icmp_echo, "udp_echo": False if args.no_udp_echo else 7,
                               "tcp_echo": False if args.no_tcp_echo else 7,
                               "discard": False if args.no_discard else 9,
                               "http": False if args.no_http else 80}}
        if args.gateway:
            config["gateway"] = args.gateway
        if args.ruleset:
            config["netfilter"] = {"ruleset": os.path.abspath(args.ruleset)}
        if args.busy_poll is not None:
            config["stack"] = {"busy_poll_us": args.busy_poll}
        try:
            stack = build_stack(validate(config, "command line"), base_dir=".", source="command line")
        except ConfigError as exc:
            raise ConfigError(_as_flags(str(exc))) from None
    from .control import ControlServer, default_path
    # From here SIGTERM ends the run as Ctrl-C does, even before the loop runs: the stack is
    # closed (its control socket removed) and the closing report printed.
    previous = signal.signal(signal.SIGTERM, _interrupted)
    started = time.monotonic()
    control = None
    try:
        control = ControlServer(stack, args.control or default_path(next(iter(stack.interfaces))))
        if args.trace is not None:
            from .net.trace import PrintTracer
            stack.host.trace(PrintTracer(match=args.trace or None))
        for iface in stack.interfaces.values():
            print(f"pynetstack {__version__}: up on {iface.describe()}", flush=True)
            kernel_name = _down_kernel_interface(iface.device)
            if kernel_name:  # AF_PACKET sees nothing on a link that is down, and says nothing either
                print(f"pynetstack: warning: {kernel_name} is down: no frame will arrive until "
                      f"'ip link set {kernel_name} up'", file=sys.stderr, flush=True)
        tcp_ports = sorted(port for _, port in stack.tcp.listeners)
        print(f"services: ICMP echo {'on' if stack.host.echo_reply else 'off'}; UDP ports "
              f"{', '.join(str(p) for _, p in sorted(stack.udp.endpoints)) or 'none'}; TCP ports "
              f"{', '.join(str(p) for p in tcp_ports) or 'none'}", flush=True)
        print(f"control socket {control.path} (pynetstack status | connections)", flush=True)
        if args.duration:
            stack.run(duration=args.duration)
        else:
            stack.run_until_signal()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if control is not None:
            control.close()
        stack.close()
    status = stack.status()
    print(f"stopped after {time.monotonic() - started:.1f}s; counters {status['counters']}; drops {status['drops']}",
          flush=True)
    return 0


def _interrupted(signum, frame):
    """A SIGTERM handler: stop as Ctrl-C stops (KeyboardInterrupt), through every finally."""
    raise KeyboardInterrupt


def _down_kernel_interface(device) -> Optional[str]:
    """The name of the kernel interface under an AF_PACKET device when it is administratively down."""
    from .link.packet import PacketDevice
    while not isinstance(device, PacketDevice) and getattr(device, "inner", None) is not None:
        device = device.inner  # a pcap recorder wraps the device
    if not isinstance(device, PacketDevice):
        return None
    try:
        with open(f"/sys/class/net/{device.name}/flags") as handle:
            return None if int(handle.read(), 16) & 1 else device.name  # IFF_UP
    except (OSError, ValueError):
        return None


def _is_loopback(ifname: str) -> bool:
    try:
        with open(f"/sys/class/net/{ifname}/type") as handle:
            return int(handle.read()) == 772  # ARPHRD_LOOPBACK
    except (OSError, ValueError):
        return False


def _capture(args) -> int:
    import select

    from .link.packet import PacketDevice
    from .link.pcap import PcapWriter
    from .wire.describe import summary
    from .wire.dissect import dissect

    if args.count is not None and args.count < 1:
        raise ConfigError(f"capture: --count must be at least 1, not {args.count}")
    if args.timeout is not None and not 0 < args.timeout < float("inf"):
        raise ConfigError(f"capture: --timeout must be a positive number of seconds, not {args.timeout}")
    # On the loopback device the kernel shows every packet twice, going out and coming in;
    # like libpcap, keep only the incoming copy.  Elsewhere both directions are wanted.
    device = PacketDevice(args.interface, promiscuous=args.promiscuous,
                          include_outgoing=not _is_loopback(args.interface), as_captured=True)
    try:
        writer = PcapWriter(args.write) if args.write else None
    except OSError:  # PcapWriter's message names the file
        device.close()
        raise
    old_sigterm = signal.signal(signal.SIGTERM, _interrupted)  # end like Ctrl-C: the finally closes the file
    seen = 0
    end = time.monotonic() + args.timeout if args.timeout else None
    try:
        while args.count is None or seen < args.count:
            wait = None if end is None else max(0.0, end - time.monotonic())
            if end is not None and wait == 0.0:
                break
            ready, _, _ = select.select([device.fileno()], [], [], wait)
            if not ready:
                continue
            for frame in device.receive(time.monotonic()):
                seen += 1
                stamp = time.time()
                if writer:
                    writer.write(frame, stamp)
                line = dissect(frame) if args.verbose else summary(frame)
                print(f"{time.strftime('%H:%M:%S', time.localtime(stamp))}.{int(stamp % 1 * 1e6):06d} {line}",
                      flush=True)
                if args.count is not None and seen >= args.count:
                    break
            if writer:
                writer.flush()  # what was printed is in the file too, whatever ends the capture
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old_sigterm)
        device.close()
        if writer:
            writer.close()
    print(f"{seen} frames captured" + (f", written to {args.write}" if writer else ""), file=sys.stderr)
    return 0


# what the configuration's checks call a setting, and the flag that gave it on the command line
_FLAGS = (("interface #1: mtu", "--mtu"), ("interface #1: address", "--address"),
          ("interface #1: host_address", "--host-address"), ("interface #1: mac", "--mac"),
          ("interface #1: tap", "--tap"), ("interface #1: interface", "--interface"),
          ("interface #1: pcap", "--pcap"), ("[netfilter] ruleset", "--ruleset"),
          ("[stack] busy_poll_us", "--busy-poll"), ("gateway", "--gateway"))


def _as_flags(message: str) -> str:
    """A configuration error about settings that came from flags, worded with the flags."""
    prefix = "command line: "
    if not message.startswith(prefix):
        return message
    rest = message[len(prefix):]
    for setting, flag in _FLAGS:
        if rest.startswith(setting):
            return prefix + flag + rest[len(setting):]
    return prefix + rest.replace("interface #1: ", "")


def _ask(command: str, args) -> int:
    from .control import describe_socket, find_socket, query
    path = find_socket(args.control)
    reply = query(command, path)
    print(f"# {describe_socket(path)}", flush=True)
    print(reply, end="")
    return 0


def _status(args) -> int:
    return _ask("status", args)


def _connections(args) -> int:
    return _ask("connections", args)


def _demo(args) -> int:
    from .demo import run_demo
    return run_demo(keep_going=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pynetstack", description="A userspace TCP/IP stack in Python.")
    parser.add_argument("--version", action="version", version=f"pynetstack {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser("up", help="run a stack in the foreground on a TAP or an interface")
    up.add_argument("--tap", metavar="NAME", help="create a TAP device NAME and run on it")
    up.add_argument("--interface", metavar="NAME", help="run on existing interface NAME through AF_PACKET")
    up.add_argument("--address", metavar="CIDR", action="append", help="the stack's address, e.g. 10.0.0.2/24")
    up.add_argument("--gateway", metavar="IP", help="default gateway")
    up.add_argument("--host-address", metavar="CIDR", help="address for the kernel side of the TAP")
    up.add_argument("--mtu", type=int, help="interface MTU (default 1500)")
    up.add_argument("--mac", help="the stack's MAC address (default: random, locally administered)")
    up.add_argument("--config", metavar="FILE", help="a TOML configuration file")
    up.add_argument("--no-offload", action="store_true",
                    help="TAP without checksum/segmentation offload (every frame MTU-sized, checksums computed)")
    up.add_argument("--pcap", metavar="FILE", help="record every frame in and out to FILE")
    up.add_argument("--busy-poll", type=float, metavar="US",
                    help="spin on the devices for up to US microseconds before sleeping (lower latency, a whole core)")
    up.add_argument("--ruleset", metavar="FILE.nft",
                    help="an nftables ruleset (the file nft -f loads): conntrack, NAT and filter rules")
    up.add_argument("--no-icmp-echo", action="store_true", help="do not answer ping")
    up.add_argument("--no-udp-echo", action="store_true", help="no UDP echo service on port 7")
    up.add_argument("--no-tcp-echo", action="store_true", help="no TCP echo service on port 7")
    up.add_argument("--no-discard", action="store_true", help="no TCP discard service on port 9")
    up.add_argument("--no-http", action="store_true", help="no HTTP service on port 80")
    up.add_argument("--control", metavar="PATH", help="control socket (default /run/pynetstack/NETNS-IFACE.sock)")
    up.add_argument("--trace", nargs="?", const="", metavar="MATCH",
                    help="print the journey of every frame through the stack (or of those whose summary contains MATCH)")
    up.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS (default: run until Ctrl-C)")
    up.set_defaults(func=_up)

    cap = sub.add_parser("capture", help="print one decoded line per frame seen on an interface")
    cap.add_argument("--interface", "-i", required=True, metavar="NAME", help="the interface to capture on")
    cap.add_argument("--count", "-c", type=int, metavar="N", help="stop after N frames")
    cap.add_argument("--write", "-w", metavar="FILE.pcap", help="also write the frames to a pcap file")
    cap.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after SECONDS")
    cap.add_argument("--promiscuous", action="store_true", help="see frames for other MACs too")
    cap.add_argument("--verbose", "-V", action="store_true", help="full dissection of every frame")
    cap.set_defaults(func=_capture)

    for name, func, text in (("status", _status, "print the status of a running stack"),
                             ("connections", _connections, "list a running stack's TCP connections, like ss -ti")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--control", metavar="PATH", help="the stack's control socket (default: the only one running)")
        command.set_defaults(func=func)

    demo = sub.add_parser("demo", help="build a lab of namespaces, exercise the stack with Linux tools, report")
    demo.set_defaults(func=_demo)

    from .routercli import register as register_router
    register_router(sub)
    from .monitor.cli import register as register_monitor
    register_monitor(sub)
    from .ids.cli import register as register_ids
    register_ids(sub)
    from .lb.cli import register as register_lb
    register_lb(sub)
    from .qos.cli import register as register_qos
    register_qos(sub)

    try:
        from .dns.cli import register as register_dns
    except ImportError:
        register_dns = None
    if register_dns is not None:
        register_dns(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    if argv is None:  # started as a program: on PyPy, with the collector settings it needs
        pypy_gc.reexec(["-m", "pynetstack"] + sys.argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        print(f"pynetstack: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, OSError) and exc.filename:
            message = f"{exc.filename}: {message}"
        print(f"pynetstack: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
