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
        _watching(demo, lab, stack, lan, wan)
    return demo.results


IDS_RULES = """\
alert icmp any any -> any any (msg:"Large ICMP echo"; itype:8; dsize:>1000; classtype:attempted-recon; sid:1000003; rev:1;)
"""


def _watching(demo, lab: Lab, stack: Stack, lan: str, wan: str) -> None:
    """Act three: the same router watched by an IDS (Suricata rules, EVE JSON) and by monitoring
    (Prometheus metrics on a loopback port of this host)."""
    from .ids import Detector, load_rules
    from .ids.eve import alert_event
    from .ids.function import IdsFunction
    from .ids.scan import ScanDetector
    from .monitor import Monitor, MonitorConfig
    print("\nAct three: watching the router. An IDS with a Suricata rule and scan detection on its packet path;",
          "Prometheus metrics of its one counter registry.", flush=True)
    alerts = []
    stack.register(IdsFunction(Detector(load_rules(IDS_RULES, "demo.rules"), detectors=[ScanDetector()]),
                               on_alerts=alerts.extend))
    monitor = Monitor(stack, MonitorConfig(listen=("127.0.0.1", 0), collection_interval=1.0)).start()
    try:
        def big_ping() -> Tuple[bool, str]:
            lab.run(lan, "ping", "-c", "1", "-s", "1200", "-W", "2", WAN_HOST)
            time.sleep(0.2)
            events = [alert_event(a) for a in alerts if a.rule.sid == 1000003]
            return bool(events), (f"EVE: {events[0]['alert']['signature']!r} {events[0]['src_ip']} -> "
                                  f"{events[0]['dest_ip']}" if events else "no alert")

        def scan() -> Tuple[bool, str]:
            lab.run(wan, "nmap", "-sS", "-Pn", "-n", "-T4", "--max-retries", "0", "-p", "1-200", WAN_STACK,
                    timeout=60)
            time.sleep(0.2)
            found = [alert_event(a) for a in alerts if "scan" in a.rule.msg.lower()]
            return bool(found), (f"EVE: {found[0]['alert']['signature']!r} from {found[0]['src_ip']}"
                                 if found else "no scan alert")

        def metrics() -> Tuple[bool, str]:
            import urllib.request
            url = f"{monitor.server.url.rstrip('/')}/metrics"  # on this host's loopback
            with urllib.request.urlopen(url, timeout=5) as reply:
                text = reply.read().decode()
            rows = [line for line in text.splitlines()
                    if line.startswith("pynetstack_network_transmit_packets_total") or
                    line.startswith("pynetstack_nstat_ip_forw_datagrams_total")]
            return bool(rows), "; ".join(rows[:3])

        demo.step("IDS: signature", f"ping -s 1200 {WAN_HOST}", big_ping)
        demo.step("IDS: port scan", f"nmap -sS -p 1-200 {WAN_STACK}  (from the WAN)", scan)
        demo.step("Metrics", "curl http://127.0.0.1:PORT/metrics", metrics)
    finally:
        monitor.close()
