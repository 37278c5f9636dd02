"""The demo's second act: the stack as a NAT router between two Linux hosts.

Namespace *lan* (192.168.77.2) reaches the stack through a TAP; namespace *wan* (198.51.100.2) through
a veth the stack reads with AF_PACKET.  The stack masquerades the LAN and forwards WAN port 8080 to
a LAN web server, with rules in the nftables language; Linux tools on both sides confirm it.
"""

from __future__ import annotations

import re
import time
from typing import Tuple

from .lab import Lab
from .link.packet import PacketDevice
from .link.tap import TapDevice
from .netfilter.router import install_router
from .stack import Stack

LAN_HOST, LAN_STACK, WAN_HOST, WAN_STACK = "192.168.77.2", "192.168.77.1", "198.51.100.2", "198.51.100.1"
RULESET = """\
table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" tcp dport 8080 counter dnat to 192.168.77.2:80
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.168.77.0/24 oifname "wan0" counter masquerade
	}
}
table ip filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related counter accept
		iifname "lan0" counter accept
		ct status dnat counter accept
	}
}
"""


def _wait_listening(lab: Lab, ns: str, port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not lab.run(ns, "ss", "-ltnH", f"sport = :{port}").stdout:
        time.sleep(0.1)


def run_router_act(demo_class, lab: Lab) -> list:
    """Build the router lab, run its steps with ``demo_class`` (demo.Demo), return the results."""
    print("\nAct two: the stack as a router. LAN host 192.168.77.2 -- [TAP] stack [AF_PACKET] -- WAN host "
          "198.51.100.2", flush=True)
    lan, wan, rtr = lab.netns("lan"), lab.netns("wan"), lab.netns("rtr")
    lab.veth(wan, "pnsdw0", rtr, "pnsdw1", address_a=f"{WAN_HOST}/24")
    with Stack(forwarding=True) as stack:
        stack.add_interface(TapDevice("pnsdl0", host_address=f"{LAN_HOST}/24", netns=lan, offload=False),
                            f"{LAN_STACK}/24", name="lan0")
        stack.add_interface(PacketDevice("pnsdw1", promiscuous=True, netns=rtr), f"{WAN_STACK}/24", name="wan0")
        lab.ip("-n", lan, "route", "add", "default", "via", LAN_STACK)
        lab.ip("-n", wan, "route", "add", "192.168.77.0/24", "via", WAN_STACK)  # it may try; the firewall says no
        router = install_router(stack, ruleset_text=RULESET)
        stack.start_background()
        print("  the ruleset (nftables language; the same file loads into Linux with nft -f):")
        print("\n".join("    " + line for line in RULESET.splitlines()[:10]) + "\n    ...", flush=True)
        web = lab.popen(lan, "socat", f"TCP-LISTEN:80,bind={LAN_HOST},reuseaddr,fork",
                        "SYSTEM:'printf \"HTTP/1.0 200 OK\\r\\n\\r\\nhello from the LAN\\n\"'")
        who = lab.popen(wan, "socat", f"TCP-LISTEN:9000,bind={WAN_HOST},reuseaddr,fork",
                        "SYSTEM:'echo you came from $SOCAT_PEERADDR:$SOCAT_PEERPORT'")
        _wait_listening(lab, lan, 80)
        _wait_listening(lab, wan, 9000)
        demo = demo_class(lab, stack, lan, "/dev/null")

        def ping() -> Tuple[bool, str]:
            out = lab.run(lan, "ping", "-c", "3", "-i", "0.2", "-W", "2", WAN_HOST).stdout
            ttl = re.search(r"ttl=(\d+)", out)
            return "3 received" in out, f"3 replies through the router, ttl {ttl.group(1) if ttl else '?'} (one hop)"

        def traceroute() -> Tuple[bool, str]:
            out = lab.run(lan, "traceroute", "-n", "-q", "1", "-w", "1", "-m", "3", WAN_HOST, timeout=30).stdout
            hops = re.findall(r"^\s*\d+\s+(\S+)", out, re.M)
            return hops[:2] == [LAN_STACK, WAN_HOST], "hops: " + " -> ".join(hops)

        def masquerade() -> Tuple[bool, str]:
            out = lab.run(lan, "socat", "-T", "5", "-", f"TCP:{WAN_HOST}:9000", input="").stdout.strip()
            return out.startswith(f"you came from {WAN_STACK}:"), f"the WAN host says: {out}"

        def port_forward() -> Tuple[bool, str]:
            out = lab.run(wan, "curl", "-s", "--max-time", "5", f"http://{WAN_STACK}:8080/").stdout.strip()
            return out == "hello from the LAN", f"the LAN web server answered: {out!r}"

        def blocked() -> Tuple[bool, str]:
            out = lab.run(wan, "ping", "-c", "2", "-i", "0.2", "-W", "1", LAN_HOST).stdout
            drops = stack.drops.get("nft-filter-forward-policy", 0)
            return "0 received" in out and drops >= 2, (f"a WAN host cannot open a way into the LAN: {drops} "
                                                        "pings dropped by the forward chain's policy")

        demo.step("Ping through", f"ping -c 3 {WAN_HOST}", ping)
        demo.step("Traceroute", f"traceroute -n {WAN_HOST}", traceroute)
        demo.step("Masquerade", f"socat - TCP:{WAN_HOST}:9000", masquerade)
        demo.step("Port forward", f"curl http://{WAN_STACK}:8080/  (from the WAN)", port_forward)
        demo.step("Firewall", f"ping {LAN_HOST}  (from the WAN)", blocked)
        web.terminate()
        who.terminate()
        print("\n  conntrack -L (pynetstack conntrack -L):")
        for line in router.conntrack_list():
            print("    " + line)
        print("\n  nft list ruleset, with the counters (pynetstack nft list ruleset):")
        with stack.lock:
            listing = router.ruleset.list_ruleset()
            flows = stack.host.flowtable.stats()
        print("\n".join("    " + line for line in listing.splitlines()))
        print(f"\n  flow table: {flows['offloaded']} flows offloaded, {flows['hits']} packets skipped the hooks", flush=True)
    return demo.results
