"""Authoritative answers from loaded zones, per RFC 1034 section 4.3.2, RFC 4592 and RFC 2308."""
from __future__ import annotations

from ..wire import dns as w
from .zone import Zone

MAX_CNAME_CHAIN = 16


class Answer:
    """What a lookup found: rcode, AA flag and the three record sections."""

    __slots__ = ("rcode", "aa", "answer", "authority", "additional")

    def __init__(self, rcode=w.NOERROR, aa=True, answer=None, authority=None, additional=None):
        self.rcode, self.aa = rcode, aa
        self.answer = answer if answer is not None else []
        self.authority = authority if authority is not None else []
        self.additional = additional if additional is not None else []

    def __repr__(self):
        return (f"Answer({w.RCODE_NAMES.get(self.rcode)} aa={self.aa} an={self.answer} "
                f"ns={self.authority} ar={self.additional})")


class Authority:
    """The set of zones this server is authoritative for."""

    def __init__(self, zones=(), minimal_responses: bool = False):
        self.zones = {}
        # As NSD (and BIND for non-recursive queries): positive answers carry the zone's NS set
        # in authority and the servers' addresses in additional; True leaves them out (BIND's
        # minimal-responses).
        self.minimal = minimal_responses
        self._apex = {}  # zone key -> (zone, NS set, addresses of the servers)
        for z in zones:
            self.add_zone(z)

    def add_zone(self, zone: Zone) -> None:
        if zone.key in self.zones:
            raise ValueError(f"zone {zone.origin} is loaded twice")
        self.zones[zone.key] = zone

    def find_zone(self, name: str) -> Zone | None:
        """The zone with the longest origin that contains ``name``."""
        key = name.lower()
        while True:
            zone = self.zones.get(key)
            if zone is not None:
                return zone
            if key == ".":
                return None
            key = _parent(key)

    def lookup(self, qname: str, qtype: int) -> Answer | None:
        """None when no loaded zone contains ``qname``."""
        zone = self.find_zone(qname)
        if zone is None:
            return None
        return _ZoneLookup(zone, self.minimal, self._apex_data(zone)).run(qname, qtype)

    def _apex_data(self, zone: Zone):
        """(NS set, the in-zone addresses of its servers) for full responses, computed once:
        zones do not change once loaded (add_zone replaces a whole zone)."""
        apex = self._apex.get(zone.key)
        if apex is None or apex[0] is not zone:
            look = _ZoneLookup(zone, True, None)
            ns = zone.nodes[zone.key][w.NS]
            for rr in ns:
                look.add_addresses(rr.data.target, in_zone_only=True)
            apex = self._apex[zone.key] = (zone, list(ns), look.result.additional)
        return apex


def _parent(key: str) -> str:
    """parent_name for the common case of a name without escapes, without parsing labels."""
    if "\\" in key:
        return w.parent_name(key)
    return key[key.index(".") + 1:] or "."


class _ZoneLookup:
    __slots__ = ("zone", "minimal", "apex", "result")

    def __init__(self, zone: Zone, minimal: bool, apex):
        self.zone, self.minimal, self.apex = zone, minimal, apex
        self.result = Answer()

    def run(self, qname: str, qtype: int) -> Answer:
        zone, res, owner, seen = self.zone, self.result, qname, set()
        for _ in range(MAX_CNAME_CHAIN):
            key = owner.lower()
            seen.add(key)
            cut = self.find_cut(key)
            if cut is not None:
                # a CNAME into a delegated child keeps AA for itself and adds the referral,
                # as NSD does (RFC 1034 section 4.3.2 step 3b)
                self.referral(cut)
                return res
            node = zone.nodes.get(key)
            if node is None:
                if key in zone.existing:
                    return self.negative(w.NOERROR)  # empty non-terminal: NODATA
                node = self.wildcard(key)
                if node is None:
                    return self.negative(w.NXDOMAIN)
            cname = node.get(w.CNAME)
            if cname is None or qtype == w.CNAME:
                return self.from_node(node, owner, qtype)
            res.answer.append(cname[0].with_name(owner))
            owner = cname[0].data.target
            if not w.is_subdomain(owner, zone.origin):
                return self.finish(with_ns=False)  # as NSD does: the answer now belongs elsewhere
            if owner.lower() in seen:
                return self.finish(with_ns=False)
        return self.finish()

    def find_cut(self, key: str):
        """The highest delegation point at or above ``key`` (below the apex), if any."""
        cuts = self.zone.cuts
        if not cuts:
            return None
        found, name, apex = None, key, self.zone.key
        while name != apex:
            if name in cuts:
                found = name
            name = _parent(name)
        return found

    def wildcard(self, key: str):
        """RFC 4592: the node ``*.<closest encloser>`` if it exists."""
        zone, name = self.zone, _parent(key)
        while name not in zone.existing:
            name = _parent(name)
        return zone.nodes.get("*." + name if name != "." else "*.")

    def from_node(self, node: dict, owner: str, qtype: int) -> Answer:
        res = self.result
        if qtype == w.ANY:
            rrsets = list(node.values())
        else:
            rrsets = [node[qtype]] if qtype in node else []
        if not rrsets:
            return self.negative(w.NOERROR)
        for rrset in rrsets:
            res.answer.extend(rr.with_name(owner) for rr in rrset)
        return self.finish()

    def finish(self, with_ns: bool = True) -> Answer:
        """Additional addresses for MX and SRV targets; in full responses (NSD's), the zone's NS
        set in authority (unless the answer is that set) and its servers' addresses."""
        res = self.result
        answer = res.answer
        for rr in answer:
            if rr.rtype in _NEEDS_ADDRESSES:
                self.add_addresses(rr.data.names()[0], in_zone_only=True)
        if self.minimal or not with_ns:
            return res
        _, ns_set, ns_addresses = self.apex
        apex = self.zone.key
        if not any(rr.rtype == w.NS and rr.name.lower() == apex for rr in answer):
            res.authority.extend(ns_set)
        additional = res.additional
        owners = {rr.name.lower() for rr in answer if rr.rtype in (w.A, w.AAAA)}
        if additional:
            owners.update(rr.name.lower() for rr in additional)
        for rr in ns_addresses:
            if owners and rr.name.lower() in owners and (_among(rr, answer) or _among(rr, additional)):
                continue
            additional.append(rr)
        return res

    def negative(self, rcode: int) -> Answer:
        res, soa = self.result, self.zone.soa
        res.rcode = rcode
        res.authority.append(soa.with_ttl(min(soa.ttl, soa.data.minimum)))  # RFC 2308 section 3
        return res

    def referral(self, cut: str) -> None:
        res, zone = self.result, self.zone
        res.aa = bool(res.answer)
        ns_set = zone.nodes[cut][w.NS]
        res.authority.extend(ns_set)
        for rr in ns_set:
            self.add_addresses(rr.data.target, in_zone_only=False)

    def add_addresses(self, target: str, in_zone_only: bool) -> None:
        """Glue for a referral; for answers, only addresses this zone is authoritative for."""
        zone, key = self.zone, target.lower()
        if not w.is_subdomain(key, zone.key) or (in_zone_only and self.find_cut(key) is not None):
            return
        node = zone.nodes.get(key, {})
        additional = self.result.additional
        for rtype in (w.A, w.AAAA):
            for rr in node.get(rtype, ()):
                if not _among(rr, additional) and not _among(rr, self.result.answer):
                    additional.append(rr)


_NEEDS_ADDRESSES = frozenset((w.MX, w.SRV))


def _among(rr: w.Record, records) -> bool:
    key = (rr.name.lower(), rr.rtype, rr.data)
    return any((x.name.lower(), x.rtype, x.data) == key for x in records)
