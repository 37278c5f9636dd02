"""A router as a new user configures it (README's router.nft), on the virtual clock: what the
tester found when the same setup ran between namespaces.  Tests marked xfail describe a defect
whose fix lies in a file another helper owns; they turn into failures (strict) once fixed."""

from __future__ import annotations


from pynetstack.api.tcp import tcp_layer
from pynetstack.ids.config import build as build_ids
from pynetstack.netfilter.router import install_router
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int

from .tcp.tcp_harness import BulkApp

WAN_HOST = ip_to_int("203.0.113.2")
ROUTER_NFT = """
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.168.1.0/24 oifname "wan0" counter masquerade
	}
}
table ip filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan0" accept
	}
}
"""
RULES = ('alert tcp any any -> any 80 (msg:"syn"; flags:S; sid:1;)\n'
         'alert tcp any any -> any 80 (msg:"payload"; content:"GET /secret"; sid:2;)\n')


def nat_lab(tmp_path, ruleset=ROUTER_NFT):
    sim = Simulation()
    lan, r, wan = sim.stack(), sim.stack(forwarding=True), sim.stack()
    sim.link(lan, "192.168.1.2/24", r, "192.168.1.1/24", names=("eth0", "lan0"))
    sim.link(r, "203.0.113.1/24", wan, "203.0.113.2/24", names=("wan0", "eth0"))
    lan.add_route("0.0.0.0/0", "192.168.1.1")
    if ruleset is None:  # plain routing: the WAN host routes back to the LAN
        wan.add_route("192.168.1.0/24", "203.0.113.1")
    router = install_router(r, ruleset_text=ruleset or "")
    return sim, lan, r, wan, router


def fetch_through_nat(sim, lan, wan, request: bytes, address=WAN_HOST, port=80):
    """``lan`` fetches from ``wan`` (listening on port 80) by connecting to address:port."""
    tl, tw = tcp_layer(lan), tcp_layer(wan)
    listener = tw.listen(80)
    client = tl.connect(address, port, sim.now)
    sim.run(duration=5, until=lambda: bool(listener.accept_queue))
    server = listener.accept()
    app_c, app_s = BulkApp(client, request), BulkApp(server, b"HTTP/1.0 200 OK\r\n\r\nok")

    def pump():
        app_c.pump(sim.now)
        app_s.pump(sim.now)
        return app_c.eof and app_s.eof
    sim.run(duration=30, until=pump)
    assert bytes(app_s.received) == request


def test_ids_on_a_plain_router_matches_payloads(tmp_path):
    """The control for the test below: without NAT one connection is one flow and matches."""
    sim, lan, r, wan, router = nat_lab(tmp_path, ruleset=None)
    (tmp_path / "local.rules").write_text(RULES)
    ids = build_ids(r, {"rules": ["local.rules"]}, str(tmp_path))
    alerts = []
    ids.on_alerts = alerts.extend
    fetch_through_nat(sim, lan, wan, b"GET /secret HTTP/1.0\r\n\r\n")
    assert ids.stats()["flows"] == 1, ids.stats()
    assert sorted(alert.rule.sid for alert in alerts) == [1, 2]


def test_ids_on_a_masquerading_router_matches_payloads(tmp_path):
    sim, lan, r, wan, router = nat_lab(tmp_path)
    (tmp_path / "local.rules").write_text(RULES)
    ids = build_ids(r, {"rules": ["local.rules"]}, str(tmp_path))
    alerts = []
    ids.on_alerts = alerts.extend
    fetch_through_nat(sim, lan, wan, b"GET /secret HTTP/1.0\r\n\r\n")
    sids = sorted(alert.rule.sid for alert in alerts)
    assert ids.stats()["flows"] == 1, ids.stats()  # one TCP connection is one flow, NAT or not
    assert 2 in sids, sids
    # the rules see the client by its own address, as Suricata on the LAN interface would
    lan_host = ip_to_int("192.168.1.2")
    assert {(a.packet.src, a.packet.dst) for a in alerts} == {(lan_host, WAN_HOST)}


PORT_FORWARD_NFT = """
table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" tcp dport 8080 dnat to 192.168.1.2:80
	}
}
table ip filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct status dnat accept
		iifname "lan0" accept
	}
}
"""
LAN_SERVER_RULES = (
    'alert tcp any any -> 192.168.1.2 80 (msg:"syn to the server"; flags:S; sid:1;)\n'
    'alert tcp any any -> 192.168.1.2 80 (msg:"payload"; flow:established,to_server; content:"GET /secret"; sid:2;)\n'
    'alert http any any -> any any (msg:"uri"; http.uri; content:"/secret"; sid:3;)\n'
    'alert tcp 192.168.1.2 80 -> any any (msg:"answer"; flow:to_client; content:"200 OK"; sid:4;)\n'
    'alert tcp any any -> 203.0.113.1 8080 (msg:"public address"; sid:5;)\n')


def test_ids_on_a_port_forward_sees_one_flow_to_the_lan_server(tmp_path):
    """DNAT: a WAN client fetches from the router's public port 8080, forwarded to a LAN server
    on port 80. The IDS sees one flow, client -> 192.168.1.2:80 from the first SYN on, and its
    payload, HTTP and to_client rules match; no packet shows the public address."""
    sim, lan, r, wan, router = nat_lab(tmp_path, ruleset=PORT_FORWARD_NFT)
    wan.add_route("0.0.0.0/0", "203.0.113.1")
    (tmp_path / "local.rules").write_text(LAN_SERVER_RULES)
    ids = build_ids(r, {"rules": ["local.rules"]}, str(tmp_path))
    alerts = []
    ids.on_alerts = alerts.extend
    fetch_through_nat(sim, wan, lan, b"GET /secret HTTP/1.0\r\n\r\n", address=ip_to_int("203.0.113.1"),
                      port=8080)
    assert ids.stats()["flows"] == 1, ids.stats()
    assert sorted(alert.rule.sid for alert in alerts) == [1, 2, 3, 4], alerts
    assert [key[0] for key in ids.detector.flows.flows] == ["ct"]  # keyed by the conntrack entry
    answer = [a for a in alerts if a.rule.sid == 4][0]
    assert answer.direction == 1 and answer.packet.dst == WAN_HOST


def test_nft_f_without_flush_adds_to_the_ruleset_as_linux_does(tmp_path):
    from pynetstack.router_control import answer
    sim, lan, r, wan, router = nat_lab(tmp_path)
    extra = tmp_path / "extra.nft"
    extra.write_text("table ip extra {\n\tchain c {\n\t\ttype filter hook input priority 10; policy accept;\n"
                     "\t\tcounter\n\t}\n}\n")
    assert answer(r, f"nft load {extra}") == ""
    listing = answer(r, "nft list ruleset")
    assert "table ip extra" in listing
    assert "masquerade" in listing and "table ip filter" in listing, listing  # Linux keeps them


METER = """
table ip filter {
	set udp_meter {
		type ipv4_addr
		size 65535
		flags dynamic,timeout
		timeout 30s
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		meta l4proto udp add @udp_meter { ip saddr limit rate over 10/second } counter drop
	}
}
"""


def test_nft_list_shows_the_elements_rules_added_to_a_dynamic_set(tmp_path):
    sim, lan, r, wan, router = nat_lab(tmp_path, ruleset=None)
    router.load(text=METER)
    lan.udp.sendto(b"x", 4000, WAN_HOST, 9000, sim.now)
    sim.run(0.5)
    listing = router.ruleset.list_ruleset(now=sim.now)
    assert "counter packets 0 " in listing  # one datagram is within the limit: the element exists
    assert "elements = { 192.168.1.2 limit rate over 10/second expires" in listing, listing
