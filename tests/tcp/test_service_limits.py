"""Services under abuse, on a virtual clock: requests cut short by a FIN, idle and vanished
clients, connection caps, a status page that stays small, TCP giving up on a silent peer."""

import pytest

from pynetstack.api.tcp import tcp_layer
from pynetstack.services import discard, http, tcp_echo
from pynetstack.services.guard import LINGER, ServiceLimits
from pynetstack.sim import Simulation
from pynetstack.transport.tcp import CLOSE_WAIT, CLOSED, ESTABLISHED, TIME_WAIT, TcpConfig
from pynetstack.wire.addr import ip_to_int

SERVER = ip_to_int("10.9.0.2")


class Lab:
    """A client stack (raw TCP layer) and a server stack with services, on a lossless link
    whose both directions can be cut at once (the client vanishes)."""

    def __init__(self, **limits):
        self.sim = Simulation()
        self.client_stack, self.server_stack = self.sim.stack(), self.sim.stack()
        ia, ib = self.sim.link(self.client_stack, "10.9.0.1/24", self.server_stack, "10.9.0.2/24",
                               faults_ab=dict(delay=0.001), faults_ba=dict(delay=0.001))
        self.faults = (ia.device, ib.device)
        self.client, self.server = tcp_layer(self.client_stack), tcp_layer(self.server_stack)
        lim = ServiceLimits(**limits) if limits else None
        self.http = http.install(self.server_stack, limits=lim)
        self.echo = tcp_echo.install(self.server_stack, limits=lim)
        self.discard = discard.install(self.server_stack, limits=lim)

    def connect(self, port: int, config=None):
        conn = self.client.connect(SERVER, port, self.sim.now, config=config)
        self.sim.run(duration=1, until=lambda: conn.state != "SYN-SENT")
        return conn

    def run(self, seconds: float, until=None):
        self.sim.run(duration=seconds, until=until)

    def vanish(self) -> None:
        for device in self.faults:
            device.loss = 1.0

    def server_states(self):
        return sorted(c.state for c in self.server.connections.values())


def test_http_request_cut_short_by_fin_is_closed_not_left_in_close_wait():
    lab = Lab()
    conns = []
    for _ in range(3):  # printf 'GET / HTTP/1.0\r\n' | nc -N STACK 80
        conn = lab.connect(80)
        conn.send(b"GET / HTTP/1.0\r\n", lab.sim.now)
        conn.shutdown(lab.sim.now)
        conns.append(conn)
    lab.run(1.0)
    assert CLOSE_WAIT not in lab.server_states()
    assert all(c.fin_received and c.recv(1 << 16, lab.sim.now) == b"" for c in conns)
    lab.run(2 * 30.0 + 1)  # the clients' TIME-WAIT... the server closed first only after their FIN
    assert lab.server.connections == {} or set(lab.server_states()) <= {TIME_WAIT}


def test_http_complete_pipelined_requests_before_fin_are_answered_then_closed():
    lab = Lab()
    conn = lab.connect(80)
    conn.send(b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\nGET /bytes/5 HTTP/1.1\r\nHost: x\r\n\r\nGET /by",
              lab.sim.now)
    conn.shutdown(lab.sim.now)
    got = bytearray()

    def done():
        got.extend(conn.recv(1 << 20, lab.sim.now))
        return conn.fin_received and not conn.readable_bytes()
    lab.run(5.0, until=done)
    assert got.count(b"HTTP/1.1 200 OK") == 2 and b"Connection: close" in got
    assert conn.fin_received
    lab.run(1.0)
    assert CLOSE_WAIT not in lab.server_states()


def test_http_keepalive_idle_timeout_closes_after_five_seconds():
    lab = Lab()
    conn = lab.connect(80)
    conn.send(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n", lab.sim.now)
    lab.run(0.5)
    assert b"200 OK" in conn.recv(1 << 16, lab.sim.now)
    t0 = lab.sim.now
    lab.run(4.0)
    assert not conn.fin_received and lab.server_states() == [ESTABLISHED]
    lab.run(2.0, until=lambda: conn.fin_received)
    assert conn.fin_received and 4.4 < lab.sim.now - t0 < 5.6
    assert lab.http.guard.timed_out == 1


def test_http_slow_header_is_cut_after_the_request_timeout_even_if_bytes_trickle():
    lab = Lab(request_timeout=20.0)
    conn = lab.connect(80)
    t0 = lab.sim.now
    for _ in range(30):  # slowloris: a byte every second never completes the header
        if conn.fin_received or conn.state == CLOSED:
            break
        conn.send(b"X", lab.sim.now)
        lab.run(1.0)
    assert conn.fin_received or conn.state == CLOSED
    assert lab.sim.now - t0 <= 21.5


def test_echo_and_discard_idle_clients_that_vanished_are_reclaimed():
    lab = Lab(idle_timeout=30.0)
    conns = [lab.connect(7) for _ in range(5)] + [lab.connect(9) for _ in range(5)]
    for conn in conns:
        conn.send(b"hello", lab.sim.now)
    lab.run(1.0)
    assert lab.server_states() == [ESTABLISHED] * 10
    lab.vanish()
    lab.run(30.0 + LINGER + 5.0)
    assert lab.server.connections == {}, lab.server_states()
    assert lab.echo.guard.timed_out == 5 and lab.discard.guard.timed_out == 5
    assert lab.echo.guard.stats()["serving"] == 0


def test_echo_with_unread_replies_to_a_vanished_client_is_reset_at_the_idle_timeout():
    lab = Lab(idle_timeout=30.0)
    conn = lab.connect(7, TcpConfig(rcvbuf=32768))
    conn.send(b"x" * 200_000, lab.sim.now)  # the client never reads: echo fills its window
    lab.run(2.0)
    assert lab.server.connections and next(iter(lab.server.connections.values())).snd_buf
    lab.vanish()
    lab.run(31.0 + 2.0)
    assert lab.server.connections == {}, lab.server_states()


def test_connection_cap_resets_the_connection_beyond_it_and_frees_slots_on_close():
    lab = Lab(max_connections=3)
    conns = [lab.connect(9) for _ in range(3)]
    lab.run(0.5)
    extra = lab.connect(9)
    lab.run(0.5)
    assert extra.state == CLOSED and all(c.state == ESTABLISHED for c in conns)
    assert lab.discard.guard.refused == 1
    assert lab.server.drops["discard-connection-limit"] == 1
    conns[0].close(lab.sim.now)  # the discard service closes its side on EOF: a slot frees
    lab.run(0.5)
    again = lab.connect(9)
    lab.run(0.5)
    assert again.state == ESTABLISHED


def test_status_page_is_bounded_and_counts_connections_by_state():
    lab = Lab()
    for _ in range(120):
        lab.connect(9)
    conn = lab.connect(80)
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", lab.sim.now)
    got = bytearray()

    def done():
        got.extend(conn.recv(1 << 20, lab.sim.now))
        return b"retrans" in got and got.endswith(b"\n") and b"tcp counters" in got
    lab.run(2.0, until=done)
    text = got.decode()
    assert "tcp connections: 121 (ESTABLISHED 121)" in text
    assert "(the first 50 of 121 connections)" in text
    assert text.count("ESTABLISHED  10.9.0.2:") == 50
    assert len(got) < 20_000


def test_tcp_gives_up_on_unacknowledged_data_to_a_vanished_peer_rfc9293_r2():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    ia, ib = sim.link(a, "10.9.0.1/24", b, "10.9.0.2/24", faults_ab=dict(delay=0.001),
                      faults_ba=dict(delay=0.001))
    ta, tb = tcp_layer(a), tcp_layer(b)
    listener = tb.listen(5000)
    client = ta.connect(SERVER, 5000, sim.now)
    sim.run(duration=1, until=lambda: bool(listener.accept_queue))
    server = listener.accept()
    ia.device.loss = ib.device.loss = 1.0
    t0 = sim.now
    server.send(b"y" * 10_000, sim.now)
    sim.run(duration=3000, until=lambda: server.state == CLOSED)
    # the neighbour's entry went stale and ARP got no answer: the host-unreachable errors that
    # followed were soft, and the one the connection reports when it gives up (as Linux's
    # tcp_write_err reports sk_err_soft rather than ETIMEDOUT)
    assert server.state == CLOSED and server.error.errno == 113, server.error
    # RFC 9293 R2: at least 100 s; 15 retransmissions as Linux's tcp_retries2
    assert 100.0 <= sim.now - t0 <= 1000.0, sim.now - t0
    assert client.state == ESTABLISHED  # it never heard a thing


def test_zero_window_probes_to_a_vanished_peer_give_up():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    ia, ib = sim.link(a, "10.9.0.1/24", b, "10.9.0.2/24", faults_ab=dict(delay=0.001),
                      faults_ba=dict(delay=0.001))
    ta, tb = tcp_layer(a), tcp_layer(b)
    tb.config = TcpConfig(rcvbuf=65536)
    listener = tb.listen(5000, config=TcpConfig(rcvbuf=65536))
    client = ta.connect(SERVER, 5000, sim.now)
    sim.run(duration=1, until=lambda: bool(listener.accept_queue))
    listener.accept()  # the server application never reads: its window closes
    sent = 0
    for _ in range(100):
        sent += client.send(b"z" * 65536, sim.now)
        sim.run(duration=0.5)
    assert client.snd_wnd == 0 and client.timers.persist is not None
    ia.device.loss = ib.device.loss = 1.0
    t0 = sim.now
    sim.run(duration=5000, until=lambda: client.state == CLOSED)
    assert client.state == CLOSED, (client.persist_backoff, client.info())
    assert 100.0 <= sim.now - t0 <= 2000.0, sim.now - t0


@pytest.mark.parametrize("bad", [dict(max_connections=0), dict(idle_timeout=-1), dict(request_timeout=float("inf")),
                                 dict(keepalive_timeout="5"), dict(max_connections=True)])
def test_service_limits_reject_nonsense(bad):
    with pytest.raises(ValueError):
        ServiceLimits(**bad)


def test_services_limits_come_from_the_config_and_bad_values_are_named():
    from pynetstack.config import ConfigError, service_limits, validate
    base = {"interface": [{"tap": "x0", "address": "10.0.0.2/24"}]}
    limits = service_limits({"max_connections": 10, "idle_timeout": 2, "http_keepalive_timeout": 1.5,
                             "http_request_timeout": 30})
    assert (limits.max_connections, limits.idle_timeout, limits.keepalive_timeout, limits.request_timeout) \
        == (10, 2.0, 1.5, 30.0)
    defaults = service_limits({})
    assert (defaults.max_connections, defaults.keepalive_timeout, defaults.request_timeout) == (1024, 5.0, 60.0)
    with pytest.raises(ConfigError, match=r"\[services\] max_connections must be a positive integer"):
        validate(dict(base, services={"max_connections": 0}))
    with pytest.raises(ConfigError, match=r"\[services\] http_keepalive_timeout must be a positive number"):
        validate(dict(base, services={"http_keepalive_timeout": -1}))
