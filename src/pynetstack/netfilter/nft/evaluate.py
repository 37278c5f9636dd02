"""Running a packet through the base chains of one hook, with the kernel's semantics.

- Base chains of the hook run in priority order (families ip and inet see IPv4 packets).
- Within a chain, rules run in order; the first terminal verdict wins.  ``accept`` ends only the
  current base chain: the next base chain on the hook still sees the packet.  ``drop`` and
  ``reject`` are final.  A base chain that ends without a verdict applies its policy.
- ``jump`` returns to the calling chain at the end of the target (or on ``return``); ``goto``
  does not come back: the end of a goto'd chain goes back to the last ``jump`` or to the policy.
- A NAT statement is terminal (the kernel's NAT expressions return NF_ACCEPT): it ends its chain.
  nat chains only see the FIRST packet of a connection (``pkt.ct_state == "new"``); the caller
  enforces that, and applies the same binding to the rest of the connection itself.
- ``limit`` takes its time from ``pkt.now`` (seconds), 0.0 when the packet has none.
"""

from __future__ import annotations

from typing import List, Optional

from .ruleset import (STEP_COUNTER, STEP_LIMIT, STEP_LOG, STEP_MARK, STEP_MATCH, STEP_NAT,
                      STEP_REJECT, STEP_STMT, STEP_VERDICT, STEP_VMAP, Chain, Rule)

MAX_JUMP_DEPTH = 16  # the kernel's NFT_JUMP_STACK_SIZE


class Decision:
    """What the hook decided.  ``verdict``: "accept", "drop" or "reject"; ``nat``: a NatSpec from
    a nat chain or None; ``reject``: None, ("icmp", type, code) or ("tcp-reset",); ``mark``: the
    mark a rule set (None if unchanged); ``rule``/``chain``: what decided (``rule`` None when a
    policy did); ``trace``: the packet's trace list (or None)."""

    __slots__ = ("verdict", "nat", "reject", "mark", "rule", "chain", "trace")

    def __init__(self, trace: Optional[list] = None):
        self.verdict = "accept"
        self.nat = None
        self.reject = None
        self.mark: Optional[int] = None
        self.rule: Optional[Rule] = None
        self.chain: Optional[Chain] = None
        self.trace = trace

    def __repr__(self) -> str:
        return f"Decision({self.verdict!r}, nat={self.nat!r}, reject={self.reject!r}, mark={self.mark!r})"


def evaluate(ruleset, hook: str, pkt) -> Decision:
    trace = getattr(pkt, "trace", None)
    decision = Decision(trace)
    chains = ruleset._hooks.get(hook)
    if chains is None:
        chains = ruleset.base_chains(hook)
    for base in chains:
        verdict = run_base_chain(base, pkt, decision, trace)
        if verdict != "accept":
            decision.verdict = verdict
            return decision
    decision.verdict = "accept"
    return decision


def evaluate_chain(base: Chain, pkt) -> Decision:
    """Run one base chain (as the packet path does, each chain a stage at its own priority)."""
    trace = getattr(pkt, "trace", None)
    decision = Decision(trace)
    decision.verdict = run_base_chain(base, pkt, decision, trace)
    return decision


def _all_rules(chain: Chain, pkt):
    """The linear walk: every rule of the chain, in order."""
    rules = chain.rules
    return rules, range(len(rules))


def run_base_chain(base: Chain, pkt, decision: Decision, trace: Optional[list], walk=_all_rules) -> str:
    """Run a base chain with the kernel's semantics.  ``walk(chain, pkt)`` gives the chain's rules
    and the positions to try, in order: all of them here; a compiled classifier gives only the
    candidates that can match (netfilter/classifier.py), with the same verdicts and counters."""
    if trace is not None:
        trace.append(f"{_trace_head(base, pkt)} packet: {_describe(pkt)}")
    stack: List = []
    chain = base
    rules, order = walk(chain, pkt)
    pos = 0
    while True:
        jumped = False
        while pos < len(order):
            rule = rules[order[pos]]
            pos += 1
            test = rule.test
            if test is not None and not test(pkt):
                continue
            outcome = _run_rule(rule, pkt, decision)
            if outcome is None:
                continue
            kind, target = outcome
            if trace is not None:
                shown = "accept" if kind == "nat" else kind if target is None else f"{kind} {target.name}"
                trace.append(f"{_trace_head(chain, pkt)} rule {rule.format()} (verdict {shown})")
            if kind == "continue":
                continue
            if kind == "jump" or kind == "goto":
                if kind == "jump":
                    if len(stack) >= MAX_JUMP_DEPTH:
                        kind = "drop"
                    else:
                        stack.append((chain, rules, order, pos))
                if kind != "drop":
                    chain = target
                    rules, order = walk(chain, pkt)
                    pos, jumped = 0, True
                    break
            if kind == "return":
                break
            if kind == "nat":  # only the NAT that took effect is recorded as the deciding rule
                return "accept"
            decision.rule, decision.chain = rule, chain
            return kind
        if jumped:
            continue
        # end of chain (or return): back to the caller, or the base chain's policy
        if stack:
            if trace is not None:
                trace.append(f"{_trace_head(chain, pkt)} verdict continue")
            chain, rules, order, pos = stack.pop()
            continue
        if trace is not None:
            trace.append(f"{_trace_head(base, pkt)} policy {base.policy}")
        decision.rule, decision.chain = None, base
        return base.policy


def _run_rule(rule: Rule, pkt, decision: Decision):
    """None when the rule does not match or ends without a verdict, else (verdict, target chain)."""
    for kind, fn, item in rule.steps:
        if kind == STEP_MATCH:
            if not fn(pkt):
                return None
        elif kind == STEP_COUNTER:
            item.packets += 1
            item.bytes += pkt.length
        elif kind == STEP_VERDICT:
            return item.kind, fn
        elif kind == STEP_NAT:
            if decision.nat is None:
                decision.nat = item.spec
                decision.rule, decision.chain = rule, rule.chain
            return "nat", None
        elif kind == STEP_REJECT:
            if fn[0] == "tcp-reset" and pkt.proto != 6:
                return None  # nft gives "reject with tcp reset" an implicit tcp match
            decision.reject = fn
            return "reject", None
        elif kind == STEP_MARK:
            pkt.mark = item.value
            decision.mark = item.value
        elif kind == STEP_LIMIT:
            if item.admit(getattr(pkt, "now", 0.0)) == item.over:
                return None
        elif kind == STEP_STMT:
            if not fn(pkt):
                return None
        elif kind == STEP_VMAP:
            return fn(pkt)  # None (no element: the rule ends as a failed match) or a verdict
        elif kind == STEP_LOG:
            trace = decision.trace
            if trace is not None:
                trace.append(f"log {item.prefix or ''}{_describe(pkt)}")
    return None


def _trace_head(chain: Chain, pkt) -> str:
    return f"trace id {id(pkt) & 0xffffffff:08x} {chain.table.family} {chain.table.name} {chain.name}"


def _describe(pkt) -> str:
    from .datatypes import format_ipv4
    from .expressions import _addr
    from .symbols import PROTOCOL_NAMES
    parts = []
    if pkt.iifname:
        parts.append(f'iif "{pkt.iifname}"')
    if pkt.oifname:
        parts.append(f'oif "{pkt.oifname}"')
    ip = pkt.ip
    proto = PROTOCOL_NAMES.get(pkt.proto, str(pkt.proto))
    parts.append(f"ip saddr {format_ipv4(_addr(ip.src))} ip daddr {format_ipv4(_addr(ip.dst))} "
                 f"ip ttl {ip.ttl} ip protocol {proto} ip length {pkt.length}")
    if pkt.proto in (6, 17):
        parts.append(f"{proto} sport {pkt.sport} {proto} dport {pkt.dport}")
    elif pkt.proto == 1:
        parts.append(f"icmp type {pkt.icmp_type} icmp code {pkt.icmp_code}")
    return " ".join(parts)
