"""Slice 1: the registry as Prometheus text, checked by prometheus-client's own parser (and
promtool when it is installed), served on a host socket and on the stack's HTTP service."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pynetstack.api.tcp import create_connection
from pynetstack.link.memory import memory_pair
from pynetstack.monitor import metrics
from pynetstack.monitor.config import MonitorConfig
from pynetstack.monitor.exposition import _convert
from pynetstack.monitor.monitor import Monitor
from pynetstack.netfilter.router import install_router
from pynetstack.services import http
from pynetstack.sim import Simulation
from pynetstack.stack import Stack

GATHER = {
    "nstat": {"IpInReceives": 7, "IpForwDatagrams": 3, "IcmpOutEchoReps": 2},
    "drops": {"ttl-exceeded": 4, 'odd"reason\\': 1},
    "netdev": {"eth0": {"receive_bytes_total": 1000, "receive_packets_total": 10,
                        "transmit_bytes_total": 500, "transmit_packets_total": 5},
               "eth1": {"receive_bytes_total": 1, "receive_packets_total": 1,
                        "transmit_bytes_total": 2, "transmit_packets_total": 2}},
    "host": {"ip_in_receives": 7},
    "functions": {"conntrack": {"entries": 3, "found": 9, "nested": {"deep": 1.5}, "text": "ignored"},
                  "nft": {"nat-failed": 1, "packets_total": 5, "rules_count": 2}},
    "flowtable": {"flows": 2, "hits": 40},
    "tcp": {"state:ESTABLISHED": 3, "resets-sent": 1},
    "dns": {"cache": {"hits": 11, "misses": 2}},
}


def exposed(snapshot):
    """({(sample name, frozenset(labels)): value}, text) as prometheus-client parses our text back."""
    fams = metrics.families(snapshot)

    class Collector:
        def collect(self):
            return [_convert(f) for f in fams]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out, text


def test_every_number_of_the_registry_comes_out_under_its_prometheus_name():
    out, text = exposed({"gather": GATHER, "tcp_states": {"ESTABLISHED": 3, "LISTEN": 1}, "srtt": [0.01, 0.03],
                         "uptime": 12.5})
    assert out[("pynetstack_nstat_ip_in_receives_total", frozenset())] == 7
    assert out[("pynetstack_nstat_ip_forw_datagrams_total", frozenset())] == 3
    assert out[("pynetstack_drops_total", frozenset({("reason", "ttl-exceeded")}))] == 4
    assert out[("pynetstack_drops_total", frozenset({("reason", 'odd"reason\\')}))] == 1
    assert out[("pynetstack_network_receive_bytes_total", frozenset({("device", "eth0")}))] == 1000
    assert out[("pynetstack_network_transmit_packets_total", frozenset({("device", "eth1")}))] == 2
    assert out[("pynetstack_tcp_connections", frozenset({("state", "ESTABLISHED")}))] == 3
    assert out[("pynetstack_tcp_connections", frozenset({("state", "TIME-WAIT")}))] == 0
    assert out[("pynetstack_tcp_state_established_total", frozenset())] == 3
    assert out[("pynetstack_conntrack_entries", frozenset())] == 3
    assert out[("pynetstack_conntrack_nested_deep", frozenset())] == 1.5
    assert out[("pynetstack_nft_nat_failed", frozenset())] == 1
    assert out[("pynetstack_nft_packets_total", frozenset())] == 5  # a counter by its name
    assert out[("pynetstack_nft_rules_count_value", frozenset())] == 2  # _count is a summary's
    assert out[("pynetstack_flowtable_flows", frozenset())] == 2
    assert out[("pynetstack_flowtable_hits_total", frozenset())] == 40
    assert out[("pynetstack_dns_cache_hits", frozenset())] == 11
    assert out[("pynetstack_tcp_srtt_mean_seconds", frozenset())] == pytest.approx(0.02)
    assert "text" not in " ".join(name for name, _ in out)
    # every leaf number of the registry is somewhere in the output
    # nstat 3, drops 2, netdev 8, host 1, functions 6, flowtable 2, tcp 2, dns 2, states 11, srtt 2, uptime
    assert len(out) == 3 + 2 + 8 + 1 + 6 + 2 + 2 + 2 + 11 + 2 + 1
    for name, _ in out:
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name  # snake case: promtool's rule
    assert "# HELP pynetstack_nstat_ip_in_receives_total nstat IpInReceives" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_finds_nothing_to_complain_about():
    _, text = exposed({"gather": GATHER, "tcp_states": {}, "srtt": [], "uptime": 1.0})
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_series_keys_round_trip():
    key = metrics.series_key("m_total", ("reason", "x"), ('a"b\\c', "2"))
    assert metrics.parse_key(key) == ("m_total", {"reason": 'a"b\\c', "x": "2"})
    assert metrics.parse_key("up") == ("up", {})
    with pytest.raises(ValueError):
        metrics.parse_key("bad{x=1}")


def test_a_router_on_the_virtual_clock_is_scraped_from_the_host_socket():
    sim = Simulation()
    a, b = sim.stack(forwarding=True), sim.stack()
    sim.link(a, "10.0.0.1/24", b, "10.0.0.2/24", names=("eth0", "eth1"))
    install_router(a, ruleset_text="")
    monitor = Monitor(a, MonitorConfig(listen=("127.0.0.1", 0), collection_interval=1.0)).start()
    try:
        sim.run(3.5)
        assert monitor.samples == 4  # at 0, 1, 2 and 3 s of virtual time
        body = urllib.request.urlopen(monitor.server.url + "/metrics", timeout=10).read().decode()
        values = {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples if not s.labels}
        assert values["pynetstack_conntrack_max"] == 65536
        assert values["pynetstack_monitor_samples"] == 4
        gathered = a.counters.gather()
        assert values["pynetstack_nstat_ip_in_discards_total"] == gathered["nstat"]["IpInDiscards"]
    finally:
        monitor.close()


def test_nft_rule_counters_are_exported_with_their_rule():
    sim = Simulation()
    a, b = sim.stack(forwarding=True), sim.stack()
    sim.link(a, "10.0.0.1/24", b, "10.0.0.2/24", names=("eth0", "eth1"))
    install_router(a, ruleset_text="table ip filter {\n chain input {\n type filter hook input priority 0; "
                                    "policy accept;\n udp dport 7777 counter drop\n }\n}\n")
    for _ in range(3):
        b.send_udp(5000, b"abc", ("10.0.0.1", 7777))
    sim.run(0.5)
    flat = metrics.flatten(metrics.collect(a))
    key = next(k for k in flat if k.startswith("pynetstack_nft_rule_packets_total"))
    assert flat[key] == 3
    name, labels = metrics.parse_key(key)
    assert labels["chain"] == "input" and labels["table"] == "filter" and "udp dport 7777" in labels["rule"]
    assert flat[key.replace("_packets_", "_bytes_")] == 3 * (20 + 8 + 3)


def test_metrics_on_the_stacks_own_http_service():
    stack = Stack()
    dev, _peer = memory_pair(names=("mon0", "mon1"))
    stack.add_interface(dev, "10.78.5.1/24")
    http.install(stack)
    monitor = Monitor(stack, MonitorConfig(listen=None)).start()
    stack.start_background()
    try:
        sock = create_connection(stack, ("10.78.5.1", 80), timeout=10)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"text/plain; version=0.0.4" in head
        names = {f.name for f in text_string_to_metric_families(body.decode())}
        assert "pynetstack_tcp_connections" in names and "pynetstack_network_receive_bytes" in names
    finally:
        stack.close()
        monitor.close()
