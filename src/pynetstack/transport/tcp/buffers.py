"""A connection's send and receive buffers: queues of byte chunks, never one growing bytearray.

A bytearray that data is appended to and consumed from the front (``buf += data``,
``del buf[:n]``) moves its whole content on every consume and reallocates as it grows.  CPython
does that with memcpy and hardly notices; PyPy 7.3 pays for it dearly (measured: ``del
buf[:65536]`` on a 1 MB buffer 190 us against CPython's 10 us, ``bytearray += 64 KB`` 150-200
us, and any allocation of a megabyte a few hundred us).  Chunks of at most ``CHUNK`` bytes
are cheap on both: taking a segment's payload is one ``bytes()`` copy, consuming the front is
moving an index past whole chunks (and an offset into the first one), and a read joins a few
chunks.  The chunks are a list (an idle connection's empty list is 56 bytes, a deque 600) whose
consumed front is cut off once it is long, or all at once when the buffer empties.
"""

from __future__ import annotations

CHUNK = 65536               # data given to ``SendBuffer.append`` is stored in pieces this big at most
COMPACT = 64                # consumed chunks kept at the front of the list before it is cut


class _Chunks:
    """``size`` bytes held in ``chunks[first:]`` (the chunks before ``first`` are consumed)."""

    __slots__ = ("chunks", "first", "size")

    def __init__(self):
        self.chunks = []
        self.first = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0


class ReceiveBuffer(_Chunks):
    """In-order received data waiting for the application."""

    __slots__ = ()

    def append(self, data) -> None:
        """Take a copy of ``data`` (a segment's payload, which may be a view of a frame)."""
        n = len(data)
        if n:
            self.chunks.append(bytes(data))
            self.size += n

    def take(self, max_bytes: int) -> bytes:
        """The first ``max_bytes`` bytes (all if fewer), removed from the buffer."""
        if max_bytes < self.size:
            return self._take_part(max_bytes)
        chunks = self.chunks
        first = self.first
        if len(chunks) - first == 1:
            data = chunks[first]
        else:
            data = b"".join(chunks[first:] if first else chunks)
        chunks.clear()
        self.first = self.size = 0
        return data

    def take_chunk(self, max_bytes: int) -> bytes:
        """At most ``max_bytes`` from the front, without joining large chunks: a chunk of at
        least ``CHUNK // 4`` bytes comes out alone (no copy), smaller ones are joined up to
        ``CHUNK`` bytes.  For event handlers, which take data in whatever pieces it comes."""
        if not self.size:
            return b""
        chunks = self.chunks
        n = len(chunks[self.first])
        if n >= CHUNK >> 2 or n >= max_bytes or n == self.size:
            return self._take_part(n if n < max_bytes else max_bytes)
        limit = max_bytes if max_bytes < CHUNK else CHUNK
        return self._take_part(limit if limit < self.size else self.size)

    def _take_part(self, count: int) -> bytes:
        chunks = self.chunks
        i = self.first
        chunk = chunks[i]
        n = len(chunk)
        if count < n:
            chunks[i] = chunk[count:]
            self.size -= count
            return chunk[:count]
        parts = []
        left = count
        while left:
            chunk = chunks[i]
            n = len(chunk)
            if n <= left:
                parts.append(chunk)
                i += 1
                left -= n
            else:
                parts.append(chunk[:left])
                chunks[i] = chunk[left:]
                left = 0
        self.size -= count
        if i == len(chunks):
            chunks.clear()
            i = 0
        elif i > COMPACT:
            del chunks[:i]
            i = 0
        self.first = i
        return parts[0] if len(parts) == 1 else b"".join(parts)


class SendBuffer(_Chunks):
    """Data the application gave and the peer has not acknowledged yet; its first byte is at
    offset ``head`` of ``chunks[first]``."""

    __slots__ = ("head",)

    def __init__(self):
        super().__init__()
        self.head = 0

    def append(self, data) -> None:
        """Take ``data`` (bytes, bytearray or a view of either): immutable bytes (or a plain
        view of them) are kept as they are, anything else is copied.  Sharing immutable data
        is safe and saves PyPy most of its sending cost: a fresh 64 KB copy there costs tens
        of microseconds in the collector and again when ``writev`` takes its address."""
        cls = data.__class__
        if cls is memoryview:
            if not (data.readonly and data.obj.__class__ is bytes and data.format == "B" and data.c_contiguous):
                data = bytes(data)
        elif cls is not bytes:
            data = bytes(data)
        n = len(data)
        if not n:
            return
        if n <= CHUNK:
            self.chunks.append(data)
        else:
            view = memoryview(data)
            for start in range(0, n, CHUNK):
                self.chunks.append(view[start:start + CHUNK])
        self.size += n

    def drop(self, count: int) -> None:
        """Forget the first ``count`` bytes (acknowledged by the peer)."""
        if count >= self.size:
            self.chunks.clear()
            self.first = self.head = self.size = 0
            return
        chunks = self.chunks
        self.size -= count
        count += self.head
        i = self.first
        while True:
            n = len(chunks[i])
            if count < n:
                break
            i += 1
            count -= n
        self.head = count
        if i > COMPACT:
            del chunks[:i]
            i = 0
        self.first = i

    def slice(self, start: int, end: int):
        """Bytes [start, end) of the buffer (0 is its first byte; ``end`` at most ``len()``):
        bytes or a read-only memoryview."""
        spanning = start, end
        start += self.head
        end += self.head
        chunks = self.chunks
        for i in range(self.first, len(chunks)):
            chunk = chunks[i]
            n = len(chunk)
            if start < n:
                if end <= n:
                    return chunk[start:end] if start or end < n else chunk
                break
            start -= n
            end -= n
        else:
            return b""
        return b"".join(self.views(*spanning))

    def views(self, start: int, end: int) -> tuple:
        """Bytes [start, end) as a tuple of memoryviews of the chunks, no copy (for a device
        that writes a frame from parts: ``writev``)."""
        start += self.head
        end += self.head
        chunks = self.chunks
        parts = []
        for i in range(self.first, len(chunks)):
            chunk = chunks[i]
            n = len(chunk)
            if start < n:
                if end <= n:
                    parts.append(memoryview(chunk)[start if start > 0 else 0:end])
                    break
                parts.append(memoryview(chunk)[start:] if start > 0 else chunk)
            start -= n
            end -= n
        return tuple(parts)
