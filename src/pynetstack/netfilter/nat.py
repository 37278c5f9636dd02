"""NAT bindings as Linux nf_nat makes them, with the behaviour RFC 4787, 5382 and 5508 ask of a NAT.

``setup`` binds a new (unconfirmed) conntrack entry: SNAT/masquerade change the reply tuple's
destination, DNAT/redirect its source; ``translate`` (in nat_rewrite.py) then rewrites packets.

- Endpoint-independent mapping (RFC 4787 REQ-1): an internal addr:port keeps its external
  addr:port for every destination while any of its entries lives.
- No port overloading: an external proto:addr:port belongs to one internal endpoint at a time
  (``by_external``), whatever the destination.
- Port preservation where possible (REQ-3), and the port class kept as Linux keeps it: 1..511
  stay in 1..511, 512..1023 map into 600..1023, the rest into 1024..65535; ICMP ids use 0..65535.
- Paired address pooling (REQ-2): the external address is a function of the internal address
  alone, so one host always gets the same pool address.
- Filtering: address-and-port-dependent (the conntrack reply tuple does it), address-dependent
  or endpoint-independent (``inbound`` opens an entry to an existing mapping).
- Mappings live exactly as long as the conntrack entries that use them; ICMP errors (RELATED)
  never refresh or end them.
"""

from __future__ import annotations

import random
from collections import Counter

from .conntrack import S_CONFIRMED, S_DST_NAT, S_DST_NAT_DONE, S_SRC_NAT, S_SRC_NAT_DONE, ConntrackError
from .nat_rewrite import translate as _translate
from .types import DNAT, MASQUERADE, REDIRECT, SNAT

FILTERINGS = ("address-and-port", "address", "endpoint-independent")
_M32 = 0xFFFFFFFF


class NatError(ConntrackError):
    """Bad NAT configuration or a NAT statement that cannot be applied."""


class Mapping:
    """One external endpoint owned by one internal endpoint.  ``refs``: entries using it;
    ``remotes``: remote address -> entries (for address-dependent filtering)."""

    __slots__ = ("proto", "int_addr", "int_port", "ext_addr", "ext_port", "refs", "remotes")

    def __init__(self, proto, int_addr, int_port, ext_addr, ext_port):
        self.proto = proto
        self.int_addr = int_addr
        self.int_port = int_port
        self.ext_addr = ext_addr
        self.ext_port = ext_port
        self.refs = 0
        self.remotes = {}

    def __repr__(self) -> str:
        return f"<Mapping {self.proto} {self.int_addr}:{self.int_port} -> {self.ext_addr}:{self.ext_port} refs={self.refs}>"


class NatBinding:
    """What an entry holds of NAT: the mapping its SNAT uses, the mapping an endpoint-
    independent inbound entry was opened to, and the masquerade address (None if not)."""

    __slots__ = ("snat", "inbound", "remote", "masquerade")

    def __init__(self):
        self.snat = None
        self.inbound = None
        self.remote = 0
        self.masquerade = None


class Nat:
    def __init__(self, conntrack, eim: bool = True, filtering: str = "address-and-port",
                 port_preservation: bool = True, seed=None):
        if filtering not in FILTERINGS:
            raise NatError(f"unknown NAT filtering {filtering!r} (use one of {', '.join(FILTERINGS)})")
        self.ct = conntrack
        self.eim = eim
        self.filtering = filtering
        self.port_preservation = port_preservation
        self.rng = random.Random(seed)
        self._secret = self.rng.getrandbits(32)
        self.by_internal = {}  # (proto, int addr, int port) -> Mapping: the EIM index
        self.by_external = {}  # (proto, ext addr, ext port) -> Mapping: who owns an external endpoint
        self.counters = Counter()
        conntrack.destroy_hooks.append(self._release)

    translate = staticmethod(_translate)

    # -- binding new connections ---------------------------------------------------------------

    def setup(self, entry, spec, now: float, iface_address=None) -> bool:
        """Bind ``entry`` as ``spec`` says.  True when done (or when this kind of NAT was already
        decided for the entry, as Linux evaluates NAT rules once per connection); False when no
        mapping can be made (the lead drops the packet and answers ICMP 3/13, RFC 5508)."""
        kind = spec.kind
        if kind == SNAT or kind == MASQUERADE:
            done = S_SRC_NAT_DONE
        elif kind == DNAT or kind == REDIRECT:
            done = S_DST_NAT_DONE
        else:
            raise NatError(f"unknown NAT kind {kind!r}")
        if entry.status & (done | S_CONFIRMED):
            return True
        if kind == MASQUERADE or kind == REDIRECT:
            if iface_address is None:
                raise NatError(f"{kind} needs the interface address (iface_address)")
            lo = hi = iface_address
        else:
            if spec.addr_min is None:
                raise NatError(f"{kind} needs an address")
            lo, hi = spec.addr_min, spec.addr_max
            if hi < lo:
                raise NatError(f"{kind} address range is reversed")
        if spec.port_min is not None and not 0 <= spec.port_min <= spec.port_max <= 0xFFFF:
            raise NatError(f"bad {kind} port range {spec.port_min}-{spec.port_max}")
        if done == S_SRC_NAT_DONE:
            ok = self._bind_source(entry, spec, lo, hi, iface_address if kind == MASQUERADE else None)
        else:
            ok = self._bind_destination(entry, spec, lo, hi)
        if not ok:
            self.counters["mapping-failed"] += 1
            return False
        entry.status |= done
        self.counters[kind] += 1
        return True

    def _reply_free(self, reply) -> bool:
        return reply not in self.ct.table

    def _bind_source(self, entry, spec, lo, hi, masquerade) -> bool:
        proto, src, sport = entry.original[0], entry.original[1], entry.original[2]
        remote, rport = entry.reply[1], entry.reply[2]
        old_reply = entry.reply
        flags = spec.flags
        randomize = "random" in flags or "fully-random" in flags
        if proto not in (1, 6, 17):
            # No ports to map: the address alone, if the reply tuple stays unique.
            ext = lo if lo == hi else lo + self._pair(src) % (hi - lo + 1)
            reply = (proto, remote, rport, ext, 0)
            if not self._reply_free(reply):
                return False
            self._bind(entry, reply, None, remote, masquerade)
            return True
        # Endpoint-independent mapping: reuse the endpoint's live mapping when the rule allows it.
        if self.eim:
            m = self.by_internal.get((proto, src, sport))
            if (m is not None and lo <= m.ext_addr <= hi
                    and (spec.port_min is None or spec.port_min <= m.ext_port <= spec.port_max)):
                reply = self._source_reply(old_reply, m.ext_addr, m.ext_port)
                if self._reply_free(reply):
                    self._bind(entry, reply, m, remote, masquerade)
                    return True
        ext = lo if lo == hi else lo + self._pair(src) % (hi - lo + 1)  # paired pooling
        if spec.port_min is not None:
            plo, phi = spec.port_min, spec.port_max
        elif proto == 1:
            plo, phi = 0, 0xFFFF
        elif sport < 512:
            plo, phi = 1, 511
        elif sport < 1024:
            plo, phi = 600, 1023
        else:
            plo, phi = 1024, 0xFFFF
        size = phi - plo + 1
        by_external = self.by_external
        if self.port_preservation and not randomize and plo <= sport <= phi:
            first = sport - plo
        elif "random" in flags and "fully-random" not in flags:
            # Linux's "random": a keyed hash of the connection (secure_port), not per packet
            first = self._pair(src ^ (entry.original[3] * 31) ^ (entry.original[4] << 7)) % size
        else:
            first = self.rng.randrange(size)
        for i in range(size):
            port = plo + (first + i) % size
            owner = by_external.get((proto, ext, port))
            if owner is not None and (owner.int_addr != src or owner.int_port != sport):
                continue  # never overload: the external endpoint is someone else's
            reply = self._source_reply(old_reply, ext, port)
            if not self._reply_free(reply):
                continue
            if owner is None:
                owner = Mapping(proto, src, sport, ext, port)
                by_external[(proto, ext, port)] = owner
                if self.eim:
                    self.by_internal.setdefault((proto, src, sport), owner)
            self._bind(entry, reply, owner, remote, masquerade)
            return True
        return False

    @staticmethod
    def _source_reply(reply, ext, port):
        """``reply`` with the source mapped to ext:port: its destination becomes ext:port; for
        an ICMP query ``port`` is the id, which its tuples keep where the source port is."""
        if reply[0] == 1:
            return (1, reply[1], port, ext, reply[4])
        return (reply[0], reply[1], reply[2], ext, port)

    def _bind(self, entry, reply, mapping, remote, masquerade) -> None:
        binding = entry.nat
        if binding is None:
            binding = entry.nat = NatBinding()
        if mapping is not None:
            mapping.refs += 1
            mapping.remotes[remote] = mapping.remotes.get(remote, 0) + 1
            binding.snat = mapping
            binding.remote = remote
        binding.masquerade = masquerade
        if reply != entry.reply:
            entry.reply = reply
            entry.status |= S_SRC_NAT

    def _bind_destination(self, entry, spec, lo, hi) -> bool:
        proto, src, sport, dst, dport = entry.original
        reply = entry.reply
        if lo == hi:
            addr = lo
        else:
            key = src if "persistent" in spec.flags else src ^ dst
            addr = lo + self._pair(key) % (hi - lo + 1)
        if proto == 1:
            candidates = (reply[2],)  # an ICMP id is not a port to forward
        elif spec.port_min is None or proto not in (6, 17):
            candidates = (dport if proto in (6, 17) else reply[2],)
        else:
            plo, phi = spec.port_min, spec.port_max
            size = phi - plo + 1
            first = dport - plo if plo <= dport <= phi else 0
            candidates = (plo + (first + i) % size for i in range(size))
        for port in candidates:
            new = (proto, addr, port, reply[3], reply[4])
            if new == reply or self._reply_free(new):
                if new != reply:
                    entry.reply = new
                    entry.status |= S_DST_NAT
                return True
        return False

    def _pair(self, value: int) -> int:
        """A keyed, well-mixed hash of a 32-bit value (stable for this Nat's life)."""
        x = ((value ^ self._secret) * 0x9E3779B1) & _M32
        x ^= x >> 15
        x = (x * 0x85EBCA77) & _M32
        return x ^ (x >> 13)

    # -- endpoint-independent filtering -------------------------------------------------------------

    def inbound(self, ip, now: float, entry=None):
        """For a NEW packet at PREROUTING, before the rules: with endpoint-independent (or
        address-dependent) filtering, a packet to a live mapping's external endpoint opens an
        entry translated to the mapping's internal endpoint.  Returns the entry or None."""
        if self.filtering == "address-and-port":
            return None
        proto = ip.protocol
        if proto != 6 and proto != 17:
            return None
        payload = ip.payload
        if len(payload) < 4:
            return None
        sport = (payload[0] << 8) | payload[1]
        dport = (payload[2] << 8) | payload[3]
        m = self.by_external.get((proto, ip.dst, dport))
        if m is None or m.refs <= 0:
            return None
        if self.filtering == "address" and ip.src not in m.remotes:
            self.counters["filtered"] += 1
            return None
        if entry is None:
            entry = self.ct.unconfirmed((proto, ip.src, sport, ip.dst, dport))
        if entry is None or entry.status & (S_CONFIRMED | S_DST_NAT_DONE):
            return None
        reply = (proto, m.int_addr, m.int_port, ip.src, sport)
        if not self._reply_free(reply):
            return None
        entry.reply = reply
        entry.status |= S_DST_NAT | S_DST_NAT_DONE
        binding = entry.nat
        if binding is None:
            binding = entry.nat = NatBinding()
        binding.inbound = m
        m.refs += 1
        self.counters["inbound"] += 1
        return entry

    # -- lifetime -------------------------------------------------------------------------------------

    def _release(self, entry) -> None:
        """conntrack destroy hook: drop the entry's references; a mapping dies with its last."""
        binding = entry.nat
        if binding is None:
            return
        entry.nat = None
        for m, remote in ((binding.snat, binding.remote), (binding.inbound, None)):
            if m is None:
                continue
            m.refs -= 1
            if remote is not None:
                left = m.remotes.get(remote, 0) - 1
                if left > 0:
                    m.remotes[remote] = left
                else:
                    m.remotes.pop(remote, None)
            if m.refs <= 0:
                key = (m.proto, m.ext_addr, m.ext_port)
                if self.by_external.get(key) is m:
                    del self.by_external[key]
                key = (m.proto, m.int_addr, m.int_port)
                if self.by_internal.get(key) is m:
                    del self.by_internal[key]

    def address_changed(self, old_address: int) -> int:
        """The interface lost ``old_address``: drop the masquerade entries that used it (Linux
        flushes them on NETDEV_DOWN / address removal).  Returns how many went."""
        return self.ct.delete_where(lambda e: e.nat is not None and e.nat.masquerade == old_address)

    def mappings(self):
        return list(self.by_external.values())

    def stats(self) -> dict:
        out = dict(self.counters)
        out["mappings"] = len(self.by_external)
        return out
