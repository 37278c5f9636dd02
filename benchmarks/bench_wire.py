"""Parse and build throughput of pynetstack.wire against hand-written struct code, dpkt and scapy.

Same frames, same run; frames/s are medians over several repetitions.  Runs on CPython and PyPy:
peers that are not installed for the running interpreter are skipped and said so.

    PYTHONPATH=src python3 benchmarks/bench_wire.py          # about 20-40 s
    PYTHONPATH=src pypy3 benchmarks/bench_wire.py
    PYTHONPATH=src python3 benchmarks/bench_wire.py --quick  # a few seconds, rougher numbers

"ours" parse is the complete validating path a received frame takes: Ethernet, IPv4 (header
checksum, lengths, options walk), then ICMP / UDP / TCP with the checksum verified over the
pseudo-header and TCP options decoded.  "hand" is the floor: bare struct unpacking of the same
headers with no validation at all; "hand+checks" adds, inline, the same checks ours makes
(lengths, checksums, the TCP timestamps option ours decodes), so ours/hand+checks is the cost of
the codec's objects and structure; the run first checks that the two accept and reject alike
every copy of the frames with one byte flipped or cut short.  Rates are per second of this process's CPU time, so other
load on a shared machine does not count.  dpkt validates little and checks no checksum on parse; scapy
dissects everything into Python objects.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import struct
import sys
import time

from pynetstack.wire import ethernet, icmp, ipv4, tcp, udp
from pynetstack.wire.checksum import pseudo_header_sum

SRC_MAC, DST_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
SRC_IP, DST_IP = 0x0A000001, 0x0A000002
UDP_PAYLOAD = bytes(range(64))
ICMP_PAYLOAD = bytes(range(56))
TCP_PAYLOAD = bytes(range(100))
TS_OPTIONS = tcp.timestamp_option(123456789, 987654321)


# -- the frames --------------------------------------------------------------------------------

def ours_build_udp():
    return ethernet.build_frame(DST_MAC, SRC_MAC, 0x0800, ipv4.build_ipv4(
        SRC_IP, DST_IP, 17, udp.build_udp(SRC_IP, DST_IP, 40000, 53, UDP_PAYLOAD), ident=1))


def ours_build_icmp():
    return ethernet.build_frame(DST_MAC, SRC_MAC, 0x0800, ipv4.build_ipv4(
        SRC_IP, DST_IP, 1, icmp.build_echo(True, 0x1234, 7, ICMP_PAYLOAD), ident=1))


def ours_build_tcp():
    return ethernet.build_frame(DST_MAC, SRC_MAC, 0x0800, ipv4.build_ipv4(
        SRC_IP, DST_IP, 6, tcp.build_tcp(SRC_IP, DST_IP, 40000, 80, 1000, 2000, tcp.ACK | tcp.PSH, 502,
                                         TCP_PAYLOAD, TS_OPTIONS), ident=1))


def ours_build_udp_objects():
    """The object path: header objects built and serialised (what a rewrite would do)."""
    seg = udp.Udp(40000, 53, UDP_PAYLOAD).build(SRC_IP, DST_IP)
    return ethernet.Ethernet(DST_MAC, SRC_MAC, 0x0800,
                             ipv4.IPv4(SRC_IP, DST_IP, 17, seg, ident=1, df=True).build()).build()


def ours_build_tcp_objects():
    seg = tcp.Tcp(40000, 80, 1000, 2000, tcp.ACK | tcp.PSH, 502, TCP_PAYLOAD, ts_val=123456789,
                  ts_ecr=987654321).build(SRC_IP, DST_IP)
    return ethernet.Ethernet(DST_MAC, SRC_MAC, 0x0800,
                             ipv4.IPv4(SRC_IP, DST_IP, 6, seg, ident=1, df=True).build()).build()


FRAMES = {"udp": ours_build_udp(), "icmp": ours_build_icmp(), "tcp": ours_build_tcp()}


Ethernet, IPv4, Icmp, Udp, Tcp = ethernet.Ethernet, ipv4.IPv4, icmp.Icmp, udp.Udp, tcp.Tcp  # as net/host.py


def ours_parse(frame):
    eth = Ethernet.parse(frame)
    if eth.ethertype != 0x0800:  # (the receive path's dispatch; hand+checks makes it too)
        raise ValueError("not IPv4")
    ip = IPv4.parse(eth.payload)
    proto = ip.protocol
    if proto == 17:
        return Udp.parse(ip.payload, ip.src, ip.dst).dst_port
    if proto == 6:
        return Tcp.parse(ip.payload, ip.src, ip.dst).ts_val
    return Icmp.parse(ip.payload).seq


# -- hand-written struct code: the floor --------------------------------------------------------

_h_eth = struct.Struct("!6s6sH").unpack_from
_h_ip = struct.Struct("!BBHHHBBHII").unpack_from
_h_udp = struct.Struct("!HHHH").unpack_from
_h_tcp = struct.Struct("!HHIIBBHHH").unpack_from
_h_icmp = struct.Struct("!BBHHH").unpack_from
_p_eth = struct.Struct("!6s6sH").pack
_p_ip = struct.Struct("!BBHHHBBHII").pack
_p_udp = struct.Struct("!HHHH").pack
_p_icmp = struct.Struct("!BBHHH").pack
_p_tcp = struct.Struct("!HHIIBBHHH").pack


def hand_parse(frame):
    dst, src, etype = _h_eth(frame)
    vihl, tos, total, ident, frag, ttl, proto, csum, s, d = _h_ip(frame, 14)
    off = 14 + ((vihl & 15) << 2)
    if proto == 17:
        return _h_udp(frame, off)[1]
    if proto == 6:
        return _h_tcp(frame, off)[2]
    return _h_icmp(frame, off)[4]


def hand_parse_checked(frame):
    """The hand-written floor for a *validating* parse: the same unpacking plus, inline and with
    no objects, every check ours makes: Ethernet II (no length field, VLAN tags), the IPv4
    version, lengths and header checksum, the UDP length field and the zero-checksum rule, the
    TCP data offset and its timestamps option (ours returns ts_val), and the ICMP/UDP/TCP
    checksum, the IPv4 options walk (none here) and the UDP checksum over the datagram's own
    length; it returns what ours returns."""
    dst, src, etype = _h_eth(frame)
    if etype != 0x0800:
        raise ValueError("not untagged IPv4")  # (ours walks VLAN tags and rejects length fields)
    vihl, tos, total, ident, frag, ttl, proto, csum, s, d = _h_ip(frame, 14)
    hlen = (vihl & 15) << 2
    if vihl >> 4 != 4 or hlen < 20 or total < hlen or total > len(frame) - 14:
        raise ValueError("bad ip")
    if int.from_bytes(frame[14:14 + hlen], "big") % 0xFFFF:
        raise ValueError("bad ip checksum")
    if hlen > 20 and _h_bad_option(frame[34:14 + hlen]):
        raise ValueError("bad ip option")
    off = 14 + hlen
    seg = frame[off:14 + total]
    n = len(seg)
    value = int.from_bytes(seg, "big")
    if n & 1:
        value <<= 8
    if proto == 1:
        if n < 8 or not value or value % 0xFFFF:
            raise ValueError("bad icmp")
        return _h_icmp(seg)[4]
    if proto == 17:
        sport, dport, length, csum = _h_udp(seg)
        if length < 8 or length > n:
            raise ValueError("bad udp length")
        if length != n:  # the checksum covers the datagram, not what follows it
            value = int.from_bytes(seg[:length], "big") << (8 if length & 1 else 0)
        if csum and (value + s + d + proto + length) % 0xFFFF:
            raise ValueError("bad udp checksum")
        return dport
    sport, dport, seq, ack, doff, flags, win, csum, urg = _h_tcp(seg)
    thlen = (doff >> 4) << 2
    if thlen < 20 or thlen > n:
        raise ValueError("bad tcp data offset")
    if (value + s + d + proto + n) % 0xFFFF:  # pseudo-header: 2**16 == 1 mod 0xFFFF
        raise ValueError("bad tcp checksum")
    if thlen == 32 and seg[20:24] == b"\x01\x01\x08\x0a":
        return _h_ts(seg, 24)[0]
    raise ValueError("not the timestamps-only options this benchmark sends")


_h_ts = struct.Struct("!II").unpack_from


def _h_bad_option(options):
    """True when an IPv4 option's length is impossible (the walk ours makes on options)."""
    i, n = 0, len(options)
    while i < n and options[i]:
        if options[i] == 1:
            i += 1
        elif i + 1 >= n or options[i + 1] < 2 or i + options[i + 1] > n:
            return True
        else:
            i += options[i + 1]
    return False


def _hand_csum(data, extra=0):
    value = int.from_bytes(data, "big") + extra
    if len(data) & 1:
        value = (value - extra) * 256 + extra
    return ~(value % 0xFFFF or 0xFFFF) & 0xFFFF


def _hand_ip(proto, payload):
    header = _p_ip(0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0, SRC_IP, DST_IP)
    return header[:10] + _hand_csum(header).to_bytes(2, "big") + header[12:] + payload


def hand_build_udp():
    seg = _p_udp(40000, 53, 8 + len(UDP_PAYLOAD), 0) + UDP_PAYLOAD
    c = _hand_csum(seg, pseudo_header_sum(SRC_IP, DST_IP, 17, len(seg))) or 0xFFFF
    return _p_eth(DST_MAC, SRC_MAC, 0x0800) + _hand_ip(17, seg[:6] + c.to_bytes(2, "big") + seg[8:])


def hand_build_icmp():
    msg = _p_icmp(8, 0, 0, 0x1234, 7) + ICMP_PAYLOAD
    msg = msg[:2] + _hand_csum(msg).to_bytes(2, "big") + msg[4:]
    return _p_eth(DST_MAC, SRC_MAC, 0x0800) + _hand_ip(1, msg)


def hand_build_tcp():
    seg = _p_tcp(40000, 80, 1000, 2000, 0x80, 0x18, 502, 0, 0) + TS_OPTIONS + TCP_PAYLOAD
    c = _hand_csum(seg, pseudo_header_sum(SRC_IP, DST_IP, 6, len(seg)))
    return _p_eth(DST_MAC, SRC_MAC, 0x0800) + _hand_ip(6, seg[:16] + c.to_bytes(2, "big") + seg[18:])


# -- peers --------------------------------------------------------------------------------------

def dpkt_impl():
    import dpkt

    def parse(frame):
        eth = dpkt.ethernet.Ethernet(frame)
        l4 = eth.data.data
        if isinstance(l4, dpkt.tcp.TCP):
            dpkt.tcp.parse_opts(l4.opts)
            return l4.seq
        if isinstance(l4, dpkt.udp.UDP):
            return l4.dport
        return l4.data.seq

    def ip(proto, l4):
        return dpkt.ip.IP(src=struct.pack("!I", SRC_IP), dst=struct.pack("!I", DST_IP), p=proto, ttl=64, id=1,
                          df=1, data=l4)

    def eth(ip_):
        return bytes(dpkt.ethernet.Ethernet(dst=DST_MAC, src=SRC_MAC, type=0x0800, data=ip_))

    def build_udp():
        return eth(ip(17, dpkt.udp.UDP(sport=40000, dport=53, ulen=8 + len(UDP_PAYLOAD), data=UDP_PAYLOAD)))

    def build_icmp():
        return eth(ip(1, dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=0x1234, seq=7, data=ICMP_PAYLOAD))))

    def build_tcp():
        return eth(ip(6, dpkt.tcp.TCP(sport=40000, dport=80, seq=1000, ack=2000, off=8, flags=0x18, win=502,
                                      opts=TS_OPTIONS, data=TCP_PAYLOAD)))

    return parse, {"udp": build_udp, "icmp": build_icmp, "tcp": build_tcp}


def scapy_impl():
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    def parse(frame):
        pkt = Ether(frame)
        l4 = pkt.payload.payload
        return l4.fields.get("seq") or l4.fields.get("dport")

    src, dst, smac, dmac = "10.0.0.1", "10.0.0.2", "02:00:00:00:00:01", "02:00:00:00:00:02"

    def build_udp():
        return bytes(Ether(dst=dmac, src=smac) / IP(src=src, dst=dst, id=1, flags="DF") /
                     UDP(sport=40000, dport=53) / Raw(UDP_PAYLOAD))

    def build_icmp():
        return bytes(Ether(dst=dmac, src=smac) / IP(src=src, dst=dst, id=1, flags="DF") /
                     ICMP(type=8, id=0x1234, seq=7) / Raw(ICMP_PAYLOAD))

    def build_tcp():
        return bytes(Ether(dst=dmac, src=smac) / IP(src=src, dst=dst, id=1, flags="DF") /
                     TCP(sport=40000, dport=80, seq=1000, ack=2000, flags="PA", window=502,
                         options=[("NOP", None), ("NOP", None), ("Timestamp", (123456789, 987654321))]) /
                     Raw(TCP_PAYLOAD))

    return parse, {"udp": build_udp, "icmp": build_icmp, "tcp": build_tcp}


def same_verdicts() -> list:
    """Frames (each benchmark frame with one byte flipped, or cut short) that ours and
    hand+checks judge differently: none, when the two make the same checks."""
    differ = []
    for kind, frame in FRAMES.items():
        variants = [frame[:cut] for cut in range(len(frame))]
        for i in range(len(frame)):
            for bits in (0x01, 0x80, 0xFF):
                variants.append(frame[:i] + bytes((frame[i] ^ bits,)) + frame[i + 1:])
        for variant in variants:
            verdicts = []
            for parse in (ours_parse, hand_parse_checked):
                try:
                    verdicts.append(parse(variant))
                except (ValueError, struct.error):
                    verdicts.append("rejected")
            if verdicts[0] != verdicts[1]:
                differ.append((kind, variant))
    return differ


# -- measuring ----------------------------------------------------------------------------------

_cpu = time.process_time


def rate(fn, arg, seconds: float, reps: int) -> float:
    """Median calls/s over ``reps`` timed batches of about ``seconds`` each, after a warm-up."""
    call = fn if arg is None else (lambda: fn(arg))
    n = 1
    while True:  # calibrate (and warm up the JIT on PyPy)
        t0 = _cpu()
        for _ in range(n):
            call()
        elapsed = _cpu() - t0
        if elapsed > seconds / 4:
            break
        n *= 4
    n = max(1, int(n * seconds / elapsed))
    results = []
    for _ in range(reps):
        t0 = _cpu()
        for _ in range(n):
            call()
        results.append(n / max(_cpu() - t0, 1e-9))
    return statistics.median(results)


def fmt(r: float) -> str:
    return f"{r / 1e6:.2f} M" if r >= 1e6 else f"{r / 1e3:.1f} k"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter batches, rougher numbers")
    ap.add_argument("--seconds", type=float, default=None, help="time per batch (default 0.15, quick 0.03)")
    ap.add_argument("--reps", type=int, default=None, help="batches per figure (default 5, quick 3)")
    args = ap.parse_args()
    seconds = args.seconds or (0.03 if args.quick else 0.15)
    reps = args.reps or (3 if args.quick else 5)
    started = time.perf_counter()

    impls = {
        "ours": (ours_parse, {"udp": ours_build_udp, "icmp": ours_build_icmp, "tcp": ours_build_tcp}),
        "ours-objects": (None, {"udp": ours_build_udp_objects, "tcp": ours_build_tcp_objects}),
        "hand": (hand_parse, {"udp": hand_build_udp, "icmp": hand_build_icmp, "tcp": hand_build_tcp}),
        "hand+checks": (hand_parse_checked, {}),
    }
    print(f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}; "
          f"median of {reps} batches of ~{seconds}s", flush=True)
    for name, factory in (("dpkt", dpkt_impl), ("scapy", scapy_impl)):
        try:
            impls[name] = factory()
        except ImportError as exc:
            print(f"  {name}: skipped, not installed for {sys.executable} ({exc})")

    # every builder must produce the frame we parse, so the comparison is like for like
    for name, (_parse, builders) in impls.items():
        for kind, build in builders.items():
            if bytes(build()) != FRAMES[kind]:
                print(f"  warning: {name} builds a different {kind} frame "
                      f"({len(bytes(build()))} vs {len(FRAMES[kind])} bytes)")

    differ = same_verdicts()
    if differ:
        print(f"  warning: ours and hand+checks judge {len(differ)} corrupted or truncated frames "
              "differently: they do not make the same checks")
    else:
        print("  ours and hand+checks accept and reject alike every copy of the frames with a byte "
              "flipped or cut short")
    header = f"{'frame':<6} {'op':<6} " + " ".join(f"{n:>13}" for n in impls) + "   ours/hand  ours/hand+checks  ours/dpkt  ours/scapy"
    print(header)
    print("-" * len(header))
    for kind in FRAMES:
        for op in ("parse", "build"):
            rates = {}
            for name, (parse, builders) in impls.items():
                if op == "parse":
                    rates[name] = rate(parse, FRAMES[kind], seconds, reps) if parse else None
                else:
                    build = builders.get(kind)
                    rates[name] = rate(build, None, seconds, reps) if build else None
            cells = " ".join(f"{fmt(rates[n]) + '/s' if rates[n] else '-':>13}" for n in impls)
            ours = rates["ours"]
            ratios = []
            for peer in ("hand", "hand+checks", "dpkt", "scapy"):
                r = rates.get(peer)
                width = 16 if peer == "hand+checks" else 9
                ratios.append(f"{ours / r:{width}.2f}x" if r else " " * width + "-")
            print(f"{kind:<6} {op:<6} {cells}  " + " ".join(ratios), flush=True)
    print(f"(ours/X > 1 means ours is faster; ours/hand 0.5 = half the hand-written speed)  "
          f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
