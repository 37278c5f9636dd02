"""A Stack: the IPv4 host, its transports and devices, and the event loop that drives them.

The protocol code is sans-I/O; this module is where time and file descriptors come in.
One thread runs the loop and holds ``lock`` while it processes; API calls from other threads
take the same lock, change state, then ``wake()`` the loop so it sends and re-plans timers.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import threading
import time
from typing import Callable, List, Optional

from .link.base import DEFAULT_BATCH, Device
from .net.counters import CounterRegistry, DropView, host_sources
from .net.hooks import NetworkFunction
from .net.host import IPv4Host
from .net.interface import Interface
from .transport.tcp.layer import TcpLayer
from .transport.udp import UdpLayer
from .wire.addr import ip_to_int, ip_to_str, mac_to_bytes, parse_cidr
from .wire.ipv4 import PROTO_TCP
from .wire.udp import PROTO as PROTO_UDP

log = logging.getLogger("pynetstack")
MAX_SLEEP = 1.0


class Stack:
    def __init__(self, forwarding: bool = False, clock: Callable[[], float] = time.monotonic,
                 echo_reply: bool = True, busy_poll: float = 0.0):
        self.clock = clock
        # Seconds the loop spins on its devices after a pass before it sleeps (as SO_BUSY_POLL
        # and DPDK's poll mode do): a frame that comes meanwhile skips the sleep and wake-up,
        # at the price of a CPU kept busy that long after every burst of traffic.  0: never spin.
        self.busy_poll = busy_poll
        self.loop_stats = {"passes": 0, "sleeps": 0, "spins": 0, "spin_hits": 0}
        self.host = IPv4Host(forwarding=forwarding, echo_reply=echo_reply)
        self.udp = UdpLayer(self.host, self.host.drops)
        self.host.register_transport(PROTO_UDP, self.udp)
        self.tcp = TcpLayer(self.host)
        self.tcp.drops = DropView(self.host.drops, "tcp-")  # one drop counter for the whole stack
        self.host.register_transport(PROTO_TCP, self.tcp)
        self.router = None  # conntrack, NAT and the ruleset, once installed (netfilter.router)
        self.counters = CounterRegistry()
        host_sources(self.counters, self.host)
        self.counters.add("tcp", lambda: dict(self.tcp.counters))
        self.lock = threading.RLock()
        self.started_at = clock()
        self._selector: Optional[selectors.BaseSelector] = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._closers: List[Callable[[], None]] = []
        self._started = False
        # When the sleeping loop wakes by itself (planned under the lock); None while it
        # processes, after which it plans again: see ``wake_needed``
        self._planned: Optional[float] = None

    # ------------------------------------------------------------------ building
    def now(self) -> float:
        return self.clock()

    @property
    def drops(self):
        return self.host.drops

    @property
    def interfaces(self):
        return self.host.interfaces

    def add_interface(self, device: Device, address: Optional[str] = None, mac: Optional[str] = None,
                      mtu: Optional[int] = None, name: Optional[str] = None) -> Interface:
        """Attach ``device``; ``address`` is a CIDR string ('10.0.0.2/24') or a list of them."""
        self._closers.append(device.close)  # first: a device is released even if the rest fails
        iface = Interface(name or device.name, device, mac_to_bytes(mac) if mac else device.mac, mtu)
        with self.lock:
            self.host.add_interface(iface)
            for cidr in ([address] if isinstance(address, str) else address or []):
                addr, length = parse_cidr(cidr)
                self.host.add_address(iface, addr, length)
        if self._started:
            self._register(iface)
        return iface

    def add_route(self, destination: str, gateway: Optional[str] = None, interface: Optional[str] = None,
                  metric: int = 0):
        prefix, length = parse_cidr(destination)
        iface = self.host.interfaces[interface] if interface else None
        with self.lock:
            return self.host.add_route(prefix, length, ip_to_int(gateway) if gateway else None, iface, metric)

    def remove_address(self, interface: str, address: str) -> None:
        """``ip addr del ADDRESS dev INTERFACE``; masquerade entries that used it are flushed."""
        addr, length = parse_cidr(address)
        with self.lock:
            self.host.remove_address(self.host.interfaces[interface], addr, length)

    def set_link(self, interface: str, up: bool) -> None:
        """``ip link set dev INTERFACE up|down``: routes through it stop (or start) being used."""
        with self.lock:
            self.host.set_link(self.host.interfaces[interface], up)
        self.wake()

    def set_default_gateway(self, gateway: str):
        return self.add_route("0.0.0.0/0", gateway)

    def register(self, function: NetworkFunction) -> NetworkFunction:
        """Put a network function on its hooks; its timers run in this loop, its counters show
        in ``status()`` and ``counters.gather()``."""
        with self.lock:
            self.host.register(function)
        self.wake()
        return function

    def register_transport(self, protocol: int, transport) -> None:
        with self.lock:
            self.host.register_transport(protocol, transport)

    def add_udp_service(self, port: int, handler: Callable[[bytes, tuple], Optional[bytes]]) -> int:
        """Serve UDP ``port`` with ``handler(data, (peer_ip, peer_port)) -> reply or None``."""
        bound = 0

        def endpoint(payload, src, src_port, dst, now):
            reply = handler(payload, (ip_to_str(src), src_port))
            if reply is not None:
                source = dst if self.host.is_local_address(dst) else None
                self.udp.sendto(reply, bound, src, src_port, now, src=source)
        with self.lock:
            bound = self.udp.bind(port, endpoint)
        return bound

    def send_udp(self, src_port: int, data: bytes, peer: tuple) -> bool:
        """Send a datagram from local ``src_port`` to ``peer`` (ip, port), from any thread:
        how a service that answers later (after a lookup, say) replies."""
        with self.lock:
            ok = self.udp.sendto(bytes(data), src_port, ip_to_int(peer[0]), peer[1], self.now())
        self.wake()
        return ok

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    # ------------------------------------------------------------------ the loop
    def start(self) -> None:
        """Announce the stack (gratuitous ARP) and prepare the selector. Idempotent."""
        if self._started:
            return
        self._started = True
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        for iface in self.host.interfaces.values():
            self._register(iface)
        with self.lock:
            self.host.start(self.now())

    def _register(self, iface: Interface) -> None:
        fd = iface.device.fileno()
        if fd is not None and self._selector is not None:
            self._selector.register(fd, selectors.EVENT_READ, iface)

    def wake_needed(self) -> bool:
        """Whether the loop must be woken for a change an API call just made (call with the
        lock held, then ``wake()`` after releasing it if so): only if the loop sleeps and the
        change brought its next deadline before the time it planned to wake.  While it
        processes, it plans after the change (it plans under the lock).  During a transfer a
        send or receive seldom moves a deadline (the retransmission timer runs already), so
        the loop sleeps on until the next frame: one system call and one pass fewer per call,
        and no contention for the lock with a pass that has nothing to do."""
        planned = self._planned
        if planned is None:
            return False
        deadline = self.next_deadline()
        return deadline is not None and deadline < planned

    def wake(self) -> None:
        """Make the loop run now (after an API call queued data or changed a timer)."""
        if threading.current_thread() is self._thread or self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass  # a wake-up is already pending, or the stack is closing

    def step(self, max_wait: float = MAX_SLEEP) -> None:
        """Wait for frames or the next deadline (at most ``max_wait``), then process."""
        self.start()
        with self.lock:
            deadline = self.next_deadline()
            now = self.now()
            timeout = max_wait if deadline is None else min(max_wait, max(0.0, deadline - now))
            self._planned = now + timeout
        received = None
        if self.busy_poll > 0 and timeout > 0:
            received = self._spin(timeout)
            if received is None:  # spun in vain: sleep what is left until the planned time
                timeout = max(0.0, now + timeout - self.now())
        events = ()
        if received is None:
            received = ()
            if timeout > 0:
                self.loop_stats["sleeps"] += 1
            events = self._selector.select(timeout)
        with self.lock:
            self._planned = None
            now = self.now()
            receive = self.host.receive_frame
            interfaces = self.host.interfaces.values()
            for iface in interfaces:
                iface.device.hold()
            try:
                for iface, frames in received:
                    for frame in frames:
                        receive(iface, frame, now)
                for key, _ in events:
                    iface = key.data
                    if iface is None:
                        self._drain_wake_pipe()
                        continue
                    for frame in self._receive(iface, now):
                        receive(iface, frame, now)
                # Poll after every batch: transports answer a batch at once (IPv4Host.delivers_in_batches).
                self.poll(now)
            finally:
                for iface in interfaces:
                    iface.device.flush(now)
            self.loop_stats["passes"] += 1

    def _receive(self, iface: Interface, now: float, batch: int = DEFAULT_BATCH) -> List[bytes]:
        try:
            return iface.device.receive(now, batch)
        except OSError as exc:  # e.g. the interface went down: keep serving the others
            self.host.counters["device_errors"] += 1
            log.warning("%s: receive failed: %s", iface.name, exc)
            return []

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _spin(self, timeout: float):
        """Busy polling: receive from the devices without sleeping, for at most ``busy_poll``
        seconds and never past ``timeout``.  Returns [(interface, frames)] as soon as one has
        frames ([] when an API call woke the loop), or None to go to sleep.  A device with a
        receive ring answers from memory (``pending``) without a system call; another is read
        directly (one non-blocking read: cheaper than asking the selector, then reading); the
        selector is asked every few turns, for the wake-up pipe.

        The first turn, right after a pass, takes a whole batch: frames that queued meanwhile
        are a burst.  A later turn takes the one frame that has just come, without the read that
        would find the device empty (a system call and, on CPython, an exception): its answer
        leaves that much sooner, and the next turn makes that read anyway."""
        clock = time.monotonic
        end = clock() + min(self.busy_poll, timeout)
        stats = self.loop_stats
        stats["spins"] += 1
        interfaces = list(self.host.interfaces.values())
        receive = self._receive
        batch = DEFAULT_BATCH
        turn = 0
        while True:
            now = clock()
            got = None
            for iface in interfaces:
                pending = iface.device.pending
                if pending is None or pending():
                    frames = receive(iface, now, batch)
                    if frames:
                        if got is None:
                            got = []
                        got.append((iface, frames))
            if got is not None:
                stats["spin_hits"] += 1
                return got
            batch = 1
            turn += 1
            if turn & 7 == 0:
                for key, _ in self._selector.select(0):
                    if key.data is None:
                        self._drain_wake_pipe()
                        return []
            if now >= end:
                return None

    def poll(self, now: float) -> None:
        for iface in self.host.interfaces.values():
            iface.device.poll(now)
        self.host.poll(now)

    def next_deadline(self) -> Optional[float]:
        # (asked before every pass of the loop: one walk, no lists)
        earliest = self.host.next_deadline()
        for iface in self.host.interfaces.values():
            deadline = iface.device.next_deadline()
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def run(self, until: Optional[Callable[[], bool]] = None, duration: Optional[float] = None) -> None:
        """Run the loop in this thread until ``stop()``, ``until()`` is true or ``duration`` passes."""
        self.start()
        end = None if duration is None else time.monotonic() + duration
        self._thread = self._thread or threading.current_thread()
        while not self._stopping.is_set():
            if until is not None and until():
                break
            if end is not None and time.monotonic() >= end:
                break
            self.step()

    def run_until_signal(self) -> None:
        """Run in the foreground until SIGINT or SIGTERM, then close."""
        def on_signal(signum, _frame):
            self._stopping.set()
            try:  # the handler runs in the loop's own thread, where wake() does nothing
                os.write(self._wake_w, b"\0")
            except OSError:
                pass
        old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._thread = threading.current_thread()
            self.run()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self.close()

    def start_background(self) -> threading.Thread:
        """Run the loop in a daemon thread (for the socket API and tests)."""
        self.start()
        self._thread = threading.Thread(target=self.run, name="pynetstack-loop", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stopping.set()
        self.wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and thread.is_alive():
            thread.join(timeout=5)

    def close(self) -> None:
        """Stop the loop and release every device (TAPs the stack created disappear). Idempotent."""
        if self._wake_w < 0:
            return
        self.stop()
        for closer in reversed(self._closers):
            try:
                closer()
            except OSError as exc:
                log.warning("while closing: %s", exc)
        self._closers.clear()
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        fds = (self._wake_r, self._wake_w)
        self._wake_r = self._wake_w = -1  # first, so no late wake() writes to a reused descriptor
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ status
    def status(self) -> dict:
        now = self.now()
        with self.lock:
            return {
                "uptime": now - self.started_at,
                "interfaces": [
                    {"name": i.name, "describe": i.describe(), "rx_frames": i.rx_frames, "tx_frames": i.tx_frames,
                     "rx_bytes": i.rx_bytes, "tx_bytes": i.tx_bytes, "neighbours": i.neighbours.table(now)}
                    for i in self.host.interfaces.values()],
                "routes": [repr(r) for r in self.host.routes.routes()],
                "counters": dict(self.host.counters),
                "drops": dict(self.host.drops),
                "udp_ports": sorted(port for _, port in self.udp.endpoints),
                "tcp_connections": self.tcp.connection_info(),
                "functions": {f.name: f.stats() for f in self.host.hooks.functions},
            }

    @classmethod
    def from_config(cls, config) -> Stack:
        """Build a stack from a TOML file path or an already-parsed dict (see config.py)."""
        from .config import build_stack
        return build_stack(config)
