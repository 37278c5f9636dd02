"""What a Prometheus user scraping a router sees: series that keep their identity from scrape to
scrape, and interfaces and classes as labels, as node_exporter and the tc exporters have them."""

from __future__ import annotations

from pynetstack.link.memory import MemoryDevice
from pynetstack.monitor import metrics
from pynetstack.netfilter.router import install_router
from pynetstack.qos.config import build as build_qos
from pynetstack.stack import Stack

RULES = """
table ip filter {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip saddr 192.168.1.0/24 counter accept
	}
}
"""


def test_an_nft_rule_counter_is_one_series_however_much_it_counts():
    with Stack(forwarding=True) as stack:
        stack.add_interface(MemoryDevice("lan0"), "192.168.1.1/24")
        router = install_router(stack, ruleset_text=RULES)
        before = metrics.flatten(metrics.collect(stack))
        rule = router.ruleset.rules()[0]
        rule.counter.packets, rule.counter.bytes = 7, 700
        after = metrics.flatten(metrics.collect(stack))
    keys = [key for key in after if key.startswith("pynetstack_nft_rule_packets_total")]
    assert len(keys) == 1 and keys[0] in before, (keys, [k for k in before if "nft_rule" in k])
    assert after[keys[0]] == 7
    assert 'rule="ip saddr 192.168.1.0/24 counter accept"' in keys[0]


def test_qos_series_carry_the_interface_and_the_class_as_labels():
    with Stack(forwarding=True) as stack:
        stack.add_interface(MemoryDevice("wan0"), "203.0.113.10/24", name="wan0")
        build_qos(stack, {"interface": "wan0", "rate": "50mbit"})
        families = {family.sample_name: family for family in metrics.collect(stack)}
    qos = [name for name in families if name.startswith("pynetstack_qos_")]
    assert qos and not [name for name in qos if "wan0" in name or "voice" in name or "bulk" in name], qos
    sent = families["pynetstack_qos_class_sent_bytes_total"]
    assert sent.labels == ("device", "class") and ("wan0", "voice") in [values for values, _ in sent.samples]
    assert families["pynetstack_qos_sent_packets_total"].labels == ("device",)
    target = families["pynetstack_qos_sla_target_delay_p99_seconds"]
    assert dict(target.samples)[("wan0", "voice")] == 0.010  # 10 ms, in the unit promtool asks for
    assert not [name for name in qos if name.endswith(("_ms", "_us", "_mbit"))], qos


def test_a_dns_server_on_the_stack_is_in_the_metrics(tmp_path):
    from pynetstack.dns.config import build_from_config
    from pynetstack.dns.stackio import serve_on_stack
    from pynetstack.wire import dns as w
    (tmp_path / "t.zone").write_text("$ORIGIN t.\n$TTL 300\n@ IN SOA ns h 1 2 3 4 5\n@ IN NS ns\nns IN A 192.0.2.1\n")
    server = build_from_config({"zones": ["t.zone"]}, str(tmp_path))
    with Stack() as stack:
        serve_on_stack(stack, server, tcp=False)
        query = w.Message(id=1, questions=[w.Question("ns.t.", w.A)]).encode()
        server.handle(query, "udp", 0.0)
        server.handle(b"\x00", "udp", 0.0)
        flat = metrics.flatten(metrics.collect(stack))
    assert flat['pynetstack_dns_answers_total{how="authoritative"}'] == 1, [k for k in flat if "dns" in k]
    assert sum(v for k, v in flat.items() if k.startswith("pynetstack_dns_drops_total")) == 1


def test_qos_series_pass_promtool():
    import shutil
    import subprocess

    import pytest

    from pynetstack.monitor.exposition import Exposition
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian package prometheus) not installed")
    with Stack(forwarding=True) as stack:
        stack.add_interface(MemoryDevice("wan0"), "203.0.113.10/24", name="wan0")
        build_qos(stack, {"interface": "wan0", "rate": "50mbit"})
        text = Exposition(stack).text().decode()
    assert "pynetstack_qos_class_sent_bytes_total" in text
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_qos_throughput_is_in_bytes_per_second():
    families = {f.sample_name: f for f in metrics.families({"gather": {"qos": {"wan0": {
        "sla": {"video": {"throughput_mbit": 8.0, "delay_p99_ms": 20.0, "packets": 5}}}}}})}
    assert dict(families["pynetstack_qos_sla_throughput_bytes_per_second"].samples) == {("wan0", "video"): 1e6}
    assert dict(families["pynetstack_qos_sla_delay_p99_seconds"].samples) == {("wan0", "video"): 0.02}
    assert families["pynetstack_qos_sla_packets_total"].kind == "counter"
