"""The seed's "Firewall Configuration" example in Python: make a firewall, add a rule, filter a
packet -- then the same firewall on a running stack, with a per-source rate limit (DDoS).

Runs as root: it builds its own namespaces (nothing else on the machine is touched)."""

from pynetstack.lab import Lab
from pynetstack.link.tap import TapDevice
from pynetstack.netfilter.firewall import NetworkFirewall
from pynetstack.services import http
from pynetstack.stack import Stack
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.ipv4 import build_ipv4
from pynetstack.wire.tcp import build_tcp

# Initialize firewall
firewall = NetworkFirewall(default_action="deny")

# Add security rules
firewall.add_rule({
    "name": "Allow SSH from trusted networks",
    "action": "allow",
    "protocol": "tcp",
    "dst_port": "22",
    "src_ip": "192.168.1.0/24",
})
firewall.add_rule({"name": "Allow web", "action": "allow", "protocol": "tcp", "dst_port": "80"})
firewall.add_rule({"name": "Allow ping", "action": "allow", "protocol": "icmp"})
firewall.add_rule({"name": "Refuse the rest of TCP", "action": "reject", "protocol": "tcp", "priority": 1000})

# Filter packets: a SYN to port 22 from a trusted and from an untrusted network
for source in ("192.168.1.7", "203.0.113.9"):
    src, dst = ip_to_int(source), ip_to_int("10.99.44.2")
    packet = build_ipv4(src, dst, 6, build_tcp(src, dst, 40000, 22, 1, 0, 0x02, 65535), 64, 0, False)
    result = firewall.filter_packet(packet, direction="inbound")
    print(f"SSH from {source}: {result['action']} (rule: {result['rule']})")

# The same firewall on a stack, and a kernel namespace talking to it
with Lab("firewall") as lab, Stack() as stack:
    kernel = lab.netns("kernel")
    stack.add_interface(TapDevice("exfw0", host_address="10.99.44.1/24", netns=kernel), "10.99.44.2/24")
    http.install(stack)
    router = firewall.install(stack)
    firewall.rate_limit(10, window=1.0, protocol="icmp")  # DDoS: 10 pings a second per source
    stack.start_background()

    curl = lab.run(kernel, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                   "http://10.99.44.2/bytes/1000", timeout=20)
    print(f"curl http://10.99.44.2/ -> HTTP {curl.stdout}")
    ssh = lab.run(kernel, "nc", "-z", "-w", "2", "10.99.44.2", "22", timeout=10)
    print(f"nc to port 22 from 10.99.44.1: {'open' if ssh.returncode == 0 else 'refused'} (not a trusted network)")
    ping = lab.run(kernel, "ping", "-c", "40", "-i", "0.01", "-q", "10.99.44.2", timeout=20)
    print("ping flood, 40 at 100/s:", [line for line in ping.stdout.splitlines() if "received" in line][0])

    print(router.ruleset.list_ruleset())
    print("drops:", {k: v for k, v in stack.drops.items() if k.startswith(("nft-", "ddos-"))})
    print("firewall:", firewall.stats())
