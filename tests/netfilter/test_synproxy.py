"""The SYN proxy on the virtual clock: a client connects and moves data through it both ways,
the server sees only proven clients, a spoofed SYN flood leaves no state anywhere."""

from __future__ import annotations

import random

from pynetstack.netfilter.router import install_router
from pynetstack.netfilter.synproxy import SynProxy
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.ethernet import ETH_IPV4, build_frame
from pynetstack.wire.ipv4 import build_ipv4
from pynetstack.wire.tcp import build_options, build_tcp

from ..stacks import exchange, tcp_pair
from ..tcp.tcp_harness import digest

CLIENT, SERVER = ip_to_int("198.51.100.2"), ip_to_int("10.0.2.10")
RULES = """table ip web {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related counter accept
		ip daddr 10.0.2.10 tcp dport 80 counter accept
	}
}
"""


def lab():
    sim = Simulation()
    client, router, server = sim.routed(("198.51.100.2/24", "198.51.100.1/24", "wan0"),
                                        ("10.0.2.10/24", "10.0.2.1/24", "lan0"))
    install_router(router, ruleset_text=RULES)
    proxy = router.register(SynProxy(servers=["10.0.2.10"], ports=[80], secret=b"k" * 32))
    return sim, client, router, server, proxy


def test_a_connection_through_the_proxy_carries_data_both_ways():
    sim, client, router, server, proxy = lab()
    conn, peer = tcp_pair(sim, client, server, SERVER, 80)
    assert peer is not None and conn.state == "ESTABLISHED"
    rng = random.Random(3)
    up, down = rng.randbytes(200_000), rng.randbytes(300_000)
    at_server, at_client = exchange(sim, conn, peer, up, down, limit=60)
    assert digest(at_server) == digest(up) and digest(at_client) == digest(down)
    stats = proxy.stats()
    assert (stats["syn-answered"], stats["cookie-valid"], stats["handshakes"]) == (1, 1, 1)
    assert not [r for r in list(client.drops) + list(server.drops) if "checksum" in r]
    assert not [r for r in router.drops if r.startswith(("nft-", "synproxy"))], dict(router.drops)


def test_a_spoofed_syn_flood_never_reaches_the_server_and_leaves_no_state():
    sim, client, router, server, proxy = lab()
    seen_by_server = []
    server.host.hooks.add("prerouting", lambda ctx: seen_by_server.append(ctx.tcp_flags) or "accept", -1000)
    rng = random.Random(9)
    wan = router.host.interfaces["wan0"]
    for i in range(500):
        src = ip_to_int(f"198.51.100.{rng.randint(3, 250)}")  # on the WAN link, so SYN-ACKs route
        opts = build_options(mss=1460)
        seg = build_tcp(src, SERVER, rng.randint(1024, 65535), 80, rng.getrandbits(32), 0, 0x02, 64240, b"", opts)
        frame = build_frame(wan.mac, b"\x02\x00\x00\x00\x00\x09", ETH_IPV4, build_ipv4(src, SERVER, 6, seg, 64, i, True))
        router.host.receive_frame(wan, frame, sim.now)
        # and ACKs with made-up cookies
        bad = build_tcp(src, SERVER, 1000 + i, 80, 5, rng.getrandbits(32), 0x10, 64240)
        router.host.receive_frame(wan, build_frame(wan.mac, b"\x02\x00\x00\x00\x00\x09", ETH_IPV4,
                                                   build_ipv4(src, SERVER, 6, bad, 64, i, True)), sim.now)
    sim.run(1.0)
    assert seen_by_server == []
    stats = proxy.stats()
    assert stats["syn-answered"] == 500 and stats["cookie-invalid"] == 500 and stats["flows"] == 0
    assert len(router.router.conntrack_list()) == 0  # no conntrack entry for any of it


def test_cookies_check_out_and_expire():
    proxy = SynProxy(servers=["10.0.2.10"], ports=[80], secret=b"s" * 32)
    c = proxy.cookie(CLIENT, 4000, SERVER, 80, 12345, 1460, now=10.0)
    assert proxy.check_cookie(CLIENT, 4000, SERVER, 80, 12345, c, now=70.0) == 1460
    assert proxy.check_cookie(CLIENT, 4001, SERVER, 80, 12345, c, now=70.0) is None
    assert proxy.check_cookie(CLIENT, 4000, SERVER, 80, 12345, c, now=200.0) is None  # two periods on
    assert proxy.check_cookie(CLIENT, 4000, SERVER, 80, 12345, proxy.cookie(CLIENT, 4000, SERVER, 80, 12345, 600, 0),
                              now=1.0) == 536
