"""Each IPVS scheduler's choices against its rule, written here a second way (brute force)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.lb import LbError, VirtualService
from pynetstack.lb.schedulers import hash_32, make_scheduler
from pynetstack.wire.addr import ip_to_int


class Dest:
    def __init__(self, name, weight=1, active=0, inactive=0, overloaded=False):
        self.name, self.weight, self.active, self.inactive, self.overloaded = name, weight, active, inactive, overloaded

    def __repr__(self):
        return f"{self.name}(w{self.weight} a{self.active} i{self.inactive})"


def picks(name, dests, n, src=1, flags=()):
    s = make_scheduler(name, flags)
    s.update(dests)
    return [s.pick(dests, src, 1000, 2, 80).name for _ in range(n)]


def test_rr_cycles_and_skips_weight_zero_and_overloaded():
    d = [Dest("a"), Dest("b", weight=0), Dest("c"), Dest("d", overloaded=True)]
    assert picks("rr", d, 5) == ["a", "c", "a", "c", "a"]


def test_wrr_sequence_matches_ipvs_for_4_3_2():
    # IPVS's documented example: weights 4, 3, 2 give a a b a b c a b c (cw 4, 3, 2, 1 passes)
    d = [Dest("a", 4), Dest("b", 3), Dest("c", 2)]
    assert "".join(picks("wrr", d, 9)) == "aababcabc"
    assert "".join(picks("wrr", d, 18)) == "aababcabc" * 2


def wrr_reference(weights, n):
    """The interleaved WRR of the LVS documentation: passes with cw from max down by gcd."""
    from math import gcd
    g = 0
    for w in weights:
        if w > 0:
            g = gcd(g, w)
    out, cw = [], max(weights)
    while len(out) < n:
        for i, w in enumerate(weights):
            if w >= cw:
                out.append(i)
        cw -= g
        if cw <= 0:
            cw = max(weights)
    return out[:n]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=6))
def test_wrr_against_reference(weights):
    d = [Dest(str(i), w) for i, w in enumerate(weights)]
    n = 2 * sum(weights)
    assert [int(x) for x in picks("wrr", d, n)] == wrr_reference(weights, n)


def least(dests, overhead, weighted):
    """Brute force: the minimum of overhead/weight (exact fractions); the first of equals."""
    from fractions import Fraction
    best = None
    for d in dests:
        if d.overloaded or d.weight <= 0:
            continue
        value = Fraction(overhead(d), d.weight) if weighted else overhead(d)
        if best is None or value < best[0]:
            best = (value, d)
    return best[1] if best else None


dest_lists = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40), st.integers(0, 400), st.booleans()),
                      min_size=1, max_size=7)


@settings(max_examples=150, deadline=None)
@given(dest_lists)
def test_lc_wlc_sed_against_brute_force(specs):
    d = [Dest(str(i), w, a, n, o) for i, (w, a, n, o) in enumerate(specs)]
    lc_overhead = lambda x: 256 * x.active + x.inactive  # noqa: E731
    assert make_scheduler("lc").pick(d, 1, 1, 2, 80) is least(d, lc_overhead, False)
    assert make_scheduler("wlc").pick(d, 1, 1, 2, 80) is least(d, lc_overhead, True)
    assert make_scheduler("sed").pick(d, 1, 1, 2, 80) is least(d, lambda x: x.active + 1, True)


@settings(max_examples=150, deadline=None)
@given(dest_lists)
def test_nq_idle_first_else_sed(specs):
    d = [Dest(str(i), w, a, n, o) for i, (w, a, n, o) in enumerate(specs)]
    idle = [x for x in d if not x.overloaded and x.weight > 0 and x.active == 0]
    expected = idle[0] if idle else least(d, lambda x: x.active + 1, True)
    assert make_scheduler("nq").pick(d, 1, 1, 2, 80) is expected


def test_lc_overhead_counts_active_256_times():
    a, b = Dest("a", active=1, inactive=0), Dest("b", active=0, inactive=255)
    assert make_scheduler("lc").pick([a, b], 1, 1, 2, 80) is b
    b.inactive = 256  # equal overhead: the first wins
    assert make_scheduler("lc").pick([a, b], 1, 1, 2, 80) is a


def test_wlc_keeps_the_first_on_a_tie_and_uses_cross_multiplication():
    a, b = Dest("a", 2, active=2), Dest("b", 1, active=1)  # 512/2 == 256/1
    assert make_scheduler("wlc").pick([a, b], 1, 1, 2, 80) is a
    b.inactive = 1
    assert make_scheduler("wlc").pick([a, b], 1, 1, 2, 80) is a
    a.inactive = 3  # 515*1 > 257*2: b
    assert make_scheduler("wlc").pick([a, b], 1, 1, 2, 80) is b


def test_sh_table_follows_weights_and_hash_32():
    d = [Dest("a", 3), Dest("b", 1)]
    s = make_scheduler("sh")
    s.update(d)
    assert [x.name for x in s.buckets[:8]] == ["a", "a", "a", "b"] * 2
    src = ip_to_int("192.0.2.7")
    assert s.pick(d, src, 5, 0, 80) is s.buckets[((src * 0x61C88647) & 0xFFFFFFFF) >> 24]
    assert hash_32(1, 8) == 0x61
    # sh-port adds the port into the hashed value
    sp = make_scheduler("sh", ["sh-port"])
    sp.update(d)
    assert sp.pick(d, src, 5, 0, 80) is sp.buckets[hash_32(src + 5, 8)]


def test_sh_unavailable_gives_none_or_falls_back():
    d = [Dest("a"), Dest("b")]
    src = next(s for s in range(1, 1000) if hash_32(s, 8) % 2 == 0)  # lands on a
    plain = make_scheduler("sh")
    plain.update(d)
    assert plain.pick(d, src, 0, 0, 80).name == "a"
    d[0].weight = 0
    plain.update(d)
    assert plain.pick(d, src, 0, 0, 80) is None
    fb = make_scheduler("sh", ["sh-fallback"])
    fb.update(d)
    assert fb.pick(d, src, 0, 0, 80).name == "b"


def test_dh_by_destination_one_bucket_each():
    d = [Dest("a", 5), Dest("b", 1), Dest("c", 1)]
    s = make_scheduler("dh")
    s.update(d)
    assert [x.name for x in s.buckets[:6]] == ["a", "b", "c", "a", "b", "c"]
    dst = ip_to_int("10.1.2.3")
    assert s.pick(d, 99, 1, dst, 80) is d[hash_32(dst, 8) % 3]


def test_unknown_scheduler_is_one_clear_error():
    with pytest.raises(LbError, match="unknown scheduler 'fifo'"):
        make_scheduler("fifo")


def test_service_list_is_newest_first_and_rr_starts_there():
    svc = VirtualService("tcp", "10.0.0.100", 80, scheduler="rr")
    for host in ("10.0.1.1", "10.0.1.2", "10.0.1.3"):
        svc.add_server(host)
    got = [svc.schedule(1, 1, 2, 80, 0.0)[0].name for _ in range(4)]
    assert got == ["10.0.1.3:80", "10.0.1.2:80", "10.0.1.1:80", "10.0.1.3:80"]


def test_persistence_by_netmask_and_timeout():
    svc = VirtualService("tcp", "10.0.0.100", 80, scheduler="rr", persistence=300, netmask="255.255.255.0")
    for host in ("10.0.1.1", "10.0.1.2"):
        svc.add_server(host)
    c1, c2, other = ip_to_int("192.0.2.1"), ip_to_int("192.0.2.200"), ip_to_int("198.51.100.1")
    first = svc.schedule(c1, 1000, 0, 80, 0.0)[0]
    assert svc.schedule(c2, 2000, 0, 80, 10.0)[0] is first  # same /24: same server
    assert svc.schedule(other, 1000, 0, 80, 10.0)[0] is not first
    svc.expire_templates(400.0)
    assert not svc.templates
    assert first.persistent == 0


def test_drained_server_keeps_persistent_clients_unless_expire_quiescent():
    for quiescent in (False, True):
        svc = VirtualService("tcp", "10.0.0.100", 80, scheduler="rr", persistence=60, expire_quiescent=quiescent)
        a = svc.add_server("10.0.1.1")
        svc.add_server("10.0.1.2")
        client = ip_to_int("192.0.2.1")
        while svc.schedule(client, 1, 0, 80, 0.0)[0] is not a:
            svc.templates.clear()
        svc.edit_server("10.0.1.1", weight=0)
        again = svc.schedule(client, 2, 0, 80, 1.0)[0]
        assert (again is a) == (not quiescent)


def test_bad_server_inputs():
    svc = VirtualService("tcp", "10.0.0.100", 80)
    with pytest.raises(LbError, match="weight"):
        svc.add_server("10.0.1.1", weight=-1)
    with pytest.raises(LbError, match="direct routing cannot change the port"):
        svc.add_server("10.0.1.1", 8080, forward="dr")
    svc.add_server("10.0.1.1")
    with pytest.raises(LbError, match="already"):
        svc.add_server("10.0.1.1", 80)
    with pytest.raises(LbError, match="protocol"):
        VirtualService("sctp", "10.0.0.1", 80)


def test_random_connection_counts_drive_wlc_to_weights():
    """Long-lived connections under wlc end up in proportion to the weights."""
    rng = random.Random(5)
    d = [Dest("a", 1), Dest("b", 2), Dest("c", 5)]
    s = make_scheduler("wlc")
    for _ in range(800):
        s.pick(d, rng.getrandbits(32), 1, 2, 80).active += 1
    assert [x.active for x in d] == [100, 200, 500]


@pytest.mark.parametrize("name", ["sh", "mh"])
def test_hash_spread_over_many_clients_follows_weights_chi_square(name):
    """3,000 clients: the per-server counts fit the weights (chi-square, 2 degrees of freedom,
    below the 0.1 % critical value 13.82)."""
    rng = random.Random(9)
    d = [Dest("a", 1), Dest("b", 2), Dest("c", 3)]
    for i, x in enumerate(d):
        x.addr, x.port = 0x0A000102 + i, 80
    s = make_scheduler(name)
    s.update(d)
    counts = {x.name: 0 for x in d}
    for _ in range(3000):
        counts[s.pick(d, rng.getrandbits(32), 0, 0, 80).name] += 1
    chi2 = sum((counts[x.name] - 3000 * x.weight / 6) ** 2 / (3000 * x.weight / 6) for x in d)
    assert chi2 < 13.82, counts


def test_rr_steps_back_when_its_last_pick_is_removed():
    d = [Dest("a"), Dest("b"), Dest("c")]
    s = make_scheduler("rr")
    s.update(d)
    assert s.pick(d, 1, 1, 2, 80).name == "a" and s.pick(d, 1, 1, 2, 80).name == "b"
    d.remove(d[1])  # b goes: the mark moves back to a, so c is next (as IPVS's rr_del_dest)
    s.update(d)
    assert s.pick(d, 1, 1, 2, 80).name == "c"
