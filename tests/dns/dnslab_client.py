"""Run inside the lab's network namespace: wait for servers, query them, print JSON summaries.

stdin: {"wait": [[addr, port], ...], "servers": {"label": [addr, port]}, "queries": [[name, type]]}
"""
import json
import sys
import time

import dns.flags
import dns.message
import dns.query
import dns.rdatatype


def wait(addr, port, seconds=15.0):
    q = dns.message.make_query(".", "SOA")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            dns.query.udp(q, addr, port=port, timeout=0.3)
            return True
        except (OSError, dns.exception.Timeout):
            time.sleep(0.1)
    return False


def summary(reply):
    flags = sorted(f for f in ("AA", "TC", "RA", "RD") if reply.flags & getattr(dns.flags, f))
    answer = sorted(f"{rrset.name.to_text().lower()} {dns.rdatatype.to_text(rrset.rdtype)} {rd.to_text().lower()}"
                    for rrset in reply.answer for rd in rrset)
    authority_types = sorted({dns.rdatatype.to_text(rrset.rdtype) for rrset in reply.authority})
    ttls = [rrset.ttl for rrset in sorted(reply.answer, key=lambda r: (r.name.to_text().lower(), r.rdtype))]
    return {"rcode": dns.rcode.to_text(reply.rcode()), "flags": flags, "answer": answer,
            "authority_types": authority_types, "ttls": ttls}


def main():
    spec = json.load(sys.stdin)
    for addr, port in spec.get("wait", []):
        if not wait(addr, port):
            print(json.dumps({"error": f"nothing answers on {addr}:{port}"}))
            return 1
    out = {}
    for label, (addr, port) in spec.get("servers", {}).items():
        out[label] = []
        for name, qtype in spec["queries"]:
            q = dns.message.make_query(name, qtype)
            try:
                out[label].append(summary(dns.query.udp(q, addr, port=port, timeout=8)))
            except (OSError, dns.exception.Timeout) as e:
                out[label].append({"error": repr(e)})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
