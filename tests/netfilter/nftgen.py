"""A seeded generator of random nft filter rules, for differential tests against the real nft."""

from __future__ import annotations

import random
from typing import List


def random_rules(seed: int, count: int) -> List[str]:
    r = random.Random(seed)

    def op() -> str:
        return r.choice(["", "", "!= ", "== "])

    def port() -> str:
        return str(r.choice([22, 80, 443, 1, 65535, r.randint(0, 65535)]))

    def prange() -> str:
        a = r.randint(0, 60000)
        return f"{a}-{a + r.randint(1, 5000)}"

    def pset() -> str:
        return "{ " + ", ".join(r.choice([port(), prange()]) for _ in range(r.randint(1, 4))) + " }"

    def addr() -> str:
        return r.choice(["10.0.0.1", "192.168.1.0/24", "10.0.0.0/8", "1.2.3.4-1.2.3.40", "0.0.0.0/0",
                         "172.16.5.5/16", "{ 10.0.0.1, 10.1.0.0/16, 10.2.0.0-10.2.0.8 }"])

    matches = [
        lambda: f"ip saddr {op()}{addr()}", lambda: f"ip daddr {op()}{addr()}",
        lambda: f"tcp dport {op()}{r.choice([port(), prange(), pset()])}",
        lambda: f"udp sport {op()}{r.choice([port(), prange(), pset()])}",
        lambda: f"ip protocol {r.choice(['tcp', 'udp', 'icmp', '{ tcp, udp }'])}",
        lambda: f"meta l4proto {r.choice(['tcp', 'udp', 'icmp'])}",
        lambda: "iifname " + op() + r.choice(['"eth0"', '"wan*"', 'lo']),
        lambda: "oifname " + r.choice(['{ "a", "b*" }', '"x"']),
        lambda: "iif " + r.choice(['"lo"', "!= lo", "{ lo }"]),
        lambda: "ct state " + r.choice(["new", "established,related", "{ new, invalid }", "!= established",
                                        "== new", "{ untracked }"]),
        lambda: "ct status " + r.choice(["dnat", "snat,dnat", "assured"]),
        lambda: "ct direction " + r.choice(["original", "reply"]),
        lambda: "tcp flags " + r.choice(["syn", "syn / syn,ack", "& (syn|ack) == syn", "!= fin", "{ syn, ack }",
                                         "== syn|ack", "syn,ack", "& (fin|syn|rst) != 0"]),
        lambda: "icmp type " + r.choice(["echo-request", "{ echo-reply, 3 }", "!= 11"]),
        lambda: "icmp code " + r.choice(["0", "3", "admin-prohibited", "{ 1, 2 }"]),
        lambda: "ip ttl " + r.choice(["64", "< 2", "1-5", "!= 0", ">= 200"]),
        lambda: "ip length " + r.choice(["1500", "> 1000", "100-200", "{ 40, 60 }"]),
        lambda: "ip dscp " + r.choice(["ef", "cs1", "0x2e", "{ af11, 4 }", "!= cs0"]),
        lambda: "meta mark " + r.choice(["1", "0x10", "!= 0", "{ 1, 2 }", "1-5"]),
        lambda: "meta pkttype " + r.choice(["host", "broadcast", "{ multicast, other }"]),
    ]
    statements = [
        lambda: "counter", lambda: 'log prefix "p "', lambda: "log", lambda: f"meta mark set {r.randint(0, 1000)}",
        lambda: "log level " + r.choice(["info", "warn", "debug"]) + r.choice(["", ' prefix "q"']),
        lambda: (f"limit rate {r.choice(['', 'over '])}{r.randint(1, 100)}/"
                 f"{r.choice(['second', 'minute', 'hour', 'day'])}{r.choice(['', ' burst 7 packets'])}"),
    ]
    verdicts = ["accept", "drop", "continue", "return", "jump sub", "goto sub", "reject",
                "reject with icmp type host-unreachable", "reject with tcp reset",
                "reject with icmpx type admin-prohibited", "", "tcp dport vmap { 22 : accept, 80-90 : jump sub }",
                "ct state vmap { established : accept, invalid : drop }", 'iifname vmap { "lo" : accept }',
                "ip saddr vmap { 10.0.0.0/8 : goto sub, 11.1.1.1 : continue }", "ip saddr vmap { 10.0.0.0/8 : drop, 10.1.1.1 : continue }"]
    rules = []
    for _ in range(count):
        parts = [r.choice(matches)() for _ in range(r.randint(0, 3))]
        parts += [r.choice(statements)() for _ in range(r.randint(0, 2))]
        verdict = r.choice(verdicts)
        if verdict:
            parts.append(verdict)
        rules.append(" ".join(parts) or "accept")
    return rules


def ruleset_text(family: str, rules: List[str]) -> str:
    body = "".join(f"\t\t{rule}\n" for rule in rules)
    return (f"table {family} t {{\n\tchain c {{\n\t\ttype filter hook input priority 0; policy accept;\n"
            f"{body}\t}}\n\n\tchain sub {{\n\t\tcounter\n\t}}\n}}\n")


def random_nat_rules(seed: int, count: int, hook: str) -> List[str]:
    """Random rules for a nat chain on ``hook`` (prerouting or postrouting)."""
    r = random.Random(seed)
    matches = [
        lambda: "ip saddr " + r.choice(["10.0.0.0/8", "!= 192.168.0.0/16", "10.1.1.1-10.1.1.9"]),
        lambda: "ip daddr " + r.choice(["203.0.113.7", "{ 203.0.113.7, 203.0.113.9 }"]),
        lambda: "tcp dport " + r.choice(["80", "{ 80, 443 }", "8000-8080", "!= 22"]),
        lambda: "udp dport " + r.choice(["53", "{ 53, 123 }"]),
        lambda: "meta l4proto " + r.choice(["tcp", "udp", "{ tcp, udp }"]),
        lambda: "ip protocol " + r.choice(["tcp", "udp", "icmp"]),
        lambda: "iifname " + r.choice(['"wan0"', '"eth*"']),
        lambda: "oifname " + r.choice(['"wan0"', '!= "lan*"']),
        lambda: "counter",
    ]
    flags = ["", " random", " fully-random", " persistent", " random,persistent"]
    ports = ["", ":80", ":1024-65535"]
    if hook == "postrouting":
        nats = [lambda: "masquerade" + r.choice(["", " to :20000-30000"]) + r.choice(flags),
                lambda: "snat to " + r.choice(["203.0.113.1", "203.0.113.1-203.0.113.4"]) + r.choice(ports)
                + r.choice(flags)]
    else:
        nats = [lambda: "dnat to " + r.choice(["192.168.1.10", "192.168.1.10-192.168.1.12"]) + r.choice(ports)
                + r.choice(flags),
                lambda: "redirect" + r.choice(["", " to :8080", " to :3000-3010"]) + r.choice(flags)]
    rules = []
    for _ in range(count):
        parts = [r.choice(matches)() for _ in range(r.randint(0, 3))] + [r.choice(nats)()]
        rules.append(" ".join(parts))
    return rules


def nat_ruleset_text(family: str, hook: str, rules: List[str]) -> str:
    prio = "srcnat" if hook == "postrouting" else "dstnat"
    ipkw = family == "inet"
    body = "".join("\t\t" + (rule.replace("snat to", "snat ip to").replace("dnat to", "dnat ip to")
                             if ipkw else rule) + "\n" for rule in rules)
    return (f"table {family} n {{\n\tchain c {{\n\t\ttype nat hook {hook} priority {prio}; policy accept;\n"
            f"{body}\t}}\n}}\n")
