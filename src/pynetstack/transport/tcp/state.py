"""The TCP states (RFC 9293 3.3.2) and the transitions between them (RFC 9293 figure 5).

A state is one of eleven interned strings, named as the RFC names them: the rest of the stack
(socket API, services, ``ss``-like listings, the CLI) compares and prints them as they are, and
comparing interned strings is as fast as it gets on the per-segment path.  ``TRANSITIONS`` is
the diagram as a table; ``check_transition`` refuses any move the diagram does not draw, so a
bug shows up as an error where it happens instead of a connection in a state it cannot be in.
"""

from __future__ import annotations

CLOSED = "CLOSED"
LISTEN = "LISTEN"
SYN_SENT = "SYN-SENT"
SYN_RECEIVED = "SYN-RECEIVED"
ESTABLISHED = "ESTABLISHED"
FIN_WAIT_1 = "FIN-WAIT-1"
FIN_WAIT_2 = "FIN-WAIT-2"
CLOSE_WAIT = "CLOSE-WAIT"
CLOSING = "CLOSING"
LAST_ACK = "LAST-ACK"
TIME_WAIT = "TIME-WAIT"
STATES = (CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT,
          CLOSING, LAST_ACK, TIME_WAIT)

# RFC 9293 figure 5, plus what the RFC's text allows beside the figure: ABORT and timeouts
# lead to CLOSED from anywhere; a SYN cookie's ACK goes from LISTEN straight to ESTABLISHED
# (RFC 4987 3.6); RST in SYN-RECEIVED goes back to LISTEN, which for us is CLOSED of the
# connection (the listener itself stays).
TRANSITIONS = {
    CLOSED: frozenset((LISTEN, SYN_SENT)),
    LISTEN: frozenset((SYN_RECEIVED, ESTABLISHED, CLOSED)),
    SYN_SENT: frozenset((SYN_RECEIVED, ESTABLISHED, CLOSED)),
    SYN_RECEIVED: frozenset((ESTABLISHED, FIN_WAIT_1, CLOSE_WAIT, CLOSED)),
    ESTABLISHED: frozenset((FIN_WAIT_1, CLOSE_WAIT, CLOSED)),
    FIN_WAIT_1: frozenset((FIN_WAIT_2, CLOSING, TIME_WAIT, CLOSED)),
    FIN_WAIT_2: frozenset((TIME_WAIT, CLOSED)),
    CLOSE_WAIT: frozenset((LAST_ACK, CLOSED)),
    CLOSING: frozenset((TIME_WAIT, CLOSED)),
    LAST_ACK: frozenset((CLOSED,)),
    TIME_WAIT: frozenset((CLOSED,)),
}

# groups of states that the connection asks about
SYNCHRONIZED = frozenset((ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT))
CAN_SEND_DATA = frozenset((ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK))
RECEIVES_DATA = frozenset((ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2))
USER_CAN_SEND = frozenset((SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT))
KEEPALIVE_STATES = frozenset((ESTABLISHED, CLOSE_WAIT))


class TcpStateError(ValueError):
    """A transition the RFC 9293 state diagram does not allow."""

    def __init__(self, old: str, new: str, why: str = ""):
        reason = f" ({why})" if why else ""
        super().__init__(f"impossible TCP state transition {old} -> {new}{reason}")
        self.old = old
        self.new = new


def check_transition(old: str, new: str, why: str = "") -> None:
    """Raise ``TcpStateError`` unless ``old -> new`` is an edge of the state diagram."""
    allowed = TRANSITIONS.get(old)
    if allowed is None or new not in allowed:
        if old not in TRANSITIONS or new not in TRANSITIONS:
            raise TcpStateError(old, new, why or "not a TCP state")
        raise TcpStateError(old, new, why)
