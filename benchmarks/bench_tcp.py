"""TCP benchmarks: throughput both ways, connect latency and memory per idle connection.

    python benchmarks/bench_tcp.py            # in-memory figures (no root needed)
    sudo python benchmarks/bench_tcp.py --tap # plus the kernel over a TAP (offloads on and off),
                                              # with the ceilings measured in the same run
    sudo python benchmarks/bench_tcp.py --tap --mode plain --runs 5 --megabytes 300

In-memory figures run two sans-I/O TCP layers in one thread on a virtual clock: they measure
the protocol code's CPU cost (both ends), not a network.  The TAP figures go through the
whole stack (Ethernet, ARP, IPv4, TCP) with the Linux kernel as the peer.  Each such row is
shown as a ratio to its ceilings, measured in the same run (benchmarks/tcp_ceilings.py):
without offloads, a bare Python sink behind a TAP that only ACKs every segment (what reading
frames from a TAP and writing ACKs costs this interpreter, before any TCP work), and for the
stack sending also a bare Python source (writing prebuilt segments as the window allows and
reading the ACKs); each also with the one per-byte step a correct TCP cannot skip without
offload (the sink verifying checksums, the source summing every payload); with offloads,
kernel to kernel over a veth, with Python sockets and with the stack's own HTTP work served
on the kernel's sockets.  Rows measured against a Python process also give MB per CPU-second
of that process (the stack's or the sink's thread), and the ratio of those: on a machine shared
with other work, MB/s also counts the time a process waited for a core, and moves more.
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
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from pynetstack import pypy_gc  # noqa: E402
from pynetstack.transport.tcp import TcpConfig, TcpLayer  # noqa: E402
from pynetstack.wire.ipv4 import IPv4  # noqa: E402
from tcp_ceilings import KERNEL_HTTP_SERVER, bare_sink, bare_source, serve_http  # noqa: E402


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


def _bench_bare(lab, megabytes: int, runs: int, loop, loop_args, loop_kwargs, ns_name: str, device_name: str,
                client: str):
    """MB/s of ``client`` (a Python script in the kernel's namespace) against the bare Python
    ``loop`` run in a thread behind a TAP without offloads: the ceilings of the TAP rows."""
    import threading
    from pynetstack.link.tap import TapDevice
    ns = lab.netns(ns_name)
    device = TapDevice(device_name, host_address=f"{KERNEL}/24", netns=ns, offload=False)
    stop = threading.Event()
    address = int.from_bytes(bytes(map(int, STACK.split("."))), "big")
    thread = threading.Thread(target=loop, args=(device, address) + loop_args, kwargs=dict(loop_kwargs, stop=stop),
                              daemon=True)
    thread.start()
    try:
        rates, cpu = [], []
        for _ in range(runs):
            r, per_cpu = _timed(lab, ns, megabytes, "python3", "-c", client, STACK, str(megabytes * 1_000_000))
            rates.append(float(r.stdout or 0))
            cpu.append(per_cpu)
    finally:
        stop.set()
        thread.join()
        device.close()
    return rates, cpu


def bench_bare_sink(lab, megabytes: int, runs: int, verify: bool = False):
    """MB/s of the kernel's Python socket into ``bare_sink`` over a TAP without offloads."""
    return _bench_bare(lab, megabytes, runs, bare_sink, (), {"verify": verify}, "kv" if verify else "ks",
                       "pnstcpb1", SOCKET_SOURCE_SCRIPT)


def bench_bare_source(lab, megabytes: int, runs: int, sum_payload: bool = False):
    """MB/s of ``bare_source`` over a TAP without offloads into the kernel's Python socket."""
    return _bench_bare(lab, megabytes, runs, bare_source, (megabytes * 1_000_000,), {"sum_payload": sum_payload},
                       "kr" if sum_payload else "kq", "pnstcpb2",
                       SOCKET_SINK_CLIENT_SCRIPT)


def bench_kernel_http(lab, a, b, megabytes: int, runs: int):
    """curl's GET and POST MB/s against ``KERNEL_HTTP_SERVER`` (the stack's HTTP application work,
    this interpreter) on the kernel's TCP in ``b``, over the veth from ``a``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((os.path.join(ROOT, "src"), os.path.join(ROOT, "benchmarks"))))
    server = lab.popen(b, sys.executable, "-c", KERNEL_HTTP_SERVER, "10.97.1.2", env=env, text=True)
    try:
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the kernel-side HTTP server did not start: " + server.stderr.read())
        return _curl_get_post(lab, a, "http://10.97.1.2", megabytes, runs)
    finally:
        server.kill()
        server.communicate()


def bench_socket_api_http(lab, ns, stack, megabytes: int, runs: int):
    """curl's GET and POST MB/s against ``serve_http`` on the stack's socket API (port 8080), in
    a thread of its own: the same application code as ``bench_kernel_http``'s, over the stack."""
    import threading
    from pynetstack.api.tcp import create_server
    listener = create_server(stack, ("0.0.0.0", 8080))
    thread = threading.Thread(target=serve_http, args=(listener,), daemon=True)
    thread.start()
    try:
        return _curl_get_post(lab, ns, f"http://{STACK}:8080", megabytes, runs)
    finally:
        listener.close()
        thread.join(10)


def _curl_get_post(lab, ns, url: str, megabytes: int, runs: int):
    """Medians-to-be of curl's GET /bytes/N and POST /sha256 rates (MB/s) from ``ns``, after one
    untimed round of each (the server's JIT warms up as the stack's does)."""
    n = megabytes * 1_000_000
    curl = "curl -sS --fail --max-time 120 -o /dev/null"
    get = f"{curl} -w '%{{speed_download}}' {url}/bytes/{n}"
    post = f"head -c {n} /dev/zero | {curl} -w '%{{speed_upload}}' --data-binary @- {url}/sha256"

    def rate(command):
        result = _run(lab, ns, "sh", "-c", command)
        if result.returncode:  # a server that failed: say so, do not wait or print a zero
            raise RuntimeError(f"{command}: {result.stderr.strip()}")
        return float(result.stdout) / 1e6
    rate(get)
    rate(post)
    down, up = [], []
    for _ in range(runs):
        down.append(rate(get))
        up.append(rate(post))
    return down, up


def _run(lab, ns, *argv, timeout=300):
    return lab.run(ns, *argv, timeout=timeout)


# stack -> kernel without curl: a Python socket reads N bytes from port 9 of the bare source
SOCKET_SINK_CLIENT_SCRIPT = r"""
import socket, sys, time
n = int(sys.argv[2]); s = socket.create_connection((sys.argv[1], 9), timeout=60)
got = 0; t = None
while got < n:
    d = s.recv(1 << 20)
    if not d:
        break
    if t is None:
        t = time.perf_counter()
    got += len(d)
print(got / (time.perf_counter() - t) / 1e6)
"""


def _timed(lab, ns, megabytes, *argv):
    """Run a transfer of ``megabytes``; also return MB per CPU-second of this process (the
    stack's or the sink's thread: the main thread only waits).  On a shared machine that
    figure moves less than MB/s, which also counts the time the process waited for a core."""
    cpu = time.process_time()
    result = _run(lab, ns, *argv)
    cpu = time.process_time() - cpu
    return result, (megabytes / cpu if cpu > 0 else 0.0)


def _warm_up(lab, ns, megabytes: int) -> None:
    n = megabytes * 1_000_000
    _run(lab, ns, "sh", "-c", f"curl -sS -o /dev/null http://{STACK}/bytes/{n}")
    _run(lab, ns, "sh", "-c", f"head -c {n} /dev/zero | curl -sS -o /dev/null --data-binary @- http://{STACK}/sha256")
    _run(lab, ns, "python3", "-c", SOCKET_SOURCE_SCRIPT, STACK, str(n))
    _run(lab, ns, "python3", "-c", CONNECT_SCRIPT, STACK, "300")


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else 0.0


def bench_tap(megabytes: int, runs: int = 3, modes=(True, False), coalesce=None):
    """Medians of ``runs`` transfers each way, TAP offloads on and off, with their ceilings in the
    same run: the bare sink (no offloads) and kernel to kernel over a veth (offloads)."""
    from pynetstack import lab as labmod
    from pynetstack.link.tap import TapDevice
    from pynetstack.services import discard, http, tcp_echo
    from pynetstack.stack import Stack
    results = {}
    with labmod.Lab("tcpb") as lab:
        if False in modes:
            for row, bench, checked in ((BARE_ROW, bench_bare_sink, False), (BARE_VERIFY_ROW, bench_bare_sink, True),
                                        (BARE_SOURCE_ROW, bench_bare_source, False),
                                        (BARE_SOURCE_SUM_ROW, bench_bare_source, True)):
                bare, bare_cpu = bench(lab, megabytes, runs, checked)
                results[row] = (_median(bare), bare, _median(bare_cpu))
        for offload in modes:
            label = "offload" if offload else "no offload"
            ns = lab.netns("k" + ("o" if offload else "p"))
            stack = Stack()
            stack.add_interface(TapDevice("pnstcpb0", host_address=f"{KERNEL}/24", netns=ns, offload=offload),
                                f"{STACK}/24")
            if coalesce is not None:
                stack.tcp.coalescing = coalesce
            tcp_echo.install(stack)
            discard.install(stack)
            http.install(stack)
            stack.start_background()
            # with offloads a transfer of 200 MB takes a tenth of a second: too short for a
            # steady figure, so those rows (and the kernel's) move at least OFFLOAD_MEGABYTES
            size = max(megabytes, OFFLOAD_MEGABYTES) if offload else megabytes
            n = size * 1_000_000
            try:
                down, up, up_socket = [], [], []
                cpu = {"down": [], "up": [], "up_socket": []}
                # one untimed round first (as benchmarks/runner.py does): the figures are the
                # steady state, after PyPy's JIT has compiled the paths a transfer takes
                _warm_up(lab, ns, size)
                for _ in range(runs):
                    r, per_cpu = _timed(lab, ns, size, "sh", "-c", f"curl -sS -o /dev/null -w "
                                        f"'%{{speed_download}}' http://{STACK}/bytes/{n}")
                    down.append(float(r.stdout or 0) / 1e6)
                    cpu["down"].append(per_cpu)
                    r, per_cpu = _timed(lab, ns, size, "sh", "-c", f"head -c {n} /dev/zero | curl -sS -o /dev/null "
                                        f"-w '%{{speed_upload}}' --data-binary @- http://{STACK}/sha256")
                    up.append(float(r.stdout or 0) / 1e6)
                    cpu["up"].append(per_cpu)
                    r, per_cpu = _timed(lab, ns, size, "python3", "-c", SOCKET_SOURCE_SCRIPT, STACK, str(n))
                    up_socket.append(float(r.stdout or 0))
                    cpu["up_socket"].append(per_cpu)
                results[f"stack -> kernel, {label} (curl GET /bytes) MB/s"] = (_median(down), down, _median(cpu["down"]))
                results[f"kernel -> stack, {label} (curl POST /sha256) MB/s"] = (_median(up), up, _median(cpu["up"]))
                results[f"kernel -> stack, {label} (python socket to discard) MB/s"] = (
                    _median(up_socket), up_socket, _median(cpu["up_socket"]))
                down, up = bench_socket_api_http(lab, ns, stack, size, runs)
                results[f"stack -> kernel, {label} (curl GET /bytes, Python server on the socket API) MB/s"] = (
                    _median(down), down, None)
                results[f"kernel -> stack, {label} (curl POST /sha256, Python server on the socket API) MB/s"] = (
                    _median(up), up, None)
                if offload == modes[0]:
                    r = _run(lab, ns, "python3", "-c", CONNECT_SCRIPT, STACK, "300")
                    mean, median, p99 = (float(x) for x in r.stdout.split())
                    results["connect latency kernel->stack mean/median/p99 ms"] = (mean, median, p99)
            finally:
                stack.close()
        if True in modes:
            # kernel to kernel over a veth, same machine, same run
            a, b = lab.netns("ka"), lab.netns("kb")
            lab.veth(a, "pnsva", b, "pnsvb", address_a="10.97.1.1/24", address_b="10.97.1.2/24")
            k2k = []
            for _ in range(runs):
                sink = lab.popen(b, "python3", "-c", SINK_SCRIPT, "10.97.1.2", text=True)
                sink.stdout.readline()
                _run(lab, a, "python3", "-c", SOURCE_SCRIPT, "10.97.1.2", str(max(megabytes, OFFLOAD_MEGABYTES)))
                out, _ = sink.communicate(timeout=120)
                k2k.append(float(out.strip().splitlines()[-1]))
            results[K2K_ROW] = (_median(k2k), k2k, None)
            down, up = bench_kernel_http(lab, a, b, max(megabytes, OFFLOAD_MEGABYTES), runs)
            results[K2K_GET_ROW] = (_median(down), down, None)
            results[K2K_POST_ROW] = (_median(up), up, None)
    # each stack row as a ratio to its ceilings: without offloads the bare sink (also per
    # CPU-second of each, the steadier figure on a shared machine) and the one verifying
    # checksums, and for the stack sending the bare sources too (its own direction); with
    # offloads the kernel with Python sockets, and with the same HTTP work for GET and POST
    for name in list(results):
        if name.startswith(("stack ->", "kernel -> stack")):
            if ", offload " in name:
                ceilings = (K2K_ROW,) + ((K2K_GET_ROW,) if "GET" in name else (K2K_POST_ROW,) if "POST" in name else ())
            elif name.startswith("stack ->"):
                ceilings = (BARE_ROW, BARE_SOURCE_ROW, BARE_SOURCE_SUM_ROW)
            else:
                ceilings = (BARE_ROW, BARE_VERIFY_ROW)
            for ceiling in ceilings:
                top = results.get(ceiling)
                if top and top[0]:
                    by_cpu = results[name][2] / top[2] if top[2] and results[name][2] else None
                    results[name] += (results[name][0] / top[0], CEILING_NAMES[ceiling], by_cpu)
    return results


OFFLOAD_MEGABYTES = 1000
BARE_ROW = "kernel -> bare Python sink over a TAP, no offload (python socket) MB/s"
BARE_SOURCE_ROW = "bare Python source over a TAP -> kernel, no offload (python socket) MB/s"
BARE_VERIFY_ROW = "kernel -> bare Python sink verifying checksums, no offload (python socket) MB/s"
BARE_SOURCE_SUM_ROW = "bare Python source summing every payload -> kernel, no offload (python socket) MB/s"
K2K_ROW = "kernel -> kernel over veth (python sockets) MB/s"
K2K_GET_ROW = "kernel -> kernel over veth, curl GET /bytes from a Python server on kernel sockets MB/s"
K2K_POST_ROW = "kernel -> kernel over veth, curl POST /sha256 to a Python server on kernel sockets MB/s"
CEILING_NAMES = {BARE_ROW: "bare sink", BARE_VERIFY_ROW: "verifying sink", BARE_SOURCE_ROW: "bare source",
                 BARE_SOURCE_SUM_ROW: "summing source", K2K_ROW: "kernel-to-kernel",
                 K2K_GET_ROW: "kernel serving the same GET", K2K_POST_ROW: "kernel taking the same POST"}


def main(argv=None):
    if argv is None:  # on PyPy, with the collector settings the stack's own program takes
        pypy_gc.reexec([os.path.abspath(__file__)] + sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tap", action="store_true", help="also measure against the kernel (root)")
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="transfers per figure (the median is shown)")
    parser.add_argument("--mode", choices=("both", "offload", "plain"), default="both",
                        help="TAP offloads (IFF_VNET_HDR, TSO4, checksum) on, off, or both")
    parser.add_argument("--coalesce", choices=("default", "on", "off"), default="default",
                        help="TCP receive coalescing (default: on for CPython, off for PyPy)")
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
        coalesce = {"default": None, "on": True, "off": False}[args.coalesce]
        from pynetstack.transport.tcp.gro import COALESCE_PAYS
        print(f"TCP receive coalescing: {'on' if (COALESCE_PAYS if coalesce is None else coalesce) else 'off'}")
        for name, value in bench_tap(args.megabytes, args.runs, modes, coalesce).items():
            if name.startswith("connect"):
                print(f"{name}: " + " / ".join(f"{v:.3f}" for v in value))
            else:
                runs = ", ".join(f"{v:.0f}" for v in value[1])
                cpu = f"; {value[2]:.0f} per CPU-second" if value[2] else ""
                ratio = ""
                for at in range(3, len(value), 3):
                    ratio += f"{'  =' if at == 3 else ';'} {value[at]:.2f} x {value[at + 1]}"
                    if value[at + 2]:
                        ratio += f" ({value[at + 2]:.2f} x per CPU-second)"
                print(f"{name}: median {value[0]:.1f} of [{runs}]{cpu}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
