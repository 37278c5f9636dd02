"""The seed's "Load Balancing: multiple algorithms (round-robin, least-connections, weighted,
IP hash)", with IPVS's schedulers of those names: rr, lc, wrr and sh (source-address hash).

A client namespace reaches a virtual service 10.0.9.100:80 on the stack; the stack spreads the
connections over three real servers (namespaces rs1..rs3 on one bridge, each a small web
server that names itself) with NAT, as IPVS's masquerading does.  For each algorithm curl asks
12 times and the spread is printed, then the table as `ipvsadm -Ln` would print it.
Runs as root: it builds its own namespaces (nothing else on the machine is touched)."""

import sys
import time
from collections import Counter

from pynetstack.lab import Lab
from pynetstack.lb import VirtualService, install_lb
from pynetstack.lb.control import format_list
from pynetstack.link.packet import PacketDevice
from pynetstack.link.tap import TapDevice
from pynetstack.stack import Stack

VIP = "10.0.9.100"
SERVERS = ("10.0.1.2", "10.0.1.3", "10.0.1.4")
WEB = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (sys.argv[1] + "\\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 80), H).serve_forever()
"""

with Lab("lbex") as lab:
    cli, sw = lab.netns("cli"), lab.netns("sw")
    rs = [lab.netns(f"rs{i + 1}") for i in range(3)]
    lab.ip("-n", sw, "link", "add", "br0", "type", "bridge")
    lab.ip("-n", sw, "link", "set", "br0", "up")
    for i, ns in enumerate(rs):
        lab.veth(ns, "eth0", sw, f"rs{i + 1}p", address_a=f"{SERVERS[i]}/24")
        lab.ip("-n", sw, "link", "set", f"rs{i + 1}p", "master", "br0")
        lab.ip("-n", ns, "route", "add", "default", "via", "10.0.1.1")  # replies come back through us
        lab.popen(ns, sys.executable, "-c", WEB, f"rs{i + 1}")
    lab.veth(sw, "lbs0", sw, "lbp0")
    lab.ip("-n", sw, "link", "set", "lbp0", "master", "br0")

    balancer = Stack(forwarding=True)
    balancer.add_interface(TapDevice("lbex0", host_address="10.0.0.2/24", netns=cli, offload=False),
                           "10.0.0.1/24", name="cli0")
    balancer.add_interface(PacketDevice("lbs0", promiscuous=True, netns=sw), "10.0.1.1/24", name="srv0")
    lab.ip("-n", cli, "route", "add", "10.0.9.0/24", "via", "10.0.0.1")
    lb = install_lb(balancer)
    balancer.start_background()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(lab.run(ns, "ss", "-ltnH", "sport = :80").stdout for ns in rs):
        time.sleep(0.05)

    try:
        for title, scheduler, weights in (("round-robin", "rr", (1, 1, 1)), ("least-connections", "lc", (1, 1, 1)),
                                          ("weighted (1:2:3)", "wrr", (1, 2, 3)), ("IP hash", "sh", (1, 1, 1))):
            with balancer.lock:
                for key in list(lb.services):
                    lb.remove_service(*key)
                service = VirtualService("tcp", VIP, 80, scheduler=scheduler)
                for address, weight in zip(SERVERS, weights):
                    service.add_server(address, 80, weight=weight)
                lb.add_service(service)
            script = f"for i in $(seq 12); do curl -s --max-time 2 http://{VIP}/ || echo FAILED; done"
            answers = [a for a in lab.run(cli, "sh", "-c", script, timeout=60).stdout.split() if a]
            spread = Counter(answers)
            print(f"{title:<20} ({scheduler}): " + ", ".join(f"{name} {spread[name]}" for name in sorted(spread)))
            if "FAILED" in spread or sum(spread.values()) != 12:
                sys.exit(f"some requests failed: {answers}")
            if scheduler == "sh" and len(spread) != 1:
                sys.exit("IP hash sent one client to several servers")
        with balancer.lock:
            print()
            print(format_list(lb), end="")
    finally:
        balancer.close()
