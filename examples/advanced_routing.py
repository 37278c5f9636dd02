"""The seed's "Advanced Routing" example in Python: NAT for a LAN, a default route, a port
forward; then real Linux hosts use the router.

    routing_table = RubyNetStack::AdvancedRoutingTable.new("eth0")
    routing_table.configure_nat("192.168.1.0/24", "203.0.113.10", "eth0")
    routing_table.add_route("0.0.0.0", "0.0.0.0", "192.168.1.1", "eth0", 0)
    routing_table.add_port_forward(8080, "192.168.1.10", 80, :tcp)

Here the stack routes between a LAN namespace (a Linux host, 192.168.1.10, with a small web server
on port 80) and a WAN namespace (the ISP's gateway 203.0.113.1 and a Linux host 203.0.113.99 behind
it).  The NAT rules are nftables rules: `nft list ruleset` prints what runs.
Runs as root: it builds its own namespaces (nothing else on the machine is touched)."""

import time

from pynetstack.lab import Lab
from pynetstack.link.packet import PacketDevice
from pynetstack.link.tap import TapDevice
from pynetstack.netfilter.router import install_router
from pynetstack.stack import Stack
from pynetstack.wire.addr import ip_to_int

with Lab("routing") as lab:
    lan, wan, rtr = lab.netns("lan"), lab.netns("wan"), lab.netns("rtr")
    lab.veth(wan, "exw0", rtr, "exw1", address_a="203.0.113.1/24")
    lab.ip("-n", wan, "addr", "add", "203.0.113.99/32", "dev", "lo")  # a host behind the ISP's gateway

    router = Stack(forwarding=True)
    router.add_interface(TapDevice("exl0", host_address="192.168.1.10/24", netns=lan, offload=False),
                         "192.168.1.1/24", name="lan0")
    router.add_interface(PacketDevice("exw1", promiscuous=True, netns=rtr), "203.0.113.10/24", name="eth0")
    lab.ip("-n", lan, "route", "add", "default", "via", "192.168.1.1")

    # configure_nat, add_route, add_port_forward
    nat = install_router(router)
    nat.snat("192.168.1.0/24", "203.0.113.10", "eth0")
    router.add_route("0.0.0.0/0", "203.0.113.1", "eth0")
    nat.port_forward(8080, "192.168.1.10", 80, "tcp", in_interface="eth0")
    router.start_background()
    print(nat.ruleset.list_ruleset())

    web = lab.popen(lan, "socat", "TCP-LISTEN:80,bind=192.168.1.10,reuseaddr,fork",
                    "SYSTEM:'printf \"HTTP/1.0 200 OK\\r\\n\\r\\nhello from the LAN host\\n\"'")
    seen = lab.popen(wan, "socat", "-T", "5", "TCP-LISTEN:9000,bind=203.0.113.99,reuseaddr",
                     "SYSTEM:'echo you came from $SOCAT_PEERADDR'")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(  # wait until both servers listen
            lab.run(ns, "ss", "-ltnH", f"sport = :{port}").stdout for ns, port in ((lan, 80), (wan, 9000))):
        time.sleep(0.1)
    try:
        ping = lab.run(lan, "ping", "-c", "2", "-i", "0.2", "-W", "2", "203.0.113.99")
        print(ping.stdout.strip().splitlines()[-2])
        reply = lab.run(lan, "socat", "-T", "5", "-", "TCP:203.0.113.99:9000", input="")
        print("LAN host -> 203.0.113.99:9000:", reply.stdout.strip())
        page = lab.run(wan, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} bytes",
                       "--max-time", "5", "http://203.0.113.10:8080/")
        print("WAN host -> 203.0.113.10:8080 (forwarded to 192.168.1.10:80):", page.stdout, page.stderr.strip())
        print("\nconntrack -L:")
        for line in nat.conntrack_list():
            print(" ", line)
        with router.lock:
            print("\nroute get 203.0.113.99:", router.host.routes.explain(
                ip_to_int("203.0.113.99"), source_for=lambda iface, hop: iface.address_for(hop)))
        if "you came from 203.0.113.10" not in reply.stdout or not page.stdout.startswith("200"):
            raise SystemExit("the router did not do its job")
    finally:
        web.terminate()
        router.close()
