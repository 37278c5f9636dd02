"""`pynetstack demo`: build a lab, let real Linux tools talk to the stack, report what happened.

The lab: namespace *host* is the Linux kernel side. It reaches the stack through a TAP
(10.99.0.1 -> 10.99.0.2) and through a veth pair whose other end sits in namespace *stack*,
where the stack reads it with an AF_PACKET socket (10.99.1.1 -> 10.99.1.2).
"""

from __future__ import annotations

import os
import re
import time
from typing import Callable, List, Tuple

from .lab import Lab, LabError
from .link.packet import PacketDevice
from .link.pcap import PcapDevice, PcapWriter, read_pcap
from .link.tap import TapDevice
from .services import discard, http, tcp_echo, udp_echo
from .stack import Stack
from .wire.addr import mac_to_str

KERNEL_TAP, STACK_TAP = "10.99.0.1", "10.99.0.2"
KERNEL_VETH, STACK_VETH = "10.99.1.1", "10.99.1.2"
DEMO_ZONE = """$ORIGIN demo.test.
$TTL 300
@     IN SOA ns hostmaster 1 7200 900 1209600 60
      IN NS  ns
      IN MX  10 mail
ns    IN A   10.99.0.2
www   IN A   192.0.2.80
mail  IN A   192.0.2.25
web   IN CNAME www
info  IN TXT "served by pynetstack over a TAP"
"""


def _serve_demo_zone(stack: Stack) -> None:
    import tempfile

    from .dns.server import DnsServer
    from .dns.stackio import serve_on_stack
    from .dns.zone import load_zone

    with tempfile.NamedTemporaryFile("w", suffix=".zone", delete=False) as handle:
        handle.write(DEMO_ZONE)
    try:
        serve_on_stack(stack, DnsServer([load_zone(handle.name)]))
    finally:
        os.unlink(handle.name)


class Demo:
    def __init__(self, lab: Lab, stack: Stack, host: str, pcap_path: str):
        self.lab, self.stack, self.host, self.pcap_path = lab, stack, host, pcap_path
        self.results: List[Tuple[str, bool, str]] = []

    def run(self, *argv: str, **kwargs):
        return self.lab.run(self.host, *argv, **kwargs)

    def step(self, title: str, command: str, check: Callable[[], Tuple[bool, str]]) -> None:
        print(f"  {title:<22} $ {command}", flush=True)
        try:
            ok, detail = check()
        except Exception as exc:  # a demo step failing must still leave a report and a clean lab
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        self.results.append((title, ok, detail))
        print(f"  {'':<22}   {'ok  ' if ok else 'FAIL'} {detail}", flush=True)


def _ping_check(demo: Demo, target: str, *extra: str, count: int = 5) -> Tuple[bool, str]:
    result = demo.run("ping", "-c", str(count), "-i", "0.2", "-W", "2", *extra, target, timeout=120)
    got = re.search(r"(\d+) received", result.stdout)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", result.stdout)
    received = int(got.group(1)) if got else 0
    summary = f"{received}/{count} replies"
    if rtt:
        summary += f", average round trip {rtt.group(1)} ms"
    return received == count, summary


def _steps(demo: Demo) -> None:
    def arping():
        result = demo.run("arping", "-c", "3", "-w", "5", "-I", "pnstap0", STACK_TAP)
        macs = set(re.findall(r"from ([0-9a-f:]{17})", result.stdout))
        ok = "3 packets received" in result.stdout
        return ok, f"3 ARP replies from {', '.join(macs) or 'nobody'}" if ok else result.stdout.strip()[-200:]

    def udp_echo_nc():
        result = demo.run("nc", "-u", "-w", "1", STACK_TAP, "7", input="hello, stack\n")
        return result.stdout == "hello, stack\n", f"sent 'hello, stack', got back {result.stdout.strip()!r}"

    def udp_big():
        payload = "".join(chr(97 + i % 26) for i in range(6000))
        result = demo.run("socat", "-T2", "-b", "65536", "-", f"UDP:{STACK_TAP}:7", input=payload)
        return result.stdout == payload, f"6000-byte datagram echoed {'intact' if result.stdout == payload else 'WRONG'}" \
            " (fragmented and reassembled both ways)"

    def udp_refused():
        result = demo.run("socat", "-T2", "-", f"UDP:{STACK_TAP}:9", input="x")
        refused = "Connection refused" in result.stderr
        return refused, "the kernel got ICMP port unreachable: 'Connection refused'" if refused else result.stderr[-200:]

    def flood():
        result = demo.run("ping", "-f", "-q", "-c", "2000", "-w", "60", STACK_TAP, timeout=90)
        got = re.search(r"(\d+) received.*time (\d+)ms", result.stdout)
        if not got:
            return False, result.stdout.strip()[-200:]
        return int(got.group(1)) == 2000, f"{got.group(1)}/2000 replies in {got.group(2)} ms"

    print("ARP and ICMP over the TAP", flush=True)
    demo.step("ARP", f"arping -c 3 -I pnstap0 {STACK_TAP}", arping)
    demo.step("ICMP echo", f"ping -c 5 {STACK_TAP}", lambda: _ping_check(demo, STACK_TAP))
    demo.step("Fragmentation", f"ping -s 4000 -c 3 {STACK_TAP}", lambda: _ping_check(demo, STACK_TAP, "-s", "4000", count=3))
    demo.step("Largest datagram", f"ping -s 65000 -c 2 {STACK_TAP}", lambda: _ping_check(demo, STACK_TAP, "-s", "65000", count=2))
    demo.step("Flood", f"ping -f -c 2000 {STACK_TAP}", flood)
    print("UDP", flush=True)
    demo.step("UDP echo (port 7)", f"echo 'hello, stack' | nc -u {STACK_TAP} 7", udp_echo_nc)
    demo.step("UDP echo, 6000 bytes", f"socat - UDP:{STACK_TAP}:7", udp_big)
    demo.step("Closed UDP port", f"socat - UDP:{STACK_TAP}:9", udp_refused)
    def http_status():
        result = demo.run("curl", "-sS", "--max-time", "10", f"http://{STACK_TAP}/")
        ok = result.returncode == 0 and "pynetstack status" in result.stdout
        return ok, f"HTTP 200, {len(result.stdout.splitlines())} lines of status" if ok else result.stderr.strip()

    def download():
        size = 20_000_000
        result = demo.run("sh", "-c", f"curl -sS --max-time 60 -w '%{{speed_download}}\\n' -o /tmp/pns-demo-dl "
                                      f"http://{STACK_TAP}/bytes/{size} && sha256sum /tmp/pns-demo-dl; rm -f /tmp/pns-demo-dl",
                          timeout=90)
        import hashlib
        from .services.http import deterministic_bytes
        expected = hashlib.sha256(deterministic_bytes(0, size)).hexdigest()
        speed = re.match(r"([\d.]+)", result.stdout)
        ok = expected in result.stdout
        rate = f"{float(speed.group(1)) / 1e6:.1f} MB/s" if speed else "?"
        return ok, f"20 MB at {rate}, SHA-256 {'matches' if ok else 'DIFFERS'}"

    def upload():
        script = ("head -c 20000000 /dev/urandom > /tmp/pns-demo-ul && sha256sum /tmp/pns-demo-ul | cut -d' ' -f1 && "
                  f"curl -sS --max-time 60 -w ' %{{speed_upload}}' --data-binary @/tmp/pns-demo-ul "
                  f"http://{STACK_TAP}/sha256; rm -f /tmp/pns-demo-ul")
        result = demo.run("sh", "-c", script, timeout=90)
        words = result.stdout.split()
        ok = len(words) >= 3 and words[0] == words[1]
        rate = f"{float(words[2]) / 1e6:.1f} MB/s" if ok else "?"
        return ok, f"20 MB at {rate}; the stack's SHA-256 {'matches' if ok else 'DIFFERS from'} curl's file"

    def tcp_echo():
        result = demo.run("sh", "-c", f"printf 'line one\\nline two\\n' | nc -q 1 {STACK_TAP} 7")
        return result.stdout == "line one\nline two\n", f"echoed {result.stdout!r}"

    def tcp_refused():
        result = demo.run("curl", "-sS", "--max-time", "5", f"http://{STACK_TAP}:81/")
        refused = "Connection refused" in result.stderr or "Couldn't connect" in result.stderr
        return refused, "the stack answered the SYN with RST: connection refused" if refused else result.stderr.strip()

    print("TCP: the stack's own TCP serving echo (7) and HTTP (80)", flush=True)
    demo.step("TCP echo", f"printf 'line one\\nline two\\n' | nc {STACK_TAP} 7", tcp_echo)
    demo.step("HTTP status page", f"curl http://{STACK_TAP}/", http_status)
    demo.step("HTTP download", f"curl http://{STACK_TAP}/bytes/20000000 | sha256sum", download)
    demo.step("HTTP upload", f"curl --data-binary @20MB http://{STACK_TAP}/sha256", upload)
    demo.step("Closed TCP port", f"curl http://{STACK_TAP}:81/", tcp_refused)

    def dns(name: str, rtype: str, expect: str, *options: str):
        def check():
            result = demo.run("dig", f"@{STACK_TAP}", "+time=2", "+tries=1", "+noall", "+answer", "+comments",
                              *options, name, rtype)
            status = re.search(r"status: (\w+)", result.stdout)
            answers = [" ".join(line.split()[3:]) for line in result.stdout.splitlines()
                       if line and not line.startswith(";")]
            ok = expect in result.stdout
            return ok, f"{status.group(1) if status else 'no answer'}: {', '.join(answers) or '(no records)'}"
        return check

    print("DNS served by the stack (UDP and TCP port 53)", flush=True)
    demo.step("DNS A", f"dig @{STACK_TAP} www.demo.test A", dns("www.demo.test", "A", "192.0.2.80"))
    demo.step("DNS CNAME", f"dig @{STACK_TAP} web.demo.test A", dns("web.demo.test", "A", "CNAME"))
    demo.step("DNS MX", f"dig @{STACK_TAP} demo.test MX", dns("demo.test", "MX", "10 mail.demo.test."))
    demo.step("DNS NXDOMAIN", f"dig @{STACK_TAP} nope.demo.test A", dns("nope.demo.test", "A", "status: NXDOMAIN"))
    demo.step("DNS over TCP", f"dig +tcp @{STACK_TAP} info.demo.test TXT",
              dns("info.demo.test", "TXT", "served by pynetstack", "+tcp"))
    print("The same stack on a veth through an AF_PACKET socket", flush=True)
    demo.step("ICMP over veth", f"ping -c 5 {STACK_VETH}", lambda: _ping_check(demo, STACK_VETH))


def _trace_one_ping(demo: Demo) -> None:
    from .net.trace import PrintTracer
    print("\nThe journey of one fragmented ping (ping -c 1 -s 2000) through the stack:", flush=True)
    demo.stack.host.trace(PrintTracer(match="icmp", limit=2))
    try:
        demo.run("ping", "-c", "1", "-W", "2", "-s", "2000", STACK_TAP)
        time.sleep(0.2)
    finally:
        demo.stack.host.trace(None)


def _report(demo: Demo, frames) -> None:
    stack = demo.stack
    status = stack.status()
    print("\nWhat the stack saw", flush=True)
    for iface in status["interfaces"]:
        print(f"  {iface['describe']}")
        print(f"    frames in {iface['rx_frames']}, out {iface['tx_frames']}; bytes in {iface['rx_bytes']}, "
              f"out {iface['tx_bytes']}")
        for row in iface["neighbours"]:
            print(f"    neighbour {row}")
    from .status import tcp_table
    print("  TCP (like ss -ti):")
    with stack.lock:
        print("\n".join("    " + row for row in tcp_table(stack.tcp).splitlines()))
    counters = status["counters"]
    print("  counters: " + ", ".join(f"{k} {v}" for k, v in sorted(counters.items())))
    drops = status["drops"]
    print("  drops by reason: " + (", ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "none"))
    print(f"\nThe first frames of the TAP's capture ({len(frames)} recorded to {demo.pcap_path}):")
    try:
        from .wire.describe import summary
    except ImportError:
        summary = None
    for _, _, frame in frames[:8]:
        print("  " + (summary(frame) if summary else frame[:34].hex()))


def run_demo(keep_going: bool = True) -> int:
    print("pynetstack demo: a userspace TCP/IP stack in Python, checked by the Linux kernel's own tools\n")
    try:
        lab = Lab("demo")
    except LabError as exc:
        print(f"pynetstack: error: cannot build the lab: {exc}")
        return 2
    pcap_path = f"/tmp/pynetstack-demo-{int(time.time())}.pcap"
    with lab:
        host = lab.netns("host")
        stack_ns = lab.netns("stack")
        lab.veth(host, "pnsk0", stack_ns, "pnss0", address_a=f"{KERNEL_VETH}/24")
        with Stack() as stack:
            writer = PcapWriter(pcap_path)
            tap = stack.add_interface(PcapDevice(TapDevice("pnstap0", host_address=f"{KERNEL_TAP}/24", netns=host),
                                                 writer), f"{STACK_TAP}/24", name="pnstap0")
            veth = stack.add_interface(PacketDevice("pnss0", promiscuous=True, netns=stack_ns), f"{STACK_VETH}/24")
            udp_echo.install(stack)
            tcp_echo.install(stack)
            discard.install(stack)
            http.install(stack)
            _serve_demo_zone(stack)
            stack.start_background()
            print(f"Lab: namespace {host} is the Linux side: {KERNEL_TAP} on TAP pnstap0, {KERNEL_VETH} on veth pnsk0")
            print(f"     the stack: {STACK_TAP} on the TAP (mac {mac_to_str(tap.mac)}), {STACK_VETH} on the veth's "
                  f"far end via AF_PACKET (mac {mac_to_str(veth.mac)})\n")
            demo = Demo(lab, stack, host, pcap_path)
            _steps(demo)
            _trace_one_ping(demo)
            with stack.lock:  # the loop records while holding the lock: read whole records only
                writer.flush()
                frames = list(read_pcap(pcap_path))
            _report(demo, frames)
        from .demo_router import run_router_act
        demo.results += run_router_act(Demo, lab)
    failed = [title for title, ok, _ in demo.results if not ok]
    print(f"\n{len(demo.results) - len(failed)} of {len(demo.results)} checks passed"
          + (f"; failed: {', '.join(failed)}" if failed else "") + ". The lab is removed.")
    return 1 if failed else 0
