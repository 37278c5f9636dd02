"""pynetstack's TCP against PyTCP and the Linux kernel, same run, same kind of link.

    bash benchmarks/setup_peers.sh                      # PyTCP into .venv-peers (never .venv)
    sudo .venv/bin/python benchmarks/bench_tcp_pytcp.py # defaults: 3 rounds; MiB: 100 pynetstack, 20 PyTCP, 200 kernel
    sudo .venv/bin/python benchmarks/bench_tcp_pytcp.py --runs 5 --mib 20 --connects 200 --json out.json

Every stack runs behind a TAP in a network namespace of its own (made with pynetstack.lab.Lab);
the Linux kernel in that namespace is the client (a small Python socket client, the same one for
every stack).  The reference is kernel to kernel over a veth between two namespaces, same client,
same server code as PyTCP's.  Each round starts every target afresh, in turn, and runs on it:

* connect: --connects TCP handshakes to port 7 (mean / median / p99 of connect());
* kernel -> stack: N bytes sent, the stack answers their SHA-256 (checked);
* stack -> kernel: N bytes received and checked against their known SHA-256;
* echo: N bytes through the echo service on port 7, both ways at once, SHA-256 compared.  A
  stream that ends short (EOF or reset) counts as truncated, one that stops moving for --stall
  seconds as stalled, one that arrives whole with other bytes as corrupt.

Targets:
* PyTCP (pip install pytcp, run from .venv-peers / .venv-peers-pypy, never imported here).  PyTCP
  is a library that attaches to an existing TAP; its TCP services (echo/discard/daytime) are only
  in its git repository's examples, so this file's ``serve`` mode is a tiny server on PyTCP's
  BSD-like socket API (pytcp.lib.socket): echo on 7, a SHA-256 sink on 5001 (8-byte length, then
  the bytes; answers the hex digest) and a source on 5002 (8-byte length; sends that many bytes,
  then closes).  It runs under ``python -O`` (PyTCP guards its per-packet logging with
  ``__debug__``, so -O is its fast configuration) with logging channels emptied.
* pynetstack (``python -m pynetstack up``: echo on 7, HTTP on 80 with ``POST /sha256`` and
  ``GET /bytes/N``), TAP offloads on (the default) and off (``--no-offload``), on CPython
  (.venv) and PyPy (.venv-pypy).
* the kernel: the same ``serve`` code on kernel sockets, across a veth.

Every transfer is bounded in bytes and seconds; every process and namespace is removed at the end
(also on Ctrl-C).  Throughput is in MB/s (10^6 bytes).  The machine is shared and has two cores:
read medians, not single figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ECHO_PORT, SINK_PORT, SOURCE_PORT, HTTP_PORT = 7, 5001, 5002, 80
PATTERN = random.Random(0x70797463).randbytes(1 << 20)  # the stream: this block, repeated
CHUNK = 1 << 18


def stream_digest(n: int) -> str:
    h = hashlib.sha256()
    whole, rest = divmod(n, len(PATTERN))
    for _ in range(whole):
        h.update(PATTERN)
    h.update(PATTERN[:rest])
    return h.hexdigest()


def stream_chunks(n: int):
    view = memoryview(PATTERN)
    off = 0
    while off < n:
        k = min(CHUNK, n - off)
        start = off % len(PATTERN)
        if start + k > len(PATTERN):
            k = len(PATTERN) - start
        yield view[start:start + k]
        off += k


# -- serve: the small server, on PyTCP's sockets or the kernel's -----------------------------------

def _serve(args) -> int:
    deadline = time.monotonic() + args.duration
    if args.stack == "pytcp":
        from pytcp import TcpIpStack, config  # only inside the peers' venv
        config.LOG_CHANEL = set()
        stack = TcpIpStack(interface=args.tap, ip4_address=args.cidr)
        # IPv4 only, as for the other targets: no SLAAC/DAD/MLD chatter on the link.
        config.IP6_SUPPORT = False
        stack.start()
        from pytcp.lib import socket as psock

        def listener(port):
            s = psock.socket(psock.AF_INET4, psock.SOCK_STREAM)
            s.bind((args.address, port))
            s.listen()
            return s
    else:
        def listener(port):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((args.address, port))
            s.listen(128)
            return s

    def sendall(conn, data):
        view = memoryview(data)
        while view:
            n = conn.send(bytes(view[:CHUNK]) if args.stack == "pytcp" else view[:CHUNK])
            view = view[n:]

    def recv_exact(conn, n):
        buf = bytearray()
        while len(buf) < n:
            d = conn.recv(n - len(buf))
            if not d:
                return None
            buf += d
        return bytes(buf)

    def echo(conn):
        while True:
            d = conn.recv(1 << 16)
            if not d:
                break
            sendall(conn, d)

    def sink(conn):
        head = recv_exact(conn, 8)
        if head is None:
            return
        left = struct.unpack("!Q", head)[0]
        h = hashlib.sha256()
        while left:
            d = conn.recv(min(left, 1 << 16))
            if not d:
                return
            h.update(d)
            left -= len(d)
        sendall(conn, h.hexdigest().encode() + b"\n")

    def source(conn):
        head = recv_exact(conn, 8)
        if head is None:
            return
        for chunk in stream_chunks(struct.unpack("!Q", head)[0]):
            sendall(conn, chunk)

    def handle(conn, fn):
        try:
            fn(conn)
        except Exception as exc:  # noqa: BLE001 - a broken connection ends only itself
            print(f"serve: {fn.__name__}: {exc!r}", file=sys.stderr, flush=True)
        finally:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def accept_loop(s, fn):
        while True:
            conn, _ = s.accept()
            threading.Thread(target=handle, args=(conn, fn), daemon=True).start()

    for port, fn in ((ECHO_PORT, echo), (SINK_PORT, sink), (SOURCE_PORT, source)):
        threading.Thread(target=accept_loop, args=(listener(port), fn), daemon=True).start()
    print("ready", flush=True)
    while time.monotonic() < deadline:
        time.sleep(0.2)
    os._exit(0)  # PyTCP's threads are not daemons: leave without waiting for them


# -- client: one bounded operation from the kernel, one JSON line out ------------------------------

def _pump(sock, chunks, on_data, deadline, stall, sent):
    """Send ``chunks`` and feed what arrives to ``on_data`` (returns True when done), both at once.
    Returns (status, first_send_time, done_time); status is ok, eof, reset, stalled or timeout.
    ``sent[0]`` counts the bytes the kernel took."""
    sock.setblocking(False)
    pending = memoryview(b"")
    chunks = iter(chunks)
    more = True
    t_first = time.perf_counter()
    last_progress = time.monotonic()
    while True:
        if not pending and more:
            try:
                pending = next(chunks)
            except StopIteration:
                more = False
        now = time.monotonic()
        if now > deadline:
            return "timeout", t_first, time.perf_counter()
        if now - last_progress > stall:
            return "stalled", t_first, time.perf_counter()
        r, w, _ = select.select([sock], [sock] if pending else [], [], 0.2)
        if w:
            try:
                n = sock.send(pending)
                pending = pending[n:]
                sent[0] += n
                last_progress = time.monotonic()
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                return "reset", t_first, time.perf_counter()
        if r:
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                return "reset", t_first, time.perf_counter()
            if not data:
                return "eof", t_first, time.perf_counter()
            last_progress = time.monotonic()
            if on_data(data):
                return "ok", t_first, time.perf_counter()


class _Http:
    """Just enough of an HTTP/1.1 response parser: headers, then Content-Length bytes of body."""

    def __init__(self, body_sink):
        self.head = bytearray()
        self.length = None
        self.got = 0
        self.body_sink = body_sink

    def feed(self, data) -> bool:
        if self.length is None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(self.head[:end]).decode("latin-1").lower()
            self.length = 0
            for line in head.split("\r\n"):
                if line.startswith("content-length:"):
                    self.length = int(line.split(":", 1)[1])
            data = bytes(self.head[end + 4:])
            self.head = bytearray()
        self.got += len(data)
        self.body_sink(data)
        return self.got >= self.length


def _client(args) -> int:
    host, n = args.host, args.bytes
    deadline = time.monotonic() + args.timeout
    out = {"op": args.op}
    if args.op == "probe":
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, ECHO_PORT), timeout=0.5).close()
                out["ok"] = True
                break
            except OSError as exc:
                out["error"] = repr(exc)
                time.sleep(0.2)
        print(json.dumps(out))
        return 0
    if args.op == "connect":
        times, errors = [], 0
        for _ in range(args.count):
            if time.monotonic() > deadline:
                break
            t = time.perf_counter()
            try:
                s = socket.create_connection((host, ECHO_PORT), timeout=5)
            except OSError:
                errors += 1
                continue
            times.append(time.perf_counter() - t)
            s.close()
            time.sleep(0.001)  # let the stack see the FIN before the next SYN
        times.sort()
        out.update(n=len(times), errors=errors)
        if times:
            out.update(mean=sum(times) / len(times) * 1e3, median=times[len(times) // 2] * 1e3,
                       p99=times[min(len(times) - 1, -(-len(times) * 99 // 100) - 1)] * 1e3)
        print(json.dumps(out))
        return 0

    try:
        port = ECHO_PORT if args.op == "echo" else HTTP_PORT if args.proto == "http" else \
            {"up": SINK_PORT, "down": SOURCE_PORT}[args.op]
        sock = socket.create_connection((host, port), timeout=10)
    except OSError as exc:
        out.update(status="connect-failed", error=repr(exc), received=0)
        print(json.dumps(out))
        return 0
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    h = hashlib.sha256()
    received, sent = [0], [0]

    def hashing(data):
        h.update(data)
        received[0] += len(data)

    if args.op == "up":
        reply = bytearray()
        if args.proto == "http":
            head = (f"POST /sha256 HTTP/1.1\r\nHost: {host}\r\nContent-Length: {n}\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n").encode()
            parser = _Http(reply.extend)
            on_data = parser.feed
        else:
            head = struct.pack("!Q", n)

            def on_data(data):
                reply.extend(data)
                return b"\n" in reply
        status, t0, t1 = _pump(sock, [memoryview(head)] + list(stream_chunks(n)), on_data, deadline,
                               args.stall, sent)
        got = bytes(reply).strip().decode("latin-1")[:64]
        out.update(digest_ok=(got == args.expect), reply=got[:80])
        out["received"] = "digest" if got == args.expect else f"reply {got[:20]!r}"
        ok = status == "ok" and got == args.expect
    elif args.op == "down":
        if args.proto == "http":
            request = f"GET /bytes/{n} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            parser = _Http(hashing)
            on_data = parser.feed
        else:
            request = struct.pack("!Q", n)

            def on_data(data):
                hashing(data)
                return received[0] >= n
        status, t0, t1 = _pump(sock, [memoryview(request)], on_data, deadline, args.stall, sent)
        out.update(received=received[0], digest_ok=(h.hexdigest() == args.expect))
        ok = status == "ok" and received[0] == n and h.hexdigest() == args.expect
    else:  # echo
        def on_data(data):
            hashing(data)
            return received[0] >= n
        status, t0, t1 = _pump(sock, stream_chunks(n), on_data, deadline, args.stall, sent)
        out.update(received=received[0], digest_ok=(h.hexdigest() == args.expect))
        ok = status == "ok" and received[0] == n and h.hexdigest() == args.expect
    sock.close()
    if ok:
        out["status"] = "intact"
    elif status == "ok":
        out["status"] = "corrupt"
    elif status in ("eof", "reset"):
        out["status"] = "truncated"
    else:
        out["status"] = status
    out.update(sent=sent[0], seconds=t1 - t0, mbps=n / max(t1 - t0, 1e-9) / 1e6)
    print(json.dumps(out))
    return 0


# -- bench: the orchestration ------------------------------------------------------------------------

KERNEL_IP, STACK_IP = "10.98.0.1", "10.98.0.2"
VETH_A, VETH_B = "10.98.1.1", "10.98.1.2"
TAP = "pnsbt0"


class Target:
    def __init__(self, name, kind, python, offload=True):
        self.name, self.kind, self.python, self.offload = name, kind, python, offload


def _median(values):
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _peer_python(venv):
    path = os.path.join(ROOT, venv, "bin", "python")
    if not os.path.exists(path):
        if venv.endswith("pypy") and shutil.which("pypy3"):
            r = subprocess.run(["pypy3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               stdout=subprocess.PIPE, text=True, timeout=60)
            return None, (f"{venv} missing: setup_peers.sh makes it only when PyTCP installs and imports "
                          f"under pypy3 (Python {r.stdout.strip()} here; every PyTCP release on PyPI "
                          "requires Python >= 3.10)")
        return None, f"{venv} missing (run benchmarks/setup_peers.sh)"
    r = subprocess.run([path, "-c", "import importlib.metadata as m, platform; "
                        "print(m.version('pytcp'), platform.python_implementation(), platform.python_version())"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    if r.returncode:
        return None, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "pytcp does not import"
    return path, r.stdout.strip()


def _stop(process, sig=signal.SIGTERM):
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=8)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def _bench(args) -> int:
    sys.path.insert(0, os.path.join(ROOT, "src"))
    from pynetstack import lab as labmod
    from pynetstack.services.http import deterministic_bytes

    reason = labmod.can_run()
    if reason:
        print(f"cannot run: {reason}")
        return 1
    notes = []
    targets = [Target("kernel (veth)", "kernel", sys.executable)]
    for venv, label in ((".venv-peers", "PyTCP CPython"), (".venv-peers-pypy", "PyTCP PyPy")):
        python, info = _peer_python(venv)
        if python:
            targets.append(Target(label, "pytcp", python))
            notes.append(f"{label}: PyTCP {info}")
        else:
            notes.append(f"{label}: not run: {info}")
    for venv, label in ((".venv", "CPython"), (".venv-pypy", "PyPy")):
        python = os.path.join(ROOT, venv, "bin", "python")
        if not os.path.exists(python):
            notes.append(f"pynetstack {label}: {venv} missing")
            continue
        for offload in (True, False):
            targets.append(Target(f"pynetstack {label} {'offload' if offload else 'no-offload'}",
                                  "pynetstack", python, offload))
    if args.only:
        targets = [t for t in targets if any(word.lower() in t.name.lower() for word in args.only)]

    def size_for(t):
        return (args.kernel_mib if t.kind == "kernel" else args.pytcp_mib if t.kind == "pytcp" else args.mib) << 20

    expected_raw, expected_http = {}, {}

    def expect(t, op, n):
        if t.kind == "pynetstack" and op == "down":
            if n not in expected_http:
                h, off = hashlib.sha256(), 0
                while off < n:
                    k = min(1 << 20, n - off)
                    h.update(deterministic_bytes(off, k))
                    off += k
                expected_http[n] = h.hexdigest()
            return expected_http[n]
        if n not in expected_raw:
            expected_raw[n] = stream_digest(n)
        return expected_raw[n]

    results = {t.name: {"connect": [], "up": [], "down": [], "echo": [], "status": {}} for t in targets}
    logdir = tempfile.mkdtemp(prefix="bench_tcp_pytcp.")
    print(f"{platform.python_implementation()} {platform.python_version()} client; "
          f"{args.runs} rounds; MiB per transfer: pynetstack {args.mib}, PyTCP {args.pytcp_mib}, "
          f"kernel {args.kernel_mib}; {args.connects} connects per round", flush=True)
    for note in notes:
        print("  " + note, flush=True)

    lab = labmod.Lab("bp")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    t_start = time.monotonic()
    try:
        for rnd in range(args.runs):
            for i, t in enumerate(targets):
                if time.monotonic() - t_start > args.budget:
                    notes.append(f"time budget of {args.budget:.0f} s spent: stopped before round {rnd + 1} "
                                 f"of {t.name}")
                    raise StopIteration
                _one_target(lab, args, t, rnd, i, results[t.name], size_for(t), expect, logdir, notes)
    except StopIteration:
        pass
    except KeyboardInterrupt:
        notes.append("interrupted")
    finally:
        lab.close()
    _report(args, targets, results, notes, size_for)
    return 0


def _one_target(lab, args, t, rnd, i, res, n, expect, logdir, notes):
    ns = lab.netns(f"r{rnd}t{i}")
    client_ns, host = ns, STACK_IP
    logpath = os.path.join(logdir, f"r{rnd}t{i}.log")
    log = open(logpath, "w")
    me = os.path.abspath(__file__)
    timeout_total = args.timeout * 3 + 120
    if t.kind == "kernel":
        peer = lab.netns(f"r{rnd}t{i}b")
        lab.veth(ns, "pnsva", peer, "pnsvb", address_a=f"{VETH_A}/24", address_b=f"{VETH_B}/24")
        server = lab.popen(peer, t.python, me, "serve", "--stack", "kernel", "--address", VETH_B,
                           "--duration", str(timeout_total), stdout=log, stderr=log)
        host = VETH_B
    elif t.kind == "pytcp":
        lab.ip("-n", ns, "tuntap", "add", "name", TAP, "mode", "tap")
        lab.ip("-n", ns, "addr", "add", f"{KERNEL_IP}/24", "dev", TAP)
        lab.ip("-n", ns, "link", "set", TAP, "up")
        server = lab.popen(ns, t.python, "-O", me, "serve", "--stack", "pytcp", "--tap", TAP,
                           "--address", STACK_IP, "--cidr", f"{STACK_IP}/24", "--duration", str(timeout_total),
                           stdout=log, stderr=log)
    else:
        argv = [t.python, "-m", "pynetstack", "up", "--tap", TAP, "--address", f"{STACK_IP}/24",
                "--host-address", f"{KERNEL_IP}/24", "--duration", str(timeout_total)]
        if not t.offload:
            argv.append("--no-offload")
        server = lab.popen(ns, *argv, stdout=log, stderr=log, cwd=ROOT)

    def client(*argv, timeout):
        r = lab.run(client_ns, sys.executable, me, "client", "--host", host, *argv, timeout=timeout)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"status": "client-failed", "error": (r.stderr or r.stdout).strip()[-300:]}

    try:
        probe = client("--op", "probe", "--timeout", "30", timeout=60)
        if not probe.get("ok"):
            log.flush()
            with open(logpath) as f:
                tail = f.read()[-600:]
            notes.append(f"{t.name} round {rnd + 1}: not reachable ({probe.get('error')}); log: {tail!r}")
            return
        c = client("--op", "connect", "--count", str(args.connects), "--timeout", str(args.timeout),
                   timeout=args.timeout + 30)
        if c.get("n"):
            res["connect"].append((c["mean"], c["median"], c["p99"]))
        if c.get("errors"):
            notes.append(f"{t.name} round {rnd + 1}: {c['errors']} of {args.connects} connects failed")
        proto = "http" if t.kind == "pynetstack" else "raw"
        for op in ("up", "down", "echo"):
            r = client("--op", op, "--proto", proto, "--bytes", str(n), "--expect", expect(t, op, n),
                       "--timeout", str(args.timeout), "--stall", str(args.stall), timeout=args.timeout + 30)
            status = r.get("status", "client-failed")
            res["status"].setdefault(op, []).append(status)
            if status == "intact":
                res[op].append(r["mbps"])
            else:
                notes.append(f"{t.name} round {rnd + 1} {op}: {status} after {r.get('seconds', 0):.1f} s "
                             f"({r.get('sent', '?')} bytes sent, {r.get('received', '-')} received, of {n})"
                             + (f": {r['error']}" if r.get("error") else ""))
            print(f"  round {rnd + 1} {t.name:32s} {op:5s} {status:9s} "
                  f"{r.get('mbps', 0):9.2f} MB/s", flush=True)
        if c.get("n"):
            print(f"  round {rnd + 1} {t.name:32s} connect median {c['median']:.3f} ms", flush=True)
        if server.poll() is not None:
            notes.append(f"{t.name} round {rnd + 1}: server exited early ({server.returncode})")
    finally:
        _stop(server, signal.SIGINT if t.kind == "pynetstack" else signal.SIGTERM)
        log.close()
        for name in [x for x in lab.namespaces if x.startswith(ns)]:
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
            lab.namespaces.remove(name)


def _fmt(v):
    return "-" if v is None else f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _report(args, targets, results, notes, size_for):
    rows = [("connect median ms", lambda r: _median([c[1] for c in r["connect"]]), False),
            ("connect mean ms", lambda r: _median([c[0] for c in r["connect"]]), False),
            ("connect p99 ms", lambda r: _median([c[2] for c in r["connect"]]), False),
            ("kernel -> stack MB/s", lambda r: _median(r["up"]), True),
            ("stack -> kernel MB/s", lambda r: _median(r["down"]), True),
            ("echo MB/s (each way)", lambda r: _median(r["echo"]), True)]
    names = [t.name for t in targets]
    width = max(12, max(len(n) for n in names))
    print()
    print(f"medians over {args.runs} rounds (MB/s = 10^6 bytes/s; lower is better for ms)")
    print(f"{'':22s}" + "".join(f"{n:>{width + 2}s}" for n in names))
    table = {}
    for label, get, _ in rows:
        values = [get(results[n]) for n in names]
        table[label] = dict(zip(names, values))
        print(f"{label:22s}" + "".join(f"{_fmt(v):>{width + 2}s}" for v in values))
    print(f"{'MiB per transfer':22s}" + "".join(f"{size_for(t) >> 20:>{width + 2}d}" for t in targets))
    print()
    print("intact / runs (byte-exact SHA-256 check; t = truncated, s = stalled, c = corrupt):")
    for n in names:
        parts = []
        for op in ("up", "down", "echo"):
            statuses = results[n]["status"].get(op, [])
            bad = {k: statuses.count(k) for k in set(statuses) if k != "intact"}
            extra = "".join(f" {k}:{v}" for k, v in sorted(bad.items()))
            parts.append(f"{op} {statuses.count('intact')}/{len(statuses)}{extra}")
        print(f"  {n:32s} " + ", ".join(parts))
    pyt = [n for n in names if n.startswith("PyTCP")]
    ref = "kernel (veth)" if "kernel (veth)" in names else None
    print()
    print("ratios (throughput: pynetstack / other, higher is better; connect: other / pynetstack, higher is better)")
    for n in names:
        if not n.startswith("pynetstack"):
            continue
        for other in pyt + ([ref] if ref else []):
            parts = []
            for label, _, higher in rows:
                if label.startswith("connect mean") or label.startswith("connect p99"):
                    continue
                a, b = table[label][n], table[label][other]
                if a and b:
                    ratio = a / b if higher else b / a
                    parts.append(f"{label.split(' MB/s')[0].split(' ms')[0]} {ratio:.2f}x")
            print(f"  {n} vs {other}: " + ("; ".join(parts) if parts else "-"))
    if notes:
        print()
        print("notes:")
        for note in notes:
            print("  " + note)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"table": table, "results": results, "notes": notes,
                       "mib": {t.name: size_for(t) >> 20 for t in targets}}, f, indent=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    b = sub.add_parser("bench", help="run the comparison (the default)")
    b.add_argument("--runs", type=int, default=3, help="rounds; every target is started afresh in each")
    b.add_argument("--mib", type=int, default=100, help="MiB per transfer for pynetstack")
    b.add_argument("--pytcp-mib", type=int, default=20, help="MiB per transfer for PyTCP")
    b.add_argument("--kernel-mib", type=int, default=200, help="MiB per transfer kernel to kernel")
    b.add_argument("--connects", type=int, default=200, help="connects per round")
    b.add_argument("--timeout", type=float, default=300, help="seconds one transfer may take at most")
    b.add_argument("--stall", type=float, default=15, help="seconds without progress that end a transfer")
    b.add_argument("--budget", type=float, default=3000, help="seconds after which no new target is started")
    b.add_argument("--only", nargs="*", help="targets whose name contains one of these words")
    b.add_argument("--json", metavar="FILE", help="also write all figures to FILE")
    s = sub.add_parser("serve", help="(internal) the echo/sink/source server on PyTCP or kernel sockets")
    s.add_argument("--stack", choices=("pytcp", "kernel"), required=True)
    s.add_argument("--tap")
    s.add_argument("--address", required=True)
    s.add_argument("--cidr")
    s.add_argument("--duration", type=float, default=600)
    c = sub.add_parser("client", help="(internal) one bounded client operation")
    c.add_argument("--op", choices=("probe", "connect", "up", "down", "echo"), required=True)
    c.add_argument("--host", required=True)
    c.add_argument("--proto", choices=("raw", "http"), default="raw")
    c.add_argument("--bytes", type=int, default=0)
    c.add_argument("--count", type=int, default=100)
    c.add_argument("--expect", default="")
    c.add_argument("--timeout", type=float, default=60)
    c.add_argument("--stall", type=float, default=15)
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("bench", "serve", "client", "-h", "--help"):
        argv = ["bench"] + list(argv)
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        return _serve(args)
    if args.cmd == "client":
        return _client(args)
    if os.geteuid() != 0:
        print("needs root (network namespaces, TAP devices)")
        return 1
    return _bench(args)


if __name__ == "__main__":
    sys.exit(main())
