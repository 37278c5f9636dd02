"""The seed's "Quality of Service" example in Python: a QoS manager on a link, packets classified
and queued, the scheduler started; then what it is for: a bulk upload fills the link while a
voice-marked ping keeps its round trip.

    LAN namespace ---- pynetstack (router, WAN egress shaped) ---- WAN namespace

Runs as root: it builds its own namespaces (nothing else on the machine is touched)."""

import re
import struct
import time

from pynetstack.lab import Lab
from pynetstack.link.packet import PacketDevice
from pynetstack.link.tap import TapDevice
from pynetstack.qos.manager import QoSManager
from pynetstack.stack import Stack


def rtt(output):
    times = sorted(float(x) for x in re.findall(r"time=([\d.]+) ms", output))
    return times[len(times) // 2] if times else float("nan")


with Lab("qos") as lab, Stack(forwarding=True) as stack:
    lan, wan, rtr = lab.netns("lan"), lab.netns("wan"), lab.netns("rtr")
    lab.veth(wan, "eth0", rtr, "wan0", address_a="198.51.102.2/24")
    lab.run(wan, "ethtool", "-K", "eth0", "tso", "off", "gso", "off")
    stack.add_interface(TapDevice("exqos0", host_address="192.168.79.2/24", netns=lan, offload=False),
                        "192.168.79.1/24", name="lan0")
    stack.add_interface(PacketDevice("wan0", promiscuous=True, netns=rtr), "198.51.102.1/24", name="wan0")
    lab.ip("-n", lan, "route", "add", "default", "via", "192.168.79.1")
    lab.ip("-n", wan, "route", "add", "192.168.79.0/24", "via", "198.51.102.1")

    # Initialize the QoS manager (the seed's link is 1 Gbit/s; 20 Mbit/s makes the point here)
    qos = QoSManager(stack, "wan0", 20_000_000)

    # Classify and queue packets: an EF-marked UDP datagram is voice; SSH is interactive
    def frame(tos, dport):
        ip = struct.pack("!BBHHHBBHII", 0x45, tos, 28, 0, 0, 64, 17, 0, 0xC0A84F02, 0xC633660A)
        return b"\xff" * 6 + b"\x02" * 6 + b"\x08\x00" + ip + struct.pack("!HHHH", 4000, dport, 8, 0)
    print("classify EF datagram:", qos.classify_packet(frame(0xB8, 4000)))
    print("classify SSH datagram:", qos.classify_packet(frame(0, 22)))
    qos.enqueue_packet(frame(0, 9), qos_class="interactive")

    # Start the scheduler (the stack's loop: it wakes for each departure)
    qos.start_scheduler()

    idle = rtt(lab.run(lan, "ping", "-c", "5", "-i", "0.05", "-Q", "0xb8", "198.51.102.2").stdout)
    lab.popen(wan, "iperf3", "-s", "-1", "-p", "5401")
    time.sleep(0.5)
    upload = lab.popen(lan, "iperf3", "-c", "198.51.102.2", "-p", "5401", "-t", "4", text=True)
    time.sleep(1.5)
    loaded = rtt(lab.run(lan, "ping", "-c", "30", "-i", "0.05", "-Q", "0xb8", "198.51.102.2").stdout)
    out, _ = upload.communicate(timeout=30)
    receiver = [line for line in out.splitlines() if "receiver" in line]
    print(f"voice ping: idle {idle:.2f} ms, during a bulk upload {loaded:.2f} ms")
    print("upload:", receiver[-1].strip() if receiver else out.strip()[-200:])
    print(qos.show())
