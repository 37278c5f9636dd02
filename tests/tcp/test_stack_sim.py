"""Whole stacks (Ethernet, ARP, IPv4, TCP) over the stack's seeded FaultInjector on a virtual
clock: bulk transfers both ways arrive exactly once and in order; the example runs."""

import importlib.util
import pathlib
import random

import pytest

from pynetstack.api.tcp import tcp_layer
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int

from .tcp_harness import BulkApp, digest

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "tcp_connections.py"

FAULTS = {
    "loss1": dict(loss=0.01, delay=0.002),
    "loss5": dict(loss=0.05, delay=0.002),
    "loss10": dict(loss=0.10, delay=0.002),
    "reorder-dup-corrupt": dict(reorder=0.1, duplicate=0.05, corrupt=0.02, delay=0.002, jitter=0.002),
    "bottleneck": dict(rate_bps=8_000_000, queue_limit=40, delay=0.005),
}


@pytest.mark.parametrize("name", list(FAULTS))
@pytest.mark.parametrize("seed", range(1, 13))
def test_stack_transfer_through_fault_injector(name, seed):
    # 10 % loss with seeds 4, 9 and 10 once stalled past 600 s: ACKs that echoed an earlier
    # transmission were taken as RTT samples (see test_states, Karn's rule for timestamps)
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    faults = FAULTS[name]
    sim.link(a, "10.5.0.1/24", b, "10.5.0.2/24", faults_ab=dict(seed=seed, **faults),
             faults_ba=dict(seed=seed + 100, **faults))
    ta, tb = tcp_layer(a), tcp_layer(b)
    listener = tb.listen(5000)
    client = ta.connect(ip_to_int("10.5.0.2"), 5000, sim.now)
    sim.run(duration=60, until=lambda: bool(listener.accept_queue))
    server = listener.accept()
    assert server is not None, client.log
    rng = random.Random(seed)
    data_a, data_b = rng.randbytes(200_000), rng.randbytes(150_000)
    app_a, app_b = BulkApp(client, data_a), BulkApp(server, data_b)

    def pump():
        app_a.pump(sim.now)
        app_b.pump(sim.now)
        return app_a.eof and app_b.eof
    sim.run(duration=600, until=pump)
    assert digest(app_b.received) == digest(data_a), client.info()
    assert digest(app_a.received) == digest(data_b), server.info()
    assert "internal-error" not in ta.drops and "internal-error" not in tb.drops
    for st in (a, b):  # no segment may exceed the MTU (options included)
        assert "ipv4-fragmentation-needed" not in st.status()["drops"]


def test_example_runs_clean_and_lossy(capsys):
    spec = importlib.util.spec_from_file_location("tcp_connections_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([]) == 0
    assert module.main(["--loss", "0.1", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "SYN-SENT -> ESTABLISHED" in out and "TIME-WAIT -> CLOSED" in out


def test_simulation_delivers_frames_from_the_second_stack_without_waiting_for_a_timer():
    # Makes the lossy runs above far slower than the link (an ACK can wait a whole backed-off
    # RTO): once sim.py is fixed this passes, and the marker must go.
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.5.0.1/24", b, "10.5.0.2/24", faults_ab=dict(delay=0.002),
             faults_ba=dict(delay=0.002))
    ta, tb = tcp_layer(a), tcp_layer(b)
    listener = tb.listen(5000)
    client = ta.connect(ip_to_int("10.5.0.2"), 5000, sim.now)
    sim.run(duration=5, until=lambda: bool(listener.accept_queue))
    server = listener.accept()
    sim.run(duration=1)  # idle
    t0 = sim.now
    server.send(b"x" * 100, t0)
    sim.run(duration=5, until=lambda: client.bytes_received == 100)
    assert client.bytes_received == 100
    assert sim.now - t0 < 0.01, sim.now - t0  # one link delay (2 ms), not the server's RTO
