"""Capture files: the one reader (classic libpcap and pcapng, as tcpdump and Wireshark write them),
the writer (classic libpcap, as ``tcpdump -w``) and a device wrapper that records."""

from __future__ import annotations

import os
import struct
import time
from typing import BinaryIO, Iterator, Tuple

from .base import DEFAULT_BATCH, DeviceWrapper

MAGIC_USEC = 0xA1B2C3D4
# Link types (tcpdump.org/linktypes.html) of the frames a capture holds.
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL2 = 113, 228, 276
_global = struct.Struct("<IHHiIII")
_record = struct.Struct("<IIII")


class PcapWriter:
    def __init__(self, path_or_file, snaplen: int = 262144):
        self._own = isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__")
        if self._own:
            try:
                self.file: BinaryIO = open(path_or_file, "wb")
            except OSError as exc:  # name the file: "No such file or directory" alone says nothing
                raise OSError(exc.errno, f"cannot write the pcap file {os.fsdecode(path_or_file)}: "
                                         f"{exc.strerror}") from None
        else:
            self.file = path_or_file
        self.snaplen = snaplen
        self.count = 0
        self.file.write(_global.pack(MAGIC_USEC, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(self, frame: bytes, timestamp: float = None) -> None:
        if timestamp is None:
            timestamp = time.time()
        seconds = int(timestamp)
        micros = int(round((timestamp - seconds) * 1e6))
        if micros >= 1_000_000:
            seconds, micros = seconds + 1, micros - 1_000_000
        data = bytes(frame[:self.snaplen])
        self.file.write(_record.pack(seconds, micros, len(data), len(frame)) + data)
        self.count += 1

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        if self._own:
            self.file.close()
        else:
            self.file.flush()


class CaptureError(ValueError):
    """A capture file that cannot be read (named in the message)."""


class TruncatedCapture(CaptureError):
    """A capture that ends inside a packet or block (a copy cut short, a damaged length): the
    ``packets`` before the damage were read."""

    def __init__(self, name: str, packets: int, detail: str):
        super().__init__(f"{name}: truncated or damaged after {packets} packets: {detail}")
        self.packets = packets


_CLASSIC = {  # magic as read little-endian -> (byte order, ticks per second)
    b"\xd4\xc3\xb2\xa1": ("<", 1e6), b"\x4d\x3c\xb2\xa1": ("<", 1e9),
    b"\xa1\xb2\xc3\xd4": (">", 1e6), b"\xa1\xb2\x3c\x4d": (">", 1e9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_MAX_RECORD = 1 << 26  # far above any snaplen: a larger length means a corrupt file, not a packet


def read_pcap(path) -> Iterator[Tuple[float, int, bytes]]:
    """Yield (timestamp, linktype, frame) for every packet of a classic pcap file (micro- or
    nanosecond, either byte order) or a pcapng file (each interface's link type and timestamp
    resolution). Packets read before a defect are yielded; the defect then raises CaptureError."""
    name = os.fsdecode(path)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise CaptureError(f"cannot read the capture {name}: {exc.strerror}") from None
    with handle:
        head = handle.read(24)
        if head[:4] == _PCAPNG_SHB:
            handle.seek(0)
            yield from _read_pcapng(handle, name)
            return
        if len(head) < 24:
            raise CaptureError(f"{name}: not a pcap or pcapng file (only {len(head)} bytes)")
        if head[:4] not in _CLASSIC:
            raise CaptureError(f"{name}: not a pcap or pcapng file (magic {head[:4].hex()})")
        order, ticks = _CLASSIC[head[:4]]
        yield from _read_classic(handle, name, order, ticks, struct.unpack(order + "I", head[20:24])[0] & 0xFFFF)


def _read_classic(handle, name: str, order: str, ticks: float, linktype: int) -> Iterator[Tuple[float, int, bytes]]:
    record = struct.Struct(order + "IIII")
    number = 0
    while True:
        raw = handle.read(16)
        if not raw:
            return
        number += 1
        if len(raw) < 16:
            raise TruncatedCapture(name, number - 1, f"packet {number}'s header has {len(raw)} of 16 bytes")
        seconds, frac, caplen, _ = record.unpack(raw)
        if caplen > _MAX_RECORD:
            raise CaptureError(f"{name}: packet {number} claims {caplen} captured bytes: not a valid capture")
        data = handle.read(caplen)
        if len(data) < caplen:
            raise TruncatedCapture(name, number - 1, f"packet {number} has {len(data)} of {caplen} bytes")
        yield seconds + frac / ticks, linktype, data


class _Interface:
    __slots__ = ("linktype", "snaplen", "ticks", "offset")

    def __init__(self, linktype: int, snaplen: int, ticks: float, offset: int):
        self.linktype, self.snaplen, self.ticks, self.offset = linktype, snaplen, ticks, offset


def _read_pcapng(handle, name: str) -> Iterator[Tuple[float, int, bytes]]:
    """pcapng (draft-ietf-opsawg-pcapng): sections (SHB) each with their own byte order and
    interfaces (IDB); packets from enhanced (EPB), simple (SPB) and obsolete packet blocks."""
    order = "<"
    interfaces = []
    position = 0
    packets = 0  # yielded so far
    while True:
        head = handle.read(8)
        if not head:
            return
        if len(head) < 8:
            raise TruncatedCapture(name, packets, f"block at byte {position} has {len(head)} of 8 header bytes")
        if head[:4] == _PCAPNG_SHB:  # the section's byte order is in its header, after the length
            bom = handle.read(4)
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise CaptureError(f"{name}: bad pcapng section header at byte {position} (byte-order mark {bom.hex()})")
            head += bom
            interfaces = []
        btype, length = struct.unpack(order + "II", head[:8])
        if length < 12 or length % 4 or length > _MAX_RECORD:
            raise CaptureError(f"{name}: bad pcapng block length {length} at byte {position}")
        body = handle.read(length - len(head))
        if len(body) < length - len(head):
            raise TruncatedCapture(name, packets, f"block at byte {position} has {len(head) + len(body)} of "
                                                  f"{length} bytes")
        if body[-4:] != head[4:8]:
            raise CaptureError(f"{name}: pcapng block at byte {position}: trailing length differs from {length}")
        body = body[:-4]
        if btype == 1:  # interface description
            if len(body) < 8:
                raise CaptureError(f"{name}: short interface description block at byte {position}")
            linktype, _, snaplen = struct.unpack(order + "HHI", body[:8])
            interfaces.append(_Interface(linktype, snaplen, *_interface_clock(body[8:], order)))
        elif btype in (6, 2):  # enhanced packet; obsolete packet (16-bit interface id, drop count)
            if len(body) < 20:
                raise CaptureError(f"{name}: short packet block at byte {position}")
            if btype == 6:
                iface, high, low, caplen = struct.unpack(order + "IIII", body[:16])
            else:
                iface, _, high, low, caplen = struct.unpack(order + "HHIII", body[:16])
            if iface >= len(interfaces):
                raise CaptureError(f"{name}: packet at byte {position} names interface {iface}, "
                                   f"but {len(interfaces)} are described")
            if 20 + caplen > len(body):
                raise CaptureError(f"{name}: packet at byte {position} claims {caplen} bytes, block holds fewer")
            intf = interfaces[iface]
            packets += 1
            yield ((high << 32) | low) / intf.ticks + intf.offset, intf.linktype, body[20:20 + caplen]
        elif btype == 3:  # simple packet: interface 0, no timestamp, captured = min(original, snaplen)
            if not interfaces or len(body) < 4:
                raise CaptureError(f"{name}: simple packet block at byte {position} without an interface")
            intf = interfaces[0]
            caplen = struct.unpack(order + "I", body[:4])[0]
            if intf.snaplen:
                caplen = min(caplen, intf.snaplen)
            if 4 + caplen > len(body):
                raise CaptureError(f"{name}: packet at byte {position} claims {caplen} bytes, block holds fewer")
            packets += 1
            yield 0.0, intf.linktype, body[4:4 + caplen]
        position += length


def _interface_clock(options: bytes, order: str) -> Tuple[float, int]:
    """(ticks per second, seconds to add) from an interface's if_tsresol and if_tsoffset options."""
    ticks, offset = 1e6, 0
    at = 0
    while at + 4 <= len(options):
        code, size = struct.unpack(order + "HH", options[at:at + 4])
        value = options[at + 4:at + 4 + size]
        if code == 0:
            break
        if code == 9 and size >= 1:
            ticks = float(2 ** (value[0] & 0x7F)) if value[0] & 0x80 else float(10 ** value[0])
        elif code == 14 and size >= 8:
            offset = struct.unpack(order + "q", value[:8])[0]
        at += 4 + ((size + 3) & ~3)
    return ticks, offset


class PcapDevice(DeviceWrapper):
    """Records every frame received from and sent to ``inner`` into a pcap file."""

    def __init__(self, inner, path_or_writer):
        super().__init__(inner)
        self.writer = path_or_writer if isinstance(path_or_writer, PcapWriter) else PcapWriter(path_or_writer)

    def receive(self, now, batch=DEFAULT_BATCH):
        frames = self.inner.receive(now, batch)
        if frames:
            stamp = time.time()
            for frame in frames:
                self.writer.write(frame, stamp)
        return frames

    def send(self, frame, now):
        self.writer.write(frame)
        self.inner.send(frame, now)

    def send_parts(self, parts, now):
        self.writer.write(b"".join(parts))
        self.inner.send_parts(parts, now)

    def send_gso_parts(self, parts, gso_size, hdr_len, now):
        self.writer.write(b"".join(parts))
        self.inner.send_gso_parts(parts, gso_size, hdr_len, now)

    def send_gso(self, frame, gso_size, now):
        # Recorded as handed to the NIC (larger than the MTU, checksum unfinished), as tcpdump
        # shows offloaded traffic on Linux.
        self.writer.write(frame)
        self.inner.send_gso(frame, gso_size, now)

    def poll(self, now):
        self.inner.poll(now)
        self.writer.flush()

    def close(self):
        self.writer.close()
        self.inner.close()
