"""The seed's "Basic Network Stack" example in Python: capture frames and dispatch them to parsers,
then let a stack answer on the same wire.

Runs as root: it builds its own namespaces (nothing else on the machine is touched)."""

import select

from pynetstack.lab import Lab
from pynetstack.link.packet import PacketDevice
from pynetstack.stack import Stack
from pynetstack.wire.addr import ip_to_str
from pynetstack.wire.errors import MalformedPacket
from pynetstack.wire.ethernet import ETH_ARP, ETH_IPV4, Ethernet
from pynetstack.wire.ipv4 import IPv4

with Lab("example") as lab:
    kernel, ours = lab.netns("kernel"), lab.netns("ours")
    lab.veth(kernel, "exk0", ours, "exs0", address_a="10.99.4.1/24")
    # The kernel may send to 10.99.4.2 before anyone answers ARP: give it a static neighbour.
    lab.ip("-n", kernel, "neigh", "add", "10.99.4.2", "lladdr", "02:00:00:00:04:02", "dev", "exk0")

    # 1. Capture: a raw socket on the interface, each frame parsed once at the edge.
    interface = PacketDevice("exs0", netns=ours)
    pinger = lab.popen(kernel, "ping", "-c", "3", "-i", "0.2", "10.99.4.2")
    ipv4_seen = 0
    while ipv4_seen < 3:
        if not select.select([interface.fileno()], [], [], 5)[0]:
            break
        for frame in interface.receive(now=0.0):
            try:
                eth = Ethernet.parse(frame)
                if eth.ethertype == ETH_IPV4:
                    ip = IPv4.parse(eth.payload)
                    print(f"Received: IPv4 protocol {ip.protocol} from {ip_to_str(ip.src)} to {ip_to_str(ip.dst)}")
                    ipv4_seen += 1
                elif eth.ethertype == ETH_ARP:
                    print("Received: ARP")
                else:
                    print(f"Received: ethertype {eth.ethertype:#06x}")
            except MalformedPacket as exc:
                print(f"Dropped a malformed frame: {exc.reason}")
    interface.close()
    pinger.wait(timeout=10)

    # 2. A stack on the same interface answers the kernel.
    with Stack() as stack:
        stack.add_interface(PacketDevice("exs0", promiscuous=True, netns=ours), "10.99.4.2/24",
                            mac="02:00:00:00:04:02")
        stack.start_background()
        result = lab.run(kernel, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.4.2")
        print(result.stdout.strip().splitlines()[-2])
        assert " 0% packet loss" in result.stdout
