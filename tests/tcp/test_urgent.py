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


# -- sending (RFC 9293 3.8.5; as Linux's send(MSG_OOB)) ----------------------------------------

def test_sent_urgent_data_points_after_its_last_byte_until_acknowledged():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.sent()
    conn.send(b"abc!", rig.now, urgent=True)
    seg = rig.one()
    assert seg.flags & T.URG and seg.urgent == 4 and bytes(seg.payload) == b"abc!"  # the octet after "!"
    rig.inject(T.ACK, P, iss + 1 + 4)  # the peer has it all: urgent mode ends
    conn.send(b"more", rig.now)
    seg = rig.one()
    assert not seg.flags & T.URG and seg.urgent == 0 and conn.snd_up is None


def test_every_segment_before_the_mark_carries_it_and_so_does_a_retransmission():
    rig = Rig()
    conn, iss = rig.passive_open()  # MSS 1460
    rig.sent()
    conn.send(b"x" * 3000, rig.now, urgent=True)
    segs = rig.sent()[:2]
    assert [s.urgent for s in segs] == [3000, 1540] and all(s.flags & T.URG for s in segs)
    rig.run_until(rig.now + 5)  # no ACK: the retransmission timeout sends the first again
    again = rig.sent()[0]
    assert again.seq == segs[0].seq and again.flags & T.URG and again.urgent == 3000
    rig.inject(T.ACK, P, iss + 1 + 2920)  # the first two arrive: the last 80 bytes go
    last = [s for s in rig.sent() if len(s.payload)][-1]
    assert len(last.payload) == 80 and last.flags & T.URG and last.urgent == 80


def test_a_mark_beyond_64_kb_is_sent_as_0xffff():
    rig = Rig()
    conn, iss = rig.passive_open(win=65535)
    rig.sent()
    conn.send(b"y" * 100_000, rig.now, urgent=True)
    first = rig.sent()[0]
    assert first.flags & T.URG and first.urgent == 0xFFFF


def test_the_socket_api_takes_msg_oob_and_refuses_other_flags():
    import socket

    import pytest

    from pynetstack.api.tcp import TcpSocket
    from pynetstack.stack import Stack

    sock = TcpSocket(Stack())
    with pytest.raises(OSError) as err:
        sock.send(b"x", socket.MSG_PEEK)
    assert err.value.errno == 95 and "MSG_OOB" in str(err.value)
