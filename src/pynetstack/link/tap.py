"""A Linux TAP device: the kernel sees a NIC whose wire is this process."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import subprocess
from typing import List, Optional

from . import syscalls, vnet
from .base import DEFAULT_BATCH, Device
from .netns import netns as in_netns

TUNSETIFF = 0x400454CA          # _IOW('T', 202, int)
TUNSETOFFLOAD = 0x400454D0      # _IOW('T', 208, unsigned int)
TUNSETVNETHDRSZ = 0x400454D8    # _IOW('T', 216, int)
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
MAX_FRAME = 65536
GSO_MAX = 65535                 # the largest IPv4 datagram handed down in one piece


writev = syscalls.writev  # os.writev; on PyPy, writev(2) through cffi


class TapDevice(Device):
    """Creates (or attaches to an existing persistent) TAP interface named ``name``.

    A TAP created here is not persistent: the kernel removes it when the fd closes.
    ``host_address`` ('10.0.0.1/24') is assigned to the kernel side and the link set up.

    ``offload`` (default on) opens the TAP with IFF_VNET_HDR and turns on checksum offload and
    TSO4 (TUNSETOFFLOAD): the kernel then hands over TCP segments of up to 64 KB with unfinished
    checksums, and takes the same from us (``send_gso``), segmenting them into MTU-sized frames
    itself, as a virtio NIC does.  ``gso_max`` is the largest IPv4 datagram ``send_gso`` takes
    (0 without offload).  A stack that forwards between interfaces should turn it off: it would
    receive 64 KB datagrams it cannot forward as they are.
    """

    gso_max = 0

    def __init__(self, name: str = "pns0", mtu: int = 1500, host_address: Optional[str] = None,
                 netns: Optional[str] = None, offload: bool = True):
        if not name or len(name.encode()) > 15:
            raise ValueError(f"interface name {name!r} must be 1 to 15 bytes long")
        self.netns = netns
        self.offload = offload
        self._hdr = vnet.HEADER_SIZE if offload else 0
        self._reader = syscalls.reader(MAX_FRAME + self._hdr)
        with in_netns(netns):
            self._open(name)
            if offload:
                self._set_offload()
        self.mtu = mtu
        self._ip("link", "set", "dev", self.name, "mtu", str(mtu), "up")
        if host_address:
            self._ip("addr", "add", host_address, "dev", self.name)

    def _open(self, name: str) -> None:
        try:
            self._fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot open /dev/net/tun ({exc.strerror}); TAP needs root "
                                     "or CAP_NET_ADMIN") from None
        try:
            flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if self.offload else 0)
            ifr = struct.pack("16sH", name.encode(), flags)
            ifr = fcntl.ioctl(self._fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(self._fd)
            why = {errno.EBUSY: "a TAP of that name is in use by another process",
                   errno.EINVAL: "an interface of that name exists and is not a TAP",
                   errno.EPERM: "TAP needs root or CAP_NET_ADMIN"}.get(exc.errno, exc.strerror)
            raise OSError(exc.errno, f"cannot create TAP {name!r}: {why}") from None
        self.name = ifr[:16].rstrip(b"\0").decode()

    def _set_offload(self) -> None:
        try:
            fcntl.ioctl(self._fd, TUNSETVNETHDRSZ, struct.pack("i", vnet.HEADER_SIZE))
            fcntl.ioctl(self._fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4)
        except OSError as exc:
            os.close(self._fd)
            self._fd = -1
            raise OSError(exc.errno, f"cannot set TAP offloads: {exc.strerror}") from None
        self.gso_max = GSO_MAX

    def _ip(self, *args: str) -> None:
        argv = ["ip"] + (["-n", self.netns] if self.netns else []) + list(args)
        try:
            result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except FileNotFoundError:
            self.close()
            raise OSError(errno.ENOENT, "the 'ip' command (Debian package iproute2) is missing") from None
        if result.returncode:
            self.close()
            raise OSError(errno.EINVAL, f"{' '.join(argv)}: {result.stderr.strip()}")

    def fileno(self) -> int:
        return self._fd

    def receive(self, now: float, batch: int = DEFAULT_BATCH) -> List[bytes]:
        if self._reader is not None:
            return self._receive_no_raise(batch)
        frames = []
        read = os.read
        fd = self._fd
        try:
            if self._hdr:
                decode = vnet.decode
                hdr = self._hdr
                size = MAX_FRAME + hdr
                for _ in range(batch):
                    data = read(fd, size)
                    frames.append(decode(data, hdr) if data[0] else data[hdr:])
            else:
                for _ in range(batch):
                    frames.append(read(fd, MAX_FRAME))
        except BlockingIOError:
            pass
        return frames

    def _receive_no_raise(self, batch: int) -> List[bytes]:
        """``receive`` where an empty read is dear to raise (PyPy: see link/syscalls.py)."""
        frames = []
        fd = self._fd
        hdr = self._hdr
        if hdr:
            read, decode = self._reader.read_view, vnet.decode
            for _ in range(batch):
                data = read(fd)
                if data is None:
                    break
                frames.append(decode(data, hdr))  # the one copy of the frame
        else:
            read = self._reader.read
            for _ in range(batch):
                data = read(fd)
                if data is None:
                    break
                frames.append(data)
        return frames

    def send(self, frame: bytes, now: float) -> None:
        try:
            if self._hdr:
                writev(self._fd, (vnet.ZERO_HEADER, frame))
            else:
                os.write(self._fd, frame)
        except (BlockingIOError, OSError):
            # A full TAP queue drops, as a congested wire would; TCP recovers.
            pass

    def send_parts(self, parts, now: float) -> None:
        """Send one frame given as a tuple of byte strings (headers, payload): one ``writev``,
        no join (PyPy, which has no ``os.writev``, calls writev(2) through cffi)."""
        try:
            if self._hdr:
                writev(self._fd, (vnet.ZERO_HEADER,) + parts)
            else:
                writev(self._fd, parts)
        except (BlockingIOError, OSError):
            pass

    def send_gso_parts(self, parts, gso_size: int, hdr_len: int, now: float) -> None:
        """``send_gso`` for a frame given as a tuple of byte strings whose headers (Ethernet,
        IPv4 without options, TCP) take ``hdr_len`` bytes."""
        if not self._hdr:
            raise OSError(95, f"{self.name}: no segmentation offload")
        length = 0
        for part in parts:
            length += len(part)
        try:
            writev(self._fd, (vnet.gso_header_for(length - hdr_len, gso_size, hdr_len),) + parts)
        except (BlockingIOError, OSError):
            pass

    def send_gso(self, frame: bytes, gso_size: int, now: float) -> None:
        """Send an IPv4/TCP frame whose TCP checksum field holds the pseudo-header sum
        (CHECKSUM_PARTIAL) and, when its payload exceeds ``gso_size``, have the kernel cut it
        into segments of ``gso_size`` payload bytes (TSO)."""
        try:
            writev(self._fd, (vnet.gso_header(frame, gso_size), frame))
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
