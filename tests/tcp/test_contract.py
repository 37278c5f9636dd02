"""``net.protocol.IpOutput`` is the one output contract: the stack's IP layer, the test fake and
the benchmark's fake all implement every method of it, with the protocol's parameters."""

import importlib.util
import inspect
import pathlib

import pytest

from pynetstack.net.host import IPv4Host
from pynetstack.net.protocol import OUTPUT_CONTRACT, IpOutput

from .fake_ip import FakeIp

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tcp.py"


def _bench_ip():
    spec = importlib.util.spec_from_file_location("bench_tcp_contract", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._Ip


def test_the_contract_names_every_method_of_the_protocol():
    methods = {name for name, value in vars(IpOutput).items() if callable(value) and not name.startswith("_")}
    assert methods == set(OUTPUT_CONTRACT)
    assert "delivers_in_batches" in IpOutput.__annotations__


@pytest.mark.parametrize("implementation", [IPv4Host, FakeIp, "bench"])
def test_every_implementation_has_every_method_with_its_parameters(implementation):
    cls = _bench_ip() if implementation == "bench" else implementation
    for name in OUTPUT_CONTRACT:
        method = getattr(cls, name, None)
        assert callable(method), f"{cls.__name__} lacks {name}"
        wanted = list(inspect.signature(getattr(IpOutput, name)).parameters)
        have = list(inspect.signature(method).parameters)
        assert have[:len(wanted)] == wanted, (cls.__name__, name, have, wanted)
    assert isinstance(getattr(cls, "delivers_in_batches", False), bool)


def test_the_fake_offloads_like_a_device():
    """A 3-MSS segment with gso_size comes out as three wire segments with their own checksums,
    FIN and PSH on the last only."""
    from pynetstack.wire import tcp as T
    ip = FakeIp(1, gso=65535)
    payload = bytes(range(256)) * 12  # 3072 bytes
    partial = T.build_tcp_partial(1, 2, 80, 9000, 0xFFFFFF00, 5, T.ACK | T.PSH | T.FIN, 100, payload)
    assert ip.ip_send(1, 2, 6, partial, 0.0, gso_size=1024)
    segs = [T.Tcp.parse(raw, 1, 2) for _, _, raw in ip.sent]  # checksums verified
    assert [(s.seq, len(s.payload), s.flags) for s in segs] == [
        (0xFFFFFF00, 1024, T.ACK), (0xFFFFFF00 + 1024 - (1 << 32), 1024, T.ACK),
        (0xFFFFFF00 + 2048 - (1 << 32), 1024, T.ACK | T.PSH | T.FIN)]
    assert b"".join(bytes(s.payload) for s in segs) == payload
    with pytest.raises(AssertionError):
        FakeIp(1).ip_send(1, 2, 6, partial, 0.0, gso_size=1024)  # offload not offered
    full = T.build_tcp(1, 2, 80, 9000, 0xFFFFFF00, 5, T.ACK | T.PSH | T.FIN, 100, payload)
    with pytest.raises(AssertionError, match="pseudo-header sum"):
        ip.ip_send(1, 2, 6, full, 0.0, gso_size=1024)  # a finished checksum is not a partial one
