"""Intrusion detection with pynetstack: Suricata rules, a port scan and a SYN flood, EVE JSON out.

    PYTHONPATH=src python examples/ids_detect.py

The same Detector runs inline on a stack (pynetstack.ids.function.IdsFunction, or an [ids] section
in the TOML config) and offline on a capture (pynetstack ids -r FILE.pcap -S FILE.rules)."""

from __future__ import annotations

import json
import struct
import sys

from pynetstack.ids import Detector, load_rules
from pynetstack.ids.eve import alert_event
from pynetstack.ids.flood import SynFloodDetector
from pynetstack.ids.scan import ScanDetector
from pynetstack.wire.addr import ip_to_int

RULES = r"""
alert tcp $EXTERNAL_NET any -> $HOME_NET 80 (msg:"Directory traversal attempt"; flow:to_server; content:"../"; classtype:web-application-attack; sid:1000001; rev:1;)
alert udp any any -> any 53 (msg:"DNS query for a known-bad domain"; dns.query; content:"evil.example"; nocase; endswith; classtype:trojan-activity; sid:1000002; rev:1;)
alert icmp any any -> $HOME_NET any (msg:"Large ICMP echo"; itype:8; dsize:>1000; classtype:attempted-recon; sid:1000003; rev:1;)
alert http any any -> any any (msg:"needs an HTTP parser: skipped and counted"; http.uri; content:"x"; sid:1000004;)
"""


def ip(src, dst, proto, payload):
    return struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                       ip_to_int(src), ip_to_int(dst)) + payload


def tcp(src, sport, dst, dport, flags, data=b"", seq=1):
    return ip(src, dst, 6, struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x60, flags, 1024, 0, 0)
              + b"\x02\x04\x05\xb4" + data)


def udp(src, sport, dst, dport, data):
    return ip(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)


def main() -> int:
    ruleset = load_rules(RULES, "example.rules")
    print(ruleset.summary(), file=sys.stderr)
    detector = Detector(ruleset, detectors=[ScanDetector(), SynFloodDetector()])
    alerts = []
    alerts += detector.inspect_bytes(tcp("203.0.113.9", 4444, "192.168.1.10", 80, 0x18, b"GET /../../etc/passwd"), 1.0)
    query = struct.pack("!HHHHHH", 7, 0x100, 1, 0, 0, 0) + b"\x03www\x04evil\x07example\x00\x00\x01\x00\x01"
    alerts += detector.inspect_bytes(udp("192.168.1.20", 5353, "192.168.1.1", 53, query), 2.0)
    alerts += detector.inspect_bytes(ip("198.51.100.7", "192.168.1.10", 1, b"\x08\x00\x00\x00\x00\x01\x00\x01"
                                        + bytes(1400)), 3.0)
    for port in range(1, 40):  # a SYN scan: one SYN to each port
        alerts += detector.inspect_bytes(tcp("198.51.100.66", 60000, "192.168.1.10", port, 0x02), 4.0 + port * 0.01)
    for i in range(600):  # a SYN flood from spoofed sources
        alerts += detector.inspect_bytes(tcp(f"10.{i % 200}.{i // 200}.1", 1024 + i, "192.168.1.10", 443, 0x02),
                                         10.0 + i * 0.001)
    alerts += detector.poll(12.0)
    for alert in alerts:
        print(json.dumps(alert_event(alert)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
