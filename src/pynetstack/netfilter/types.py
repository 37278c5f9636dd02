"""Small value types shared by the nftables language, conntrack, NAT and the packet path."""

from __future__ import annotations

from typing import FrozenSet, Optional

# conntrack states as nftables names them (ct state ...)
CT_NEW = "new"
CT_ESTABLISHED = "established"
CT_RELATED = "related"
CT_INVALID = "invalid"
CT_UNTRACKED = "untracked"

# conntrack directions (ct direction ...)
DIR_ORIGINAL = 0
DIR_REPLY = 1

# NAT kinds, as the nft statements that ask for them
SNAT = "snat"
DNAT = "dnat"
MASQUERADE = "masquerade"
REDIRECT = "redirect"


class NatSpec:
    """What one nft NAT statement asks for: ``snat to 203.0.113.1-203.0.113.4:1024-65535``,
    ``dnat to 192.168.1.10:80``, ``masquerade to :20000-30000 random``, ``redirect to :8080``.

    Addresses are host-order ints; None where the statement leaves them out (masquerade takes
    the egress interface's address, redirect the address of the interface the packet came in on,
    ``dnat to :8080`` is not valid nft).  Ports are None when the statement gives none (then the
    source port is preserved where possible).  ``flags``: "random", "fully-random", "persistent".
    """

    __slots__ = ("kind", "addr_min", "addr_max", "port_min", "port_max", "flags")

    def __init__(self, kind: str, addr_min: Optional[int] = None, addr_max: Optional[int] = None,
                 port_min: Optional[int] = None, port_max: Optional[int] = None,
                 flags: FrozenSet[str] = frozenset()):
        self.kind = kind
        self.addr_min = addr_min
        self.addr_max = addr_min if addr_max is None else addr_max
        self.port_min = port_min
        self.port_max = port_min if port_max is None else port_max
        self.flags = frozenset(flags)

    def __eq__(self, other) -> bool:
        return isinstance(other, NatSpec) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, k) for k in self.__slots__))

    def __repr__(self) -> str:
        return (f"NatSpec({self.kind!r}, {self.addr_min}, {self.addr_max}, {self.port_min}, {self.port_max}, "
                f"{sorted(self.flags)})")
