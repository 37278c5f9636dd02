"""The state diagram as a table (RFC 9293 figure 5), on its own: every drawn edge is allowed,
every other move is refused with TcpStateError, and every state can reach CLOSED."""

import itertools

import pytest

from pynetstack.transport.tcp import state as S
from pynetstack.transport.tcp import TcpStateError

# RFC 9293 figure 5, edge by edge (event: what moves the connection)
DRAWN = {
    (S.CLOSED, S.LISTEN),             # passive OPEN
    (S.CLOSED, S.SYN_SENT),           # active OPEN / snd SYN
    (S.LISTEN, S.SYN_RECEIVED),       # rcv SYN / snd SYN,ACK
    (S.LISTEN, S.CLOSED),             # CLOSE
    (S.SYN_SENT, S.SYN_RECEIVED),     # rcv SYN (simultaneous open)
    (S.SYN_SENT, S.ESTABLISHED),      # rcv SYN,ACK / snd ACK
    (S.SYN_SENT, S.CLOSED),           # CLOSE
    (S.SYN_RECEIVED, S.ESTABLISHED),  # rcv ACK of SYN
    (S.SYN_RECEIVED, S.FIN_WAIT_1),   # CLOSE / snd FIN
    (S.ESTABLISHED, S.FIN_WAIT_1),    # CLOSE / snd FIN
    (S.ESTABLISHED, S.CLOSE_WAIT),    # rcv FIN / snd ACK
    (S.FIN_WAIT_1, S.FIN_WAIT_2),     # rcv ACK of FIN
    (S.FIN_WAIT_1, S.CLOSING),        # rcv FIN / snd ACK
    (S.FIN_WAIT_2, S.TIME_WAIT),      # rcv FIN / snd ACK
    (S.CLOSE_WAIT, S.LAST_ACK),       # CLOSE / snd FIN
    (S.CLOSING, S.TIME_WAIT),         # rcv ACK of FIN
    (S.LAST_ACK, S.CLOSED),           # rcv ACK of FIN
    (S.TIME_WAIT, S.CLOSED),          # timeout = 2 MSL
}
# beside the figure: RFC 9293's text and RFC 4987 (see state.py)
TEXT = {
    (S.LISTEN, S.ESTABLISHED),        # the ACK of a SYN cookie
    (S.SYN_RECEIVED, S.CLOSE_WAIT),   # a FIN in SYN-RECEIVED (3.10.7.4 step 8)
    (S.FIN_WAIT_1, S.TIME_WAIT),      # FIN and the ACK of our FIN in one segment
}
ABORTS = {(s, S.CLOSED) for s in S.STATES if s != S.CLOSED}  # ABORT, RST, timeouts


def test_the_table_is_exactly_the_diagram():
    table = {(old, new) for old, targets in S.TRANSITIONS.items() for new in targets}
    assert table == DRAWN | TEXT | ABORTS
    assert set(S.TRANSITIONS) == set(S.STATES)


@pytest.mark.parametrize("old,new", sorted(itertools.product(S.STATES, S.STATES)))
def test_every_pair_is_allowed_or_refused(old, new):
    if (old, new) in DRAWN | TEXT | ABORTS:
        S.check_transition(old, new)
    else:
        with pytest.raises(TcpStateError) as info:
            S.check_transition(old, new, "test")
        assert f"{old} -> {new}" in str(info.value) and isinstance(info.value, ValueError)


def test_unknown_states_are_refused():
    with pytest.raises(TcpStateError, match="not a TCP state"):
        S.check_transition("ESTABLISHED", "HALF-OPEN")
    with pytest.raises(TcpStateError, match="not a TCP state"):
        S.check_transition("established", S.CLOSED)


def test_every_state_reaches_closed_and_every_state_is_reachable():
    reach = {S.CLOSED}
    frontier = [S.CLOSED]
    while frontier:
        for new in S.TRANSITIONS[frontier.pop()]:
            if new not in reach:
                reach.add(new)
                frontier.append(new)
    assert reach == set(S.STATES)
    assert all(S.CLOSED in S.TRANSITIONS[s] for s in S.STATES if s != S.CLOSED)


def test_a_connection_refuses_an_impossible_transition():
    from .rig import Rig
    rig = Rig()
    conn, _ = rig.active_open()
    with pytest.raises(TcpStateError):
        conn._set_state(S.LAST_ACK, rig.now, "bug")
    assert conn.state == S.ESTABLISHED and conn.log[-1][2] == S.ESTABLISHED
