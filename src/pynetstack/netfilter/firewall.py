"""The seed's ``NetworkFirewall`` in Python, on top of nftables: each rule added becomes an nft
rule (so ``nft list ruleset`` shows exactly what runs), ordered by priority, then by insertion.

    fw = NetworkFirewall(default_action="deny")
    fw.add_rule({"name": "Allow SSH from trusted networks", "action": "allow", "protocol": "tcp",
                 "dst_port": "22", "src_ip": "192.168.1.0/24"})
    fw.filter_packet(datagram, direction="inbound")    # {"action": "allow", "rule": "Allow SSH ..."}
    fw.install(stack)                                   # on a stack's packet path (conntrack too)
    fw.rate_limit(100, window=1.0)                      # per-source sliding window (DDoS)
    fw.connection_limit(64)                             # new TCP connections past 64 per source: reset
    fw.synproxy(["10.0.2.10"], [80, 443])               # forwarded TCP: SYN cookies before the server

Rule keys: name, action (allow|deny|reject), protocol (tcp|udp|icmp|any), src_ip, dst_ip (address,
prefix or range), src_port, dst_port ("22", "8000-8080", "22,80,443"), direction (inbound ->
input, outbound -> output, forward), priority (lower first, default 100), state ("new",
"established"...), interface.  A bad rule raises FirewallError naming the key.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from ..net import hooks as hk
from .classifier import Classifier
from .limits import RateLimitFunction, SlidingWindowLimiter
from .nft import NftError, loads

DIRECTIONS = {"inbound": "input", "outbound": "output", "forward": "forward"}
ACTIONS = {"allow": "accept", "accept": "accept", "deny": "drop", "drop": "drop", "reject": "reject"}
KEYS = {"name", "action", "protocol", "src_ip", "dst_ip", "src_port", "dst_port", "direction", "priority",
        "state", "interface"}


class FirewallError(ValueError):
    pass


class NetworkFirewall:
    def __init__(self, default_action: str = "allow", table: str = "firewall"):
        if default_action not in ACTIONS or ACTIONS[default_action] == "reject":
            raise FirewallError(f"default_action must be allow or deny, not {default_action!r}")
        self.policy = ACTIONS[default_action]
        self.table = table
        self.rules: List[Dict] = []
        self.router = None
        self._ruleset = None
        self._classifier: Optional[Classifier] = None
        self.rate_limiters: List[RateLimitFunction] = []
        self.functions: List = []  # SYN proxies, registered with the firewall
        self.conn_limit: Optional[int] = None

    # -- rules -----------------------------------------------------------------------------------
    def add_rule(self, rule: Dict) -> str:
        """Add a rule; returns its nft text.  Raises FirewallError for a bad key or value."""
        unknown = set(rule) - KEYS
        if unknown:
            raise FirewallError(f"unknown rule key {sorted(unknown)[0]!r}")
        entry = dict(rule)
        entry.setdefault("priority", 100)
        entry["_seq"] = len(self.rules)
        entry["_nft"] = self._nft_rule(entry)
        rules = self.rules + [entry]
        self._compile(rules)  # raises on a bad value; the firewall keeps its old rules then
        self.rules = rules
        return entry["_nft"]

    def _nft_rule(self, rule: Dict) -> str:
        action = ACTIONS.get(str(rule.get("action", "")))
        if action is None:
            raise FirewallError(f"rule action must be one of allow, deny, reject: {rule.get('action')!r}")
        direction = rule.get("direction", "inbound")
        if direction not in DIRECTIONS:
            raise FirewallError(f"rule direction must be inbound, outbound or forward: {direction!r}")
        parts = []
        if rule.get("interface"):
            parts.append(f'{"oifname" if direction == "outbound" else "iifname"} "{rule["interface"]}"')
        for key, word in (("src_ip", "saddr"), ("dst_ip", "daddr")):
            if rule.get(key):
                parts.append(f"ip {word} {_set_of(rule[key])}")
        proto = str(rule.get("protocol", "any")).lower()
        if proto not in ("any", "tcp", "udp", "icmp"):
            raise FirewallError(f"rule protocol must be tcp, udp, icmp or any: {proto!r}")
        for key, word in (("src_port", "sport"), ("dst_port", "dport")):
            if rule.get(key) is not None:
                if proto not in ("tcp", "udp"):
                    raise FirewallError(f"rule {key} needs protocol tcp or udp")
                parts.append(f"{proto} {word} {_set_of(str(rule[key]))}")
        if proto != "any" and not any(p.startswith(proto + " ") for p in parts):
            parts.append(f"ip protocol {proto}")
        if rule.get("state"):
            parts.append(f"ct state {rule['state']}")
        parts.append("counter")
        parts.append(action)
        if rule.get("name"):
            parts.append('comment "' + str(rule["name"]).replace('"', "'")[:128] + '"')
        return " ".join(parts)

    def ruleset_text(self, rules: Optional[List[Dict]] = None) -> str:
        """The nft file of the firewall: one filter chain per direction, rules by priority."""
        rules = self.rules if rules is None else rules
        out = [f"table ip {self.table} {{"]
        if self.conn_limit is not None:
            out.append("\tset conn_per_source {\n\t\ttype ipv4_addr\n\t\tsize 65535\n\t\tflags dynamic\n\t}")
        for direction, hook in DIRECTIONS.items():
            chosen = sorted((r for r in rules if r.get("direction", "inbound") == direction),
                            key=lambda r: (r["priority"], r["_seq"]))
            policy = self.policy if direction == "inbound" or chosen else "accept"
            out.append(f"\tchain {hook} {{\n\t\ttype filter hook {hook} priority filter; policy {policy};")
            if self.conn_limit is not None and hook != "output":
                out.append(f"\t\tct state new meta l4proto tcp add @conn_per_source {{ ip saddr ct count over "
                           f"{self.conn_limit} }} counter reject with tcp reset")
            out.extend(f"\t\t{r['_nft']}" for r in chosen)
            out.append("\t}")
        out.append("}")
        return "\n".join(out) + "\n"

    def _compile(self, rules: List[Dict]) -> None:
        try:
            ruleset = loads(self.ruleset_text(rules), "<firewall>")
        except NftError as err:
            raise FirewallError(f"bad rule: {err.problem}") from None
        self._ruleset, self._classifier = ruleset, Classifier(ruleset)
        if self.router is not None:
            self.router.load(text=self.ruleset_text(rules))

    # -- packets ---------------------------------------------------------------------------------
    def filter_packet(self, packet, direction: str = "inbound", now: float = 0.0) -> Dict:
        """The firewall's decision for one IPv4 datagram (bytes or a wire.ipv4.IPv4), without
        a stack: {"action": "allow"|"deny"|"reject", "rule": its name or None (the policy)}."""
        from ..wire.ipv4 import IPv4
        if direction not in DIRECTIONS:
            raise FirewallError(f"direction must be inbound, outbound or forward: {direction!r}")
        ip = packet if isinstance(packet, IPv4) else IPv4.parse(bytes(packet))
        if self._ruleset is None:
            self._compile(self.rules)
        hook = DIRECTIONS[direction]
        ctx = hk.PacketContext(ip, hook, now)
        ctx.ct_state = "new"
        decision = self._classifier.evaluate(self._ruleset, hook, ctx)
        action = {"accept": "allow", "drop": "deny", "reject": "reject"}[decision.verdict]
        return {"action": action, "rule": decision.rule.comment if decision.rule is not None else None}

    # -- on a stack ------------------------------------------------------------------------------
    def install(self, stack, **router_options):
        """Put the firewall on ``stack``'s packet path (with conntrack); rules added later apply
        at once.  Returns the Router (``router.ruleset.list_ruleset()`` shows the counters)."""
        from .router import install_router
        self.router = install_router(stack, ruleset_text=self.ruleset_text(), **router_options)
        for function in self.rate_limiters + self.functions:
            stack.register(function)
        return self.router

    def rate_limit(self, packets: float, window: float = 1.0, protocol: Optional[str] = None,
                   max_sources: int = 65536) -> RateLimitFunction:
        """DDoS defence: at most ``packets`` per ``window`` seconds from any one source (sliding
        window), for every protocol or one ("icmp", "udp", "tcp")."""
        numbers = {None: None, "icmp": 1, "tcp": 6, "udp": 17}
        if protocol not in numbers:
            raise FirewallError(f"protocol must be icmp, tcp or udp: {protocol!r}")
        function = RateLimitFunction(SlidingWindowLimiter(packets, window, max_sources), numbers[protocol],
                                     f"ddos-rate-limit-{protocol or 'all'}")
        self.rate_limiters.append(function)
        if self.router is not None:
            self.router.stack.register(function)
        return function

    def connection_limit(self, connections: int) -> None:
        """DDoS defence: a source holding ``connections`` live TCP connections through or to this
        host gets a reset for the next one (nft ``ct count``, per source, bounded set)."""
        if not isinstance(connections, int) or connections < 1:
            raise FirewallError(f"connection_limit needs a positive number: {connections!r}")
        previous = self.conn_limit
        self.conn_limit = connections
        try:
            self._compile(self.rules)
        except FirewallError:
            self.conn_limit = previous
            raise

    def synproxy(self, servers: List[str], ports: List[int]):
        """Forwarded TCP to ``servers``:``ports`` meets a SYN proxy first (synproxy.py): spoofed
        SYNs never reach the servers.  Returns the SynProxy."""
        from .synproxy import SynProxy
        proxy = SynProxy(servers, ports)
        self.functions.append(proxy)
        if self.router is not None:
            self.router.stack.register(proxy)
        return proxy

    def stats(self) -> Dict:
        out = {"rules": len(self.rules)}
        for function in self.rate_limiters + self.functions:
            out[function.name] = function.stats()
        return out


def _set_of(text: str) -> str:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise FirewallError(f"empty value {text!r}")
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"
