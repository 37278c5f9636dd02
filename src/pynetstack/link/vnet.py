"""The virtio-net header a TAP with IFF_VNET_HDR puts before every frame (include/uapi/linux/virtio_net.h).

    struct virtio_net_hdr { u8 flags; u8 gso_type; u16 hdr_len; u16 gso_size;
                            u16 csum_start; u16 csum_offset; }      10 bytes, little-endian here

With it, the kernel and this process exchange frames the way a paravirtual NIC does:

* ``flags & NEEDS_CSUM``: the transport checksum is unfinished (Linux's CHECKSUM_PARTIAL). The
  field at ``csum_start + csum_offset`` holds only the folded pseudo-header sum; the ones'
  complement of the sum from ``csum_start`` to the end of the frame is the real checksum.
* ``gso_type`` TCPV4 with ``gso_size``: one large IPv4/TCP datagram (up to 64 KB) stands for the
  segments of ``gso_size`` payload bytes that the receiver of the frame makes of it (TSO/GSO).

Summing 64 KB in pure Python costs about 90 us (``int.from_bytes`` plus a reduction), more than
everything else a large segment costs, so a TCP frame the kernel hands over with an unfinished
checksum is delivered as a ``TrustedFrame``: its bytes are exactly what the kernel gave (the
checksum field holds the pseudo-header sum, as on Linux for the same skb), and the attribute
tells the IP layer that the transport checksum need not be verified: the bytes came from the
kernel's memory, never over a wire.  Other protocols' unfinished checksums are completed here.
"""

from __future__ import annotations

import struct

from ..wire.checksum import ones_sum

HEADER_SIZE = 10          # sizeof(struct virtio_net_hdr); 12 with num_buffers (mergeable rx buffers)

F_NEEDS_CSUM = 1          # VIRTIO_NET_HDR_F_NEEDS_CSUM
F_DATA_VALID = 2          # VIRTIO_NET_HDR_F_DATA_VALID (kernel to us: checksum already verified)
GSO_NONE = 0              # VIRTIO_NET_HDR_GSO_NONE
GSO_TCPV4 = 1             # VIRTIO_NET_HDR_GSO_TCPV4
GSO_UDP = 3               # VIRTIO_NET_HDR_GSO_UDP
GSO_TCPV6 = 4             # VIRTIO_NET_HDR_GSO_TCPV6
GSO_ECN = 0x80            # VIRTIO_NET_HDR_GSO_ECN

ETH_HLEN = 14
TCP_CSUM_OFFSET = 16      # offsetof(struct tcphdr, check)
UDP_CSUM_OFFSET = 6

_hdr = struct.Struct("<BBHHHH")
_pack = _hdr.pack
_unpack = _hdr.unpack_from
ZERO_HEADER = bytes(HEADER_SIZE)


class VnetHeader:
    """One decoded header (for tests, tracing and tools; the hot paths use the functions)."""

    __slots__ = ("flags", "gso_type", "hdr_len", "gso_size", "csum_start", "csum_offset")

    def __init__(self, flags=0, gso_type=GSO_NONE, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
        self.flags = flags
        self.gso_type = gso_type
        self.hdr_len = hdr_len
        self.gso_size = gso_size
        self.csum_start = csum_start
        self.csum_offset = csum_offset

    @classmethod
    def parse(cls, data) -> VnetHeader:
        if len(data) < HEADER_SIZE:
            raise ValueError(f"virtio_net_hdr needs {HEADER_SIZE} bytes, have {len(data)}")
        return cls(*_unpack(data))

    def build(self) -> bytes:
        return _pack(self.flags, self.gso_type, self.hdr_len, self.gso_size, self.csum_start, self.csum_offset)

    def __eq__(self, other):
        return isinstance(other, VnetHeader) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self):
        return ("<VnetHeader " + " ".join(f"{n}={getattr(self, n)}" for n in self.__slots__) + ">")


class TrustedFrame(bytes):
    """A received frame whose transport checksum the device vouches for (Linux's
    CHECKSUM_UNNECESSARY, or CHECKSUM_PARTIAL from the local kernel): the IP layer skips the
    check.  With ``partial`` set the checksum field holds the pseudo-header sum only, and
    ``complete_checksum`` gives the frame as it would be on a wire."""

    partial = False
    csum_start = 0
    csum_offset = 0

    def complete(self) -> bytes:
        if not self.partial:
            return bytes(self)
        return complete_checksum(self, self.csum_start, self.csum_offset)


def complete_checksum(frame, csum_start: int, csum_offset: int) -> bytes:
    """``frame`` with the checksum at ``csum_start + csum_offset`` finished (the field holds the
    pseudo-header sum): the ones' complement of the sum from ``csum_start`` to the end."""
    at = csum_start + csum_offset
    if at + 2 > len(frame):
        return bytes(frame)
    csum = ~ones_sum(memoryview(frame)[csum_start:]) & 0xFFFF
    if csum == 0 and csum_offset == UDP_CSUM_OFFSET:
        csum = 0xFFFF  # UDP sends a computed zero as all ones (RFC 768)
    return b"".join((frame[:at], csum.to_bytes(2, "big"), frame[at + 2:]))


def decode(data, header_size: int = HEADER_SIZE):
    """A frame read from a vnet-header TAP: the header stripped; an unfinished checksum either
    completed (small or non-TCP frames) or vouched for (a ``TrustedFrame``).  ``data`` is the
    bytes read, or a buffer over them that the next read overwrites (``Reader.read_view``):
    the frame returned owns its bytes, copied once.  On PyPy every 64 KB copy of a received
    segment is an allocation that brings the next full collection closer (a third of its
    receiving time went to collections when a frame was copied three times)."""
    view = memoryview(data)
    flags = view[0]
    frame = view[header_size:]
    if not flags:
        return bytes(frame)
    _, gso_type, _, _, csum_start, csum_offset = _unpack(view)
    if flags & F_NEEDS_CSUM:
        if (csum_offset == TCP_CSUM_OFFSET and len(frame) > 33 and frame[23] == 6
                and frame[12] == 8 and frame[13] == 0):
            trusted = TrustedFrame(frame)
            trusted.partial = True
            trusted.csum_start = csum_start
            trusted.csum_offset = csum_offset
            return trusted
        return complete_checksum(bytes(frame), csum_start, csum_offset)
    if flags & F_DATA_VALID:
        return TrustedFrame(frame)
    return bytes(frame)


def gso_header(frame, gso_size: int) -> bytes:
    """The header for an IPv4/TCP ``frame`` whose TCP checksum field holds the pseudo-header sum:
    checksum offload, and TSO into ``gso_size``-byte payloads when it carries more than that."""
    ihl = (frame[ETH_HLEN] & 0x0F) << 2
    start = ETH_HLEN + ihl
    hdr_len = start + ((frame[start + 12] >> 4) << 2)
    if len(frame) - hdr_len > gso_size > 0:
        return _pack(F_NEEDS_CSUM, GSO_TCPV4, hdr_len, gso_size, start, TCP_CSUM_OFFSET)
    return _pack(F_NEEDS_CSUM, GSO_NONE, hdr_len, 0, start, TCP_CSUM_OFFSET)


def gso_header_for(payload_length: int, gso_size: int, hdr_len: int, csum_start: int = ETH_HLEN + 20) -> bytes:
    """``gso_header`` without looking at the frame: its headers take ``hdr_len`` bytes, the TCP
    header starts at ``csum_start`` and ``payload_length`` bytes follow the headers."""
    if payload_length > gso_size > 0:
        return _pack(F_NEEDS_CSUM, GSO_TCPV4, hdr_len, gso_size, csum_start, TCP_CSUM_OFFSET)
    return _pack(F_NEEDS_CSUM, GSO_NONE, hdr_len, 0, csum_start, TCP_CSUM_OFFSET)
