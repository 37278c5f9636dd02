"""Classic libpcap files (readable by tcpdump and Wireshark) and a device wrapper that records."""

from __future__ import annotations

import os
import struct
import time
from typing import BinaryIO, Iterator, Tuple

from .base import DEFAULT_BATCH, DeviceWrapper

MAGIC_USEC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
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


def read_pcap(path) -> Iterator[Tuple[float, bytes]]:
    """Yield (timestamp, frame) from a classic pcap file (micro- or nanosecond, either byte order)."""
    with open(path, "rb") as handle:
        head = handle.read(24)
        if len(head) < 24:
            raise ValueError(f"{path}: not a pcap file (too short)")
        magic_le = struct.unpack("<I", head[:4])[0]
        if magic_le in (0xA1B2C3D4, 0xA1B23C4D):
            order = "<"
        elif struct.unpack(">I", head[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D):
            order = ">"
        else:
            raise ValueError(f"{path}: not a pcap file (magic {head[:4].hex()})")
        nanos = struct.unpack(order + "I", head[:4])[0] == 0xA1B23C4D
        record = struct.Struct(order + "IIII")
        while True:
            raw = handle.read(16)
            if len(raw) < 16:
                return
            seconds, frac, caplen, _ = record.unpack(raw)
            data = handle.read(caplen)
            if len(data) < caplen:
                return
            yield seconds + frac / (1e9 if nanos else 1e6), data


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
