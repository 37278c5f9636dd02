"""An AF_PACKET raw socket on an existing interface (a veth, or a real NIC)."""

from __future__ import annotations

import fcntl
import socket
import struct
from typing import List, Optional

from ..wire.checksum import transport_checksum
from .base import DEFAULT_BATCH, Device
from .netns import netns as in_netns

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_AUXDATA = 8
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
TP_STATUS_CSUMNOTREADY = 0x8
TP_STATUS_VLAN_VALID = 0x10
SIOCGIFMTU = 0x8921
SIOCGIFINDEX = 0x8933
_auxdata = struct.Struct("IIIHHHH")
_ancillary_space = socket.CMSG_SPACE(_auxdata.size)


def _ifindex(sock: socket.socket, ifname: str) -> int:
    """The interface's index, asked through ``sock`` (so in the namespace the socket lives in).
    Not socket.if_nametoindex: PyPy 3.9 does not have it."""
    request = struct.pack("16si", ifname.encode(), 0)
    return struct.unpack_from("16si", fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, request))[1]


class PacketDevice(Device):
    """Frames to and from ``ifname`` through the kernel's packet socket.

    Frames the kernel hands up with TP_STATUS_CSUMNOTREADY (sent by this host with checksum
    offload: the checksum field is unfinished) get their transport checksum completed, and a
    VLAN tag the NIC stripped is put back, so the stack above sees frames as on the wire.
    """

    def __init__(self, ifname: str, promiscuous: bool = False, netns: Optional[str] = None,
                 include_outgoing: bool = False, as_captured: bool = False):
        self.include_outgoing = include_outgoing  # a capture wants both directions; a stack only input
        self.as_captured = as_captured  # keep frames exactly as the kernel gave them (like tcpdump)
        with in_netns(netns):
            self._open(ifname, promiscuous)
        self.name = ifname
        self.mtu = _ifmtu(self._sock, ifname)

    def _open(self, ifname: str, promiscuous: bool) -> None:
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise PermissionError("AF_PACKET sockets need root or CAP_NET_RAW") from None
        try:
            self._sock.bind((ifname, 0))
            index = _ifindex(self._sock, ifname)
        except OSError as exc:
            self._sock.close()
            raise OSError(exc.errno, f"no interface {ifname!r}: {exc.strerror}") from None
        self._sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        if promiscuous:
            mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
            self._sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self, now: float, batch: int = DEFAULT_BATCH) -> List[bytes]:
        frames = []
        recvmsg = self._sock.recvmsg
        try:
            for _ in range(batch):
                data, ancdata, _flags, address = recvmsg(65536, _ancillary_space)
                if address[2] == PACKET_OUTGOING and not self.include_outgoing:
                    continue
                if self.as_captured:
                    frames.append(data)
                    continue
                for level, kind, raw in ancdata:
                    if level == SOL_PACKET and kind == PACKET_AUXDATA and len(raw) >= _auxdata.size:
                        status, _, _, _, _, tci, tpid = _auxdata.unpack_from(raw)
                        if status & TP_STATUS_CSUMNOTREADY:
                            data = complete_checksum(data)
                        if status & TP_STATUS_VLAN_VALID:
                            data = data[:12] + struct.pack("!HH", tpid or 0x8100, tci) + data[12:]
                frames.append(data)
        except BlockingIOError:
            pass
        return frames

    def send(self, frame: bytes, now: float) -> None:
        try:
            self._sock.send(frame)
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        self._sock.close()


def _ifmtu(sock: socket.socket, ifname: str) -> int:
    """The interface's MTU, asked through ``sock``: /sys/class/net shows the interfaces of the
    namespace /sys was mounted in, not those of the namespace the socket was opened in."""
    try:
        request = struct.pack("16si", ifname.encode(), 0)
        return struct.unpack_from("16si", fcntl.ioctl(sock.fileno(), SIOCGIFMTU, request))[1]
    except OSError:
        return 1500


def complete_checksum(frame: bytes) -> bytes:
    """Fill in the TCP/UDP checksum of an untagged IPv4 frame whose checksum was offloaded."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[14] >> 4 != 4:
        return frame
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    total = int.from_bytes(frame[16:18], "big")
    start = 14 + ihl
    end = 14 + total
    if proto == 6:
        offset = start + 16
    elif proto == 17:
        offset = start + 6
    else:
        return frame
    if end > len(frame) or offset + 2 > end:
        return frame
    src = int.from_bytes(frame[26:30], "big")
    dst = int.from_bytes(frame[30:34], "big")
    segment = bytearray(frame[start:end])
    segment[offset - start:offset - start + 2] = b"\0\0"
    csum = transport_checksum(src, dst, proto, segment)
    if proto == 17 and csum == 0:
        csum = 0xFFFF
    return frame[:offset] + csum.to_bytes(2, "big") + frame[offset + 2:]
