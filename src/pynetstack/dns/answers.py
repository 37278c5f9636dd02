"""Reading an upstream reply for the resolver: is it an answer, a referral, what chain of
CNAMEs and DNAMEs (RFC 6672) answers the question, and which records may be cached together.

Pure functions of the reply, so the resolver's state machine stays about the state.
"""
from __future__ import annotations

from ..wire import dns as w
from ..wire.errors import MalformedPacket

DNAME = 39
MAX_CHAIN = 12


def usable(reply: w.Message, zone: str, qname: str) -> bool:
    """A reply we can act on: an answer, a negative answer, or a referral closer to qname."""
    if reply.rcode not in (w.NOERROR, w.NXDOMAIN):
        return False  # SERVFAIL, REFUSED, ...: a lame or broken server, try another
    if reply.aa or reply.answer or reply.rcode == w.NXDOMAIN:
        return True
    return referral_zone(reply, zone, qname) is not None or soa_in(reply, zone) is not None


def referral_zone(reply: w.Message, zone: str, qname: str):
    """The child zone a referral points to, if this reply is a downward referral."""
    if reply.aa or reply.answer or reply.rcode != w.NOERROR:
        return None
    for rr in reply.authority:
        if rr.rtype == w.NS:
            child = rr.name.lower()
            if child != zone and w.is_subdomain(child, zone) and w.is_subdomain(qname, child):
                return child
    return None


def soa_in(reply: w.Message, zone: str):
    for rr in reply.authority:
        if rr.rtype == w.SOA and w.is_subdomain(rr.name, zone):
            return rr
    return None


def answers_type(records, qtype: int) -> bool:
    return any(rr.rtype == qtype or qtype == w.ANY for rr in records)


def chain_from_reply(answer, qname: str, qtype: int, zone: str) -> list:
    """The records answering qname, in order: CNAMEs followed, DNAMEs passed on with the CNAME
    they synthesise (RFC 6672 section 3.4), only owners within ``zone``, no name visited twice
    (a loop ends the chain at the CNAME that closes it)."""
    out, name, seen = [], qname.lower(), set()
    dnames = [rr for rr in answer if rr.rtype == DNAME]
    for _ in range(MAX_CHAIN):
        if name in seen or not w.is_subdomain(name, zone):
            break
        seen.add(name)
        if dnames and qtype != DNAME:
            step = _through_dname(answer, dnames, name, zone)
            if step is not None:
                out.extend(step)
                name = step[1].data.target.lower()
                continue
        matches = [rr for rr in answer if rr.name.lower() == name
                   and (rr.rtype == qtype or qtype == w.ANY or rr.rtype == w.CNAME)]
        if not matches:
            break
        out.extend(matches)
        cname = [rr for rr in matches if rr.rtype == w.CNAME]
        if not cname or qtype in (w.CNAME, w.ANY):
            break
        name = cname[0].data.target.lower()
    return out


def _through_dname(answer, dnames, name: str, zone: str):
    """[DNAME, CNAME] when a DNAME in ``answer`` covers ``name`` (strictly below its owner)."""
    for dname in dnames:
        owner = dname.name.lower()
        if owner == name or not w.is_subdomain(name, owner) or not w.is_subdomain(owner, zone):
            continue
        target = dname_target(dname)
        if target is None:
            continue
        synthesised = substitute(name, owner, target)
        if synthesised is None:
            continue  # too long for a name: RFC 6672 YXDOMAIN; we take it as no answer
        for rr in answer:  # keep the server's CNAME (and its spelling) when it is the right one
            if rr.rtype == w.CNAME and rr.name.lower() == name and rr.data.target.lower() == synthesised.lower():
                return [dname, rr]
        return [dname, w.Record(name, w.CNAME, w.IN, dname.ttl, w.CNAMERdata(synthesised))]
    return None


def dname_target(rr: w.Record):
    """The target name of a DNAME record (kept by the codec as opaque data, uncompressed)."""
    data = getattr(rr.data, "data", None)
    if data is None:
        return None
    try:
        target, end = w.read_name(data, 0)
    except MalformedPacket:
        return None
    return target if end == len(data) else None


def substitute(name: str, owner: str, target: str):
    """``name`` with its ``owner`` suffix replaced by ``target``; None if that is too long."""
    keep = w.name_labels(name)[:len(w.name_labels(name)) - len(w.name_labels(owner))]
    labels = tuple(keep) + tuple(w.name_labels(target))
    if sum(len(label) + 1 for label in labels) + 1 > w.MAX_NAME:
        return None
    return w.labels_to_name(labels)


def group_rrsets(records) -> list:
    """Split records into RRsets (same owner and type), keeping first-seen order."""
    groups = {}
    for rr in records:
        groups.setdefault((rr.name.lower(), rr.rtype), []).append(rr)
    return list(groups.values())


def cache_groups(chain) -> list:
    """(key, records) to cache: RRsets under (owner, type), and a CNAME synthesised from a DNAME
    stored with its DNAME under (owner, CNAME), so a cached answer passes the DNAME on too."""
    out, i, rest = [], 0, []
    while i < len(chain):
        rr = chain[i]
        if rr.rtype == DNAME and i + 1 < len(chain) and chain[i + 1].rtype == w.CNAME:
            cname = chain[i + 1]
            out.append(((cname.name.lower(), w.CNAME), [rr, cname]))
            i += 2
            continue
        rest.append(rr)
        i += 1
    out.extend(((g[0].name.lower(), g[0].rtype), g) for g in group_rrsets(rest))
    return out


def unique(records) -> list:
    """The records without repeats (same owner, type and data), first occurrence kept."""
    seen, out = set(), []
    for rr in records:
        key = (rr.name.lower(), rr.rtype, rr.data)
        if key not in seen:
            seen.add(key)
            out.append(rr)
    return out
