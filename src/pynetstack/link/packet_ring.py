"""PACKET_MMAP rings on an AF_PACKET socket: a receive ring (TPACKET_V2 or V3) and a transmit ring.

With rings, the kernel and this process share memory (Documentation/networking/packet_mmap.rst)
and frames move without a system call each:

* Receive, TPACKET_V3: the ring is ``block_nr`` blocks.  The kernel fills one block with frames
  one after another and hands it over whole (``block_status`` becomes TP_STATUS_USER) when it is
  full or ``retire_blk_tov`` ms after it was opened; poll() reports the socket readable then.
  We read every frame of the block and give the block back (TP_STATUS_KERNEL).  The fewest
  wake-ups, but a frame on an idle link waits up to ``RETIRE_MS`` for its block's timer (ping
  over a veth: 1 ms instead of 0.1), and a busy loop cannot look into a block not handed over.
* Receive, TPACKET_V2 (the default): fixed slots, each handed over on its own (``tp_status``
  TP_STATUS_USER) with a wake-up per frame, as the plain socket has: no added delay, and a busy
  loop sees a frame the moment its status word flips, without a system call.  A frame larger
  than a slot is copied to the socket's queue as well (PACKET_COPY_THRESH; TP_STATUS_COPY in
  the slot) and read from there.
* Transmit (PACKET_TX_RING): fixed slots.  ``send`` writes a frame into the next free slot
  (TP_STATUS_AVAILABLE) and marks it TP_STATUS_SEND_REQUEST; ``flush`` (one ``send`` of nothing)
  makes the kernel transmit every requested slot; it gives each slot back when the frame is gone.

The layouts (include/uapi/linux/if_packet.h), little-endian on the machines this runs on:

    tpacket2_hdr (32 bytes): u32 tp_status, tp_len, tp_snaplen; u16 tp_mac, tp_net;
        u32 tp_sec, tp_nsec; u16 tp_vlan_tci, tp_vlan_tpid; then a sockaddr_ll at +32

    tpacket_block_desc: u32 version; u32 offset_to_priv; tpacket_hdr_v1 {u32 block_status;
        u32 num_pkts; u32 offset_to_first_pkt; u32 blk_len; u64 seq_num; ts_first; ts_last}
    tpacket3_hdr (48 bytes with alignment): u32 tp_next_offset, tp_sec, tp_nsec, tp_snaplen,
        tp_len, tp_status; u16 tp_mac, tp_net; u32 tp_rxhash, tp_vlan_tci; u16 tp_vlan_tpid ...
        followed by a sockaddr_ll (sll_pkttype at +10) and, at tp_mac, the frame.

Memory ordering: the status word is written last, after the data; x86 keeps stores in order and
never moves a later store before an earlier load, which is all the protocol needs.
"""

from __future__ import annotations

import mmap
import socket
import struct
from typing import List, Optional

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_COPY_THRESH = 7
PACKET_LOSS = 14
PACKET_IGNORE_OUTGOING = 23
TPACKET_V2 = 1
TPACKET_V3 = 2

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_WRONG_FORMAT = 4

TP_STATUS_COPY = 2
TPACKET2_HDRLEN = 32            # TPACKET_ALIGN(sizeof(struct tpacket2_hdr))
TPACKET3_HDRLEN = 48            # TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
SLL_PKTTYPE = TPACKET3_HDRLEN + 10
SLL_PKTTYPE_V2 = TPACKET2_HDRLEN + 10
TX_DATA = {TPACKET_V2: TPACKET2_HDRLEN, TPACKET_V3: TPACKET3_HDRLEN}  # a transmit slot's frame
TX_STATUS = {TPACKET_V2: 0, TPACKET_V3: 20}                          # ... and its tp_status
TX_LEN = {TPACKET_V2: 4, TPACKET_V3: 16}                             # ... and its tp_len

RX_BLOCK = 1 << 17              # 128 KB: holds a 64 KB GRO frame, or ~900 minimum frames
RX_BLOCKS = 16
RX_FRAME = 2048                 # only for the kernel's arithmetic: V3 frames are variable
RETIRE_MS = 1                   # an idle block is handed over after at most this long
RX_SLOTS = 512                  # V2: 1 MB of 2 KB slots
TX_BLOCK = 1 << 16
TX_BLOCKS = 8

_req = struct.Struct("=4I")
_req3 = struct.Struct("=7I")
_slot_head = struct.Struct("=IIIH")          # V2: status, len, snaplen, mac
_vlan2 = struct.Struct("=HH")                # V2: tp_vlan_tci, tp_vlan_tpid (at +24)
_block_head = struct.Struct("=II")           # num_pkts, offset_to_first_pkt (at +12)
_frame_head = struct.Struct("=IIIIIIH")      # next, sec, nsec, snaplen, len, status, mac
_vlan = struct.Struct("=IH")                 # tp_vlan_tci, tp_vlan_tpid (at +32)
_u32 = struct.Struct("=I")


class RingUnavailable(OSError):
    """The kernel refused a ring (too old, no memory, not allowed): use the plain socket."""


def _slot_size(mtu: int) -> int:
    """A power of two that holds header, sockaddr_ll, alignment and a tagged frame of ``mtu``."""
    size = 2048
    while size < 96 + 18 + mtu:
        size *= 2
    return size


class PacketRings:
    """The receive and transmit rings of one AF_PACKET socket, mapped into this process."""

    def __init__(self, sock: socket.socket, mtu: int, transmit: bool = True,
                 ignore_outgoing: bool = True, version: int = TPACKET_V2, receive: bool = True):
        if version not in (TPACKET_V2, TPACKET_V3):
            raise ValueError(f"TPACKET version {version}: only V2 ({TPACKET_V2}) and V3 ({TPACKET_V3})")
        self._sock = sock
        self.version = version
        fd = sock.fileno()
        slot = _slot_size(mtu)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, version)
            if transmit:  # (only before any ring exists: EBUSY after)
                sock.setsockopt(SOL_PACKET, PACKET_LOSS, 1)  # a bad slot is skipped, not a stall
            if not receive:
                rx_size = 0
            elif version == TPACKET_V3:
                sock.setsockopt(SOL_PACKET, PACKET_RX_RING, _req3.pack(
                    RX_BLOCK, RX_BLOCKS, RX_FRAME, RX_BLOCKS * (RX_BLOCK // RX_FRAME), RETIRE_MS, 0, 0))
                rx_size = RX_BLOCK * RX_BLOCKS
            else:
                sock.setsockopt(SOL_PACKET, PACKET_COPY_THRESH, 1)  # too large for a slot: to the queue too
                sock.setsockopt(SOL_PACKET, PACKET_RX_RING, _req.pack(
                    max(TX_BLOCK, slot), RX_SLOTS * slot // max(TX_BLOCK, slot), slot, RX_SLOTS))
                rx_size = RX_SLOTS * slot
        except OSError as exc:
            raise RingUnavailable(exc.errno, f"no receive ring: {exc.strerror}") from None
        self.rx_slot_size = slot
        self._rx_slot = 0
        self.tx_slots = 0
        self.tx_slot_size = slot
        tx_block = max(TX_BLOCK, slot)
        if transmit:
            try:
                nr = TX_BLOCKS * (tx_block // slot)
                req = (_req3.pack(tx_block, TX_BLOCKS, slot, nr, 0, 0, 0) if version == TPACKET_V3
                       else _req.pack(tx_block, TX_BLOCKS, slot, nr))
                sock.setsockopt(SOL_PACKET, PACKET_TX_RING, req)
                self.tx_slots = nr
            except OSError:
                self.tx_slots = 0  # receive ring only; sends go through plain send()
        self._tx_data = TX_DATA[version]
        self._tx_status = TX_STATUS[version]
        self._tx_len = TX_LEN[version]
        if ignore_outgoing:
            try:  # Linux 4.20+: frames leaving the interface do not take ring space
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            except OSError:
                pass
        size = rx_size + self.tx_slots * self.tx_slot_size
        try:
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError) as exc:
            raise RingUnavailable(getattr(exc, "errno", 0) or 12, f"cannot map the rings: {exc}") from None
        self._view = memoryview(self._map)
        self._block = 0          # the block being read
        self._left = 0           # frames of it not read yet
        self._offset = 0         # where the next frame's header starts
        self._tx_base = rx_size
        self._tx_next = 0
        self.tx_pending = 0      # slots requested since the last flush
        self.tx_full = 0         # frames dropped because every slot was in flight
        self.tx_oversize = 0     # frames larger than a slot (larger than the MTU allows)
        self.rx_truncated = 0    # frames larger than a block (never on a sane MTU)

        self.receive = self._receive_v3 if version == TPACKET_V3 else self._receive_v2
        self.readable = self._readable_v3 if version == TPACKET_V3 else self._readable_v2

    # ------------------------------------------------------------------ receive
    def receive(self, batch: int, include_outgoing: bool, finish) -> List[bytes]:
        """Up to ``batch`` frames from the ring.  ``finish(data, status, tci, tpid)`` completes
        a frame (checksum, VLAN tag) or is None to keep frames as captured.  (Bound in __init__
        to the version's reader.)"""
        raise NotImplementedError

    def readable(self) -> bool:
        """A frame is waiting: what a busy loop asks instead of poll(), without a system call."""
        raise NotImplementedError

    def _receive_v2(self, batch: int, include_outgoing: bool, finish) -> List[bytes]:
        frames: List[bytes] = []
        ring = self._map
        size = self.rx_slot_size
        index = self._rx_slot
        unpack_slot = _slot_head.unpack_from
        pack_status = _u32.pack_into
        while len(frames) < batch:
            slot = index * size
            status, length, snaplen, mac = unpack_slot(ring, slot)
            if not status & TP_STATUS_USER:
                break
            if status & TP_STATUS_COPY:  # larger than a slot: the whole frame is in the queue
                data = self._copied()
            else:
                data = ring[slot + mac:slot + mac + snaplen]
            pkttype = ring[slot + SLL_PKTTYPE_V2]
            if finish is not None and status & 0x18:  # TP_STATUS_CSUMNOTREADY | TP_STATUS_VLAN_VALID
                tci, tpid = _vlan2.unpack_from(ring, slot + 24)
            pack_status(ring, slot, TP_STATUS_KERNEL)  # the slot back to the kernel (all 32 bits:
            # the kernel adds timestamp flags above the low byte and compares the whole word)
            index = index + 1 if index + 1 < RX_SLOTS else 0
            if data is None:
                continue
            if pkttype == socket.PACKET_OUTGOING and not include_outgoing:
                continue
            if finish is not None and status & 0x18:
                data = finish(data, status, tci, tpid if status & 0x40 else 0)
            frames.append(data)
        self._rx_slot = index
        return frames

    def _copied(self) -> Optional[bytes]:
        try:
            return self._sock.recv(262144, socket.MSG_DONTWAIT)
        except OSError:
            self.rx_truncated += 1  # the queue overflowed meanwhile: the frame is lost
            return None

    def _readable_v2(self) -> bool:
        return bool(self._map[self._rx_slot * self.rx_slot_size] & TP_STATUS_USER)

    def _receive_v3(self, batch: int, include_outgoing: bool, finish) -> List[bytes]:
        frames: List[bytes] = []
        ring = self._map
        unpack_frame = _frame_head.unpack_from
        left = self._left
        offset = self._offset
        base = self._block * RX_BLOCK
        while len(frames) < batch:
            if not left:
                if not ring[base + 8] & TP_STATUS_USER:
                    break
                left, first = _block_head.unpack_from(ring, base + 12)
                offset = base + first
                if not left:
                    base = self._release(base)
                    continue
            step, _, _, snaplen, length, status, mac = unpack_frame(ring, offset)
            start = offset + mac
            data = ring[start:start + snaplen]
            pkttype = ring[offset + SLL_PKTTYPE]
            left -= 1
            offset += step
            if not left:
                base = self._release(base)
            if snaplen < length:
                self.rx_truncated += 1
                continue
            if pkttype == socket.PACKET_OUTGOING and not include_outgoing:
                continue
            if finish is not None and status & 0x18:  # TP_STATUS_CSUMNOTREADY | TP_STATUS_VLAN_VALID
                tci, tpid = _vlan.unpack_from(ring, offset - step + 32)
                data = finish(data, status, tci, tpid if status & 0x40 else 0)
            frames.append(data)
        self._left = left
        self._offset = offset
        return frames

    def _release(self, base: int) -> int:
        """Give the block at ``base`` back to the kernel; return the next block's offset."""
        _u32.pack_into(self._map, base + 8, TP_STATUS_KERNEL)
        self._block = (self._block + 1) % RX_BLOCKS
        return self._block * RX_BLOCK

    def _readable_v3(self) -> bool:
        return bool(self._left) or bool(self._map[self._block * RX_BLOCK + 8] & TP_STATUS_USER)

    # ------------------------------------------------------------------ transmit
    def send(self, frame) -> bool:
        """Queue ``frame`` in the transmit ring; False when it cannot go (full, too large)."""
        length = len(frame)
        slot = self._claim(length)
        if slot < 0:
            return slot == -1
        start = slot + self._tx_data
        self._view[start:start + length] = frame
        self._commit(slot, length)
        return True

    def send_parts(self, parts) -> bool:
        """``send`` for a frame given as a tuple of byte strings: each written into the slot in
        turn, never joined."""
        length = 0
        for part in parts:
            length += len(part)
        slot = self._claim(length)
        if slot < 0:
            return slot == -1
        ring = self._view  # (a memoryview takes any buffer; PyPy's mmap only bytes)
        start = slot + self._tx_data
        for part in parts:
            end = start + len(part)
            ring[start:end] = part
            start = end
        self._commit(slot, length)
        return True

    def _claim(self, length: int) -> int:
        """The offset of the next free slot for ``length`` bytes; -1 when every slot is in
        flight (the frame is dropped, as a full queue drops), -2 when it is too large."""
        if length > self.tx_slot_size - self._tx_data:
            self.tx_oversize += 1
            return -2
        slot = self._tx_base + self._tx_next * self.tx_slot_size
        status = self._map[slot + self._tx_status]  # (the low byte: flags above it are timestamps)
        if status != TP_STATUS_AVAILABLE and status != TP_STATUS_WRONG_FORMAT:
            self.flush()
            self.tx_full += 1
            return -1
        return slot

    def _commit(self, slot: int, length: int) -> None:
        ring = self._map
        _u32.pack_into(ring, slot + self._tx_len, length)
        _u32.pack_into(ring, slot + self._tx_status, TP_STATUS_SEND_REQUEST)  # last: the kernel may go
        self._tx_next = (self._tx_next + 1) % self.tx_slots
        self.tx_pending += 1
        if self.tx_pending >= 32:
            self.flush()

    def flush(self) -> None:
        """Have the kernel transmit every requested slot (one system call for the batch)."""
        if self.tx_pending:
            self.tx_pending = 0
            try:
                self._sock.send(b"", socket.MSG_DONTWAIT)
            except OSError:
                pass

    def close(self) -> None:
        if self._map is not None:
            self._view.release()
            try:
                self._map.close()
            except (OSError, ValueError, BufferError):
                pass
            self._map = None


def open_rings(sock: socket.socket, mtu: int, ignore_outgoing: bool,
               version: int = TPACKET_V2) -> Optional[PacketRings]:
    """The rings of ``sock``, or None where the kernel has none to give (the plain socket stays)."""
    try:
        return PacketRings(sock, mtu, ignore_outgoing=ignore_outgoing, version=version)
    except RingUnavailable:
        return None
