"""RFC 9293 state machine: one connection driven with crafted segments on a virtual clock;
each test asserts exactly what the connection emits and which state it is in."""

import pytest

from pynetstack.transport.tcp import connection
from pynetstack.wire import tcp as T

from .rig import LPORT, PEER_ISN, PPORT, Rig

P = PEER_ISN + 1  # the peer's first data sequence number


# ---------------------------------------------------------------------------------- CLOSED


def test_closed_port_ack_gets_rst_with_seq_from_ack():
    rig = Rig()
    rig.inject(T.ACK, 5000, 7777)
    rst = rig.one()
    assert rst.flags == T.RST and rst.seq == 7777
    assert rig.layer.drops["no-socket"] == 1


def test_closed_port_syn_gets_rst_ack():
    rig = Rig()
    rig.inject(T.SYN, 5000, payload=b"abc")
    rst = rig.one()
    assert rst.flags == T.RST | T.ACK and rst.seq == 0 and rst.ack == 5000 + 3 + 1


def test_closed_port_rst_is_ignored():
    rig = Rig()
    rig.inject(T.RST, 5000)
    rig.none()


def test_malformed_segment_is_counted_not_raised():
    rig = Rig()
    raw = bytearray(T.build_tcp(2, 1, 1, 80, 0, 0, T.SYN, 0))
    raw[0] ^= 0xFF  # checksum now wrong
    from pynetstack.wire.ipv4 import IPv4
    rig.layer.receive(IPv4(2, 1, 6, memoryview(bytes(raw))), rig.now)
    assert rig.layer.drops["tcp-bad-checksum"] == 1
    rig.none()


# ---------------------------------------------------------------------------------- LISTEN


def test_listen_syn_answers_synack_mirroring_options():
    rig = Rig()
    rig.listen()
    rig.inject(T.SYN, PEER_ISN, mss=1400, wscale=7, sack_permitted=True, ts=(111, 0))
    sa = rig.one()
    assert sa.flags == T.SYN | T.ACK and sa.ack == PEER_ISN + 1
    assert sa.mss == 1460 and sa.wscale == 5 and sa.sack_permitted and sa.ts_ecr == 111
    conn = next(iter(rig.layer.connections.values()))
    assert conn.state == "SYN-RECEIVED"
    assert [e[1:3] for e in conn.log] == [("CLOSED", "LISTEN"), ("LISTEN", "SYN-RECEIVED")]


def test_listen_syn_without_options_gets_only_mss():
    rig = Rig()
    rig.listen()
    rig.inject(T.SYN, PEER_ISN)
    sa = rig.one()
    assert sa.mss == 1460 and sa.wscale is None and not sa.sack_permitted and sa.ts_val is None
    conn = next(iter(rig.layer.connections.values()))
    assert conn.mss == 536  # RFC 9293: default send MSS without the option


def test_listen_ack_gets_rst_and_rst_is_ignored():
    rig = Rig()
    rig.listen()
    rig.inject(T.ACK, 5, 99)
    assert rig.one().flags == T.RST
    rig.inject(T.RST, 5)
    rig.none()


def test_isn_differs_per_tuple_and_advances_with_time():
    rig = Rig()
    a = rig.layer.isn((1, 2, 3, 4), 10.0)
    b = rig.layer.isn((1, 2, 3, 5), 10.0)
    assert a != b
    assert (rig.layer.isn((1, 2, 3, 4), 11.0) - a) & 0xFFFFFFFF == 250000  # 4 us clock


def test_ephemeral_ports_follow_rfc6056_algorithm_3():
    """A keyed offset per destination plus a counter that moves with every port tried: the next
    connect to the same destination takes the next port (one try each, not a scan past every
    port already taken), another destination starts somewhere else, and a port in use is skipped."""
    rig = Rig()
    ports = [rig.layer.connect(0x0A000002, 80, rig.now).local_port for _ in range(500)]
    low, high = rig.layer.config.ephemeral_ports
    span = high - low + 1
    assert all((b - a) % span == 1 for a, b in zip(ports, ports[1:]))
    assert rig.layer._next_ephemeral == 500  # one port tried per connect
    other = rig.layer.connect(0x0A000003, 80, rig.now).local_port
    assert other not in ports[-3:]
    listener_port = low + (ports[-1] - low + 2) % span
    rig.layer.listen(listener_port)  # taken by a listener: skipped
    assert rig.layer.connect(0x0A000002, 80, rig.now).local_port == low + (ports[-1] - low + 3) % span


# ---------------------------------------------------------------------------------- SYN-SENT


def test_connect_sends_syn_with_all_options():
    rig = Rig()
    conn = rig.layer.connect(0x0A000002, 80, rig.now)
    syn = rig.one()
    assert syn.flags == T.SYN and syn.mss == 1460 and syn.wscale == 5 and syn.sack_permitted
    assert syn.ts_val is not None and syn.ts_ecr == 0 and syn.window == 65535
    assert conn.state == "SYN-SENT"


def test_synack_establishes_and_negotiates():
    rig = Rig()
    conn, iss = rig.active_open(mss=1200, wscale=2, sack_permitted=True, ts=5000)
    assert conn.ts_ok and conn.sack_ok and conn.ws_ok and conn.snd_wscale == 2
    assert conn.mss == 1200 - 12
    assert conn.snd_wnd == 65535 << 2


def test_synack_with_bad_ack_gets_rst_and_stays():
    rig = Rig()
    conn = rig.layer.connect(0x0A000002, 80, rig.now)
    syn = rig.one()
    rig.inject(T.SYN | T.ACK, PEER_ISN, syn.seq + 5, sport=LPORT, dport=conn.local_port)
    rst = rig.one()
    assert rst.flags == T.RST and rst.seq == (syn.seq + 5) & 0xFFFFFFFF
    assert conn.state == "SYN-SENT"


def test_rst_with_acceptable_ack_refuses():
    rig = Rig()
    conn = rig.layer.connect(0x0A000002, 80, rig.now)
    syn = rig.one()
    rig.inject(T.RST | T.ACK, 0, syn.seq + 1, sport=LPORT, dport=conn.local_port)
    assert conn.state == "CLOSED" and isinstance(conn.error, ConnectionRefusedError)
    assert not rig.layer.connections


def test_rst_without_ack_in_syn_sent_ignored():
    rig = Rig()
    conn = rig.layer.connect(0x0A000002, 80, rig.now)
    rig.sent()
    rig.inject(T.RST, 0, sport=LPORT, dport=conn.local_port)
    assert conn.state == "SYN-SENT"


def test_syn_retransmission_backoff_and_timeout():
    rig = Rig(syn_retries=3)
    conn = rig.layer.connect(0x0A000002, 80, rig.now)
    t0 = rig.now
    rig.sent()
    times = []
    rig.run_until(t0 + 100)
    # run_until fires each deadline; collect emission times by replaying
    assert conn.state == "CLOSED" and isinstance(conn.error, TimeoutError)
    rig2 = Rig(syn_retries=3)
    rig2.layer.connect(0x0A000002, 80, rig2.now)
    rig2.sent()
    t0 = rig2.now
    while rig2.layer.next_deadline() is not None:
        rig2.now = rig2.layer.next_deadline()
        rig2.layer.poll(rig2.now)
        if rig2.sent():
            times.append(round(rig2.now - t0, 6))
    assert times == [1.0, 3.0, 7.0]  # RTO 1 s, doubled each time (RFC 6298 5.5)


def test_simultaneous_open():
    rig = Rig()
    conn = rig.layer.connect(0x0A000002, 80, rig.now)
    syn = rig.one()
    rig.inject(T.SYN, PEER_ISN, sport=LPORT, dport=conn.local_port, mss=1460)
    sa = rig.one()
    assert conn.state == "SYN-RECEIVED"
    assert sa.flags == T.SYN | T.ACK and sa.seq == syn.seq and sa.ack == PEER_ISN + 1
    # the peer's SYN-ACK is old in sequence space: we answer with an ACK
    rig.inject(T.SYN | T.ACK, PEER_ISN, syn.seq + 1, sport=LPORT, dport=conn.local_port, mss=1460)
    assert rig.one().flags == T.ACK
    rig.inject(T.ACK, P, syn.seq + 1, sport=LPORT, dport=conn.local_port)
    assert conn.state == "ESTABLISHED"
    assert [e[2] for e in conn.log] == ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"]


def test_icmp_port_unreachable_in_syn_sent_refuses():
    rig = Rig()
    conn = rig.layer.connect(0x0A000002, 80, rig.now)
    syn = rig.one()
    from pynetstack.wire.ipv4 import IPv4
    inner = IPv4(0x0A000001, 0x0A000002, 6)
    quote = T.build_tcp(0x0A000001, 0x0A000002, conn.local_port, 80, syn.seq, 0, T.SYN, 0)[:8]
    rig.layer.icmp_error(3, 3, 0, inner, quote, rig.now)
    assert conn.state == "CLOSED" and isinstance(conn.error, ConnectionRefusedError)


# ---------------------------------------------------------------------------------- SYN-RECEIVED


def test_syn_received_ack_establishes_into_accept_queue():
    rig = Rig()
    conn, iss = rig.passive_open()
    assert [e[2] for e in conn.log] == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"]
    assert rig.listener.accept() is None


def test_syn_received_bad_ack_gets_rst():
    rig = Rig()
    rig.listen()
    rig.inject(T.SYN, PEER_ISN)
    sa = rig.one()
    rig.inject(T.ACK, P, sa.seq + 1000)
    rst = rig.one()
    assert rst.flags == T.RST and rst.seq == (sa.seq + 1000) & 0xFFFFFFFF
    assert next(iter(rig.layer.connections.values())).state == "SYN-RECEIVED"


def test_syn_received_rst_returns_to_listen():
    rig = Rig()
    rig.listen()
    rig.inject(T.SYN, PEER_ISN)
    rig.one()
    rig.inject(T.RST, P)
    assert not rig.layer.connections and not rig.listener.pending
    rig.inject(T.SYN, PEER_ISN + 5000)  # the listener still works
    assert rig.one().flags == T.SYN | T.ACK


def test_syn_received_retransmitted_syn_gets_synack_again():
    rig = Rig()
    rig.listen()
    rig.inject(T.SYN, PEER_ISN)
    first = rig.one()
    rig.inject(T.SYN, PEER_ISN)
    again = rig.one()
    assert again.flags == T.SYN | T.ACK and again.seq == first.seq


def test_synack_retransmitted_on_timer_then_given_up():
    rig = Rig(synack_retries=2)
    rig.listen()
    rig.inject(T.SYN, PEER_ISN)
    rig.one()
    rig.advance(1.0)
    assert rig.one().flags == T.SYN | T.ACK
    rig.run_until(rig.now + 30)
    assert not rig.layer.connections and not rig.listener.pending


# ---------------------------------------------------------------------------------- ESTABLISHED


def test_data_delayed_ack_then_ack_every_second_segment():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK | T.PSH, P, iss + 1, b"x" * 100)
    rig.none()  # one small segment: the ACK is delayed
    rig.advance(0.039)
    rig.none()
    rig.advance(0.002)
    ack = rig.one()
    assert ack.ack == P + 100
    rig.inject(T.ACK, P + 100, iss + 1, b"y" * 1460)
    rig.none()
    rig.inject(T.ACK, P + 1560, iss + 1, b"z" * 1460)
    assert rig.one().ack == P + 2 * 1460 + 100  # second full segment: immediate ACK
    assert conn.recv(10000, rig.now) == b"x" * 100 + b"y" * 1460 + b"z" * 1460


def test_batching_ip_one_stretch_ack_per_batch_bounded_and_ooo_at_once():
    rig = Rig()
    rig.ip.delivers_in_batches = True
    rig.layer.batching = True
    conn, iss = rig.passive_open(sack_permitted=True)
    for i in range(6):  # one batch of six in-order full segments
        rig.inject(T.ACK, P + i * 1460, iss + 1, b"a" * 1460)
    rig.none()  # ...answered at the end of the batch, not every second segment
    rig.layer.poll(rig.now)
    assert rig.one().ack == P + 6 * 1460
    seq = P + 6 * 1460
    for i in range(connection.STRETCH_ACK_SEGMENTS + 2):  # a long batch: bounded stretch
        rig.inject(T.ACK, seq + i * 1460, iss + 1, b"b" * 1460)
    assert rig.one().ack == seq + connection.STRETCH_ACK_SEGMENTS * 1460
    rig.layer.poll(rig.now)
    seq += (connection.STRETCH_ACK_SEGMENTS + 2) * 1460
    assert rig.one().ack == seq
    rig.inject(T.ACK, seq + 1460, iss + 1, b"c" * 1460)  # out of order: duplicate ACK at once
    d = rig.one()
    assert d.ack == seq and d.sack_blocks == ((seq + 1460, seq + 2920),)
    rig.inject(T.ACK, seq, iss + 1, b"d" * 1460)  # the hole filled: ACK at once
    assert rig.one().ack == seq + 2920
    rig.inject(T.ACK | T.PSH, seq + 2920, iss + 1, b"e" * 100)  # one small segment: delayed
    rig.layer.poll(rig.now)
    rig.none()
    rig.advance(0.05)
    assert rig.one().ack == seq + 3020


def test_out_of_order_immediate_dupack_with_sack_then_fill():
    rig = Rig()
    conn, iss = rig.passive_open(sack_permitted=True)
    rig.inject(T.ACK, P + 1000, iss + 1, b"b" * 500)
    d = rig.one()
    assert d.ack == P and d.sack_blocks == ((P + 1000, P + 1500),)
    rig.inject(T.ACK, P + 2000, iss + 1, b"c" * 500)
    d = rig.one()
    assert d.sack_blocks == ((P + 2000, P + 2500), (P + 1000, P + 1500))  # most recent first
    rig.inject(T.ACK, P, iss + 1, b"a" * 1000)
    a = rig.one()
    assert a.ack == P + 1500 and a.sack_blocks == ((P + 2000, P + 2500),)
    rig.inject(T.ACK, P + 1500, iss + 1, b"x" * 500)
    a = rig.one()
    assert a.ack == P + 2500 and a.sack_blocks == ()
    assert conn.recv(5000, rig.now) == b"a" * 1000 + b"b" * 500 + b"x" * 500 + b"c" * 500


def test_rst_exact_sequence_resets():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.RST, P)
    assert conn.state == "CLOSED" and isinstance(conn.error, ConnectionResetError)
    assert "closed" in rig.events


def test_rst_in_window_gets_challenge_ack():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.RST, P + 10)
    rig.expect(conn, T.ACK, seq=iss + 1, ack=P, window=65535)
    assert conn.state == "ESTABLISHED"


def test_rst_outside_window_silently_dropped():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.RST, P + 10_000_000)
    rig.none()
    assert conn.state == "ESTABLISHED"


def test_syn_in_established_gets_challenge_ack_rate_limited():
    rig = Rig(challenge_ack_limit=2)
    conn, iss = rig.passive_open()
    for i in range(5):
        rig.inject(T.SYN, P + i)
    segs = rig.sent()
    assert len(segs) == 2 and all(s.flags == T.ACK and s.ack == P for s in segs)
    assert conn.state == "ESTABLISHED"
    assert rig.layer.drops["challenge-ack-rate-limited"] == 3
    rig.advance(1.0)
    rig.inject(T.SYN, P)
    assert rig.one().flags == T.ACK


def test_ack_of_unsent_data_answered_and_dropped():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK, P, iss + 5000, b"data")
    rig.expect(conn, T.ACK, seq=iss + 1, ack=P, window=65535)  # data not taken
    assert conn.readable_bytes() == 0


def test_old_duplicate_is_acked():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK, P, iss + 1, b"a" * 1460)
    rig.inject(T.ACK, P + 1460, iss + 1, b"b" * 1460)
    rig.sent()
    rig.inject(T.ACK, P, iss + 1, b"a" * 1460)
    assert rig.one().ack == P + 2920
    assert conn.dup_segments == 1


def test_paws_drops_old_timestamp():
    rig = Rig()
    conn, iss = rig.passive_open(ts=(1000, 0))
    rig.inject(T.ACK, P, iss + 1, b"new", ts=(2000, 0))
    rig.advance(0.1)
    rig.sent()
    rig.inject(T.ACK, P + 3, iss + 1, b"old", ts=(1500, 0))
    assert rig.one().ack == P + 3
    assert rig.layer.drops["paws"] == 1 and conn.recv(100, rig.now) == b"new"


def test_bare_acks_of_new_data_fast_path_keeps_paws_and_ts_recent():
    rig = Rig(nodelay=True)
    conn, iss = rig.passive_open(ts=(1000, 0))
    conn.send(b"a" * 3000, rig.now)
    segs = rig.sent()
    assert len(segs) == 3
    rig.inject(T.ACK, P, iss + 1 + 1000, ts=(900, segs[0].ts_val))  # fails PAWS: dropped
    assert rig.one().ack == P and conn.snd_una == iss + 1
    assert rig.layer.drops["paws"] == 1
    rig.inject(T.ACK, P, iss + 1 + 1460, ts=(2000, segs[0].ts_val))  # the fast path
    assert conn.snd_una == iss + 1 + 1460 and conn.ts_recent == 2000
    rig.inject(T.ACK, P, iss + 1 + 3000, ts=(2001, segs[2].ts_val))
    assert conn.snd_una == iss + 1 + 3000 and conn.ts_recent == 2001 and conn.timers.rexmit is None
    rig.none()


def test_fin_moves_to_close_wait_and_acks():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK | T.FIN, P, iss + 1, b"bye")
    rig.expect(conn, T.ACK, seq=iss + 1, ack=P + 4, window=65535)
    assert conn.state == "CLOSE-WAIT"
    assert conn.recv(10, rig.now) == b"bye" and conn.at_eof()


def test_out_of_order_fin_waits_for_the_hole():
    rig = Rig()
    conn, iss = rig.passive_open(sack_permitted=True)
    rig.inject(T.ACK | T.FIN, P + 5, iss + 1, b"world")
    rig.expect(conn, T.ACK, seq=iss + 1, ack=P, window=65535, sack=((P + 5, P + 10),))
    assert conn.state == "ESTABLISHED"
    rig.inject(T.ACK, P, iss + 1, b"hello")
    rig.expect(conn, T.ACK, seq=iss + 1, ack=P + 11, window=65535)
    assert conn.state == "CLOSE-WAIT" and conn.recv(100, rig.now) == b"helloworld"


def test_send_segments_by_mss_limited_by_initial_window():
    rig = Rig()
    conn, iss = rig.passive_open(mss=1000)
    conn.send(b"z" * 50_000, rig.now)
    segs = rig.sent()
    # RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)) = 10000 bytes
    assert [len(s.payload) for s in segs] == [1000] * 10
    assert segs[0].seq == iss + 1 and segs[-1].flags & T.PSH == 0
    rig.inject(T.ACK, P, iss + 1 + 2000)
    segs = rig.sent()
    assert [len(s.payload) for s in segs] == [1000] * 4  # slow start: +2000 (ABC L=2) + 2000 acked


def test_nagle_holds_small_segment_until_ack_and_nodelay_does_not():
    rig = Rig()
    conn, iss = rig.passive_open()
    conn.send(b"a", rig.now)
    assert len(rig.one().payload) == 1
    conn.send(b"b", rig.now)
    conn.send(b"c", rig.now)
    rig.none()
    rig.inject(T.ACK, P, iss + 2)
    seg = rig.one()
    assert bytes(seg.payload) == b"bc"
    rig2 = Rig(nodelay=True)
    conn2, iss2 = rig2.passive_open()
    conn2.send(b"a", rig2.now)
    conn2.send(b"b", rig2.now)
    assert [bytes(s.payload) for s in rig2.sent()] == [b"a", b"b"]


def test_zero_window_persist_probe_then_resume():
    rig = Rig()
    conn, iss = rig.passive_open(win=0)
    conn.send(b"q" * 100, rig.now)
    rig.none()
    assert conn.timers.persist is not None
    rig.advance(1.0)
    rig.expect(conn, T.ACK, seq=iss, ack=P, window=65535)  # SND.UNA - 1 elicits an ACK
    rig.inject(T.ACK, P, iss + 1, win=0)
    rig.none()
    assert conn.timers.persist is not None and conn.persist_backoff == 1
    rig.inject(T.ACK, P, iss + 1, win=1000)
    rig.expect(conn, T.ACK | T.PSH, seq=iss + 1, ack=P, window=65535, payload=b"q" * 100)
    assert conn.timers.persist is None


def test_retransmission_timeout_backoff_and_abort():
    rig = Rig(retries2=3)
    conn, iss = rig.passive_open()
    conn.send(b"r" * 10, rig.now)
    rig.one()
    t0 = rig.now
    times = []
    while conn.state != "CLOSED":
        rig.now = rig.layer.next_deadline()
        rig.layer.poll(rig.now)
        for s in rig.sent():
            times.append((round(rig.now - t0, 3), s.flags, len(s.payload)))
    # the handshake measured an RTT of ~0, so RTO = rto_min (0.2 s), doubling (RFC 6298 5.5)
    assert times[:3] == [(0.2, T.ACK | T.PSH, 10), (0.6, T.ACK | T.PSH, 10), (1.4, T.ACK | T.PSH, 10)]
    assert times[3][1] == T.RST | T.ACK
    assert isinstance(conn.error, TimeoutError)


def test_rtt_from_timestamps_sets_rto():
    rig = Rig()
    conn, iss = rig.passive_open(ts=(1, 0))
    conn.send(b"m" * 10, rig.now)
    seg = rig.one()
    rig.now += 0.05
    rig.inject(T.ACK, P, iss + 11, ts=(2, seg.ts_val))
    # first sample (handshake) 0 s, second 0.05 s: RFC 6298 2.3 with alpha 1/8, beta 1/4
    assert conn.srtt == pytest.approx(0.05 / 8, abs=0.001)
    assert conn.rttvar == pytest.approx(0.05 / 4, abs=0.001)
    assert conn.rto == pytest.approx(0.2)  # srtt + 4*rttvar < rto_min


def test_timestamp_echo_older_than_the_last_retransmission_is_no_rtt_sample():
    # Karn's rule for timestamps: a retransmission got through but its ACK was lost; the ACK
    # the next retransmission elicits still echoes the earlier one (the peer takes TSval only
    # from in-window segments), so it measures the outage (0.4 s), not the path
    rig = Rig()
    conn, iss = rig.passive_open(ts=(1, 0))
    srtt, rto = conn.srtt, conn.rto
    conn.send(b"k" * 10, rig.now)
    first = rig.one()
    rig.run_until(rig.now + 0.2)  # RTO: retransmission (it gets through, its ACK is lost)
    rexmit = rig.one()
    assert rexmit.seq == first.seq
    rig.run_until(rig.now + 0.4)  # again, backed off
    again = rig.one()
    assert again.seq == first.seq and again.ts_val > rexmit.ts_val
    rig.now += 0.001
    rig.inject(T.ACK, P, iss + 11, ts=(2, rexmit.ts_val))  # echo of the earlier retransmission
    assert conn.snd_una == iss + 11
    assert (conn.srtt, conn.rto) == (srtt, rto)
    # an echo of the latest transmission measures the path again
    conn.send(b"l" * 10, rig.now)
    seg = rig.one()
    rig.now += 0.05
    rig.inject(T.ACK, P, iss + 21, ts=(3, seg.ts_val))
    assert conn.srtt == pytest.approx(srtt + (0.05 - srtt) / 8, abs=0.001)


def test_synack_echo_from_before_a_retransmitted_syn_is_no_rtt_sample():
    rig = Rig()
    conn = rig.layer.connect(0x0A000002, LPORT, rig.now)
    syn = rig.one()
    rig.run_until(rig.now + 1.0)  # SYN retransmitted after the initial RTO
    assert rig.one().flags == T.SYN
    rig.now += 0.005
    # the peer's SYN-ACK (retransmitted by its own timer) echoes our first SYN
    rig.inject(T.SYN | T.ACK, PEER_ISN, syn.seq + 1, sport=LPORT, dport=conn.local_port, mss=1460,
               ts=(7, syn.ts_val))
    assert conn.state == "ESTABLISHED"
    assert conn.srtt is None and conn.rto == pytest.approx(1.0)


def test_pure_ack_after_go_back_n_carries_snd_max():
    # after an RTO SND.NXT is pulled back to SND.UNA; an ACK carrying it would be below the
    # peer's RCV.NXT when the peer already holds the data, and dropped as out of window
    rig = Rig()
    conn, iss = rig.passive_open()
    conn.send(b"g" * 2920, rig.now)
    assert len(rig.sent()) == 2
    rig.run_until(rig.now + 0.2)
    assert rig.one().seq == iss + 1  # go back N: SND.NXT = SND.UNA + 1 segment
    assert conn.snd_nxt < conn.snd_max
    rig.inject(T.ACK | T.PSH, P, iss + 1, payload=b"x" * 100)  # the peer's data, no new ACK
    rig.advance(0.05)  # (delayed) ACK
    ack = rig.one()
    assert ack.flags == T.ACK and not ack.payload and ack.ack == P + 100
    assert ack.seq == iss + 1 + 2920 == conn.snd_max


def test_fast_retransmit_newreno_without_sack():
    rig = Rig()
    conn, iss = rig.passive_open(mss=1000)
    conn.send(b"d" * 10_000, rig.now)
    assert len(rig.sent()) == 10
    for _ in range(2):
        rig.inject(T.ACK, P, iss + 1)
    assert [len(s.payload) for s in rig.sent()] == []  # limited transmit has no new data left
    rig.inject(T.ACK, P, iss + 1)
    rex = rig.one()
    assert rex.seq == iss + 1 and len(rex.payload) == 1000 and conn.in_recovery
    # partial ACK: the next hole is retransmitted at once (RFC 6582)
    rig.inject(T.ACK, P, iss + 1 + 3000)
    rex = rig.one()
    assert rex.seq == iss + 1 + 3000 and conn.in_recovery
    rig.inject(T.ACK, P, iss + 1 + 10_000)
    assert not conn.in_recovery and conn.fast_retransmits == 2


def test_sack_recovery_retransmits_only_holes():
    rig = Rig()
    conn, iss = rig.passive_open(mss=1000, sack_permitted=True)
    conn.send(b"d" * 10_000, rig.now)
    rig.sent()
    base = iss + 1
    # segments 0 and 3 lost; the peer SACKs the rest as it arrives
    blocks = [(base + 1000, base + 3000)]
    rig.inject(T.ACK, P, base, sack=blocks)
    blocks = [(base + 4000, base + 6000), (base + 1000, base + 3000)]
    rig.inject(T.ACK, P, base, sack=blocks)
    blocks = [(base + 4000, base + 10000), (base + 1000, base + 3000)]
    rig.inject(T.ACK, P, base, sack=blocks)
    segs = rig.sent()
    assert conn.in_recovery
    assert [(s.seq - base, len(s.payload)) for s in segs] == [(0, 1000), (3000, 1000)]
    rig.inject(T.ACK, P, base + 3000, sack=[(base + 4000, base + 10000)])
    rig.none()  # hole 3000 already retransmitted
    rig.inject(T.ACK, P, base + 10000)
    assert not conn.in_recovery and conn.retransmits == 2


def test_receive_window_follows_buffer_and_reopens():
    rig = Rig(rcvbuf=4000)
    conn, iss = rig.passive_open(mss=1000)
    assert conn.rcv_wscale == 0
    for i in range(4):
        rig.inject(T.ACK, P + i * 1000, iss + 1, b"w" * 1000)
    rig.advance(0.05)  # the delayed ACK for the last segment
    acks = rig.sent()
    assert acks[-1].window == 0 and acks[-1].ack == P + 4000
    rig.inject(T.ACK, P + 4000, iss + 1, b"X" * 10)  # beyond the window: dropped, ACKed
    assert rig.one().ack == P + 4000
    conn.recv(500, rig.now)
    rig.none()  # SWS avoidance: 500 bytes is less than min(MSS, buffer/2)
    conn.recv(1500, rig.now)
    upd = rig.one()
    assert upd.window == 2000 and upd.ack == P + 4000


def test_keepalive_probes_then_abort():
    rig = Rig(keepalive=True, keepidle=10.0, keepintvl=1.0, keepcnt=2)
    conn, iss = rig.passive_open()
    rig.advance(10.0)
    probe = rig.one()
    assert probe.seq == iss and len(probe.payload) == 0
    rig.inject(T.ACK, P, iss + 1)  # the peer answers: idle timer restarts
    rig.advance(5.0)
    rig.none()
    rig.run_until(rig.now + 30)
    assert conn.state == "CLOSED" and isinstance(conn.error, TimeoutError)


def test_icmp_frag_needed_lowers_mss_and_resends():
    rig = Rig()
    conn, iss = rig.passive_open(mss=1460)
    conn.send(b"p" * 2920, rig.now)
    assert [len(s.payload) for s in rig.sent()] == [1460, 1460]
    from pynetstack.wire.ipv4 import IPv4
    inner = IPv4(0x0A000001, 0x0A000002, 6)
    quote = T.build_tcp(0x0A000001, 0x0A000002, LPORT, PPORT, iss + 1, 0, T.ACK, 0)[:8]
    rig.layer.icmp_error(3, 4, 1000, inner, quote, rig.now)
    assert conn.mss == 960
    assert [len(s.payload) for s in rig.sent()] == [960, 960, 960, 40]
    # a quote of a sequence number not in flight is ignored (RFC 5927)
    quote = T.build_tcp(0x0A000001, 0x0A000002, LPORT, PPORT, iss + 900000, 0, T.ACK, 0)[:8]
    rig.layer.icmp_error(3, 4, 600, inner, quote, rig.now)
    assert conn.mss == 960 and rig.layer.drops["icmp-bad-seq"] == 1


def test_close_with_unread_data_sends_rst():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK, P, iss + 1, b"unread")
    rig.sent()
    conn.close(rig.now)
    rst = rig.one()
    assert rst.flags & T.RST and conn.state == "CLOSED"


# ---------------------------------------------------------------------------------- closing


def test_active_close_fin_wait_1_2_time_wait_closed():
    rig = Rig(msl=5.0)
    conn, iss = rig.passive_open()
    conn.close(rig.now)
    fin = rig.one()
    assert fin.flags == T.FIN | T.ACK and conn.state == "FIN-WAIT-1"
    rig.inject(T.ACK, P, iss + 2)
    assert conn.state == "FIN-WAIT-2"
    rig.none()
    rig.inject(T.ACK | T.FIN, P, iss + 2)
    assert rig.one().ack == P + 1 and conn.state == "TIME-WAIT"
    rig.advance(9.9)
    assert conn.state == "TIME-WAIT"
    rig.advance(0.2)
    assert conn.state == "CLOSED" and not rig.layer.connections
    assert [e[2] for e in conn.log][-4:] == ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSED"]


def test_simultaneous_close_goes_through_closing():
    rig = Rig()
    conn, iss = rig.passive_open()
    conn.shutdown(rig.now)
    rig.one()
    rig.inject(T.ACK | T.FIN, P, iss + 1)  # peer's FIN crossed ours: it does not ACK our FIN
    assert rig.one().ack == P + 1 and conn.state == "CLOSING"
    rig.inject(T.ACK, P + 1, iss + 2)
    assert conn.state == "TIME-WAIT"


def test_fin_wait_1_fin_and_ack_together_to_time_wait():
    rig = Rig()
    conn, iss = rig.passive_open()
    conn.shutdown(rig.now)
    rig.one()
    rig.inject(T.ACK | T.FIN, P, iss + 2)
    assert conn.state == "TIME-WAIT"


def test_half_close_peer_keeps_sending_in_fin_wait_2():
    rig = Rig()
    conn, iss = rig.passive_open()
    conn.shutdown(rig.now)
    rig.one()
    rig.inject(T.ACK, P, iss + 2)
    assert conn.state == "FIN-WAIT-2"
    rig.inject(T.ACK, P, iss + 2, b"still talking")
    assert conn.recv(100, rig.now) == b"still talking"
    with pytest.raises(BrokenPipeError):
        conn.send(b"no", rig.now)


def test_orphaned_fin_wait_2_times_out():
    rig = Rig(fin_timeout=3.0)
    conn, iss = rig.passive_open()
    conn.close(rig.now)
    rig.one()
    rig.inject(T.ACK, P, iss + 2)
    assert conn.state == "FIN-WAIT-2"
    rig.advance(3.1)
    assert conn.state == "CLOSED"


@pytest.mark.parametrize("acked", [False, True])
def test_data_after_close_gets_rst(acked):
    # RFC 1122 4.2.2.13, as Linux: FIN-WAIT-1/2 after close(), new data is answered with RST
    rig = Rig()
    conn, iss = rig.passive_open()
    conn.close(rig.now)
    assert rig.one().flags & T.FIN
    ack = iss + 2 if acked else iss + 1
    rig.inject(T.ACK, P, ack)
    assert conn.state == ("FIN-WAIT-2" if acked else "FIN-WAIT-1")
    rig.inject(T.ACK | T.PSH, P, ack, b"too late")
    rst = rig.one()
    assert rst.flags & T.RST and rst.seq == ack
    assert conn.state == "CLOSED" and conn.error is None
    assert rig.layer.drops["data-after-close"] == 1


def test_old_duplicate_after_close_gets_only_an_ack():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK | T.PSH, P, iss + 1, b"early")
    conn.recv(100, rig.now)
    conn.close(rig.now)
    rig.sent()
    rig.inject(T.ACK, P + 5, iss + 2)
    assert conn.state == "FIN-WAIT-2"
    rig.inject(T.ACK | T.PSH, P, iss + 2, b"early")  # a retransmission of data already read
    seg = rig.one()
    assert not seg.flags & T.RST and seg.ack == P + 5
    assert conn.state == "FIN-WAIT-2"


def test_close_wait_send_then_last_ack_then_closed():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.inject(T.ACK | T.FIN, P, iss + 1)
    rig.one()
    conn.send(b"reply", rig.now)
    assert bytes(rig.one().payload) == b"reply"
    conn.close(rig.now)
    fin = rig.one()
    assert fin.flags & T.FIN and fin.seq == iss + 6 and conn.state == "LAST-ACK"
    rig.advance(1.0)  # FIN retransmitted by the RTO
    assert rig.one().flags & T.FIN
    rig.inject(T.ACK, P + 1, iss + 7)
    assert conn.state == "CLOSED" and conn.error is None


def test_time_wait_retransmitted_fin_acked_and_timer_restarted():
    rig = Rig(msl=5.0)
    conn, iss = rig.passive_open()
    conn.close(rig.now)
    rig.one()
    rig.inject(T.ACK | T.FIN, P, iss + 2)
    rig.one()
    rig.advance(8.0)
    rig.inject(T.ACK | T.FIN, P, iss + 2)
    assert rig.one().ack == P + 1
    rig.advance(8.0)
    assert conn.state == "TIME-WAIT"
    rig.advance(2.1)
    assert conn.state == "CLOSED"


def test_time_wait_ignores_rst_rfc1337():
    rig = Rig()
    conn, iss = rig.passive_open()
    conn.close(rig.now)
    rig.one()
    rig.inject(T.ACK | T.FIN, P, iss + 2)
    rig.one()
    rig.inject(T.RST, P + 1)
    assert conn.state == "TIME-WAIT"


def test_time_wait_new_syn_with_higher_seq_reopens():
    rig = Rig()
    conn, iss = rig.passive_open()
    conn.close(rig.now)
    rig.one()
    rig.inject(T.ACK | T.FIN, P, iss + 2)
    rig.one()
    rig.inject(T.SYN, P + 100_000)
    sa = rig.one()
    assert sa.flags == T.SYN | T.ACK and sa.ack == P + 100_001
    assert conn.state == "CLOSED" and rig.layer.counters["time-wait-reopened"] == 1


def test_abort_sends_rst():
    rig = Rig()
    conn, iss = rig.passive_open()
    conn.abort(rig.now)
    rst = rig.one()
    assert rst.flags & T.RST and rst.seq == iss + 1 and conn.state == "CLOSED"


# ---------------------------------------------------------------------------------- listener limits


def test_syn_backlog_full_answers_with_cookies_and_cookie_ack_establishes():
    rig = Rig(syn_backlog=2)
    rig.listen()
    for i in range(2):
        rig.inject(T.SYN, 5000 + i, sport=1000 + i, mss=1460)
    rig.sent()
    assert len(rig.layer.connections) == 2
    rig.inject(T.SYN, 9000, sport=2000, mss=1460, wscale=7, sack_permitted=True, ts=(777, 0))
    cookie = rig.one()
    assert cookie.flags == T.SYN | T.ACK and len(rig.layer.connections) == 2
    assert cookie.wscale == 5 and cookie.sack_permitted and cookie.ts_ecr == 777
    rig.inject(T.ACK, 9001, cookie.seq + 1, sport=2000, ts=(778, cookie.ts_val), payload=b"GET")
    conn = rig.listener.accept()
    assert conn is not None and conn.state == "ESTABLISHED" and conn.remote_port == 2000
    assert conn.snd_wscale == 7 and conn.sack_ok and conn.ts_ok and conn.peer_mss == 1460
    assert conn.recv(10, rig.now) == b"GET"
    assert rig.layer.counters["syncookies-validated"] == 1
    # a forged cookie is answered with RST
    rig.sent()
    rig.inject(T.ACK, 7001, cookie.seq + 12345, sport=3000)
    assert rig.one().flags == T.RST and rig.layer.drops["bad-cookie"] == 1


def test_syn_flood_memory_bounded_without_cookies():
    rig = Rig(syn_backlog=8, syncookies=False)
    rig.listen()
    for i in range(500):
        rig.inject(T.SYN, i * 1000, sport=1024 + i)
    assert len(rig.layer.connections) == 8
    assert rig.layer.drops["syn-backlog-full"] == 492


def test_accept_queue_bound():
    rig = Rig()
    rig.listen(backlog=1)
    rig.inject(T.SYN, 100, sport=5000)
    sa = rig.one()
    rig.inject(T.ACK, 101, sa.seq + 1, sport=5000)
    rig.inject(T.SYN, 200, sport=5001)
    rig.none()
    assert rig.layer.drops["listen-overflow"] == 1
    assert rig.listener.accept().remote_port == 5000


def test_listener_close_resets_queued_connections():
    rig = Rig()
    conn, iss = rig.passive_open()
    rig.listener.accept_queue.append(conn)
    rig.listener.close(rig.now)
    assert rig.one().flags & T.RST and conn.state == "CLOSED"
    rig.inject(T.SYN, 5, sport=6000)
    assert rig.one().flags == T.RST | T.ACK
