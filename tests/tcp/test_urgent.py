"""Urgent data (RFC 9293 3.8.5 and step 6 of 3.10.7.4; RFC 6093): the urgent pointer marks the
octet after the urgent data (MUST-31); the data stays in the stream, in order, as SO_OOBINLINE
keeps it (RFC 6093's advice); the application hears when the pointer moves ahead of what it has
read and can ask how much of the stream up to the mark remains (MUST-32)."""

from __future__ import annotations

from pynetstack.wire import tcp as T

from .rig import PEER_ISN, Rig

P = PEER_ISN + 1


def test_the_urgent_pointer_marks_the_end_of_urgent_data_in_the_stream():
    rig = Rig()
    conn, iss = rig.passive_open()
    assert conn.urgent_remaining() == 0
    rig.inject(T.ACK | T.PSH, P, iss + 1, b"hello")
    rig.events.clear()
    rig.inject(T.ACK | T.PSH | T.URG, P + 5, iss + 1, b"abc!", urgent=4)  # urgent data ends after "!"
    assert "urgent" in rig.events
    assert conn.urgent_remaining() == 9  # "hello" and "abc!" are read before the mark
    assert conn.recv(7, rig.now) == b"helloab"
    assert conn.urgent_remaining() == 2
    assert conn.recv(100, rig.now) == b"c!"  # in line: nothing was taken out of the stream
    assert conn.urgent_remaining() == 0


def test_only_a_pointer_that_moves_ahead_is_signalled_again():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK | T.URG, P, iss + 1, b"ab", urgent=2)
    assert rig.events.count("urgent") == 1
    rig.inject(T.ACK | T.URG, P + 2, iss + 1, b"cd", urgent=0)  # the same mark again (P + 2)
    rig.inject(T.ACK, P + 4, iss + 1, b"ef")  # no URG: the mark stays where it is
    assert rig.events.count("urgent") == 1 and conn.urgent_remaining() == 2
    rig.inject(T.ACK | T.URG, P + 6, iss + 1, b"gh", urgent=2)  # the mark moves ahead: signalled
    assert rig.events.count("urgent") == 2 and conn.urgent_remaining() == 8
    assert conn.recv(100, rig.now) == b"abcdefgh" and conn.urgent_remaining() == 0


def test_a_pointer_past_the_data_counts_data_still_to_come():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK | T.URG, P, iss + 1, b"xy", urgent=1000)  # urgent data not all here yet
    assert conn.urgent_remaining() == 1000
    assert conn.recv(100, rig.now) == b"xy" and conn.urgent_remaining() == 998
    rig.inject(T.ACK, P + 2, iss + 1, b"z" * 998)
    assert conn.recv(2000, rig.now) == b"z" * 998 and conn.urgent_remaining() == 0


def test_a_mark_already_read_is_not_signalled_and_urg_after_fin_is_ignored():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK, P, iss + 1, b"abcd")
    assert conn.recv(100, rig.now) == b"abcd"
    rig.events.clear()
    rig.inject(T.ACK | T.URG, P + 4, iss + 1, b"", urgent=0)  # a mark at what was read: nothing pending
    assert "urgent" not in rig.events and conn.urgent_remaining() == 0
    rig.inject(T.ACK | T.FIN, P + 4, iss + 1)
    assert conn.state == "CLOSE-WAIT"
    rig.inject(T.ACK | T.URG, P + 5, iss + 1, b"", urgent=10)  # CLOSE-WAIT: step 6 ignores the URG
    assert "urgent" not in rig.events and conn.urgent_remaining() == 0


def test_a_fin_after_the_urgent_data_does_not_move_the_mark():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK | T.URG, P, iss + 1, b"abc!", urgent=4)
    rig.inject(T.ACK | T.FIN, P + 4, iss + 1)  # the FIN counts in RCV.NXT, not in the stream
    assert conn.urgent_remaining() == 4
    assert conn.recv(100, rig.now) == b"abc!" and conn.urgent_remaining() == 0
