"""The chain walk (nft/evaluate.py run_base_chain) against a recursive reference of the kernel's
jump/goto/return semantics: the walk keeps one iterator per chain on its jump stack, so a jump
must resume its caller right after the jumping rule, a goto must never come back, and a return
or the end of a chain must go back to the last jump.  Checked on random chains that jump and
goto each other, for the linear walk and the compiled classifier (same verdict, deciding rule,
counters)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.netfilter.classifier import Classifier
from pynetstack.netfilter.nft import loads
from pynetstack.netfilter.nft.statements import Counter, Verdict

from .nftstub import Pkt

CHAINS = ["c", "a", "b", "d"]  # c is the base chain; a chain jumps only to later ones (no loops)
MATCHES = ["", "tcp dport 22", "tcp dport 80", "udp dport 53", "ip saddr 10.0.0.1", "ip saddr 10.0.0.0/24",
           "tcp dport { 22, 443 }", "ip daddr 10.0.0.9"]


def random_ruleset(r: random.Random) -> str:
    out = ["table ip t {"]
    for i, name in enumerate(CHAINS):
        head = "\t\ttype filter hook input priority 0; policy drop;\n" if name == "c" else ""
        rules = []
        for _ in range(r.randint(0, 6)):
            verdicts = ["accept", "drop", "continue", "return", ""]
            verdicts += [f"{how} {t}" for t in CHAINS[i + 1:] for how in ("jump", "goto")] * 2
            parts = [r.choice(MATCHES), "counter" if r.random() < 0.6 else "", r.choice(verdicts)]
            rules.append("\t\t" + (" ".join(p for p in parts if p) or "counter") + "\n")
        out.append(f"\tchain {name} {{\n{head}{''.join(rules)}\t}}")
    out.append("}")
    return "\n".join(out) + "\n"


def reference(chain, pkt):
    """(verdict, deciding rule) or None when the chain ends or returns: recursion is the stack."""
    for rule in chain.rules:
        if rule.test is not None and not rule.test(pkt):
            continue
        verdict = None
        for item in rule.items:
            if isinstance(item, Counter):
                item.packets += 1
                item.bytes += pkt.length
            elif isinstance(item, Verdict):
                verdict = item
        if verdict is None or verdict.kind == "continue":
            continue
        if verdict.kind == "return":
            return None
        target = chain.table.chains.get(verdict.target) if verdict.target else None
        if verdict.kind == "jump":
            out = reference(target, pkt)
            if out is not None:
                return out
            continue
        if verdict.kind == "goto":  # never back here: its end is this chain's end
            return reference(target, pkt)
        return verdict.kind, rule
    return None


def counters(rs):
    return [(c.packets, c.bytes) for rule in rs.rules() for c in [rule.counter] if c is not None]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10 ** 6))
def test_walk_follows_jumps_gotos_and_returns_as_the_reference(seed):
    r = random.Random(seed)
    text = random_ruleset(r)
    ref_rs, linear_rs, compiled_rs = loads(text), loads(text), loads(text)
    classifier = Classifier(compiled_rs)
    for _ in range(12):
        pkt = dict(src=r.choice(["10.0.0.1", "10.0.0.7", "192.0.2.1"]), dst=r.choice(["10.0.0.9", "10.0.0.2"]),
                   proto=r.choice([6, 17]), dport=r.choice([22, 80, 53, 443, 9]))
        out = reference(ref_rs.tables[("ip", "t")].chains["c"], Pkt(**pkt))
        want = ("drop", None) if out is None else (out[0], out[1].handle)
        for decision in (linear_rs.evaluate("input", Pkt(**pkt)), classifier.evaluate(compiled_rs, "input", Pkt(**pkt))):
            got = (decision.verdict, decision.rule.handle if decision.rule is not None else None)
            assert got == want, text
    assert counters(linear_rs) == counters(ref_rs) == counters(compiled_rs), text
