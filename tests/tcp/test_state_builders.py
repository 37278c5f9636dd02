"""One builder per TCP state (rig.py) and, for each state, its characteristic events with the
whole emitted segment compared: every field, every option."""

import pytest

from pynetstack.wire import tcp as T

from . import rig as R

P = R.PEER_ISN + 1  # the peer's first data sequence number
BUILDERS = {"SYN-SENT": R.syn_sent, "SYN-RECEIVED": R.syn_received, "ESTABLISHED": R.established,
            "FIN-WAIT-1": R.fin_wait_1, "FIN-WAIT-2": R.fin_wait_2, "CLOSING": R.closing,
            "TIME-WAIT": R.time_wait, "CLOSE-WAIT": R.close_wait, "LAST-ACK": R.last_ack}


@pytest.mark.parametrize("state", list(BUILDERS))
def test_builder_reaches_its_state_quietly(state):
    rig, conn = BUILDERS[state]()
    assert conn.state == state and rig.sent() == []
    assert [entry[2] for entry in conn.log][-1] == state


def test_syn_sent_retransmits_the_whole_syn():
    rig, conn = R.syn_sent()
    rig.run_until(rig.now + 1.0)  # rto_initial
    rig.expect(conn, T.SYN, seq=conn.iss, ack=0, window=65535,
               options=dict(mss=1460, wscale=5, sack_permitted=True, ts_val=conn._ts_now(rig.now), ts_ecr=0))


def test_syn_received_answers_a_repeated_syn_with_the_same_synack():
    rig, conn = R.syn_received()
    rig.inject(T.SYN, R.PEER_ISN, mss=1460)
    rig.expect(conn, T.SYN | T.ACK, seq=conn.iss, ack=P, window=65535, options=dict(mss=1460))
    assert conn.state == "SYN-RECEIVED"


def test_established_data_is_acked_by_the_delayed_ack_timer():
    rig, conn = R.established()
    rig.inject(T.ACK | T.PSH, P, conn.snd_nxt, b"hello")
    rig.none()
    rig.advance(0.04)
    rig.expect(conn, T.ACK, ack=P + 5, window=65535)  # 1 MB buffer, no window scaling: capped
    assert conn.recv(100, rig.now) == b"hello"


def test_established_sends_data_as_one_whole_segment():
    rig, conn = R.established()
    seq = conn.snd_nxt
    conn.send(b"x" * 100, rig.now)
    rig.expect(conn, T.ACK | T.PSH, seq=seq, ack=P, window=65535, payload=b"x" * 100)


def test_fin_wait_1_ack_of_fin_goes_to_fin_wait_2_silently():
    rig, conn = R.fin_wait_1()
    rig.inject(T.ACK, P, conn.snd_max)
    rig.none()
    assert conn.state == "FIN-WAIT-2"


def test_fin_wait_1_retransmits_the_fin():
    rig, conn = R.fin_wait_1()
    rig.run_until(conn.timers.rexmit)
    rig.expect(conn, T.ACK | T.FIN, seq=conn.snd_max - 1, ack=P, window=65535)


def test_fin_wait_2_fin_is_acked_and_time_wait_begins():
    rig, conn = R.fin_wait_2()
    rig.inject(T.FIN | T.ACK, P, conn.snd_max)
    rig.expect(conn, T.ACK, ack=P + 1, window=65535)
    assert conn.state == "TIME-WAIT" and conn.timers.linger == rig.now + 60.0


def test_closing_ack_of_fin_goes_to_time_wait():
    rig, conn = R.closing()
    rig.inject(T.ACK, P + 1, conn.snd_max)
    rig.none()
    assert conn.state == "TIME-WAIT"


def test_time_wait_acks_a_retransmitted_fin_and_closes_after_2msl():
    rig, conn = R.time_wait()
    rig.advance(10.0)
    rig.inject(T.FIN | T.ACK, P, conn.snd_max)
    rig.expect(conn, T.ACK, ack=P + 1, window=65535)
    assert conn.timers.linger == rig.now + 60.0  # restarted
    rig.run_until(rig.now + 60.0)
    assert conn.state == "CLOSED" and rig.sent() == []


def test_close_wait_close_sends_the_whole_fin():
    rig, conn = R.close_wait()
    seq = conn.snd_nxt
    conn.close(rig.now)
    rig.expect(conn, T.ACK | T.FIN, seq=seq, ack=P + 1, window=65535)
    assert conn.state == "LAST-ACK"


def test_last_ack_ack_of_fin_closes():
    rig, conn = R.last_ack()
    rig.inject(T.ACK, P + 1, conn.snd_max)
    rig.none()
    assert conn.state == "CLOSED" and not rig.layer.connections


@pytest.mark.parametrize("state", ["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK"])
def test_abort_in_a_synchronized_state_sends_the_whole_rst(state):
    rig, conn = BUILDERS[state]()
    seq, ack = conn.snd_nxt, conn.rcv_nxt
    conn.abort(rig.now)
    rig.expect(conn, T.RST | T.ACK, seq=seq, ack=ack, window=0, options=dict(ts_val=None, ts_ecr=0))
    assert conn.state == "CLOSED"
