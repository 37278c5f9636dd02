"""Health checks on the virtual clock: rise and fall, HTTP status, passive errors."""

from __future__ import annotations

from collections import Counter

import pytest

from pynetstack.api.tcp import serve_events
from pynetstack.lb import HealthCheckConfig, LbError
from pynetstack.services import http

from .lbsim import Lab, NameServer


def stop(lab, n):
    lab.listeners[n - 1].close()


def start(lab, n):
    lab.listeners[n - 1] = serve_events(lab.servers[n - 1], 80, lambda: NameServer(f"server{n}"))


def test_haproxy_defaults():
    c = HealthCheckConfig()
    assert (c.interval, c.timeout, c.rise, c.fall) == (2.0, 2.0, 2, 3)


def test_tcp_check_takes_a_stopped_server_out_within_fall_and_back_within_rise():
    lab = Lab("rr", health=HealthCheckConfig("tcp"))
    lab.sim.run(1.0)
    server1 = lab.server(1)
    assert server1.up
    stop(lab, 1)
    lab.sim.run(3.9)  # two failed checks (t=2, 4): still up (fall is 3)
    assert server1.up
    lab.sim.run(2.2)  # the third at t=6
    assert not server1.up
    got = Counter(lab.request(src_port=41000 + i) for i in range(6))
    assert "server1" not in got and sum(got.values()) == 6  # no new request reaches it
    start(lab, 1)
    lab.sim.run(2.0)
    assert not server1.up  # one success: rise is 2
    lab.sim.run(2.0)
    assert server1.up
    check = lab.lb.health.check_of(server1)
    assert [t[1] for t in check.transitions] == ["down", "up"]


def test_http_check_wants_the_expected_status():
    for expect, up in ((200, True), (204, False)):
        lab = Lab("rr", health=HealthCheckConfig("http", port=8080, path="/", expect=expect, fall=2))
        for server in lab.servers:
            http.install(server, 8080)
        lab.sim.run(9.0)
        assert all(s.up == up for s in lab.service.servers), [lab.lb.health.check_of(s).last
                                                             for s in lab.service.servers]
        assert lab.lb.health.check_of(lab.server(1)).last.startswith("HTTP 200")


def test_check_timeout_counts_as_failure():
    lab = Lab("rr", health=HealthCheckConfig("tcp", interval=1.0, timeout=0.5, fall=1))
    lab.sim.run(0.5)
    # the server vanishes: its link drops everything, so the SYN goes unanswered
    lab.servers[0].set_link("eth0", False)
    lab.sim.run(3.0)
    assert not lab.server(1).up
    assert "no answer" in lab.lb.health.check_of(lab.server(1)).last


def test_passive_resets_take_a_server_down():
    lab = Lab("rr", health=HealthCheckConfig("tcp", interval=60.0, error_limit=2))
    lab.sim.run(0.5)
    stop(lab, 3)  # server3 is first in IPVS's list: rr picks it first
    lab.request(src_port=42000, run=0.5)
    assert lab.server(3).stats.resets == 1 and lab.server(3).up
    lab.request(src_port=42001, run=0.5)
    lab.request(src_port=42002, run=0.5)
    lab.request(src_port=42003, run=0.5)
    assert lab.server(3).stats.resets == 2
    assert not lab.server(3).up


def test_bad_config_is_one_clear_error():
    with pytest.raises(LbError, match="rise"):
        HealthCheckConfig(rise=0)
    with pytest.raises(LbError, match="type"):
        HealthCheckConfig("icmp")


def test_passive_time_outs_count_per_server():
    lab = Lab("rr", health=HealthCheckConfig("tcp", interval=1000.0, error_limit=1))
    lab.sim.run(0.5)
    lab.servers[2].set_link("eth0", False)  # server3 (first in IPVS's list) hears nothing
    lab.request(src_port=43000, run=1.0)
    lab.sim.run(200)  # the client gives up; the balancer's SYN_RECV entry times out unanswered
    assert lab.server(3).stats.timeouts == 1
    assert not lab.server(3).up
    assert lab.server(1).stats.timeouts == 0
