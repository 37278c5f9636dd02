"""A PacketDevice opened inside another namespace reads that namespace's interface."""

from __future__ import annotations

from pynetstack.link.packet import PacketDevice


def test_mtu_and_index_come_from_the_devices_namespace(lab):
    a = lab.netns("mtua")
    b = lab.netns("mtub")
    lab.veth(a, "eth0", b, "pnsmtu1", mtu=1400)  # /sys/class/net of the test's namespace has no such name
    device = PacketDevice("pnsmtu1", promiscuous=True, netns=b)
    try:
        assert device.mtu == 1400
    finally:
        device.close()
