"""Deterministic simulation: stacks wired by in-memory links, driven on a virtual clock.

Time advances only when nothing is left to do now, straight to the next deadline, so
two hours of NAT time-outs or a 2*MSL TIME_WAIT take milliseconds of real time.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from .link.faults import FaultInjector
from .link.memory import memory_pair
from .stack import Stack

# The links Simulation.routed builds: (host address, router address, the router's interface name);
# the host's own interface is eth0.
LAN = ("192.168.1.2/24", "192.168.1.1/24", "lan0")
WAN = ("203.0.113.2/24", "203.0.113.1/24", "wan0")
NET0 = ("10.0.0.1/24", "10.0.0.254/24", "eth0")
NET1 = ("10.0.1.2/24", "10.0.1.254/24", "eth1")


class VirtualClock:
    def __init__(self, start: float = 1000.0):
        self.time = start

    def __call__(self) -> float:
        return self.time


class Simulation:
    def __init__(self, start: float = 1000.0):
        self.clock = VirtualClock(start)
        self.stacks: List[Stack] = []
        self.frames_moved = 0
        self._cables: list = []  # every memory device, to see frames still waiting in an inbox

    def stack(self, **kwargs) -> Stack:
        stack = Stack(clock=self.clock, **kwargs)
        self.stacks.append(stack)
        return stack

    def link(self, a: Stack, a_address: str, b: Stack, b_address: str, mtu: int = 1500,
             faults_ab: Optional[dict] = None, faults_ba: Optional[dict] = None,
             names: Tuple[str, str] = ("eth0", "eth0")):
        """Cable ``a`` to ``b``; ``faults_ab`` are FaultInjector settings on a's sending side."""
        dev_a, dev_b = memory_pair(mtu, names)
        self._cables += [dev_a, dev_b]
        side_a = FaultInjector(dev_a, **faults_ab) if faults_ab else dev_a
        side_b = FaultInjector(dev_b, **faults_ba) if faults_ba else dev_b
        return a.add_interface(side_a, a_address), b.add_interface(side_b, b_address)

    def routed(self, left: Tuple[str, str, str] = LAN, right: Tuple[str, str, str] = WAN,
               right_route: Optional[str] = "0.0.0.0/0", **right_link) -> Tuple[Stack, Stack, Stack]:
        """(left host, router, right host): a forwarding stack between two hosts, each on its own
        link. The left host routes everything via the router; the right host routes
        ``right_route`` via it (None: no route back, so only NAT brings replies home).
        ``right_link`` are ``link`` options (mtu, faults) of the right-hand link."""
        left_host, router, right_host = self.stack(), self.stack(forwarding=True), self.stack()
        self.link(left_host, left[0], router, left[1], names=("eth0", left[2]))
        self.link(router, right[1], right_host, right[0], names=(right[2], "eth0"), **right_link)
        left_host.add_route("0.0.0.0/0", left[1].split("/")[0])
        if right_route is not None:
            right_host.add_route(right_route, right[1].split("/")[0])
        return left_host, router, right_host

    @property
    def now(self) -> float:
        return self.clock.time

    def run_once(self) -> bool:
        """Deliver every frame that is waiting and run due timers; True if anything happened."""
        moved = False
        now = self.clock.time
        for stack in self.stacks:
            stack.start()
            with stack.lock:
                for iface in stack.host.interfaces.values():
                    for frame in iface.device.receive(now, batch=1 << 30):
                        moved = True
                        self.frames_moved += 1
                        stack.host.receive_frame(iface, frame, now)
                stack.poll(now)
        # A stack polled later in this round may have put frames in the inbox of one polled
        # earlier (a fault injector releasing them): those are due now, not at the next timer.
        return moved or any(device.inbox for device in self._cables)

    def run(self, duration: float = 1.0, until: Optional[Callable[[], bool]] = None, max_steps: int = 10_000_000) -> None:
        """Advance up to ``duration`` virtual seconds, or until ``until()`` holds."""
        end = self.clock.time + duration
        for _ in range(max_steps):
            while self.run_once():
                if until is not None and until():
                    return
            if until is not None and until():
                return
            deadlines = [d for d in (s.next_deadline() for s in self.stacks) if d is not None]
            next_time = min(deadlines) if deadlines else end
            if next_time >= end:
                self.clock.time = end
                self.run_once()
                return
            self.clock.time = max(self.clock.time, next_time)
        raise RuntimeError("simulation did not settle within max_steps")
