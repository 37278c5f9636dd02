"""The ready-made profiles under examples/: they load, and they do what their comments say."""

from __future__ import annotations

import os

from pynetstack.netfilter.classifier import Classifier
from pynetstack.netfilter.nft import load

from .nftstub import Pkt, icmp

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def profile(name: str):
    rs = load(os.path.join(EXAMPLES, name))
    return rs, Classifier(rs)


def test_host_firewall():
    rs, cl = profile("host_firewall.nft")
    ssh = [cl.evaluate(rs, "input", Pkt(src="10.1.1.1", dport=22, now=0.0)).verdict for _ in range(20)]
    assert ssh == ["accept"] * 5 + ["drop"] * 15  # the burst of 5, then 10 a minute
    assert cl.evaluate(rs, "input", Pkt(src="10.1.1.2", dport=22)).verdict == "accept"  # per source
    assert cl.evaluate(rs, "input", Pkt(src="10.1.1.1", dport=22, ct_state="established")).verdict == "accept"
    d = cl.evaluate(rs, "input", Pkt(src="8.8.8.8", dport=22))
    assert (d.verdict, d.reject) == ("reject", ("tcp-reset",))
    d = cl.evaluate(rs, "input", Pkt(src="8.8.8.8", proto=17, dport=53))
    assert (d.verdict, d.reject) == ("reject", ("icmp", 3, 3))
    pings = [cl.evaluate(rs, "input", icmp(8, src="8.8.8.8")).verdict for _ in range(8)]
    assert pings.count("accept") == 5
    assert cl.evaluate(rs, "output", Pkt()).verdict == "accept"


def test_lan_wan_router():
    rs, cl = profile("lan_wan_router.nft")
    out = Pkt(src="192.168.1.20", dst="1.1.1.1", iifname="lan0", oifname="wan0")
    assert cl.evaluate(rs, "forward", out).verdict == "accept"
    assert rs.evaluate("postrouting", out).nat.kind == "masquerade"
    assert rs.evaluate("prerouting", Pkt(src="1.2.3.4", dport=8080, iifname="wan0")).nat.port_min == 80
    inbound = Pkt(src="1.2.3.4", dst="192.168.1.10", dport=80, iifname="wan0", oifname="lan0", ct_status=("dnat",))
    assert cl.evaluate(rs, "forward", inbound).verdict == "accept"
    inbound.ct_status = set()
    assert cl.evaluate(rs, "forward", inbound).verdict == "drop"
    # a UDP flood from one WAN source: 500 a second get through (plus the burst of 5)
    for i in range(2000):
        cl.evaluate(rs, "forward", Pkt(src="6.6.6.6", dst="192.168.1.10", proto=17, dport=53, iifname="wan0",
                                       oifname="lan0", now=i / 2000.0))
    table = rs.tables[("ip", "filter")]
    dropped = table.chains["forward"].rules[2].counter.packets
    assert abs((2000 - dropped) - 505) <= 3 and table.sets["udp_meter"].runtime().entries


def test_protected_web_server():
    rs, cl = profile("protected_web_server.nft")
    verdicts = [cl.evaluate(rs, "forward", Pkt(src="7.7.7.7", dst="10.0.2.10", dport=80, now=i / 1000.0)).verdict
                for i in range(200)]  # 1,000 SYNs a second from one source for 0.2 s
    assert verdicts[:40] == ["accept"] * 40 and abs(verdicts.count("accept") - 48) <= 1
    assert cl.evaluate(rs, "forward", Pkt(src="7.7.7.8", dst="10.0.2.10", dport=80)).verdict == "accept"
    assert cl.evaluate(rs, "forward", Pkt(src="7.7.7.8", dst="10.0.2.10", dport=22)).verdict == "drop"
