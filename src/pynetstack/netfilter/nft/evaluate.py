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
- Tracing, as ``nft monitor trace``: a packet whose ``trace`` is a list (``pynetstack trace``),
  or one that ``meta nftrace set 1`` marked while a monitor listens, gets a line for its headers
  at the start of each base chain, one per rule that matched with its verdict (``continue`` for a
  rule without one) and the policy of a base chain that ends without a verdict.
"""

from __future__ import annotations

from typing import List, Optional

from .ruleset import (STEP_COUNTER, STEP_LIMIT, STEP_LOG, STEP_MARK, STEP_MATCH, STEP_NAT,
                      STEP_REJECT, STEP_STMT, STEP_TRACE, STEP_VERDICT, STEP_VMAP, Chain, Rule)

MAX_JUMP_DEPTH = 16  # the kernel's NFT_JUMP_STACK_SIZE
_MATCHED = ("continue", None)  # a rule that matched and ended without a verdict


class TraceMonitor:
    """Where the trace lines of ``meta nftrace set 1`` packets go: every subscriber (a running
    ``nft monitor trace``) gets each line.  With no subscriber, nothing is traced at all (the
    kernel, too, builds trace events only while someone listens)."""

    def __init__(self):
        self.subscribers: List = []

    def sink(self):
        return _Sink(self.subscribers) if self.subscribers else None


class _Sink:
    __slots__ = ("subscribers",)

    def __init__(self, subscribers: List):
        self.subscribers = subscribers

    def append(self, line: str) -> None:
        for subscriber in list(self.subscribers):
            subscriber(line)


def _trace_of(pkt, monitor: Optional[TraceMonitor]):
    trace = getattr(pkt, "trace", None)
    # (a monitor without subscribers gives no sink: its packets' nftrace need not be read)
    if trace is None and monitor is not None and monitor.subscribers and getattr(pkt, "nftrace", False):
        trace = monitor.sink()
    return trace


class Decision:
    """What the hook decided.  ``verdict``: "accept", "drop" or "reject"; ``nat``: a NatSpec from
    a nat chain or None; ``reject``: None, ("icmp", type, code) or ("tcp-reset",); ``mark``: the
    mark a rule set (None if unchanged); ``rule``/``chain``: what decided (``rule`` None when a
    policy did); ``trace``: the packet's trace list (or None); ``monitor``: where ``meta nftrace``
    sends its lines."""

    __slots__ = ("verdict", "nat", "reject", "mark", "rule", "chain", "trace", "monitor")

    def __init__(self, trace: Optional[list] = None, monitor: Optional[TraceMonitor] = None):
        self.verdict = "accept"
        self.nat = None
        self.reject = None
        self.mark: Optional[int] = None
        self.rule: Optional[Rule] = None
        self.chain: Optional[Chain] = None
        self.trace = trace
        self.monitor = monitor

    def __repr__(self) -> str:
        return f"Decision({self.verdict!r}, nat={self.nat!r}, reject={self.reject!r}, mark={self.mark!r})"


class _LinearWalks:
    """``walks[chain](pkt)`` -> (the chain's rules, the positions to try): all of them, in order
    (the linear evaluator).  The classifier's ``walks`` is a dict of generated functions, so a
    walk costs it a dict probe in C and the call of its candidate lookup, nothing more."""

    def __getitem__(self, chain: Chain):
        rules = chain.rules
        every = (rules, range(len(rules)))
        return lambda pkt: every


_all_rules = _LinearWalks()


def evaluate(ruleset, hook: str, pkt, walks=_all_rules, monitor: Optional[TraceMonitor] = None) -> Decision:
    """Every base chain of ``hook`` in priority order."""
    decision = Decision(_trace_of(pkt, monitor), monitor)
    chains = ruleset._hooks.get(hook)
    if chains is None:
        chains = ruleset.base_chains(hook)
    for base in chains:
        verdict = run_base_chain(base, pkt, decision, walks)
        if verdict != "accept":
            decision.verdict = verdict
            return decision
    decision.verdict = "accept"
    return decision


def evaluate_chain(base: Chain, pkt, walks=_all_rules, monitor: Optional[TraceMonitor] = None) -> Decision:
    """Run one base chain (as the packet path does, each chain a stage at its own priority)."""
    decision = Decision(_trace_of(pkt, monitor), monitor)
    decision.verdict = run_base_chain(base, pkt, decision, walks)
    return decision


def run_base_chain(base: Chain, pkt, decision: Decision, walks=_all_rules) -> str:
    """Run a base chain with the kernel's semantics.  ``walks[chain](pkt)`` gives the chain's
    rules and the positions to try, in order: all of them here; a compiled classifier gives only
    the candidates that can match (netfilter/classifier.py), with the same verdicts and counters."""
    trace = decision.trace
    if trace is not None:
        trace.append(f"{_trace_head(base, pkt)} packet: {_describe(pkt)}")
    stack: Optional[List] = None  # made on the first jump: most packets take none
    chain = base
    rules, order = walks[chain](pkt)
    # an iterator over the positions keeps its place, so a jump saves it on the stack as it is
    todo = iter(order)
    while True:
        for n in todo:
            rule = rules[n]
            test = rule.test
            if test is not None and not test(pkt):
                continue
            outcome = _run_rule(rule, pkt, decision)
            if outcome is None:
                continue
            kind, target = outcome
            trace = decision.trace  # (``meta nftrace set 1`` may have started a trace)
            if trace is not None:
                shown = "accept" if kind == "nat" else kind if target is None else f"{kind} {target.name}"
                trace.append(f"{_trace_head(chain, pkt)} rule {rule.format()} (verdict {shown})")
            if kind == "accept" or kind == "drop":  # the common ends first: one test each
                decision.rule, decision.chain = rule, chain
                return kind
            if kind == "continue":
                continue
            if kind == "jump" or kind == "goto":
                if kind == "jump":
                    if stack is None:
                        stack = []
                    if len(stack) >= MAX_JUMP_DEPTH:
                        kind = "drop"
                    else:
                        stack.append((chain, rules, todo))
                if kind != "drop":
                    chain = target
                    rules, order = walks[chain](pkt)
                    todo = iter(order)
                    break
            if kind == "return":
                todo = iter(())  # the rest of this chain is skipped: its end follows
                break
            if kind == "nat":  # only the NAT that took effect is recorded as the deciding rule
                return "accept"
            decision.rule, decision.chain = rule, chain
            return kind
        else:
            # end of chain (or return): back to the caller, or the base chain's policy
            if stack:  # (the kernel traces no event here: the next rule of the caller shows)
                chain, rules, todo = stack.pop()
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
        elif kind == STEP_TRACE:
            pkt.nftrace = item.on
            if item.on and decision.trace is None and decision.monitor is not None:
                sink = decision.monitor.sink()
                if sink is not None:  # the trace starts here: the headers first, as the kernel's
                    sink.append(f"{_trace_head(rule.chain, pkt)} packet: {_describe(pkt)}")
                    decision.trace = sink
    return _MATCHED


def _trace_head(chain: Chain, pkt) -> str:
    # one id per packet (the context object and the IP id: a context's memory is reused)
    ident = (id(pkt) ^ getattr(pkt.ip, "ident", 0) * 2654435761) & 0xFFFFFFFF
    return f"trace id {ident:08x} {chain.table.family} {chain.table.name} {chain.name}"


def _describe(pkt) -> str:
    """The packet as the kernel's trace shows it (without the link-layer fields and raw bytes)."""
    from .datatypes import format_ipv4
    from .expressions import _addr
    from .symbols import DSCP, ICMP_CODES, ICMP_TYPES, PROTOCOL_NAMES, invert
    parts = []
    if pkt.iifname:
        parts.append(f'iif "{pkt.iifname}"')
    if pkt.oifname:
        parts.append(f'oif "{pkt.oifname}"')
    ip = pkt.ip
    proto = pkt.proto
    tos = getattr(ip, "tos", 0)
    parts.append(f"ip saddr {format_ipv4(_addr(ip.src))} ip daddr {format_ipv4(_addr(ip.dst))} "
                 f"ip dscp {invert(DSCP).get(tos >> 2, hex(tos >> 2))} ip ecn {_ECN[tos & 3]} ip ttl {ip.ttl} "
                 f"ip id {getattr(ip, 'ident', 0)}")
    if proto not in (1, 6, 17):
        parts.append(f"ip protocol {PROTOCOL_NAMES.get(proto, proto)}")
    parts.append(f"ip length {pkt.length}")
    if proto in (6, 17):
        name = PROTOCOL_NAMES[proto]
        parts.append(f"{name} sport {pkt.sport} {name} dport {pkt.dport}")
    elif proto == 1:
        kind = pkt.icmp_type
        parts.append(f"icmp type {invert(ICMP_TYPES).get(kind, kind)} "
                     f"icmp code {invert(ICMP_CODES).get(pkt.icmp_code, pkt.icmp_code)}")
        payload = getattr(ip, "payload", b"")
        if kind in _ICMP_QUERIES and len(payload) >= 8:
            parts.append(f"icmp id {int.from_bytes(payload[4:6], 'big')} "
                         f"icmp sequence {int.from_bytes(payload[6:8], 'big')}")
    return " ".join(parts)


_ECN = ("not-ect", "ect1", "ect0", "ce")
_ICMP_QUERIES = frozenset((0, 8, 13, 14, 15, 16, 17, 18))  # the types with an id and a sequence
