"""The compiled FIB against a brute-force longest-prefix match, through adds, deletes and device
state changes, and its chunks folding back when prefixes go."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.net.route import Route, RouteError, RoutingTable
from pynetstack.net.route_fib import Fib
from pynetstack.wire.addr import prefix_mask


class Dev:
    def __init__(self, name):
        self.name = name
        self.up = True


DEVS = [Dev("a"), Dev("b"), Dev("c")]
# a few /16s so that prefixes of every length overlap and nest, at all three FIB levels
HIGHS = st.sampled_from([0x0A00, 0x0A01, 0xC000, 0xFFFF, 0x0000])
addresses = st.one_of(
    st.builds(lambda high, low: (high << 16) | low, HIGHS, st.integers(0, 0xFFFF)),
    # a few /24s too, so that level-3 prefixes nest in each other
    st.builds(lambda high, mid, low: (high << 16) | (mid << 8) | low, HIGHS, st.sampled_from([0, 1, 255]),
              st.integers(0, 255)))
prefixes = st.tuples(addresses, st.integers(0, 32))
operations = st.lists(st.one_of(
    st.tuples(st.just("add"), prefixes, st.integers(0, 2), st.integers(0, 2), st.sampled_from(["unicast", "blackhole"])),
    st.tuples(st.just("del"), st.integers(0, 1000)),
    st.tuples(st.just("dev"), st.integers(0, 2), st.booleans()),
), max_size=60)


def reference(routes, dst):
    """Brute force: the longest live prefix; in it, the first live route (lowest metric, then
    insertion order)."""
    best = None
    for length in range(32, -1, -1):
        candidates = [r for r in routes if r.length == length and dst & prefix_mask(length) == r.prefix
                      and (r.type != "unicast" or r.nexthops[0].interface.up)]
        if candidates:
            best = sorted(candidates, key=lambda r: r.metric)[0]  # sort is stable: insertion order
            break
    return best


def probes(routes, extra):
    out = set(extra)
    for r in routes:
        size = 1 << (32 - r.length)
        for dst in (r.prefix, r.prefix + size - 1, r.prefix - 1, r.prefix + size, r.prefix + size // 2):
            out.add(dst & 0xFFFFFFFF)
    return out


@settings(max_examples=150, deadline=None)
@given(operations, st.lists(st.integers(0, 0xFFFFFFFF), max_size=20))
def test_lookup_matches_brute_force(ops, extra):
    for dev in DEVS:
        dev.up = True
    table = RoutingTable(cache_size=64)
    live = []  # insertion order
    for op in ops:
        if op[0] == "add":
            _, (prefix, length), metric, dev, kind = op
            route = Route(prefix, length, DEVS[dev] if kind == "unicast" else None, metric=metric, type=kind)
            try:
                table.append(route)
            except RouteError:
                continue
            live.append(route)
        elif op[0] == "del" and live:
            victim = live[op[1] % len(live)]
            assert table.delete(victim.prefix, victim.length, metric=victim.metric, type=victim.type,
                                dev=victim.interface) is not None
            # ip route del removes the first matching route, which may be an equal twin
            gone = next(r for r in table_order(live, victim) if r.matches(victim.metric, None, victim.interface, victim.type))
            live.remove(gone)
        elif op[0] == "dev":
            table.set_interface_state(DEVS[op[1]], op[2])
        for dst in probes(live, extra):
            assert table.lookup(dst) is reference(live, dst), hex(dst)
            assert table.lookup(dst) is reference(live, dst)  # the cached answer too
    for r in list(live):
        table.delete(r.prefix, r.length, metric=r.metric, type=r.type, dev=r.interface)
    assert table.stats()["installed"] == 0 and table.stats()["chunks_l2"] == 0 and table.stats()["chunks_l3"] == 0


def table_order(live, victim):
    same = [r for r in live if (r.prefix, r.length) == (victim.prefix, victim.length)]
    return sorted(same, key=lambda r: r.metric)


def test_chunks_fold_back_and_are_reused():
    fib = Fib()
    fib.install(0x0A000000, 8, "ten")
    fib.install(0x0A010280, 25, "deep")
    assert fib.chunks() == (1, 1)
    assert fib.lookup(0x0A010281) == "deep" and fib.lookup(0x0A010201) == "ten" and fib.lookup(0x0B000000) is None
    fib.uninstall(0x0A010280, 25)
    assert fib.chunks() == (0, 0)
    assert fib.lookup(0x0A010281) == "ten"
    size = len(fib.levels[1])
    fib.install(0xC0000200, 24, "test-net")
    assert len(fib.levels[1]) == size  # the freed chunk was reused
    assert fib.uninstall(0xC0000200, 24) and not fib.uninstall(0xC0000200, 24)
    fib.uninstall(0x0A000000, 8)
    assert fib.lookup(0x0A010281) is None and len(fib) == 0


def test_updating_a_prefix_value_keeps_the_slots():
    fib = Fib()
    fib.install(0, 0, "a")
    fib.install(0, 0, "b")
    assert fib.lookup(12345) == "b" and len(fib) == 1


def test_a_short_prefix_leaves_the_chunks_below_alone():
    fib = Fib()
    fib.install(0x0A010200, 24, "deep")
    before = fib.levels[1].tobytes()
    fib.install(0, 0, "default")
    assert fib.levels[1].tobytes() == before  # only the chunk's base changed
    assert fib.lookup(0x0A010201) == "deep" and fib.lookup(0x0A010301) == "default"
    fib.uninstall(0, 0)
    assert fib.levels[1].tobytes() == before
    assert fib.lookup(0x0A010301) is None and fib.lookup(0x0A010201) == "deep"
