"""What the sans-I/O resolver and its front ends pass between them: ``Exchange`` (one query to
one server, for the front end to carry), ``Resolution`` (a client question in progress) and
``Result`` (its outcome)."""
from __future__ import annotations

from ..wire import dns as w


class Result:
    """A resolution's outcome: rcode, the answer records (CNAME chain first) and the authority."""

    __slots__ = ("rcode", "answers", "authority")

    def __init__(self, rcode=w.NOERROR, answers=None, authority=None):
        self.rcode = rcode
        self.answers = answers if answers is not None else []
        self.authority = authority if authority is not None else []

    def values(self, rtype: int | None = None):
        """The presentation text of each answer's data, e.g. ``["192.0.2.1"]``."""
        return [rr.data.to_text() for rr in self.answers if rtype is None or rr.rtype == rtype]

    def __repr__(self):
        return f"Result({w.RCODE_NAMES.get(self.rcode, self.rcode)}, {self.answers})"


class ResolutionFailed(Exception):
    pass


class Exchange:
    """One query to one server, for the front end to carry: send ``wire`` to ``server`` over
    UDP or (``tcp``) TCP, then ``receive`` the reply. ``io`` is the front end's own (a port,
    a connection); ``closed`` once answered or timed out."""

    __slots__ = ("wire", "server", "tcp", "qid", "qname", "qtype", "timeout", "sent_at", "deadline",
                 "task", "closed", "io")

    def __init__(self, wire, server, tcp, qid, qname, qtype, timeout):
        self.wire, self.server, self.tcp, self.qid = wire, server, tcp, qid
        self.qname, self.qtype, self.timeout = qname, qtype, timeout
        self.sent_at = self.deadline = 0.0
        self.task = self.io = None
        self.closed = False

    def __repr__(self):
        return (f"Exchange({self.qname} {w.type_name(self.qtype)} -> {self.server[0]}:{self.server[1]}"
                f"{' tcp' if self.tcp else ''}{' closed' if self.closed else ''})")


class Resolution:
    """A client question in progress; ``callbacks`` get its Result."""

    __slots__ = ("key", "gen", "callbacks", "queries", "waiting", "result")

    def __init__(self, key):
        self.key, self.gen, self.callbacks = key, None, []
        self.queries, self.waiting, self.result = 0, None, None
