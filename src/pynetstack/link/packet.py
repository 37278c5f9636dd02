"""An AF_PACKET raw socket on an existing interface (a veth, or a real NIC)."""

from __future__ import annotations

import fcntl
import socket
import struct
from typing import List, Optional

from ..wire.checksum import transport_checksum
from .base import DEFAULT_BATCH, Device
from .netns import netns as in_netns
from .packet_ring import TPACKET_V2, TPACKET_V3, open_rings

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_AUXDATA = 8
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
SIOCGIFMTU = 0x8921
SIOCGIFINDEX = 0x8933
TP_STATUS_CSUMNOTREADY = 0x8
TP_STATUS_VLAN_VALID = 0x10
_auxdata = struct.Struct("IIIHHHH")
_ancillary_space = socket.CMSG_SPACE(_auxdata.size)


class PacketDevice(Device):
    """Frames to and from ``ifname`` through the kernel's packet socket.

    Frames the kernel hands up with TP_STATUS_CSUMNOTREADY (sent by this host with checksum
    offload: the checksum field is unfinished) get their transport checksum completed, and a
    VLAN tag the NIC stripped is put back, so the stack above sees frames as on the wire.

    ``ring`` (default: where the kernel gives one, except for a capture) reads frames from a PACKET_MMAP receive ring
    and writes them into a transmit ring (link/packet_ring.py): no system call per frame, one per
    batch; ``False`` keeps one ``recvmsg``/``send`` per frame.  The default ring is TPACKET_V2,
    whose slots are handed over one by one (no added delay); ``ring="v3"`` takes TPACKET_V3,
    whose blocks wake the reader less often but hand a frame on an idle link over up to 1 ms
    late (a block timer), for a router that cares for nothing but packets per second.
    """

    def __init__(self, ifname: str, promiscuous: bool = False, netns: Optional[str] = None,
                 include_outgoing: bool = False, as_captured: bool = False,
                 ring=None):
        if ring not in (None, True, False, "v2", "v3"):
            raise ValueError(f"ring={ring!r}: say None (where it works), True, False, 'v2' or 'v3'")
        self.include_outgoing = include_outgoing  # a capture wants both directions; a stack only input
        self.as_captured = as_captured  # keep frames exactly as the kernel gave them (like tcpdump)
        self._rings = None
        self._held = False
        with in_netns(netns):
            self._open(ifname, promiscuous, ring)
        self.name = ifname
        self._finish = None if as_captured else _finish_frame
        self.pending = self._rings.readable if self._rings is not None else None

    @property
    def ring(self) -> bool:
        """True when frames move through PACKET_MMAP rings."""
        return self._rings is not None

    def _open(self, ifname: str, promiscuous: bool, ring) -> None:
        """Socket, rings, then bind: the socket is made with protocol 0, so it receives nothing
        until bind names the interface and ETH_P_ALL (frames of other interfaces never slip in,
        and none is lost while a ring is set up: setting one up unhooks a bound socket)."""
        sock = self._socket(ifname)
        self.mtu = interface_mtu(sock, ifname)
        if ring is None:
            # A capture (as tcpdump) keeps the plain socket unless asked: it receives from the
            # moment it is listed in /proc/net/packet, which is how scripts know it listens.
            ring = not self.as_captured
        if ring:
            version = TPACKET_V3 if ring == "v3" else TPACKET_V2
            self._rings = open_rings(sock, self.mtu, not self.include_outgoing, version)
            if self._rings is None:
                sock.close()  # a socket whose ring setup failed half-way is made anew, plain
                if ring:
                    raise OSError(95, f"{ifname}: the kernel gives no PACKET_MMAP ring here")
                sock = self._socket(ifname)
        self._sock = sock
        try:
            sock.bind((ifname, ETH_P_ALL))
        except OSError as exc:
            self.close()
            raise OSError(exc.errno, f"cannot bind to {ifname!r}: {exc.strerror}") from None
        if promiscuous:
            mreq = struct.pack("iHH8s", interface_index(sock, ifname), PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)

    @staticmethod
    def _socket(ifname: str) -> socket.socket:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise PermissionError("AF_PACKET sockets need root or CAP_NET_RAW") from None
        try:
            interface_index(sock, ifname)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"no interface {ifname!r}: {exc.strerror}") from None
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        return sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self, now: float, batch: int = DEFAULT_BATCH) -> List[bytes]:
        if self._rings is not None:
            return self._rings.receive(batch, self.include_outgoing, self._finish)
        frames = []
        recvmsg = self._sock.recvmsg
        finish = self._finish
        try:
            for _ in range(batch):
                data, ancdata, _flags, address = recvmsg(65536, _ancillary_space)
                if address[2] == PACKET_OUTGOING and not self.include_outgoing:
                    continue
                if finish is not None:
                    for level, kind, raw in ancdata:
                        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(raw) >= _auxdata.size:
                            status, _, _, _, _, tci, tpid = _auxdata.unpack_from(raw)
                            if status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_VLAN_VALID):
                                data = finish(data, status, tci, tpid)
                frames.append(data)
        except BlockingIOError:
            pass
        return frames

    def send(self, frame: bytes, now: float) -> None:
        rings = self._rings
        if rings is not None and rings.tx_slots:
            rings.send(frame)  # (a socket with a transmit ring sends only from the ring)
            if not self._held:
                rings.flush()
            return
        try:
            self._sock.send(frame)
        except (BlockingIOError, OSError):
            pass

    def send_parts(self, parts, now: float) -> None:
        """One frame given as a tuple of byte strings, never joined: written part by part into
        a transmit-ring slot, or handed to sendmsg(2) as a scatter list."""
        rings = self._rings
        if rings is not None and rings.tx_slots:
            rings.send_parts(parts)
            if not self._held:
                rings.flush()
            return
        try:
            self._sock.sendmsg(parts)
        except (BlockingIOError, OSError):
            pass

    def hold(self) -> None:
        self._held = True

    def flush(self, now: float) -> None:
        self._held = False
        if self._rings is not None:
            self._rings.flush()

    def close(self) -> None:
        if self._rings is not None:
            self._rings.flush()
            self._rings.close()
            self._rings = None
            self.pending = None
        self._sock.close()


def _finish_frame(data: bytes, status: int, tci: int, tpid: int) -> bytes:
    """The frame as it was on the wire: an offloaded checksum completed, a stripped VLAN tag back."""
    if status & TP_STATUS_CSUMNOTREADY:
        data = complete_checksum(data)
    if status & TP_STATUS_VLAN_VALID:
        data = data[:12] + struct.pack("!HH", tpid or 0x8100, tci) + data[12:]
    return data


def _ifreq_int(sock: socket.socket, ifname: str, request: int) -> int:
    """The int an ``ifreq`` ioctl returns for ``ifname``, asked through ``sock``: the answer
    comes from the socket's own network namespace (sysfs would show the namespace sysfs was
    mounted in), and PyPy 3.9 has no ``socket.if_nametoindex``."""
    ifr = struct.pack("16si12x", ifname.encode()[:15], 0)
    return struct.unpack_from("i", fcntl.ioctl(sock.fileno(), request, ifr), 16)[0]


def interface_index(sock: socket.socket, ifname: str) -> int:
    """The kernel's index of ``ifname`` (SIOCGIFINDEX, as if_nametoindex(3) does)."""
    return _ifreq_int(sock, ifname, SIOCGIFINDEX)


def interface_mtu(sock: socket.socket, ifname: str) -> int:
    try:
        return _ifreq_int(sock, ifname, SIOCGIFMTU)
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
