"""Stateful statements: per-source meters (token buckets in a dynamic set), ct count, set
timeouts, the set's bound and eviction, ip dscp set."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.netfilter.classifier import Classifier
from pynetstack.netfilter.nft import NftError, loads

from .nftstub import Pkt


def chain_rs(rules: str, sets: str = "") -> object:
    return loads(f"table ip t {{\n{sets}\tchain c {{\n\t\ttype filter hook input priority 0; policy accept;\n"
                 f"{rules}\n\t}}\n}}\n")


FLOOD = "\t\ttcp flags syn add @flood { ip saddr limit rate over 20/second } counter drop"
FLOOD_SET = "\tset flood {\n\t\ttype ipv4_addr\n\t\tflags dynamic\n\t\tsize 4\n\t}\n"


def test_per_source_token_bucket_limits_each_source_to_its_rate():
    rs = chain_rs(FLOOD, FLOOD_SET)
    dropped = {"10.0.0.1": 0, "10.0.0.2": 0}
    for i in range(1000):  # 10 s at 100 packets/s from .1, 10 packets/s from .2
        now = i * 0.01
        if rs.evaluate("input", Pkt(src="10.0.0.1", now=now)).verdict == "drop":
            dropped["10.0.0.1"] += 1
        if i % 10 == 0 and rs.evaluate("input", Pkt(src="10.0.0.2", now=now)).verdict == "drop":
            dropped["10.0.0.2"] += 1
    passed = 1000 - dropped["10.0.0.1"]
    assert abs(passed - (5 + 20 * 10)) <= 2  # the burst of 5, then 20/s: within 1 %
    assert dropped["10.0.0.2"] == 0
    assert rs.rules()[0].counter.packets == dropped["10.0.0.1"]
    # non-SYN segments are not counted against the source
    assert rs.evaluate("input", Pkt(src="10.0.0.1", tcp_flags=0x10, now=9.99)).verdict == "accept"


def test_a_full_meter_evicts_idle_sources_and_otherwise_stops_matching():
    rs = chain_rs(FLOOD, FLOOD_SET)
    table = rs.tables[("ip", "t")].sets["flood"].runtime()
    for k in range(4):  # four sources flooding at t=0: the set (size 4) is full of busy buckets
        for _ in range(30):
            rs.evaluate("input", Pkt(src=f"10.0.1.{k}", now=0.0))
    assert len(table.entries) == 4
    # a fifth source finds no room: as the kernel, the rule does not match (the packet goes on)
    assert all(rs.evaluate("input", Pkt(src="10.0.2.1", now=0.0)).verdict == "accept" for _ in range(30))
    assert table.counters["table-full"] == 30
    # a second later the buckets are full again: their elements can be evicted for new sources
    for _ in range(30):
        rs.evaluate("input", Pkt(src="10.0.2.1", now=1.0))
    assert "10.0.2.1" not in table.entries and len(table.entries) == 4
    assert table.counters["elements-evicted"] == 1
    assert sum(rs.evaluate("input", Pkt(src="10.0.2.1", now=1.0)).verdict == "drop" for _ in range(5)) == 5


class FakeCt:
    def __init__(self, deadline=100.0):
        self.status = 0
        self.deadline = deadline


def test_ct_count_per_source_counts_live_connections():
    rs = chain_rs("\t\tct state new add @conns { ip saddr ct count over 2 } reject with tcp reset",
                  "\tset conns {\n\t\ttype ipv4_addr\n\t\tflags dynamic\n\t}\n")
    conns = [FakeCt() for _ in range(4)]
    verdicts = []
    for ct in conns:
        pkt = Pkt(src="10.0.0.9", now=1.0)
        pkt.ct = ct
        verdicts.append(rs.evaluate("input", pkt).verdict)
    assert verdicts == ["accept", "accept", "reject", "reject"]
    conns[0].status = 0x200  # dying: no longer counted
    conns[2].deadline = 0.5
    pkt = Pkt(src="10.0.0.9", now=1.0)
    pkt.ct = FakeCt()
    assert rs.evaluate("input", pkt).verdict == "reject"  # 1, 3 and this one: still over 2
    conns[3].status = pkt.ct.status = 0x200
    pkt = Pkt(src="10.0.0.9", now=1.0)
    pkt.ct = FakeCt()
    assert rs.evaluate("input", pkt).verdict == "accept"
    other = Pkt(src="10.0.0.8", now=1.0)
    other.ct = FakeCt()
    assert rs.evaluate("input", other).verdict == "accept"


def test_update_with_timeout_and_membership_test():
    rs = chain_rs("\t\tip saddr @seen counter drop\n\t\ttcp dport 22 update @seen { ip saddr timeout 10s }",
                  "\tset seen {\n\t\ttype ipv4_addr\n\t\ttimeout 1m\n\t}\n")
    nset = rs.tables[("ip", "t")].sets["seen"]
    assert nset.dynamic and nset.timeout_flag and nset.size == 65535
    assert rs.evaluate("input", Pkt(src="10.0.0.5", dport=22, now=0.0)).verdict == "accept"
    assert rs.evaluate("input", Pkt(src="10.0.0.5", dport=80, now=5.0)).verdict == "drop"
    assert rs.evaluate("input", Pkt(src="10.0.0.6", dport=80, now=5.0)).verdict == "accept"
    assert rs.evaluate("input", Pkt(src="10.0.0.5", dport=80, now=10.5)).verdict == "accept"  # expired
    # the compiled classifier sees the same dynamic set
    assert Classifier(rs).evaluate(rs, "input", Pkt(src="10.0.0.5", dport=22, now=11.0)).verdict == "accept"
    assert Classifier(rs).evaluate(rs, "input", Pkt(src="10.0.0.5", now=12.0)).verdict == "drop"


def test_standalone_ct_count_and_dscp_set():
    rs = chain_rs("\t\tip dscp set ef\n\t\tct count over 1 drop")
    first, second = Pkt(tos=1), Pkt()
    first.ct, second.ct = FakeCt(), FakeCt()
    assert rs.evaluate("input", first).verdict == "accept"
    assert first.ip.tos == (46 << 2) | 1  # DSCP rewritten, ECN bits kept
    assert rs.evaluate("input", second).verdict == "drop"


def test_meter_statement_has_its_own_bounded_table():
    rs = chain_rs("\t\tmeter m size 2 { ip saddr limit rate 1/second burst 1 packets } accept\n\t\tdrop")
    assert rs.evaluate("input", Pkt(src="1.1.1.1")).verdict == "accept"
    assert rs.evaluate("input", Pkt(src="1.1.1.1")).verdict == "drop"
    assert rs.evaluate("input", Pkt(src="1.1.1.2")).verdict == "accept"
    assert "meter m size 2 { ip saddr limit rate 1/second burst 1 packets } accept" in rs.list_ruleset()


def test_bad_dynamic_statements_are_clear_errors():
    for text, words in [
        ("\t\tadd @nope { ip saddr }", "No such file or directory"),
        ("\t\tadd @flood { tcp dport }", "datatype mismatch"),
        ("\t\tupdate @flood { ip saddr timeout 1x }", "Wrong timeout format"),
    ]:
        try:
            chain_rs(text, FLOOD_SET)
        except NftError as err:
            assert words in str(err)
        else:
            raise AssertionError(text)


def test_concatenations_match_every_part():
    rs = chain_rs("\t\tip saddr . tcp dport @allowed accept\n"
                  "\t\tip saddr . ip daddr . tcp dport != { 10.0.0.0/8 . 10.1.1.1 . 1-1024 } drop\n"
                  "\t\tudp dport 53 ip daddr . udp dport { 10.9.0.1 . 53 } counter",
                  "\tset allowed {\n\t\ttype ipv4_addr . inet_service\n"
                  "\t\telements = { 10.0.0.1 . 22, 10.0.0.2 . 80 }\n\t}\n")
    assert rs.evaluate("input", Pkt(src="10.0.0.1", dport=22)).rule is rs.rules()[0]
    assert rs.evaluate("input", Pkt(src="10.0.0.1", dport=80, dst="10.1.1.1")).verdict == "accept"
    assert rs.evaluate("input", Pkt(src="10.0.0.1", dport=2000, dst="10.1.1.1")).verdict == "drop"
    assert rs.evaluate("input", Pkt(src="11.0.0.1", dport=80, dst="10.1.1.1")).verdict == "drop"
    rs.evaluate("input", Pkt(src="10.0.0.5", dst="10.9.0.1", dport=53, proto=17))
    rs.evaluate("input", Pkt(src="10.0.0.5", dst="10.9.0.2", dport=53, proto=17))
    assert rs.rules()[2].counter.packets == 1
    try:
        chain_rs("\t\tip daddr . udp dport 10.9.0.1 . 53 accept")
    except NftError as err:
        assert "Use concatenations with sets and maps, not singleton values" in str(err)
    else:
        raise AssertionError("a singleton concatenation loaded")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 0.5)), min_size=1, max_size=120), st.integers(1, 8))
def test_meter_equals_one_bucket_per_source_and_stays_bounded(events, size):
    """Against a brute-force reference (an unbounded dict of independent buckets): the same
    verdicts while every source fits; never more elements than the set's size."""
    rs = chain_rs(FLOOD, FLOOD_SET.replace("size 4", f"size {size}"))
    table = rs.tables[("ip", "t")].sets["flood"].runtime()
    reference = {}
    template = rs.rules()[0].items[2].stmt
    now = 0.0
    for source, step in events:
        now += step
        src = f"10.9.9.{source}"
        verdict = rs.evaluate("input", Pkt(src=src, now=now)).verdict
        assert len(table.entries) <= size
        if len({s for s, _ in events}) <= size:  # everyone fits: exactly the reference
            bucket = reference.setdefault(src, template.fresh())
            assert verdict == ("accept" if bucket.admit(now) else "drop")  # "over": drop what is over
