"""TCP benchmarks: throughput both ways, connect latency and memory per idle connection.

    python benchmarks/bench_tcp.py            # in-memory figures (no root needed)
    sudo python benchmarks/bench_tcp.py --tap # plus the kernel over a TAP (offloads on and off),
                                              # and kernel-to-kernel over a veth in the same run
    sudo python benchmarks/bench_tcp.py --tap --mode plain --runs 5 --megabytes 300

In-memory figures run two sans-I/O TCP layers in one thread on a virtual clock: they measure
the protocol code's CPU cost (both ends), not a network.  The TAP figures go through the
whole stack (Ethernet, ARP, IPv4, TCP) with the Linux kernel as the peer.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, ROOT)

from pynetstack.transport.tcp import TcpConfig, TcpLayer  # noqa: E402
from pynetstack.wire.ipv4 import IPv4  # noqa: E402


class _Wire:
    """Two layers, zero delay: datagrams are queued and delivered in order."""

    def __init__(self):
        self.queue = []
        self.a = _Ip(self, 0x0A000001)
        self.b = _Ip(self, 0x0A000002)
        self.la = TcpLayer(self.a, TcpConfig(), secret=b"a")
        self.lb = TcpLayer(self.b, TcpConfig(), secret=b"b")
        self.now = 0.0

    def pump(self):
        q = self.queue
        while q:
            self.queue = []
            for src, dst, seg in q:
                layer = self.lb if dst == 0x0A000002 else self.la
                layer.receive(IPv4(src, dst, 6, memoryview(seg)), self.now)
            q = self.queue


class _Ip:
    def __init__(self, wire, address):
        self.wire, self.address = wire, address

    def ip_send(self, src, dst, protocol, payload, now, ttl=None, df=True, tos=0, gso_size=0):
        self.wire.queue.append((src, dst, payload))
        return True

    def source_address_for(self, dst):
        return self.address

    def is_local_address(self, address):
        return address == self.address

    def path_mtu(self, dst):
        return 1500

    # the rest of net.protocol.IpOutput: no offload, no cached output path, no ICMP
    def max_segment(self, dst):
        return 0

    def output_path(self, src, dst, protocol, now, ttl=None, tos=0):
        return None

    def send_icmp_error(self, ip, icmp_type, code, now, rest=0):
        return False


def bench_memory_throughput(total=50_000_000):
    w = _Wire()
    listener = w.lb.listen(80)
    client = w.la.connect(0x0A000002, 80, w.now)
    w.pump()
    server = listener.accept()
    chunk = bytes(1 << 20)
    sent = received = 0
    t0 = time.perf_counter()
    while received < total:
        if sent < total:
            sent += client.send(chunk, w.now)
        w.pump()
        w.now += 0.0001
        while True:
            got = server.recv(1 << 22, w.now)
            if not got:
                break
            received += len(got)
        w.pump()
        w.la.poll(w.now)
        w.lb.poll(w.now)
    dt = time.perf_counter() - t0
    return total / dt / 1e6


def bench_memory_connect(n=2000):
    w = _Wire()
    listener = w.lb.listen(80, backlog=n + 10)
    t0 = time.perf_counter()
    for _ in range(n):
        w.la.connect(0x0A000002, 80, w.now)
        w.pump()
    dt = time.perf_counter() - t0
    assert len(listener.accept_queue) == n
    return dt / n * 1e6


def bench_memory_per_connection(n=5000):
    try:
        import tracemalloc
    except ImportError:  # PyPy has no tracemalloc
        return None
    w = _Wire()
    listener = w.lb.listen(80, backlog=n + 10)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        w.la.connect(0x0A000002, 80, w.now)
        w.pump()
    # idle steady state: let the handshake's (already cancelled) timer entries expire
    w.now += 5.0
    w.la.poll(w.now)
    w.lb.poll(w.now)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(listener.accept_queue) == n
    # both ends of every connection live in this process: halve for one end
    return (after - before) / (2 * n)


# -- the kernel as the peer -------------------------------------------------------------------------

KERNEL, STACK = "10.97.0.1", "10.97.0.2"

CONNECT_SCRIPT = r"""
import socket, sys, time
n = int(sys.argv[2]); times = []
for _ in range(n):
    t = time.perf_counter()
    s = socket.create_connection((sys.argv[1], 7), timeout=5)
    times.append(time.perf_counter() - t)
    s.close()
times.sort()
print(sum(times) / n * 1000, times[n // 2] * 1000, times[int(n * 0.99) - 1] * 1000)
"""

SINK_SCRIPT = r"""
import socket, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 5001)); srv.listen(1); print("ready", flush=True)
c, _ = srv.accept(); n = 0; t = None
while True:
    d = c.recv(1 << 20)
    if t is None: t = time.perf_counter()
    if not d: break
    n += len(d)
print(n / (time.perf_counter() - t) / 1e6)
"""

SOURCE_SCRIPT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 5001)); buf = bytes(1 << 20)
for _ in range(int(sys.argv[2])): s.sendall(buf)
s.close()
"""


# kernel -> stack without curl and head in the way: one Python socket writes N bytes to the
# stack's discard service (port 9) and waits for the stack's FIN after its own, so the time
# covers every byte being taken in by the stack.
SOCKET_SOURCE_SCRIPT = r"""
import socket, sys, time
n = int(sys.argv[2]); buf = bytes(1 << 20); view = memoryview(buf)
s = socket.create_connection((sys.argv[1], 9), timeout=60)
t = time.perf_counter(); left = n
while left:
    left -= s.send(view[:min(left, len(buf))])
s.shutdown(socket.SHUT_WR)
s.recv(1)
print(n / (time.perf_counter() - t) / 1e6)
"""


def _run(lab, ns, *argv, timeout=300):
    return lab.run(ns, *argv, timeout=timeout)


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else 0.0


def bench_tap(megabytes: int, runs: int = 3, modes=(True, False)):
    """Medians of ``runs`` transfers each way, TAP offloads on and off, then kernel to kernel."""
    from pynetstack import lab as labmod
    from pynetstack.link.tap import TapDevice
    from pynetstack.services import discard, http, tcp_echo
    from pynetstack.stack import Stack
    results = {}
    n = megabytes * 1_000_000
    with labmod.Lab("tcpb") as lab:
        for offload in modes:
            label = "offload" if offload else "no offload"
            ns = lab.netns("k" + ("o" if offload else "p"))
            stack = Stack()
            stack.add_interface(TapDevice("pnstcpb0", host_address=f"{KERNEL}/24", netns=ns, offload=offload),
                                f"{STACK}/24")
            tcp_echo.install(stack)
            discard.install(stack)
            http.install(stack)
            stack.start_background()
            try:
                down, up, up_socket = [], [], []
                for _ in range(runs):
                    r = _run(lab, ns, "sh", "-c", f"curl -sS -o /dev/null -w '%{{speed_download}}' "
                                                  f"http://{STACK}/bytes/{n}")
                    down.append(float(r.stdout or 0) / 1e6)
                    r = _run(lab, ns, "sh", "-c", f"head -c {n} /dev/zero | curl -sS -o /dev/null -w "
                                                  f"'%{{speed_upload}}' --data-binary @- http://{STACK}/sha256")
                    up.append(float(r.stdout or 0) / 1e6)
                    r = _run(lab, ns, "python3", "-c", SOCKET_SOURCE_SCRIPT, STACK, str(n))
                    up_socket.append(float(r.stdout or 0))
                results[f"stack -> kernel, {label} (curl GET /bytes) MB/s"] = (_median(down), down)
                results[f"kernel -> stack, {label} (curl POST /sha256) MB/s"] = (_median(up), up)
                results[f"kernel -> stack, {label} (python socket to discard) MB/s"] = (_median(up_socket), up_socket)
                if offload == modes[0]:
                    r = _run(lab, ns, "python3", "-c", CONNECT_SCRIPT, STACK, "300")
                    mean, median, p99 = (float(x) for x in r.stdout.split())
                    results["connect latency kernel->stack mean/median/p99 ms"] = (mean, median, p99)
            finally:
                stack.close()
        # kernel to kernel over a veth, same machine, same run
        a, b = lab.netns("ka"), lab.netns("kb")
        lab.veth(a, "pnsva", b, "pnsvb", address_a="10.97.1.1/24", address_b="10.97.1.2/24")
        k2k = []
        for _ in range(runs):
            sink = lab.popen(b, "python3", "-c", SINK_SCRIPT, "10.97.1.2", text=True)
            sink.stdout.readline()
            _run(lab, a, "python3", "-c", SOURCE_SCRIPT, "10.97.1.2", str(max(megabytes, 500)))
            out, _ = sink.communicate(timeout=120)
            k2k.append(float(out.strip().splitlines()[-1]))
        results["kernel -> kernel over veth (python sockets) MB/s"] = (_median(k2k), k2k)
    kernel = results["kernel -> kernel over veth (python sockets) MB/s"][0]
    for name in list(results):
        if name.startswith(("stack ->", "kernel -> stack")) and kernel:
            results[name] += (results[name][0] / kernel,)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tap", action="store_true", help="also measure against the kernel (root)")
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="transfers per figure (the median is shown)")
    parser.add_argument("--mode", choices=("both", "offload", "plain"), default="both",
                        help="TAP offloads (IFF_VNET_HDR, TSO4, checksum) on, off, or both")
    args = parser.parse_args(argv)
    print(f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}")
    print(f"in-memory throughput (both ends in one thread): {bench_memory_throughput():8.1f} MB/s")
    print(f"in-memory connect (both ends' CPU per handshake): {bench_memory_connect():8.1f} us")
    per_conn = bench_memory_per_connection()
    if per_conn is None:
        print("stack state per idle established connection:   (needs tracemalloc: CPython)")
    else:
        print(f"stack state per idle established connection:   {per_conn:8.0f} bytes")
    try:
        import pytcp  # noqa: F401
        print("PyTCP is installed: compare with its own benchmark over a TAP")
    except ImportError:
        print("PyTCP: not installed in this environment (pip install PyTCP in a benchmark venv)")
    if args.tap:
        if os.geteuid() != 0:
            print("--tap needs root")
            return 1
        modes = {"both": (True, False), "offload": (True,), "plain": (False,)}[args.mode]
        for name, value in bench_tap(args.megabytes, args.runs, modes).items():
            if name.startswith("connect"):
                print(f"{name}: " + " / ".join(f"{v:.3f}" for v in value))
            else:
                runs = ", ".join(f"{v:.0f}" for v in value[1])
                ratio = f"  ({value[2]:.2f} x kernel-to-kernel)" if len(value) > 2 else ""
                print(f"{name}: median {value[0]:.1f} of [{runs}]{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
