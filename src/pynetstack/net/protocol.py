"""The contract between the IPv4 layer and the transport protocols above it.

The IPv4 layer owns no transport code (``net`` never imports ``transport``): a transport
registers an object with this shape for its IP protocol number, and receives a ``IpOutput``
to send with.  Everything is sans-I/O: ``now`` is passed in, nothing here blocks.
"""

from __future__ import annotations

from typing import Optional

try:
    from typing import Protocol
except ImportError:  # pragma: no cover - Python < 3.8
    Protocol = object


class IpOutput(Protocol):
    """What a transport may ask of the IP layer.

    This is the whole contract: ``net.host.Host`` implements it, and so does every test fake
    (``tests/tcp/fake_ip.py``), offload included, so the offload paths of a transport run in
    the tests without a device that offloads.  ``OUTPUT_CONTRACT`` names the methods."""

    # True when ``poll(now)`` of every transport runs after each batch of received datagrams,
    # so a transport may answer a whole batch once (TCP sends one ACK, one large segment);
    # False: answer every datagram at once.
    delivers_in_batches: bool = False

    def ip_send(self, src: int, dst: int, protocol: int, payload: bytes, now: float,
                ttl: Optional[int] = None, df: bool = True, tos: int = 0, gso_size: int = 0) -> bool:
        """Route and send one datagram (fragmenting when allowed). False when unroutable.
        ``gso_size`` > 0 (only after ``max_segment`` said yes): ``payload`` is a TCP segment of
        up to ``max_segment(dst)`` bytes whose checksum field holds the pseudo-header sum; the
        device finishes the checksum and cuts it into segments of ``gso_size`` payload bytes."""

    def max_segment(self, dst: int) -> int:
        """The largest datagram ``ip_send`` takes with ``gso_size`` towards ``dst``
        (segmentation offload on the way), or 0: every segment must fit the path MTU."""

    def output_path(self, src: int, dst: int, protocol: int, now: float, ttl: Optional[int] = None,
                    tos: int = 0):
        """A cached way out for datagrams ``src`` -> ``dst`` (an object with ``transmit(head,
        payload, now)``, ``transmit_gso(head, payload, gso_size, now)``, ``valid(now)`` and
        ``send_parts``), or None: every datagram takes ``ip_send``.  A fake may always say None."""

    def source_address_for(self, dst: int) -> Optional[int]:
        """The local address a new flow to ``dst`` should use, or None if ``dst`` is unroutable."""

    def is_local_address(self, address: int) -> bool:
        """True when ``address`` is one of the stack's own unicast addresses."""

    def path_mtu(self, dst: int) -> int:
        """The MTU towards ``dst`` (interface MTU, lowered by ICMP fragmentation-needed)."""

    def send_icmp_error(self, ip, icmp_type: int, code: int, now: float, rest: int = 0) -> bool:
        """Answer the received datagram ``ip`` with an ICMP error (port unreachable, say);
        the IP layer applies RFC 1122's rules on when not to, and a rate limit."""


class TransportProtocol(Protocol):
    """What the IP layer asks of a transport registered for one protocol number."""

    def receive(self, ip, now: float) -> None:
        """A datagram for a local address: ``ip`` is a parsed ``wire.ipv4.IPv4`` whose
        ``payload`` is a memoryview of the transport segment. Must not raise: count and drop."""

    def icmp_error(self, icmp_type: int, code: int, info: int, inner_ip, inner_payload: bytes,
                   now: float) -> None:
        """An ICMP error quoting a datagram we sent: ``inner_ip`` is the quoted IPv4 header,
        ``inner_payload`` the quoted bytes after it (at least 8), ``info`` the MTU for
        fragmentation-needed (type 3 code 4), else the rest-of-header word."""

    def poll(self, now: float) -> None:
        """Run the timers that are due at ``now``."""

    def next_deadline(self) -> Optional[float]:
        """The earliest time ``poll`` has work to do, or None."""


# The methods every IpOutput has (a transport may call each; a fake implements each).
OUTPUT_CONTRACT = ("ip_send", "max_segment", "output_path", "source_address_for", "is_local_address",
                   "path_mtu", "send_icmp_error")
