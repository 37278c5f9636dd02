"""ICMP in conntrack, as Linux's nf_conntrack_proto_icmp has it.

Queries.  The tuple of an ICMP query holds its type, code and id where Linux keeps them: the
id where the source port is, ``type << 8 | code`` where the destination port is, so
``(1, src, id, dst, type << 8 | code)``.  The reply tuple swaps the addresses and turns the
request's type into its answer (echo 8 -> 0, timestamp 13 -> 14, information 15 -> 16, address
mask 17 -> 18); id and code stay.  Only a request opens a connection: an answer without its
request, or an ICMP message of any other type, is invalid.

Errors.  Destination unreachable, source quench, redirect, time exceeded and parameter problem
quote the datagram that caused them, and are RELATED to that datagram's connection.  The quote
travelled the other way, so its tuple inverted is one of the entry's; and, as Linux checks
since 5.1, the error must be addressed to the quote's sender, or any host could aim an error
"related" to someone else's connection at a third host.  An error about an ICMP error is never
related (the quote's tuple cannot be inverted).
"""

from __future__ import annotations

ICMP_QUERY_REPLY = {8: 0, 13: 14, 15: 16, 17: 18}  # request -> answer: the types that open an entry
ICMP_REPLY_TYPES = frozenset(ICMP_QUERY_REPLY.values())
ICMP_INVERSE = {**ICMP_QUERY_REPLY, **{r: q for q, r in ICMP_QUERY_REPLY.items()}}  # Linux's invmap
ICMP_RELATED_ERRORS = frozenset((3, 4, 5, 11, 12))

_from_bytes = int.from_bytes


def query_tuple(src: int, dst: int, payload):
    """The tuple of an ICMP query or answer (``payload``: the ICMP message, 8 bytes or more);
    None for any other type, which no entry can hold."""
    itype = payload[0]
    if itype not in ICMP_INVERSE:
        return None
    return (1, src, (payload[4] << 8) | payload[5], dst, (itype << 8) | payload[1])


def request_reply_tuple(t):
    """The reply tuple of the request tuple ``t``; None when ``t`` is not a request (Linux's
    valid_new: only a request may be the first packet of an ICMP connection)."""
    kind = t[4]
    answer = ICMP_QUERY_REPLY.get(kind >> 8)
    if answer is None:
        return None
    return (1, t[3], t[2], t[1], (answer << 8) | (kind & 0xFF))


def quoted_key(payload, outer_dst: int):
    """For an ICMP error (``payload``: the ICMP message), the tuple to look the connection up by:
    the quoted datagram's tuple inverted.  None when the error cannot be related: quote too
    short or not IPv4, an ICMP quote that is no query or answer, or an error not addressed to
    the quote's sender."""
    if len(payload) < 8 + 20:
        return None
    ihl = (payload[8] & 0x0F) << 2
    if payload[8] >> 4 != 4 or ihl < 20 or len(payload) < 8 + ihl + 8:
        return None
    isrc = _from_bytes(payload[20:24], "big")
    if isrc != outer_dst:
        return None
    idst = _from_bytes(payload[24:28], "big")
    iproto = payload[17]
    l4 = 8 + ihl
    if iproto == 6 or iproto == 17:
        isport = (payload[l4] << 8) | payload[l4 + 1]
        idport = (payload[l4 + 2] << 8) | payload[l4 + 3]
        return (iproto, idst, idport, isrc, isport)
    if iproto == 1:
        inverse = ICMP_INVERSE.get(payload[l4])
        if inverse is None:
            return None
        return (1, idst, (payload[l4 + 4] << 8) | payload[l4 + 5], isrc, (inverse << 8) | payload[l4 + 1])
    return (iproto, idst, 0, isrc, 0)


def format_fields(t) -> str:
    """An ICMP tuple's fields as ``conntrack -L`` prints them after the addresses."""
    kind = t[4]
    return f"type={kind >> 8} code={kind & 0xFF} id={t[2]}"
