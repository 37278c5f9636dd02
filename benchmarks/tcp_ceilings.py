"""The ceilings bench_tcp.py measures the stack against, in the same run.

Without offloads: a bare Python sink and a bare Python source behind a TAP (the per-frame cost of
reading frames from a TAP and writing them back, which any Python stack pays before doing its
work), each also in a variant that makes the one per-byte check a correct TCP cannot skip
without checksum offload: the sink verifies every segment's checksum, the source sums every
payload it sends (RFC 9293 3.1: the checksum is mandatory), with the stack's own checksum
routine.  With offloads: the kernel's TCP over a veth, with Python sockets at both ends and with
the stack's own HTTP application work (``KERNEL_HTTP_SERVER``: GET /bytes/N from the same
buffer, POST /sha256 hashed as it comes) served by a Python process on the kernel's sockets.
"""

from __future__ import annotations

import os
import select
import struct
import time

from pynetstack.wire.checksum import transport_verify, word_value


def payload_sum(data) -> int:
    """The ones' complement sum of ``data`` modulo 0xFFFF, by the stack's own routine."""
    value = word_value(data, "big")
    return (value << 8 if len(data) & 1 else value) % 0xFFFF


BARE_MAC = bytes.fromhex("020000009702")
BARE_WSCALE = 7             # window 0xFFFF << 7: 8 MB, never the limit


def _csum(data) -> int:
    if len(data) & 1:
        data = bytes(data) + b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return 0xFFFF - total


_IP_PACK = struct.Struct("!BBHHHBBH4s4s").pack
_TCP_PACK = struct.Struct("!HHIIBBHHH").pack
_SYN_OPTIONS = b"\x02\x04\x05\xb4\x01\x03\x03" + bytes([BARE_WSCALE])  # MSS 1460, window scale


def _tcp_frame(dst_mac: bytes, me: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
               options: bytes = b"", data: bytes = b"", data_sum: int = 0) -> bytes:
    """An Ethernet frame with one TCP segment from ``me`` (window 0xFFFF), checksums filled;
    ``data_sum`` is the payload's ones' complement sum (``payload_sum``)."""
    hlen = 20 + len(options)
    tcp = _TCP_PACK(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, hlen << 2, flags, 0xFFFF, 0, 0) + options
    value = (0xFFFF - _csum(dst + me + struct.pack("!HH", 6, hlen + len(data)) + tcp)) + data_sum
    value = 0xFFFF - ((value % 0xFFFF) or 0xFFFF) if value else 0xFFFF
    tcp = tcp[:16] + value.to_bytes(2, "big") + tcp[18:]
    ip = _IP_PACK(0x45, 0, 20 + hlen + len(data), 0, 0x4000, 64, 6, 0, me, dst)
    ip = ip[:10] + _csum(ip).to_bytes(2, "big") + ip[12:]
    return dst_mac + BARE_MAC + b"\x08\x00" + ip + tcp + data


def _answered_arp(fd: int, frame: bytes, me: bytes) -> bool:
    """True for an ARP frame (answered when it asks for ``me``): the caller is done with it."""
    if frame[12:14] != b"\x08\x06":
        return False
    if frame[21] == 1 and frame[38:42] == me:
        os.write(fd, frame[6:12] + BARE_MAC + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x02" + BARE_MAC + me
                 + frame[22:32])
    return True


def bare_sink(device, address: int, stop, verify: bool = False) -> None:
    """The ceiling of a Python process taking TCP in from a TAP: answer ARP, accept any SYN, ACK
    every segment at once, answer a FIN with FIN.  No sequence checks, no buffer, no timers, no
    options but MSS and window scale: the per-frame cost of reading a frame from the TAP and
    writing an ACK back, which is what any Python stack pays before doing its work.  With
    ``verify`` every segment's checksum is verified first (a failing one is not acknowledged):
    the one per-byte step a receiver may not skip."""
    fd = device.fileno()
    read, write = os.read, os.write
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    unpack_tcp = struct.Struct("!HHIIBB").unpack_from
    me = address.to_bytes(4, "big")
    isn = 1000
    while not stop.is_set():
        poller.poll(100)
        while True:
            try:
                frame = read(fd, 65536)
            except BlockingIOError:
                break
            if _answered_arp(fd, frame, me) or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue
            ihl = (frame[14] & 15) * 4
            total = int.from_bytes(frame[16:18], "big")
            src = frame[26:30]
            sport, dport, seq, _ack, off, flags = unpack_tcp(frame, 14 + ihl)
            length = total - ihl - (off >> 4) * 4
            if verify and not transport_verify(int.from_bytes(src, "big"), address, 6,
                                               memoryview(frame)[14 + ihl:14 + total]):
                continue
            if flags & 0x02:  # SYN: SYN-ACK with MSS 1460 and a window scale
                ack, out_seq, out_flags, options = seq + 1, isn, 0x12, _SYN_OPTIONS
            elif flags & 0x04:
                continue
            else:
                ack = seq + length + (1 if flags & 0x01 else 0)
                out_seq, out_flags, options = isn + 1, 0x11 if flags & 0x01 else 0x10, b""
                if length == 0 and not flags & 0x01:
                    continue  # a bare ACK (of our FIN, say) needs no answer
            write(fd, _tcp_frame(frame[6:12], me, src, dport, sport, out_seq, ack, out_flags, options))


def bare_source(device, address: int, total: int, stop, sum_payload: bool = False) -> None:
    """The ceiling of a Python process sending TCP out through a TAP: answer ARP, accept any SYN,
    send ``total`` bytes as fast as the peer's window allows, read every ACK, answer a FIN.  No
    checks, no buffer, no timers, no congestion control, no options but MSS and window scale;
    the payload is one prebuilt segment whose sum is taken once (the sink checks no payload
    either), or with ``sum_payload`` summed again for every segment sent, as a sender without
    checksum offload must; a lost frame is sent again after three duplicate ACKs or 20 ms
    without progress (go-back-N).  The per-frame cost of writing a segment to the TAP and
    reading the ACKs back, which any Python stack pays before doing its work."""
    fd = device.fileno()
    read = os.read
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    unpack_tcp = struct.Struct("!HHIIBBH").unpack_from
    me = address.to_bytes(4, "big")
    mss = 1460
    payload = (bytes(range(256)) * 6)[:mss]
    full_sum = payload_sum(payload)
    conn = None  # [peer mac, peer ip, peer port, rcv_nxt, snd_una, snd_nxt, end, window, shift, dups, last, fin_sent]
    isn = 1000

    def segment(c, seq, flags, data, data_sum, options=b""):
        try:
            os.write(fd, _tcp_frame(c[0], me, c[1], 9, c[2], seq, c[3], flags, options, data, data_sum))
        except OSError:
            pass  # a full queue drops, as a wire would: go-back-N sends it again

    while not stop.is_set():
        poller.poll(1)
        while True:
            try:
                frame = read(fd, 65536)
            except BlockingIOError:
                break
            if _answered_arp(fd, frame, me) or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue
            ihl = (frame[14] & 15) * 4
            sport, _dport, seq, ack, off, flags, window = unpack_tcp(frame, 14 + ihl)
            if flags & 0x04:
                conn = None
                continue
            if flags & 0x02:  # SYN: SYN-ACK with MSS 1460 and a window scale; the peer's shift
                options = frame[14 + ihl + 20:14 + ihl + (off >> 4) * 4]
                shift, i = 0, 0
                while i < len(options) and options[i] != 0:
                    if options[i] == 1:
                        i += 1
                        continue
                    if options[i] == 3:
                        shift = options[i + 2]
                    i += max(2, options[i + 1])
                conn = [frame[6:12], frame[26:30], sport, seq + 1, isn + 1, isn + 1, isn + 1 + total, window, shift,
                        0, time.monotonic(), False]
                segment(conn, isn, 0x12, b"", 0, _SYN_OPTIONS)
                continue
            if conn is None:
                continue
            ack = conn[4] + ((ack - conn[4]) & 0xFFFFFFFF if (ack - conn[4]) & 0xFFFFFFFF < 1 << 31 else 0)
            conn[7] = window << conn[8]
            if ack > conn[4]:
                conn[4], conn[9], conn[10] = ack, 0, time.monotonic()
            elif conn[5] > conn[4]:
                conn[9] += 1
                if conn[9] == 3:
                    conn[5] = conn[4]  # go back
            if flags & 0x01:  # the peer's FIN: ACK it; the transfer is over
                conn[3] = seq + 1
                segment(conn, conn[5] + (1 if conn[11] else 0), 0x10, b"", 0)
                conn = None
        c = conn
        if c is None:
            continue
        if c[5] > c[4] and time.monotonic() - c[10] > 0.02:
            c[5], c[10] = c[4], time.monotonic()
        limit = min(c[4] + c[7], c[6])
        while c[5] < limit:
            n = min(mss, c[6] - c[5])
            data = payload if n == mss else payload[:n]
            segment(c, c[5], 0x10, data, payload_sum(data) if sum_payload or n != mss else full_sum)
            c[5] += n
        if c[4] == c[6] and not c[11]:
            segment(c, c[6], 0x11, b"", 0)
            c[11] = True


def serve_http(listener) -> None:
    """The stack's HTTP application work (services/http.py) on any socket API with ``accept``,
    ``recv`` and ``sendall``: GET /bytes/N sends the same bytes from the same buffer (its
    _BytesBody), POST /sha256 hashes the body as it comes, in pieces of up to 1 MB; one
    connection at a time, keep-alive, until ``accept`` fails (the listener closed).  The same
    code serves on the kernel's sockets (``KERNEL_HTTP_SERVER``) and on the stack's socket API
    in a thread of its own, so the two rows differ in the TCP under it only."""
    import hashlib
    from pynetstack.services.http import _BytesBody
    while True:
        try:
            c, _ = listener.accept()
        except OSError:
            return
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
            if b"\r\n\r\n" not in buf:
                break
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            if method == "GET" and target.startswith("/bytes/"):
                body = _BytesBody(int(target[7:]))
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          b"Content-Length: %d\r\n\r\n" % body.remaining)
                while body.remaining:
                    c.sendall(body.take(1 << 20))
            elif method == "POST":
                if headers.get("expect", "").lower() == "100-continue":
                    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                left = int(headers.get("content-length", "0"))
                hasher = hashlib.sha256()
                first, buf = buf[:left], buf[left:]
                hasher.update(first)
                left -= len(first)
                while left:
                    d = c.recv(min(left, 1 << 20))
                    if not d:
                        break
                    hasher.update(d)
                    left -= len(d)
                answer = (hasher.hexdigest() + "\n").encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                          % len(answer) + answer)
            else:
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        c.close()


# ``serve_http`` on the kernel's sockets, in a namespace; run with the benchmark's own
# interpreter, so the application costs what it costs in the stack's rows
KERNEL_HTTP_SERVER = r"""
import socket, sys
from tcp_ceilings import serve_http
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 80)); srv.listen(4); print("ready", flush=True)
serve_http(srv)
"""
