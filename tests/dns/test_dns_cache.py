"""The cache on a virtual clock: expiry, countdown, LRU bounds, negative entries, ranks, stats."""
from pynetstack.dns.cache import RANK_AUTH_ANSWER, RANK_GLUE, Cache
from pynetstack.wire import dns as w


def a(name, addr, ttl=300):
    return w.Record(name, w.A, w.IN, ttl, w.ARdata(addr))


SOA = w.Record("z.test.", w.SOA, w.IN, 3600, w.SOARdata("ns.z.test.", "h.z.test.", 1, 2, 3, 4, 60))


def test_ttl_counts_down_and_expires(clock):
    cache = Cache()
    cache.put([a("x.z.test.", "192.0.2.1", 300)], clock())
    clock.advance(100.4)
    hit = cache.get("X.Z.test.", w.A, clock())
    assert hit.records[0].ttl == 199 and hit.records[0].data.address == "192.0.2.1"
    clock.advance(199.6)
    assert cache.get("x.z.test.", w.A, clock()) is None
    assert cache.stats.as_dict()["expired"] == 1 and len(cache) == 0


def test_rrset_ttl_is_the_lowest(clock):
    cache = Cache()
    cache.put([a("x.z.test.", "192.0.2.1", 300), a("x.z.test.", "192.0.2.2", 30)], clock())
    assert [rr.ttl for rr in cache.get("x.z.test.", w.A, clock()).records] == [30, 30]


def test_lru_eviction_by_entries(clock):
    cache = Cache(max_entries=3)
    for i in range(3):
        cache.put([a(f"h{i}.z.test.", f"192.0.2.{i}")], clock())
    assert cache.get("h0.z.test.", w.A, clock()) is not None  # h0 is now most recently used
    cache.put([a("h3.z.test.", "192.0.2.3")], clock())
    assert cache.get("h1.z.test.", w.A, clock()) is None
    assert cache.get("h0.z.test.", w.A, clock()) is not None
    assert len(cache) == 3 and cache.stats.evictions == 1


def test_lru_eviction_by_bytes(clock):
    cache = Cache(max_entries=1000, max_bytes=2000)
    for i in range(50):
        cache.put([a(f"host{i}.z.test.", f"192.0.2.{i}")], clock())
    assert cache.bytes <= 2000 and 0 < len(cache) < 50
    assert cache.get("host49.z.test.", w.A, clock()) is not None


def test_negative_caching_uses_soa_minimum(clock):
    cache = Cache()
    cache.put_negative("gone.z.test.", w.A, w.NXDOMAIN, SOA, clock())
    hit = cache.get("gone.z.test.", w.MX, clock())  # NXDOMAIN covers every type
    assert hit.negative and hit.rcode == w.NXDOMAIN and hit.records[0].ttl == 60
    cache.put_negative("www.z.test.", w.MX, w.NOERROR, SOA, clock())
    nodata = cache.get("www.z.test.", w.MX, clock())
    assert nodata.negative and nodata.rcode == w.NOERROR
    assert cache.get("www.z.test.", w.A, clock()) is None
    clock.advance(61)
    assert cache.get("gone.z.test.", w.A, clock()) is None


def test_negative_without_soa_is_not_cached(clock):
    cache = Cache()
    cache.put_negative("gone.z.test.", w.A, w.NXDOMAIN, None, clock())
    assert len(cache) == 0


def test_glue_does_not_replace_an_authoritative_answer(clock):
    cache = Cache()
    cache.put([a("ns.z.test.", "192.0.2.1")], clock(), RANK_AUTH_ANSWER)
    cache.put([a("ns.z.test.", "203.0.113.66")], clock(), RANK_GLUE)
    assert cache.get("ns.z.test.", w.A, clock()).records[0].data.address == "192.0.2.1"
    clock.advance(301)
    cache.put([a("ns.z.test.", "203.0.113.66")], clock(), RANK_GLUE)
    assert cache.get("ns.z.test.", w.A, clock()).records[0].data.address == "203.0.113.66"


def test_hit_miss_stats_and_max_ttl(clock):
    cache = Cache(max_ttl=100)
    cache.put([a("x.z.test.", "192.0.2.1", 100000)], clock())
    assert cache.get("x.z.test.", w.A, clock()).records[0].ttl == 100
    cache.get("y.z.test.", w.A, clock())
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    clock.advance(1000)
    assert cache.purge(clock()) == 1


def test_min_rank_hides_glue_and_a_better_rank_replaces_it(clock):
    cache = Cache()
    cache.put([a("ns.z.test.", "203.0.113.66")], clock(), RANK_GLUE)
    assert cache.get("ns.z.test.", w.A, clock()) is not None                # guides iteration
    assert cache.get("ns.z.test.", w.A, clock(), min_rank=RANK_AUTH_ANSWER) is None  # answers nobody
    cache.put([a("ns.z.test.", "192.0.2.1")], clock(), RANK_AUTH_ANSWER)
    hit = cache.get("ns.z.test.", w.A, clock(), min_rank=RANK_AUTH_ANSWER)
    assert hit.records[0].data.address == "192.0.2.1"


def test_records_stored_under_a_given_key(clock):
    cache = Cache()
    cname = w.Record("x.d.test.", w.CNAME, w.IN, 50, w.CNAMERdata("x.e.test."))
    dname = w.Record("d.test.", 39, w.IN, 80, w.UnknownRdata(39, b"\x01e\x04test\x00"))
    cache.put([dname, cname], clock(), RANK_AUTH_ANSWER, key=("x.d.test.", w.CNAME))
    hit = cache.get("x.d.test.", w.CNAME, clock())
    assert [rr.rtype for rr in hit.records] == [39, w.CNAME] and {rr.ttl for rr in hit.records} == {50}
