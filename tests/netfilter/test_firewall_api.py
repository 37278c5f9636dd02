"""The seed's NetworkFirewall (nft rules underneath) and the per-source limiters."""

from __future__ import annotations

import pytest

from pynetstack.net import hooks as hk
from pynetstack.netfilter.firewall import FirewallError, NetworkFirewall
from pynetstack.netfilter.limits import SlidingWindowLimiter, TokenBucketLimiter
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.ipv4 import IPv4, build_ipv4
from pynetstack.wire.tcp import build_tcp


def syn(src: str, dst: str, dport: int) -> bytes:
    s, d = ip_to_int(src), ip_to_int(dst)
    return build_ipv4(s, d, 6, build_tcp(s, d, 40000, dport, 1, 0, 0x02, 65535), 64, 0, False)


def test_the_seeds_example_and_priorities():
    fw = NetworkFirewall(default_action="deny")
    text = fw.add_rule({"name": "Allow SSH from trusted networks", "action": "allow", "protocol": "tcp",
                        "dst_port": "22", "src_ip": "192.168.1.0/24"})
    assert text == 'ip saddr 192.168.1.0/24 tcp dport 22 counter accept comment "Allow SSH from trusted networks"'
    assert fw.filter_packet(syn("192.168.1.5", "10.0.0.1", 22)) == {"action": "allow",
                                                                    "rule": "Allow SSH from trusted networks"}
    assert fw.filter_packet(syn("192.168.2.5", "10.0.0.1", 22)) == {"action": "deny", "rule": None}
    # a lower priority number goes first, whatever the order of insertion
    fw.add_rule({"name": "block one host", "action": "reject", "src_ip": "192.168.1.66", "priority": 1})
    assert fw.filter_packet(syn("192.168.1.66", "10.0.0.1", 22))["action"] == "reject"
    assert fw.filter_packet(syn("192.168.1.5", "10.0.0.1", 22), direction="outbound")["action"] == "allow"
    assert fw.ruleset_text().index("block one host") < fw.ruleset_text().index("Allow SSH")


@pytest.mark.parametrize("rule,words", [
    ({"action": "permit"}, "action"), ({"action": "allow", "protocol": "sctp"}, "protocol"),
    ({"action": "allow", "dst_port": "22"}, "dst_port needs protocol"),
    ({"action": "allow", "src_ip": "300.1.1.1"}, "bad rule"), ({"action": "allow", "colour": 1}, "colour"),
])
def test_bad_rules_are_named(rule, words):
    fw = NetworkFirewall()
    with pytest.raises(FirewallError) as info:
        fw.add_rule(rule)
    assert words in str(info.value)
    assert fw.rules == []


def test_sliding_window_counter_against_a_brute_force_window():
    limiter = SlidingWindowLimiter(50, window=1.0, max_keys=4)
    sent = [i * 0.004 for i in range(2500)]  # 250 packets/s for 10 s, 50 allowed per second
    allowed = [t for t in sent if limiter.allow("a", t)]
    assert abs(len(allowed) - 500) <= 0.05 * 500  # within 5 % of the configured rate
    # never more than the limit (plus the approximation's slack) in any sliding second
    j = 0
    for i, t in enumerate(allowed):
        while allowed[j] <= t - 1.0:
            j += 1
        assert i - j + 1 <= 55
    for k in range(10):  # bounded: the least recently seen key goes
        limiter.allow(k, 20.0)
    assert len(limiter.keys) == 4 and limiter.counters["evicted"] >= 7


def test_token_bucket_per_key():
    bucket = TokenBucketLimiter(10, burst=5)
    assert sum(bucket.allow("x", 0.0) for _ in range(20)) == 5
    assert sum(bucket.allow("x", 1.0) for _ in range(20)) == 5  # refilled to its burst, not 10
    assert sum(bucket.allow("x", 1.0 + i / 100) for i in range(100)) == 9  # 9.9 tokens in 0.99 s
    assert bucket.allow("y", 1.0)


class FakeCt:
    status = 0
    deadline = 1e9


def test_connection_limit_per_source():
    fw = NetworkFirewall(default_action="allow")
    fw.connection_limit(2)
    assert "add @conn_per_source { ip saddr ct count over 2 }" in fw.ruleset_text()
    verdicts = []
    for _ in range(4):
        ctx_ct = FakeCt()
        ctx = hk.PacketContext(IPv4.parse(syn("10.0.0.9", "10.0.0.1", 80)), "input", 0.0)
        ctx.ct, ctx.ct_state = ctx_ct, "new"
        verdicts.append(fw._classifier.evaluate(fw._ruleset, "input", ctx).verdict)
    assert verdicts == ["accept", "accept", "reject", "reject"]
    with pytest.raises(FirewallError):
        fw.connection_limit(0)
    proxy = fw.synproxy(["10.0.2.10"], [80])
    assert "synproxy" in fw.stats() and proxy.stats()["flows"] == 0
