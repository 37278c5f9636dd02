"""A Linux TAP device: the kernel sees a NIC whose wire is this process."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import subprocess
from typing import List, Optional

from .base import DEFAULT_BATCH, Device
from .netns import netns as in_netns

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65536


class TapDevice(Device):
    """Creates (or attaches to an existing persistent) TAP interface named ``name``.

    A TAP created here is not persistent: the kernel removes it when the fd closes.
    ``host_address`` ('10.0.0.1/24') is assigned to the kernel side and the link set up.
    """

    def __init__(self, name: str = "pns0", mtu: int = 1500, host_address: Optional[str] = None,
                 netns: Optional[str] = None):
        if not name or len(name.encode()) > 15:
            raise ValueError(f"interface name {name!r} must be 1 to 15 bytes long")
        self.netns = netns
        with in_netns(netns):
            self._open(name)
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
            ifr = struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI)
            ifr = fcntl.ioctl(self._fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(self._fd)
            raise OSError(exc.errno, f"cannot create TAP {name!r}: {exc.strerror}") from None
        self.name = ifr[:16].rstrip(b"\0").decode()

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
        frames = []
        read = os.read
        fd = self._fd
        try:
            for _ in range(batch):
                frames.append(read(fd, MAX_FRAME))
        except BlockingIOError:
            pass
        return frames

    def send(self, frame: bytes, now: float) -> None:
        try:
            os.write(self._fd, frame)
        except (BlockingIOError, OSError):
            # A full TAP queue drops, as a congested wire would; TCP recovers.
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
