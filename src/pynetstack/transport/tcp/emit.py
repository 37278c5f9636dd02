"""The segment writer: every segment a connection sends leaves through ``_write`` (SYNs, RSTs)
or its fast form ``_send_segment`` (everything synchronized: data, ACKs, FINs, probes), and
both hand the bytes to ``_transmit``.  ``_send_burst`` is the batched form of
``_send_segment`` for runs of full-sized new segments.

The header is packed in one piece and its checksum computed from the flow's constant sum
(``csum_base``: pseudo-header addresses and protocol, our ports).  With segmentation offload
(``gso_size``) the checksum field holds the pseudo-header sum and the device finishes it.

A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

import struct

from ...wire.tcp import ACK, PSH, RST, URG, sack_option, timestamp_option
from ...wire.checksum import word_value
from .seq import MASK

_hdr_pack = struct.Struct("!HHIIBBHHH").pack
_ts_hdr_pack = struct.Struct("!HHIIBBHHH4sII").pack   # the header with NOP NOP TS, in one piece
_TS_PREFIX = b"\x01\x01\x08\x0a"
_TS_PREFIX_SUM = 0x0101 + 0x080A
_from_bytes = int.from_bytes
# Ethernet + IPv4 (as net/host.py's OutputPath template) + TCP with NOP NOP TS: a whole frame header
_frame_pack = struct.Struct("!16sHH4sH8sHHIIBBHHH4sII").pack


class EmitMixin:
    __slots__ = ()

    def _transmit(self, head: bytes, payload, now: float, gso_size: int = 0) -> None:
        """Hand one segment to the flow's cached ``OutputPath`` (prebuilt Ethernet and IPv4
        headers); without a path (or when it went stale and no new one can be had) it takes
        ``layer.output``, the full IP output path.  With ``gso_size`` the payload may be a
        tuple of parts, which the path hands to the device as they are."""
        layer = self.layer
        for _ in range(2):
            path = self.path
            if path is None:
                break
            if gso_size:
                if path.transmit_gso(head, payload, gso_size, now):
                    return
            elif path.transmit(head, payload, now):
                return
            self.path = layer.output_path(self, now)  # stale: ask once for a new one
        if payload.__class__ is tuple:
            payload = b"".join(payload)
        layer.output(self, head + payload, now, gso_size)
        if self.path is None:
            self.path = layer.output_path(self, now)

    def _write(self, seq: int, ack: int, flags: int, window: int, options: bytes, now: float) -> None:
        """A segment outside the synchronized flow of data (SYN, SYN-ACK, RST): the fields as
        given, no payload, always through the layer's full IP output path."""
        hlen = 20 + len(options)
        value = (self.csum_base + hlen + seq + ack + ((hlen << 10) | flags) + window
                 + (_from_bytes(options, "big") if options else 0))
        csum = 0xFFFF - (value % 0xFFFF or 0xFFFF)
        self.segs_out += 1
        self.layer.output(self, _hdr_pack(self.local_port, self.remote_port, seq, ack, hlen << 2, flags,
                                          window, csum, 0) + options, now)

    def _send_segment(self, seq: int, flags: int, payload, now: float, gso_size: int = 0) -> None:
        """Send one segment of the synchronized connection: it carries RCV.NXT, our window and
        our options (timestamps, SACK blocks), so it also answers whatever ACK was pending.
        ``gso_size`` > 0: the path offloads checksums and segmentation, so the checksum is
        left to the device, which cuts the payload in ``gso_size`` pieces."""
        rcv_nxt = self.rcv_nxt
        window = self._window_field()
        self.last_ack_sent = rcv_nxt
        self.ack_pending = 0
        self.ack_now = False
        self.timers.delack = None
        self.segs_out += 1
        urgent = 0
        snd_up = self.snd_up
        if snd_up is not None and seq < snd_up:
            # urgent mode (RFC 9293 3.8.5, RFC 6093): a segment before SND.UP points there, the
            # octet after the urgent data, as Linux does; beyond 64 KB away it says 0xFFFF
            flags |= URG
            urgent = snd_up - seq if snd_up - seq <= 0xFFFF else 0xFFFF
        seq &= MASK
        ack = rcv_nxt & MASK
        if payload.__class__ is tuple:  # parts of an offloaded segment (see _send_range)
            plen = 0
            for part in payload:
                plen += len(part)
        else:
            plen = len(payload)
        reorder = self.reorder
        sack = reorder is not None and reorder.runs and self.sack_ok
        if self.ts_ok and not sack:
            # the usual segment: NOP NOP TS; its checksum from the flow's constant sum
            ts_val = (int(now * 1000.0) + self.ts_offset) & MASK
            ts_ecr = self.ts_recent or 0
            if gso_size:
                csum = (self.csum_base - self.local_port - self.remote_port + 32 + plen) % 0xFFFF
            else:
                value = (self.csum_base + 32 + plen + seq + ack + (0x8000 | flags) + window + _TS_PREFIX_SUM
                         + ts_val + ts_ecr + urgent)
                if plen:
                    value += word_value(payload, "big") << 8 if plen & 1 else word_value(payload, "big")
                csum = 0xFFFF - (value % 0xFFFF or 0xFFFF)
            head = _ts_hdr_pack(self.local_port, self.remote_port, seq, ack, 0x80, flags, window, csum, urgent,
                                _TS_PREFIX, ts_val, ts_ecr)
        else:
            opts = b""
            if self.ts_ok:
                opts = timestamp_option(self._ts_now(now), self.ts_recent)
            if sack:
                opts += sack_option(reorder.sack_blocks(3 if self.ts_ok else 4))
            hlen = 20 + len(opts)
            if gso_size:
                csum = (self.csum_base - self.local_port - self.remote_port + hlen + plen) % 0xFFFF
            else:
                value = (self.csum_base + hlen + plen + seq + ack + ((hlen << 10) | flags) + window + urgent
                         + (_from_bytes(opts, "big") if opts else 0))
                if plen:
                    value += word_value(payload, "big") << 8 if plen & 1 else word_value(payload, "big")
                csum = 0xFFFF - (value % 0xFFFF or 0xFFFF)
            head = _hdr_pack(self.local_port, self.remote_port, seq, ack, hlen << 2, flags, window, csum,
                             urgent) + opts
        self._transmit(head, payload, now, gso_size)

    def _send_rst(self, seq: int, now: float) -> None:
        self._write(seq & MASK, self.rcv_nxt & MASK, RST | ACK, 0, b"", now)

    def _send_ack(self, now: float) -> None:
        # SND.MAX, not SND.NXT: after a retransmission timeout SND.NXT is pulled back to SND.UNA
        # (go back N), below what the peer may already hold; a bare ACK with that sequence
        # number fails the peer's acceptability test (RFC 9293 3.10.7.4) and is dropped
        # unread.  When both ends time out at once, each drops the other's ACKs for good
        # (as 4.4BSD's tcp_output does: an ACK-only segment carries snd_max).
        self._send_segment(self.snd_max, ACK, b"", now)

    def _send_burst(self, seq: int, count: int, mss: int, data_end: int, now: float) -> bool:
        """Send ``count`` new full segments of ``mss`` bytes from ``seq`` over the cached path in
        one loop: what ``_send_range`` -> ``_send_segment`` -> ``OutputPath.transmit`` do per
        segment (timestamps, no SACK blocks, no offload), with the per-flow constants of the
        TCP and IPv4 checksums and the header fields computed once.  False (nothing sent) when
        the path is stale or too small; the caller then takes the ordinary path."""
        path = self.path
        if path is None:  # an earlier segment of this run found the path stale and got no new one
            return False
        send = path.send_parts
        total = mss + 52  # IPv4 total length: 20 + 32 (TCP with NOP NOP TS) + payload
        if send is None or total > path.mtu or not path.valid(now):
            return False
        rcv_nxt = self.rcv_nxt
        window = self._window_field()
        self.last_ack_sent = rcv_nxt
        self.ack_pending = 0
        self.ack_now = False
        self.timers.delack = None
        self.segs_out += count
        ack = rcv_nxt & MASK
        ts_val = (int(now * 1000.0) + self.ts_offset) & MASK
        ts_ecr = self.ts_recent or 0
        lport = self.local_port
        rport = self.remote_port
        base = self.csum_base + 32 + mss + ack + 0x8000 + window + _TS_PREFIX_SUM + ts_val + ts_ecr
        start = seq - self.snd_buf_seq
        chunk = self.snd_buf.slice(start, start + count * mss)
        prefix = path.prefix
        middle = path.middle
        addresses = path.addresses
        ip_base = path.base + total
        ident = path.ident
        odd = mss & 1
        from_bytes = word_value  # int.from_bytes on CPython, a word sum on PyPy
        pack = _frame_pack
        pos = 0
        for _ in range(count):
            payload = chunk[pos:pos + mss]
            pos += mss
            flags = (ACK | PSH) if seq + mss == data_end else ACK
            wseq = seq & MASK
            value = base + wseq + flags + (from_bytes(payload, "big") << 8 if odd else from_bytes(payload, "big"))
            ident = (ident + 1) & 0xFFFF
            send((pack(prefix, total, ident, middle, 0xFFFF - ((ip_base + ident) % 0xFFFF or 0xFFFF), addresses,
                       lport, rport, wseq, ack, 0x80, flags, window, 0xFFFF - (value % 0xFFFF or 0xFFFF), 0,
                       _TS_PREFIX, ts_val, ts_ecr), payload), now)
            seq += mss
        path.ident = ident
        path.host.counters["ip_out_requests"] += count
        iface = path.iface
        iface.tx_frames += count
        iface.tx_bytes += count * (total + 14)
        return True
