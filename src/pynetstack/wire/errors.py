"""The one exception every parser in wire/ raises on bad input."""


class MalformedPacket(ValueError):
    """Raised when bytes cannot be parsed as the header they claim to be.

    ``reason`` is a short stable identifier (e.g. ``"ipv4-bad-checksum"``) that the receive
    path uses as its drop reason; ``str(exc)`` adds human detail.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
