"""IDS inspection throughput: packets/s through the Detector with 10, 1,000 and every loadable
ET Open rule, against the same packets parsed without an IDS (the peer), in the same run; and
forwarding through a simulated router with the IDS inline (10 and 1,000 rules) against none.

    python benchmarks/bench_ids.py [ET_RULES_DIR]     (default /tmp/etopen: the emerging-*.rules files)

Traffic: 40 TCP flows (handshake, 20 HTTP-like segments each way), 400 DNS queries, 400 UDP
datagrams of random bytes: about 2,900 packets, replayed 3 times per configuration (median)."""

from __future__ import annotations

import glob
import os
import platform
import random
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from pynetstack.ids import Detector, load_rules  # noqa: E402
from pynetstack.ids.rules import Ruleset  # noqa: E402
from pynetstack.wire.ipv4 import IPv4  # noqa: E402


def ip(src, dst, proto, payload):
    return struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0, src, dst) + payload


def tcp(src, sp, dst, dp, flags, seq, ack, data=b""):
    return ip(src, dst, 6, struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 0x50, flags, 65535, 0, 0) + data)


def udp(src, sp, dst, dp, data):
    return ip(src, dst, 17, struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data)


def traffic():
    rnd = random.Random(7)
    out = []
    c, s = 0x0A000001, 0xC0A80102
    for f in range(40):
        cp = 30000 + f
        cs, ss = 1000, 9000
        out += [tcp(c, cp, s, 80, 2, cs - 1, 0), tcp(s, 80, c, cp, 0x12, ss - 1, cs), tcp(c, cp, s, 80, 0x10, cs, ss)]
        for k in range(20):
            req = (b"GET /images/%d/%d.png HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0\r\n"
                   b"Accept: */*\r\n\r\n" % (f, k))
            body = bytes(rnd.getrandbits(8) for _ in range(1200))
            out.append(tcp(c, cp, s, 80, 0x18, cs, ss, req))
            cs += len(req)
            out.append(tcp(s, 80, c, cp, 0x18, ss, cs, b"HTTP/1.1 200 OK\r\nContent-Length: 1200\r\n\r\n" + body))
            ss += 41 + len(body)
    for q in range(400):
        name = b"".join(bytes([len(p)]) + p for p in (b"host%d" % q, b"example", b"org")) + b"\x00"
        out.append(udp(c, 40000 + q, 0x08080808, 53, struct.pack("!HHHHHH", q, 0x100, 1, 0, 0, 0) + name + b"\0\1\0\1"))
    for q in range(400):
        out.append(udp(c, 50000, s, 9000 + q, bytes(rnd.getrandbits(8) for _ in range(rnd.randint(20, 1200)))))
    return out


def no_ids(packets):
    for datagram in packets:
        IPv4.parse(datagram, check=False)


def with_ids(ruleset):
    def run(packets):
        detector = Detector(ruleset)
        inspect = detector.inspect_ip
        for i, datagram in enumerate(packets):
            inspect(IPv4.parse(datagram, check=False), i * 1e-4)
    return run


def measure(func, packets, repeat=3):
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        func(packets)
        rates.append(len(packets) / (time.perf_counter() - start))
    return statistics.median(rates)


def forwarding(ruleset, count=1500):
    """Datagrams/s through a simulated router (a -> r -> b on the virtual clock, wall time
    measured), with the IDS registered inline on r when ``ruleset`` is given."""
    from pynetstack.ids.function import IdsFunction
    from pynetstack.sim import NET0, NET1, Simulation
    from pynetstack.wire.addr import ip_to_int
    from pynetstack.wire.udp import build_udp

    sim = Simulation()
    a, r, b = sim.routed(NET0, NET1)
    if ruleset is not None:
        r.register(IdsFunction(Detector(ruleset, inline=True)))
    got = [0]
    b.add_udp_service(9000, lambda data, peer: got.__setitem__(0, got[0] + 1))
    src, dst = ip_to_int("10.0.0.1"), ip_to_int("10.0.1.2")
    rnd = random.Random(3)
    payloads = [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(20, 1000))) for _ in range(64)]
    start = time.perf_counter()
    for i in range(count):
        a.host.ip_send(src, dst, 17, build_udp(src, dst, 20000 + i % 500, 9000, payloads[i % 64]), sim.now)
        if i % 50 == 49:
            sim.run(0.01)
    sim.run(1.0)
    elapsed = time.perf_counter() - start
    assert got[0] == count, (got[0], count)
    return count / elapsed


def main():
    et_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/etopen"
    files = sorted(glob.glob(os.path.join(et_dir, "emerging-*.rules")))
    et = Ruleset()
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            load_rules(handle.read(), path, et)
    if not et.loaded:  # no ET: synthetic rules of the same shape
        text = "\n".join(f'alert tcp any any -> any any (msg:"r{i}"; content:"pattern{i:05d}x"; sid:{i + 1};)'
                         for i in range(2000))
        et = load_rules(text, "synthetic")
    subsets = [("10 rules", et.rules[:10]), ("1,000 rules", et.rules[:1000]), (f"all {et.loaded} ET rules", et.rules)]
    packets = traffic()
    print(f"{platform.python_implementation()} {platform.python_version()}: {len(packets)} packets, "
          f"ET Open: {et.loaded} rules loaded, {sum(et.skipped.values())} skipped ({len(files)} files)")
    base = measure(no_ids, packets)
    print(f"  {'no IDS (IPv4 parse only: the peer)':40s} {base:10.0f} packets/s")
    for label, rules in subsets:
        ruleset = Ruleset()
        for rule in rules:
            ruleset.add(rule)
        rate = measure(with_ids(ruleset), packets)
        print(f"  {'IDS, ' + label:40s} {rate:10.0f} packets/s  ({rate / base:.3f} of no IDS)")
    print("  inline on a simulated router (a -> r -> b, UDP datagrams of 20-1000 random bytes):")
    plain = statistics.median(forwarding(None) for _ in range(3))
    print(f"  {'forwarding, no IDS (the peer)':40s} {plain:10.0f} datagrams/s")
    for label, rules in subsets[:2]:
        ruleset = Ruleset()
        for rule in rules:
            ruleset.add(rule)
        rate = statistics.median(forwarding(ruleset) for _ in range(3))
        print(f"  {'forwarding, IDS inline, ' + label:40s} {rate:10.0f} datagrams/s  ({rate / plain:.2f} of no IDS)")


if __name__ == "__main__":
    main()
