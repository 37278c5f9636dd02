"""The symbolic names nft accepts and prints for numeric values (its datatypes' symbol tables)."""

from __future__ import annotations

# A small services table (nft resolves others through /etc/services; nft 1.0 lists ports as numbers).
SERVICES = {
    "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "bootps": 67,
    "bootpc": 68, "tftp": 69, "http": 80, "www": 80, "kerberos": 88, "pop3": 110, "sunrpc": 111,
    "ntp": 123, "imap": 143, "imap2": 143, "snmp": 161, "bgp": 179, "ldap": 389, "https": 443,
    "smtps": 465, "submission": 587, "ldaps": 636, "imaps": 993, "pop3s": 995, "openvpn": 1194,
    "mysql": 3306, "postgresql": 5432, "http-alt": 8080, "syslog": 514, "rsync": 873,
}

# IP protocol numbers with the names /etc/protocols gives them (nft prints these names).
PROTOCOLS = {
    "icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "ipv6": 41, "gre": 47, "esp": 50, "ah": 51,
    "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132, "udplite": 136,
}
PROTOCOL_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre", 50: "esp", 51: "ah",
                  58: "ipv6-icmp", 132: "sctp", 136: "udplite"}

ICMP_TYPES = {
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
    "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11,
    "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15,
    "info-reply": 16, "address-mask-request": 17, "address-mask-reply": 18,
}

# icmp code names (icmp_code_type) and the codes `reject with icmp type X` accepts
ICMP_CODES = {
    "net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2, "port-unreachable": 3,
    "frag-needed": 4, "net-prohibited": 9, "host-prohibited": 10, "admin-prohibited": 13,
}
REJECT_ICMP_CODES = ICMP_CODES

# icmpx (inet) reject codes and the IPv4 code each turns into
ICMPX_CODES = {"no-route": 0, "port-unreachable": 1, "host-unreachable": 2, "admin-prohibited": 3}
ICMPX_TO_ICMP = {0: 0, 1: 3, 2: 1, 3: 13}

DSCP = {"cs0": 0, "cs1": 8, "cs2": 16, "cs3": 24, "cs4": 32, "cs5": 40, "cs6": 48, "cs7": 56,
        "af11": 10, "af12": 12, "af13": 14, "af21": 18, "af22": 20, "af23": 22, "af31": 26,
        "af32": 28, "af33": 30, "af41": 34, "af42": 36, "af43": 38, "ef": 46}

CT_STATE = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
CT_STATUS = {"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 16, "dnat": 32,
             "dying": 512}
TCP_FLAGS = {"fin": 1, "syn": 2, "rst": 4, "psh": 8, "ack": 16, "urg": 32, "ecn": 64, "cwr": 128}
CT_DIRECTION = {"original": 0, "reply": 1}
PKTTYPE = {"host": 0, "unicast": 0, "broadcast": 1, "multicast": 2, "other": 3}
PKTTYPE_NAMES = {0: "host", 1: "broadcast", 2: "multicast", 3: "other"}

# standard chain priorities (ip, inet); dstnat and srcnat are names only on their own hooks
STD_PRIORITIES = [("raw", -300), ("mangle", -150), ("dstnat", -100), ("filter", 0), ("security", 50),
                  ("srcnat", 100)]
PRIORITY_HOOK = {"dstnat": "prerouting", "srcnat": "postrouting"}

# transport protocols nft 1.0 knows the headers of (its protocol descriptions)
KNOWN_L4 = {1, 2, 6, 17, 33, 50, 51, 108, 132, 136}

LIMIT_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def invert(table: dict) -> dict:
    out: dict = {}
    for name, value in table.items():
        out.setdefault(value, name)
    return out


def priority_name(prio: int, hook: str) -> str:
    """nft's spelling of a base chain priority: a standard name, name +/- small offset, or the number."""
    for name, value in STD_PRIORITIES:
        if PRIORITY_HOOK.get(name, hook) != hook:
            continue
        off = prio - value
        if off == 0:
            return name
        if -10 <= off <= 10:
            return f"{name} {'+' if off > 0 else '-'} {abs(off)}"
    return str(prio)
