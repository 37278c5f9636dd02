"""Fixtures that build real labs: namespaces, a TAP and a veth, with a stack running in-process."""

from __future__ import annotations

import pytest

from pynetstack import lab as labmod
from pynetstack.link.packet import PacketDevice
from pynetstack.link.tap import TapDevice
from pynetstack.services import udp_echo
from pynetstack.stack import Stack

KERNEL_TAP, STACK_TAP = "10.99.0.1", "10.99.0.2"
KERNEL_VETH, STACK_VETH = "10.99.1.1", "10.99.1.2"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/interop/" in str(item.fspath):
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="module")
def lab():
    reason = labmod.can_run()
    if reason:
        pytest.skip(reason)
    with labmod.Lab() as the_lab:
        yield the_lab


class TapLab:
    """The kernel in namespace ``host`` talks to our stack through a TAP (and a veth)."""

    def __init__(self, lab, stack, host, stack_ns, tap):
        self.lab, self.stack, self.host, self.stack_ns, self.tap = lab, stack, host, stack_ns, tap

    def run(self, *argv, **kwargs):
        return self.lab.run(self.host, *argv, **kwargs)


@pytest.fixture(scope="module")
def tap_lab(lab):
    host = lab.netns("host")
    stack_ns = lab.netns("stack")
    lab.veth(host, "pnsk0", stack_ns, "pnss0", address_a=f"{KERNEL_VETH}/24")
    stack = Stack()
    tap = TapDevice("pnstap0", host_address=f"{KERNEL_TAP}/24", netns=host)
    stack.add_interface(tap, f"{STACK_TAP}/24")
    stack.add_interface(PacketDevice("pnss0", promiscuous=True, netns=stack_ns), f"{STACK_VETH}/24")
    udp_echo.install(stack)
    stack.start_background()
    try:
        yield TapLab(lab, stack, host, stack_ns, tap)
    finally:
        stack.close()
