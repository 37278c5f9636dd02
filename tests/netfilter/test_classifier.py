"""The compiled classifier against the linear evaluator: same verdict, same deciding rule, same
mark, same counters, on random rulesets (with jumps, gotos, verdict maps, limits) and random packets."""

from __future__ import annotations

import random
import re
from bisect import bisect_right

from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.netfilter.classifier import Classifier, CompiledChain, _FieldIndex, _radix
from pynetstack.netfilter.nft.expressions import FIELDS
from pynetstack.netfilter.nft import NftError, loads

from .nftgen import random_rules
from .nftstub import Pkt

ADDRS = ["10.0.0.1", "10.0.0.2", "10.1.2.3", "10.2.0.5", "192.168.1.7", "172.16.5.5", "1.2.3.9", "8.8.8.8"]
PORTS = [22, 80, 443, 53, 1, 65535, 1000, 2500, 8080]


def indexed_rules(r: random.Random, count: int):
    """Rules with the keys a real ruleset has: host addresses, prefixes, ports, port sets, ranges."""
    out = []
    for _ in range(count):
        parts = []
        kind = r.randint(0, 6)
        if kind == 0:
            parts.append(f"ip saddr {r.choice(ADDRS)}")
        elif kind == 1:
            parts.append(f"ip daddr {r.choice(['10.0.0.0/8', '10.1.0.0/16', '192.168.1.0/24', r.choice(ADDRS)])}")
        elif kind == 2:
            parts.append(f"tcp dport {r.choice(PORTS)}")
        elif kind == 3:
            parts.append("udp dport { " + ", ".join(str(p) for p in r.sample(PORTS, 3)) + " }")
        elif kind == 4:
            lo = r.choice(PORTS)
            parts.append(f"tcp sport {lo}-{lo + r.randint(0, 3000)}")
        elif kind == 5:
            parts.append(f"ip protocol {r.choice(['tcp', 'udp', 'icmp'])}")
        if r.random() < 0.4:
            parts.append(f"tcp dport {r.choice(PORTS)}")
        if r.random() < 0.2:
            parts.append(r.choice(["ct state new", "meta mark 7", "ct state established,related", "meta mark { 0, 3 }", 'iifname "eth0"', "ip saddr != 10.0.0.1"]))
        if r.random() < 0.5:
            parts.append("counter")
        if r.random() < 0.1:
            parts.append("meta mark set 7")
        parts.append(r.choice(["accept", "drop", "", "continue", "jump sub", "goto sub", "return", "reject"]))
        out.append(" ".join(p for p in parts if p) or "counter")
    return out


def ruleset(rules, sub_rules):
    body = "".join(f"\t\t{rule}\n" for rule in rules)
    sub = "".join(f"\t\t{rule}\n" for rule in sub_rules) or "\t\tcounter\n"
    return (f"table ip t {{\n\tchain c {{\n\t\ttype filter hook input priority 0; policy drop;\n{body}\t}}\n"
            f"\tchain sub {{\n{sub}\t}}\n"
            f"\tchain later {{\n\t\ttype filter hook input priority 10; policy accept;\n\t\ttcp dport 22 counter drop\n"
            f"\t\tcounter\n\t}}\n}}\n")


def _good(rules):
    good = []
    for rule in rules:
        try:
            loads(ruleset([rule], []))
            good.append(rule)
        except NftError:
            pass
    return good


def loadable(rules, sub_rules):
    return ruleset(_good(rules), [s for s in _good(sub_rules) if "jump" not in s and "goto" not in s])


def random_packet(r: random.Random, now: float) -> Pkt:
    proto = r.choice([6, 6, 17, 1])
    return Pkt(src=r.choice(ADDRS), dst=r.choice(ADDRS), proto=proto, sport=r.choice(PORTS + [r.randint(0, 65535)]),
               dport=r.choice(PORTS), tcp_flags=r.choice([2, 0x12, 0x10, 1]), icmp_type=r.choice([0, 8, 3]),
               icmp_code=r.choice([0, 3]), iifname=r.choice(["eth0", "wan0", "lo"]), mark=r.choice([0, 7]),
               ct_state=r.choice(["new", "established", "invalid"]), length=r.randint(40, 1500), now=now)


def counters(rs):
    return [(r.counter.packets, r.counter.bytes) if r.counter else None for r in rs.rules()]


def compare(text: str, seed: int, packets: int = 150):
    linear, compiled = loads(text), loads(text)
    classifier = Classifier(compiled)
    r = random.Random(seed)
    for i in range(packets):
        pkt = random_packet(r, i * 0.01)
        r2 = random.Random(seed * 1000 + i)
        twin = random_packet(r2, 0)
        twin.__dict__.update(pkt.__dict__)
        twin.ip.__dict__.update(pkt.ip.__dict__)
        pkt.trace, twin.trace = [], []
        a = linear.evaluate("input", pkt)
        b = classifier.evaluate(compiled, "input", twin)
        same_id = re.compile(r"trace id [0-9a-f]{8}")
        assert [same_id.sub("", t) for t in pkt.trace] == [same_id.sub("", t) for t in twin.trace]
        assert (a.verdict, a.reject, a.mark, pkt.mark) == (b.verdict, b.reject, b.mark, twin.mark), text
        assert (a.rule.handle if a.rule else None) == (b.rule.handle if b.rule else None)
        assert (a.chain.name if a.chain else None) == (b.chain.name if b.chain else None)
    assert counters(linear) == counters(compiled)
    return classifier


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10 ** 6))
def test_compiled_equals_linear_on_indexed_rulesets(seed):
    r = random.Random(seed)
    text = loadable(indexed_rules(r, r.randint(1, 60)), indexed_rules(r, r.randint(0, 10)))
    if seed % 2:  # without "meta mark set" the mark keys rules too
        text = text.replace("meta mark set 7", "")
    classifier = compare(text, seed)
    assert classifier.mark_fixed == ("meta mark set" not in text)
    assert classifier.stats()["rules"] == len(loads(text).rules())


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10 ** 6))
def test_compiled_equals_linear_on_the_generators_rules(seed):
    # the parser's random rule generator: vmaps, limits, flags, negations, ifname wildcards
    text = loadable(random_rules(seed, 30), random_rules(seed + 1, 5))
    compare(text, seed)


def test_most_rules_are_indexed_and_few_are_candidates():
    rules = [f"ip saddr 10.{i // 250}.{i % 250}.1 tcp dport {1000 + i % 50} accept" for i in range(2000)]
    rules += ["ct state established,related accept", "tcp dport { 22, 80, 443 } accept"]
    rs = loads(ruleset(rules, []))
    chain = rs.tables[("ip", "t")].chains["c"]
    compiled = CompiledChain(chain)
    assert compiled.indexed == 2002 and not compiled.wildcard
    pkt = Pkt(src="10.3.7.1", dport=1007)
    assert compiled.candidates(pkt) == (757,)
    assert compiled.candidates(Pkt(src="10.3.7.1", dport=443, ct_state="established")) == (757, 2000, 2001)
    d = Classifier(rs).evaluate_chain(chain, pkt)
    assert d.verdict == "accept" and d.rule is chain.rules[757]


def test_nested_wide_ranges_stay_bounded():
    rules = [f"ip saddr 10.0.0.0/{8 + i % 24} tcp sport {i}-{60000 - i} accept" for i in range(400)]
    rs = loads(ruleset(rules, []))
    compiled = CompiledChain(rs.tables[("ip", "t")].chains["c"])
    assert sum(len(s) for s in compiled.lookups[0][3]) <= 24 * 400 + 1024
    compare(ruleset(rules, []), 5, packets=50)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10 ** 6))
def test_radix_blocks_give_the_segment_a_bisect_gives(seed):
    r = random.Random(seed)
    space = r.choice([1 << 32, 1 << 16, 256])
    width = r.choice([1, 16, 256, 1 << 12, space // 8])
    items = []
    for n in range(r.randint(1, 400)):
        lo = r.randrange(space) if r.random() < 0.8 else r.choice([0, space - 1, 1 << 16, (1 << 16) - 1])
        items.append((lo, min(space - 1, lo + r.randrange(width)), n))
    index = _FieldIndex(FIELDS["ip saddr"])
    index._build_segments(items)
    bounds, segments = index.bounds, index.segments
    shift, blocks = _radix(bounds, segments, space)
    assert len(blocks) <= 1 << 16
    probes = [0, space - 1] + [r.randrange(space) for _ in range(200)]
    probes += [b + d for b in bounds for d in (-1, 0, 1) if 0 <= b + d < space]
    probes += [(b >> shift << shift) + d for b in bounds for d in (-1, 0) if 0 <= (b >> shift << shift) + d < space]
    for v in probes:
        i = bisect_right(bounds, v) - 1
        want = segments[i] if i >= 0 else ()
        got = blocks[v >> shift]
        if got.__class__ is list:
            got = got[1][bisect_right(got[0], v) - 1]
        assert got == want, (v, space)


def test_compiled_equals_linear_with_radix_indexes():
    # enough prefixes, hosts and port ranges for the interval indexes to take radix tables
    r = random.Random(7)
    rules = []
    for i in range(700):
        a, b = r.choice([10, 172, 192]), r.choice([0, 1, 2, 16, 168])
        kind = i % 4
        if kind == 0:
            rules.append(f"ip saddr {a}.{b}.{r.randint(0, 3)}.0/{r.choice([24, 28, 30])} counter drop")
        elif kind == 1:
            rules.append(f"ip saddr {a}.{b}.{r.randint(0, 3)}.{r.randint(1, 9)} counter accept")
        elif kind == 2:
            lo = r.choice([1, 22, 53, 80, 443, 1000, 8080, 65000]) + r.randint(0, 5)
            rules.append(f"udp dport {lo}-{min(65535, lo + r.randint(1, 40))} counter drop")
        else:
            rules.append(f"tcp sport {r.randint(0, 65535)} counter accept")
    text = ruleset(rules, [])
    compiled = CompiledChain(loads(text).tables[("ip", "t")].chains["c"])
    assert any(isinstance(v, list) and len(v) == 1 << 16 for k, v in compiled.walk.__globals__.items()
               if k.startswith("_r"))
    compare(text, 11, packets=400)
