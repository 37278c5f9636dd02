"""Forwarding of 64-byte UDP frames between two namespaces, through a router in a third.

    sudo .venv/bin/python benchmarks/bench_forward.py [--seconds 3] [--repeat 3] [--pypy PATH]
        [--modes "kernel,bare,bare ring,plain/socket,plain,nat+flowtable"]

    src ns --veth--> rtr ns --veth--> dst ns

The router is, in the same run: the Linux kernel (ip_forward=1), a bare Python loop that only
reads frames from one AF_PACKET socket and writes them to the other (the I/O ceiling of Python),
the same loop on PACKET_MMAP rings ("bare ring"), and pynetstack in several modes (plain routing; conntrack; conntrack and NAT; the same with the
flow table; "/socket" after a mode: without the rings) on CPython and PyPy.  A Python sender
in ``src`` offers frames through a PACKET_TX_RING as fast as it can for ``--seconds``; the receiving kernel's rx_packets counter in ``dst`` says how many were
forwarded.  Figures are medians of ``--repeat`` runs; each load stops by itself.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

import runner

SRC_IP, RTR_IN, RTR_OUT, DST_IP = "10.201.0.2", "10.201.0.1", "10.202.0.1", "10.202.0.2"


def _frame(dst_mac: bytes, src_mac: bytes, flow: int) -> bytes:
    from pynetstack.wire.addr import ip_to_int
    from pynetstack.wire.ethernet import ETH_IPV4, build_frame
    from pynetstack.wire.ipv4 import build_ipv4
    from pynetstack.wire.udp import build_udp
    src, dst = ip_to_int(SRC_IP), ip_to_int(DST_IP)
    udp = build_udp(src, dst, 10000 + flow, 9, bytes(18))  # 14 + 20 + 8 + 18 = 60 bytes: a minimum frame
    return build_frame(dst_mac, src_mac, ETH_IPV4, build_ipv4(src, dst, 17, udp, 64, 0, False))


def send(ifname: str, dst_mac: str, seconds: float, flows: int) -> None:
    """The load: as many frames as one Python loop offers for ``seconds``, through a
    PACKET_TX_RING (the kernel sends a whole batch per system call: a Python loop of one ``send``
    per frame offers less than the kernel forwards, and would measure itself)."""
    from pynetstack.link.packet_ring import PacketRings
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((ifname, 0))
    rings = PacketRings(sock, 1500, receive=False)
    mac = bytes.fromhex(dst_mac.replace(":", ""))
    own = bytes.fromhex(open(f"/sys/class/net/{ifname}/address").read().strip().replace(":", ""))
    frames = [_frame(mac, own, i) for i in range(flows)] * 16
    offered = 0
    put = rings.send
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for frame in frames:
            put(frame)
        rings.flush()
        offered += len(frames)
    print(offered - rings.tx_full)


def bare(in_if: str, out_if: str, dst_mac: str, seconds: float) -> None:
    """The ceiling: read each frame, rewrite the MACs, write it out. No IP work at all."""
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    rx.bind((in_if, 0))
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    tx.bind((out_if, 0))
    rx.settimeout(0.2)
    prefix = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(
        open(f"/sys/class/net/{out_if}/address").read().strip().replace(":", ""))
    buf = bytearray(2048)
    view = memoryview(buf)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            n, addr = rx.recvfrom_into(buf)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        view[0:12] = prefix
        tx.send(view[:n])


def bare_ring(in_if: str, out_if: str, dst_mac: str, seconds: float) -> None:
    """The ceiling with PACKET_MMAP: the same loop reading a TPACKET_V3 receive ring and writing
    into a transmit ring, one kick per batch (link/packet_ring.py without the device around it)."""
    import select

    from pynetstack.link.packet_ring import TPACKET_V3, PacketRings
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    rx.bind((in_if, 0))
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: this one only sends
    tx.bind((out_if, 0))
    rx_ring = PacketRings(rx, 1500, transmit=False, version=TPACKET_V3)
    tx_ring = PacketRings(tx, 1500, receive=False)
    prefix = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(
        open(f"/sys/class/net/{out_if}/address").read().strip().replace(":", ""))
    poller = select.poll()
    poller.register(rx.fileno(), select.POLLIN)
    receive, send, flush = rx_ring.receive, tx_ring.send, tx_ring.flush
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        frames = receive(256, False, None)
        if not frames:
            poller.poll(200)
            continue
        for frame in frames:
            send(prefix + frame[12:])
        flush()


def stack(in_if: str, out_if: str, mode: str, seconds: float) -> None:
    """pynetstack as the router, in ``mode``: plain, conntrack, nat, nat+flowtable; with
    "/socket" appended, its devices use one system call per frame instead of the rings, with
    "/v3" a TPACKET_V3 receive ring instead of the default V2."""
    ring = {"socket": False, "v3": "v3"}.get(mode.partition("/")[2])
    mode = mode.split("/")[0]
    from pynetstack.link.packet import PacketDevice
    from pynetstack.stack import Stack
    s = Stack(forwarding=True)
    for ifname, address, name in ((in_if, RTR_IN, "lan0"), (out_if, RTR_OUT, "wan0")):
        mac = open(f"/sys/class/net/{ifname}/address").read().strip()  # the sender addresses the NIC's MAC
        s.add_interface(PacketDevice(ifname, promiscuous=True, ring=ring), f"{address}/24", name=name, mac=mac)
    if mode != "plain":
        from pynetstack.netfilter.router import install_router
        ruleset = None
        if mode.startswith("nat"):
            ruleset = ('table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n'
                       '  oifname "wan0" masquerade\n }\n}\n')
        install_router(s, ruleset_text=ruleset, flowtable=mode.endswith("flowtable"))
    s.run(duration=seconds)
    status = s.status()
    s.close()
    print({"counters": status["counters"], "drops": status["drops"]}, file=sys.stderr)


def _rx(lab, ns: str, ifname: str) -> int:
    return int(lab.run(ns, "cat", f"/sys/class/net/{ifname}/statistics/rx_packets").stdout)


def _mac(lab, ns: str, ifname: str) -> str:
    return lab.run(ns, "cat", f"/sys/class/net/{ifname}/address").stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--flows", type=int, default=16)
    parser.add_argument("--pypy", default=runner.default_pypy())
    parser.add_argument("--modes", default="kernel,bare,bare ring,plain,conntrack,nat,nat+flowtable")
    args = parser.parse_args()
    from pynetstack.lab import Lab

    here = os.path.abspath(__file__)
    env = runner.child_env()
    pythons = runner.interpreters(args.pypy)
    results = {}
    with Lab("fw") as lab:
        src, rtr, dst = lab.netns("src"), lab.netns("rtr"), lab.netns("dst")
        lab.veth(src, "pnsfa0", rtr, "pnsfa1", address_a=f"{SRC_IP}/24")
        lab.veth(rtr, "pnsfb1", dst, "pnsfb0", address_b=f"{DST_IP}/24")
        for ns in (src, rtr, dst):  # one CPU each for the sender and the router
            lab.run(ns, "ethtool", "-K", "pnsfa0" if ns == src else "pnsfb0" if ns == dst else "pnsfa1",
                    "tx", "off", "rx", "off")
        lab.ip("-n", dst, "route", "add", "10.201.0.0/24", "via", RTR_OUT)
        rtr_mac = _mac(lab, rtr, "pnsfa1")
        dst_mac = _mac(lab, dst, "pnsfb0")

        def measure(start_router, stop_router) -> float:
            rates = []
            for _ in range(args.repeat):
                router = start_router()
                time.sleep(1.0)
                before = _rx(lab, dst, "pnsfb0")
                sender = lab.run(src, sys.executable, here, "send", "pnsfa0", rtr_mac, str(args.seconds),
                                 str(args.flows), env=env, timeout=args.seconds + 30)
                time.sleep(0.2)
                forwarded = _rx(lab, dst, "pnsfb0") - before
                stop_router(router)
                offered = int(sender.stdout.strip() or 0)
                rates.append((forwarded / args.seconds, offered / args.seconds))
            return statistics.median(r[0] for r in rates), statistics.median(r[1] for r in rates)

        for mode in args.modes.split(","):
            if mode == "kernel":
                def start():
                    lab.ip("-n", rtr, "addr", "add", f"{RTR_IN}/24", "dev", "pnsfa1")
                    lab.ip("-n", rtr, "addr", "add", f"{RTR_OUT}/24", "dev", "pnsfb1")
                    lab.run(rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1")
                    return None

                def stop(_):
                    lab.run(rtr, "sysctl", "-qw", "net.ipv4.ip_forward=0")
                    lab.ip("-n", rtr, "addr", "flush", "dev", "pnsfa1")
                    lab.ip("-n", rtr, "addr", "flush", "dev", "pnsfb1")
                results["kernel"] = measure(start, stop)
                continue
            for name, python in pythons:
                if mode in ("bare", "bare ring"):
                    argv = [python, here, mode.replace(" ", "_"), "pnsfa1", "pnsfb1", dst_mac,
                            str(args.seconds + 3)]
                else:
                    lab.run(rtr, "ip", "neigh", "flush", "all")
                    argv = [python, here, "stack", "pnsfa1", "pnsfb1", mode, str(args.seconds + 3)]

                def start(argv=argv):
                    return lab.popen(rtr, "taskset", "-c", "1", *argv, env=env)

                def stop(process):
                    try:
                        process.wait(timeout=args.seconds + 30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                results[f"{mode} ({name})"] = measure(start, stop)
    kernel = results.get("kernel", (0, 0))[0]
    print(f"64-byte UDP forwarding, {args.flows} flows, median of {args.repeat} x {args.seconds:.0f} s")
    print(f"{'router':32} {'forwarded pps':>14} {'offered pps':>12} {'vs kernel':>10}")
    for name, (forwarded, offered) in results.items():
        ratio = f"{forwarded / kernel:.2f}x" if kernel else "-"
        print(f"{name:32} {forwarded:14,.0f} {offered:12,.0f} {ratio:>10}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "bare":
        bare(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "bare_ring":
        bare_ring(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "stack":
        stack(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        main()
