"""The evaluator: the kernel's chain semantics, NAT decisions, counters, traces, and every match
checked against a brute-force reference with hypothesis."""

from __future__ import annotations

import ipaddress
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.netfilter import types
from pynetstack.netfilter.nft import load, loads

from .nftstub import DATA, Pkt, icmp


def filter_rs(body: str, family: str = "ip", policy: str = "accept", extra: str = ""):
    return loads(f"table {family} t {{\n\tchain c {{\n\t\ttype filter hook input priority 0; policy {policy};\n"
                 f"{body}\n\t}}\n{extra}}}\n")


def test_brief_example_dnat_and_masquerade():
    rs = load(os.path.join(DATA, "nat_example.nft"))
    d = rs.evaluate("prerouting", Pkt(src="198.51.100.7", dst="203.0.113.1", dport=8080, iifname="wan0"))
    assert d.verdict == "accept"
    assert d.nat == types.NatSpec(types.DNAT, 0xC0A8010A, None, 80)
    assert d.chain.name == "prerouting" and d.rule is rs.tables[("ip", "nat")].chains["prerouting"].rules[0]
    assert rs.evaluate("prerouting", Pkt(dport=8080, iifname="lan0")).nat is None
    assert rs.evaluate("prerouting", Pkt(proto=17, dport=8080, iifname="wan0")).nat is None
    pkt = Pkt(src="192.168.1.20", dst="8.8.8.8", oifname="wan0", length=84)
    d = rs.evaluate("postrouting", pkt)
    assert d.nat == types.NatSpec(types.MASQUERADE)
    counter = rs.tables[("ip", "nat")].chains["postrouting"].rules[0].counter
    assert (counter.packets, counter.bytes) == (1, 84)
    assert rs.evaluate("postrouting", Pkt(src="192.168.2.20", oifname="wan0")).nat is None
    assert counter.packets == 1


def test_accept_ends_only_its_base_chain_drop_is_final():
    rs = loads("""table ip a {
	chain first { type filter hook input priority -10; policy accept; accept; }
	chain second { type filter hook input priority 10; policy accept; tcp dport 22 counter drop; }
}
table inet b {
	chain third { type filter hook input priority 20; policy accept; counter; }
}
""")
    assert rs.evaluate("input", Pkt(dport=22)).verdict == "drop"
    assert rs.evaluate("input", Pkt(dport=80)).verdict == "accept"
    second, third = rs.tables[("ip", "a")].chains["second"], rs.tables[("inet", "b")].chains["third"]
    assert second.rules[0].counter.packets == 1
    assert third.rules[0].counter.packets == 1  # the dropped packet never reached the later chain
    assert rs.evaluate("output", Pkt()).verdict == "accept"


def test_policy_applies_when_a_base_chain_ends_without_verdict():
    rs = filter_rs("\t\ttcp dport 22 accept\n\t\tcounter", policy="drop")
    d = rs.evaluate("input", Pkt(dport=80))
    assert d.verdict == "drop" and d.rule is None and d.chain.name == "c"
    assert rs.evaluate("input", Pkt(dport=22)).verdict == "accept"


def test_jump_return_goto():
    extra = ("\tchain j {\n\t\ttcp dport 1 return\n\t\ttcp dport 2 accept\n\t\ttcp dport 3 goto g\n\t}\n"
             "\tchain g {\n\t\ttcp dport 3 meta mark set 7\n\t}\n")
    rs = filter_rs("\t\tjump j\n\t\tmeta mark 7 drop\n\t\tcounter drop", policy="accept", extra=extra)
    assert rs.evaluate("input", Pkt(dport=1)).verdict == "drop"  # returned, fell to the last rule
    d = rs.evaluate("input", Pkt(dport=2))
    assert d.verdict == "accept" and d.chain.name == "j"
    pkt = Pkt(dport=3)
    d = rs.evaluate("input", pkt)  # goto g, end of g returns to c after the jump: mark 7 drops
    assert d.verdict == "drop" and d.mark == 7 and pkt.mark == 7 and d.rule.format().startswith("meta mark")


def test_goto_from_base_chain_ends_in_policy():
    extra = "\tchain g {\n\t\ttcp dport 5 drop\n\t}\n"
    rs = filter_rs("\t\tgoto g\n\t\tcounter drop", policy="accept", extra=extra)
    assert rs.evaluate("input", Pkt(dport=6)).verdict == "accept"
    assert rs.evaluate("input", Pkt(dport=5)).verdict == "drop"


def test_continue_and_return_in_base_chain():
    rs = filter_rs("\t\tcontinue\n\t\ttcp dport 9 return\n\t\tdrop", policy="accept")
    assert rs.evaluate("input", Pkt(dport=9)).verdict == "accept"
    assert rs.evaluate("input", Pkt(dport=8)).verdict == "drop"


def test_nat_statement_is_terminal_in_its_chain():
    rs = loads("""table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan*" snat to 203.0.113.1
		counter masquerade
	}
}
table ip nat2 {
	chain post { type nat hook postrouting priority 200; policy accept; masquerade; }
}
""")
    d = rs.evaluate("postrouting", Pkt(oifname="wan3"))
    assert d.nat == types.NatSpec(types.SNAT, 0xCB007101) and d.verdict == "accept"
    assert rs.tables[("ip", "nat")].chains["post"].rules[1].counter.packets == 0
    d = rs.evaluate("postrouting", Pkt(oifname="eth0"))
    assert d.nat.kind == "masquerade" and d.chain.name == "post" and d.chain.table.name == "nat"


def test_reject_forms():
    rs = filter_rs("\t\ttcp dport 1 reject\n\t\ttcp dport 2 reject with icmp type host-unreachable\n"
                   "\t\ttcp dport 3 reject with tcp reset\n\t\treject with tcp reset")
    assert rs.evaluate("input", Pkt(dport=1)).reject == ("icmp", 3, 3)
    assert rs.evaluate("input", Pkt(dport=2)).reject == ("icmp", 3, 1)
    d = rs.evaluate("input", Pkt(dport=3))
    assert (d.verdict, d.reject) == ("reject", ("tcp-reset",))
    assert rs.evaluate("input", Pkt(proto=17, dport=3)).verdict == "accept"  # tcp reset needs tcp
    rs = filter_rs("\t\treject with icmpx type admin-prohibited", family="inet")
    assert rs.evaluate("input", Pkt()).reject == ("icmp", 3, 13)


def test_filter_example_file():
    rs = load(os.path.join(DATA, "filter.nft"))
    ev = rs.evaluate
    assert ev("input", Pkt(ct_state="established", dport=9999)).verdict == "accept"
    assert ev("input", Pkt(ct_state="invalid")).verdict == "drop"
    assert ev("input", Pkt(iifname="lo", dport=1)).verdict == "accept"
    assert ev("input", Pkt(src="10.0.0.70", dport=22, tcp_flags=0x10)).verdict == "accept"
    d = ev("input", Pkt(src="10.0.0.6", dport=22, tcp_flags=0x10, iifname="eth0"))
    assert (d.verdict, d.reject) == ("reject", ("icmp", 3, 13))
    pings = [ev("input", icmp(8, now=0.0)).verdict for _ in range(12)]
    assert pings == ["accept"] * 10 + ["drop"] * 2  # burst 10
    assert ev("input", icmp(8, now=0.2)).verdict == "accept"  # 5/second refills one in 0.2 s
    assert ev("input", Pkt(proto=17, dport=33500)).reject == ("icmp", 3, 3)
    assert ev("input", Pkt(pkttype="broadcast", proto=17, dport=1)).verdict == "drop"
    # SYN to a closed port: syn_checks returns, then the final reject
    assert ev("input", Pkt(dport=5000, tcp_flags=0x02, iifname="eth0")).reject == ("icmp", 3, 13)
    # a SYN with FIN goes to the sinkhole: tcp reset
    d = ev("input", Pkt(dport=5000, tcp_flags=0x03))
    assert d.reject == ("tcp-reset",) and d.mark == 0x2A
    assert ev("input", Pkt(ttl=1, dport=5000, tcp_flags=0x02)).verdict == "drop"
    assert ev("forward", Pkt(mark=0x2A)).verdict == "drop"
    assert ev("output", Pkt(dst="192.0.2.9", oifname="wan0")).reject == ("icmp", 3, 1)


def test_trace_lines_follow_nft_monitor_trace():
    extra = "\tchain j {\n\t\ttcp dport 22 counter\n\t}\n"
    rs = filter_rs("\t\tjump j\n\t\ttcp dport 22 accept", extra=extra)
    trace: list = []
    rs.evaluate("input", Pkt(dport=22, iifname="eth0", trace=trace))
    assert len(trace) == 4
    assert trace[0].startswith("trace id ") and ' ip t c packet: iif "eth0" ip saddr 10.0.0.1' in trace[0]
    assert trace[1].endswith("ip t c rule jump j (verdict jump j)")
    # a rule that matched without a verdict shows as the kernel shows it: verdict continue
    assert trace[2].endswith("ip t j rule tcp dport 22 counter packets 1 bytes 60 (verdict continue)")
    assert trace[3].endswith("ip t c rule tcp dport 22 accept (verdict accept)")
    trace = []
    rs.evaluate("input", Pkt(dport=80, trace=trace))
    assert trace[-1].endswith("ip t c policy accept")


def test_meta_nftrace_sends_the_trace_to_the_monitor_from_the_rule_that_set_it():
    from pynetstack.netfilter.nft.evaluate import TraceMonitor, evaluate
    rs = filter_rs("\t\ttcp dport 22 meta nftrace set 1\n\t\ttcp dport 22 accept")
    assert "meta nftrace set 1" in rs.list_ruleset()
    monitor = TraceMonitor()
    pkt = Pkt(dport=22, iifname="eth0")
    evaluate(rs, "input", pkt, monitor=monitor)  # nobody listens: nothing is traced
    lines: list = []
    monitor.subscribers.append(lines.append)
    evaluate(rs, "input", Pkt(dport=80), monitor=monitor)
    assert lines == [], "a packet nftrace never marked is not traced"
    pkt = Pkt(dport=22, iifname="eth0")
    evaluate(rs, "input", pkt, monitor=monitor)
    assert [line.split(" ", 3)[3] for line in lines] == [
        'ip t c packet: iif "eth0" ip saddr 10.0.0.1 ip daddr 10.0.0.2 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 0 '
        'ip length 60 tcp sport 40000 tcp dport 22',
        "ip t c rule tcp dport 22 meta nftrace set 1 (verdict continue)",
        "ip t c rule tcp dport 22 accept (verdict accept)"]
    del lines[:]
    evaluate(rs, "input", pkt, monitor=monitor)  # the same packet in a later chain: traced throughout
    assert len(lines) == 3 and " packet: " in lines[0]


def test_limit_over():
    rs = filter_rs("\t\tlimit rate over 2/minute drop")
    verdicts = [rs.evaluate("input", Pkt(now=0.0)).verdict for _ in range(7)]
    assert verdicts == ["accept"] * 5 + ["drop"] * 2  # default burst 5
    assert rs.evaluate("input", Pkt(now=30.0)).verdict == "accept"


def test_meta_and_ct_matches():
    rs = filter_rs("\t\tct direction reply ct status dnat accept\n\t\tct state { new, untracked } meta pkttype host"
                   " drop\n\t\tct state != established,related counter drop\n\t\ticmp type echo-request"
                   " icmp code 0 accept\n\t\tip dscp ef ip length 100-200 drop", policy="accept")
    ev = rs.evaluate
    assert ev("input", Pkt(ct_state="established", ct_direction="reply", ct_status={"dnat", "seen-reply"})
              ).rule.format().startswith("ct direction")
    assert ev("input", Pkt(ct_state="established", ct_direction="reply", ct_status={"snat"})).rule is None
    assert ev("input", Pkt(ct_state="untracked")).verdict == "drop"
    assert ev("input", Pkt(ct_state="new", pkttype="multicast")).verdict == "drop"
    assert ev("input", Pkt(ct_state="related")).verdict == "accept"
    assert ev("input", icmp(8, 0, ct_state="related")).verdict == "accept"
    assert ev("input", Pkt(ct_state="established", tos=46 << 2, length=150)).verdict == "drop"
    assert ev("input", Pkt(ct_state="established", tos=46 << 2, length=250)).verdict == "accept"


# -- matches against brute-force references -----------------------------------------------------

ports = st.integers(0, 65535)
intervals = st.lists(st.tuples(ports, st.integers(0, 300)).map(lambda t: (t[0], min(65535, t[0] + t[1]))),
                     min_size=1, max_size=6)


def _port_text(iv) -> str:
    return str(iv[0]) if iv[0] == iv[1] else f"{iv[0]}-{iv[1]}"


@settings(max_examples=150, deadline=None)
@given(intervals, st.booleans(), st.booleans(), st.lists(ports, min_size=1, max_size=10))
def test_port_sets_match_like_the_reference(ivs, as_set, negate, probes):
    if not as_set:
        ivs = ivs[:1]
    value = "{ " + ", ".join(_port_text(iv) for iv in ivs) + " }" if as_set else _port_text(ivs[0])
    rs = filter_rs(f"\t\ttcp dport {'!= ' if negate else ''}{value} drop")
    for port in probes:
        inside = any(lo <= port <= hi for lo, hi in ivs)
        assert (rs.evaluate("input", Pkt(dport=port)).verdict == "drop") == (inside != negate)
    # a UDP packet never matches a tcp header match, negated or not
    assert rs.evaluate("input", Pkt(proto=17, dport=probes[0])).verdict == "accept"


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 32), st.lists(st.integers(0, 2 ** 32 - 1), max_size=8),
       st.sampled_from(["", "!= "]))
def test_prefixes_match_like_the_ipaddress_module(base, plen, probes, op):
    net = ipaddress.ip_network((base, plen), strict=False)
    rs = filter_rs(f"\t\tip saddr {op}{ipaddress.ip_address(base)}/{plen} drop")
    for addr in probes + [base]:
        inside = ipaddress.ip_address(addr) in net
        assert (rs.evaluate("input", Pkt(src=addr)).verdict == "drop") == (inside != bool(op))


FLAGS = ["fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr"]
flag_sets = st.sets(st.integers(0, 7), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(flag_sets, flag_sets, st.integers(0, 255), st.sampled_from(["plain", "mask", "and", "neg"]))
def test_tcp_flags_match_like_the_reference(value_bits, mask_bits, packet_flags, form):
    value = sum(1 << b for b in value_bits)
    mask = sum(1 << b for b in mask_bits) | value
    names = lambda bits: ",".join(FLAGS[b] for b in range(8) if bits & (1 << b))  # noqa: E731
    pipes = lambda bits: "|".join(FLAGS[b] for b in range(8) if bits & (1 << b))  # noqa: E731
    expr, want = {
        "plain": (f"tcp flags {names(value)}", packet_flags & value != 0),
        "neg": (f"tcp flags != {names(value)}", packet_flags & value == 0),
        "mask": (f"tcp flags {names(value)} / {names(mask)}", packet_flags & mask == value),
        "and": (f"tcp flags & ({pipes(mask)}) == {pipes(value)}", packet_flags & mask == value),
    }[form]
    rs = filter_rs(f"\t\t{expr} drop")
    assert (rs.evaluate("input", Pkt(tcp_flags=packet_flags)).verdict == "drop") == want
    # and the listing of that rule parses back to the same behaviour
    again = loads(rs.list_ruleset())
    assert (again.evaluate("input", Pkt(tcp_flags=packet_flags)).verdict == "drop") == want


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["eth0", "eth1", "wan0", "wlan0", "lo", ""]),
       st.lists(st.sampled_from(["eth0", "eth*", "wan*", "lo", "w*"]), min_size=1, max_size=3))
def test_interface_wildcards(ifname, patterns):
    rs = filter_rs("\t\tiifname { " + ", ".join(f'"{p}"' for p in patterns) + " } drop")
    want = any(ifname == p or (p.endswith("*") and ifname.startswith(p[:-1])) for p in patterns)
    assert (rs.evaluate("input", Pkt(iifname=ifname)).verdict == "drop") == want


def test_th_ports_match_tcp_and_udp_only():
    rs = filter_rs("\t\tmeta l4proto { tcp, udp } th dport 53 drop\n\t\tth sport != 7 counter")
    assert rs.evaluate("input", Pkt(proto=17, dport=53)).verdict == "drop"
    assert rs.evaluate("input", Pkt(proto=6, dport=53)).verdict == "drop"
    assert rs.evaluate("input", Pkt(proto=6, dport=54)).verdict == "accept"
    assert rs.evaluate("input", icmp(8)).verdict == "accept"
    # the tcp packet to 54, and the icmp one: it has no ports here (the kernel would compare the
    # type and code bytes), so "th sport != 7" holds for it as it would in the kernel
    assert rs.rules()[1].counter.packets == 2


def test_named_sets():
    rs = load(os.path.join(DATA, "sets.nft"))
    ev = rs.evaluate
    assert ev("input", Pkt(src="198.51.100.9")).verdict == "drop"
    assert ev("input", Pkt(src="203.0.113.15", ct_state="established")).verdict == "accept"
    assert ev("input", Pkt(src="203.0.113.15")).rule.format().startswith("ip saddr @blocklist")
    assert ev("input", Pkt(src="10.0.0.5", dport=8443)).verdict == "accept"
    d = ev("input", Pkt(src="10.0.0.7", dport=22, iifname="eth0"))
    assert d.reject == ("tcp-reset",)
    assert ev("input", Pkt(src="10.0.0.7", dport=22, iifname="wg0")).verdict == "drop"  # policy
    assert ev("input", Pkt(proto=17, mark=0x20)).verdict == "accept"
    assert ev("input", Pkt(dport=8050)).verdict == "accept"
    assert ev("input", Pkt(dport=8100)).verdict == "drop"
    blocklist = rs.tables[("inet", "filter")].sets["blocklist"]
    assert blocklist.interval and (0xCB00710A, 0xCB007114) in blocklist.elements


def test_verdict_maps():
    rs = load(os.path.join(DATA, "vmap.nft"))
    ev = rs.evaluate
    assert ev("input", Pkt(ct_state="established", dport=9)).verdict == "accept"
    assert ev("input", Pkt(ct_state="invalid", iifname="lo")).verdict == "drop"
    assert ev("input", Pkt(iifname="lo", dport=9)).verdict == "accept"
    assert ev("input", Pkt(iifname="wg0", src="10.8.0.7", dport=9)).verdict == "accept"
    assert ev("input", Pkt(iifname="wg1", src="10.8.1.1", dport=9)).verdict == "drop"
    # no element for the source: back from vpn, on to the l4proto map and tcp_in
    assert ev("input", Pkt(iifname="wg1", src="10.9.0.1", dport=8080)).verdict == "accept"
    assert ev("input", icmp(8, iifname="eth0")).verdict == "accept"
    assert ev("input", icmp(11, iifname="eth0")).verdict == "drop"  # returns, counter, policy
    d = ev("input", Pkt(iifname="eth0", dport=25))
    assert d.verdict == "drop" and d.chain.name == "tcp_in"
    # goto tcp_in never returns to input: the reset decides
    assert ev("input", Pkt(iifname="eth0", dport=26)).reject == ("tcp-reset",)
    assert ev("input", Pkt(proto=17, iifname="eth0", dport=26)).verdict == "drop"
    assert rs.tables[("inet", "filter")].chains["input"].rules[-1].counter.packets == 2


def test_addresses_may_be_ints_bytes_text_or_ipaddress_objects():
    rs = filter_rs("\t\tip saddr 10.1.2.0/24 drop")
    for src in (0x0A010203, b"\x0a\x01\x02\x03", "10.1.2.3", ipaddress.ip_address("10.1.2.3")):
        pkt = Pkt()
        pkt.ip.src = src
        assert rs.evaluate("input", pkt).verdict == "drop", src
    pkt = Pkt()
    pkt.ip.src = b"\x0a\x01\x03\x03"
    assert rs.evaluate("input", pkt).verdict == "accept"


def test_home_router_example():
    rs = load(os.path.join(DATA, "router.nft"))
    ev = rs.evaluate
    d = ev("prerouting", Pkt(src="198.51.100.1", dst="203.0.113.2", dport=443, iifname="eth0"))
    assert d.nat == types.NatSpec(types.DNAT, 0xC0A8010A)
    d = ev("prerouting", Pkt(proto=17, dport=51820, iifname="eth0"))
    assert d.nat == types.NatSpec(types.DNAT, 0xC0A80114, None, 51820)
    d = ev("prerouting", Pkt(dst="9.9.9.9", dport=53, iifname="br-lan"))
    assert d.nat == types.NatSpec(types.REDIRECT, None, None, 5353)
    assert ev("prerouting", Pkt(dst="192.168.1.1", dport=53, iifname="br-lan")).nat is None
    assert ev("postrouting", Pkt(src="192.168.1.5", oifname="eth0")).nat.kind == "masquerade"
    assert ev("postrouting", Pkt(src="10.0.0.5", oifname="eth0")).nat is None
    fwd = [("br-lan", "eth0", "new", (), "accept"), ("eth0", "br-lan", "new", (), "drop"),
           ("eth0", "br-lan", "new", ("dnat",), "accept"), ("eth0", "br-lan", "established", (), "accept"),
           ("eth0", "br-lan", "invalid", ("dnat",), "drop")]
    for iif, oif, state, status, want in fwd:
        d = ev("forward", Pkt(iifname=iif, oifname=oif, ct_state=state, ct_status=status))
        assert d.verdict == want, (iif, oif, state, status)
    assert ev("forward", icmp(11, iifname="eth0", oifname="br-lan")).verdict == "accept"
