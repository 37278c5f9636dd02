"""``nft -f`` on a running ruleset keeps what the kernel keeps: the counters, limit buckets and
``ct count``s of the rules the file leaves alone, the elements rules added to named sets and
meters (with the time they have left); what the file flushes starts again."""

from __future__ import annotations

import re

import pytest

from pynetstack.netfilter import nft
from pynetstack.netfilter.nft.carry import carry_state
from pynetstack.netfilter.router import install_router
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int

LAN_HOST, WAN_HOST = ip_to_int("192.168.1.2"), ip_to_int("203.0.113.2")

RULES = """\
table ip f {
	set seen {
		type ipv4_addr
		size 1024
		flags dynamic,timeout
		timeout 1m
	}

	chain c {
		type filter hook forward priority filter; policy accept;
		udp dport 9000 update @seen { ip saddr } counter
		udp dport 9001 limit rate 1/minute burst 3 packets counter accept
		udp dport 9001 counter drop
		udp dport 9002 meter per_source size 64 { ip saddr limit rate 1/minute burst 2 packets } counter accept
		udp dport 9002 counter drop
		counter
	}
}
"""


class Lab:
    def __init__(self, rules=RULES):
        self.sim = Simulation()
        self.lan, self.r, self.wan = self.sim.routed()
        self.router = install_router(self.r, ruleset_text=rules)

    def send(self, port, count=1):
        for _ in range(count):
            self.lan.udp.sendto(b"x" * 10, 4000, WAN_HOST, port, self.sim.now)
            self.sim.run(0.01)

    def counts(self):
        """{rule text without its counter: packets} of the forward chain."""
        out = {}
        for rule in self.router.ruleset.tables[("ip", "f")].chains["c"].rules:
            text = rule.format()
            out[re.sub(r" ?counter packets \d+ bytes \d+", "", text)] = rule.counter.packets
        return out

    def listing(self):
        return self.router.ruleset.list_ruleset(now=self.sim.now)

    def apply(self, tmp_path, text, name="more.nft"):
        path = tmp_path / name
        path.write_text(text)
        self.router.apply(str(path))


@pytest.fixture
def lab():
    return Lab()


def _traffic(lab):
    lab.send(9000, 2)
    lab.send(9001, 2)  # burst 3: one token left
    lab.send(9002, 1)  # the meter's element: one token left
    lab.sim.run(10.0)


def test_nft_f_that_adds_a_rule_keeps_counters_limits_and_set_elements(lab, tmp_path):
    _traffic(lab)
    before = lab.counts()
    assert before["udp dport 9000 update @seen { ip saddr }"] == 2
    assert "elements = { 192.168.1.2 expires 49s" in lab.listing()
    lab.apply(tmp_path, "add rule ip f c udp dport 7 counter\n")
    after = lab.counts()
    assert after.pop("udp dport 7") == 0
    assert after == before, "every old rule kept its counter"
    assert "elements = { 192.168.1.2 expires 49s" in lab.listing(), "the element kept its expiry time"
    assert "per_source" in lab.listing()
    lab.send(9001, 2)  # 1 token (+10 s of 1/minute): one passes, one is dropped
    lab.send(9002, 2)  # the meter's element had one token left
    counts = lab.counts()
    assert counts["udp dport 9001 limit rate 1/minute burst 3 packets accept"] == 3
    assert counts["udp dport 9001 drop"] == 1
    assert counts["udp dport 9002 meter per_source size 64 { ip saddr limit rate 1/minute burst 2 packets } accept"] == 2
    assert counts["udp dport 9002 drop"] == 1


def test_a_fresh_ruleset_would_have_let_the_burst_through(tmp_path):
    """The control: without the carried state the same packets all pass (so the test above can fail)."""
    lab = Lab()
    lab.send(9001, 2)
    lab.router.load(text=RULES)  # a whole new ruleset: everything from zero
    lab.send(9001, 2)
    assert lab.counts()["udp dport 9001 limit rate 1/minute burst 3 packets accept"] == 2
    assert lab.counts()["udp dport 9001 drop"] == 0


def test_masquerade_call_keeps_the_state_too(lab):
    _traffic(lab)
    before = lab.counts()
    lab.router.masquerade("192.168.1.0/24", "wan0")
    assert lab.counts() == before
    assert "elements = { 192.168.1.2 expires 49s" in lab.listing()
    lab.router.port_forward(8080, "192.168.1.2", 80, in_interface="wan0")
    assert lab.counts() == before


def test_a_table_block_declared_again_keeps_its_rules_state(lab, tmp_path):
    _traffic(lab)
    before = lab.counts()
    lab.apply(tmp_path, "table ip f {\n\tchain extra {\n\t\tcounter\n\t}\n}\n")
    assert lab.counts() == before


def test_the_same_file_again_adds_its_rules_again_and_keeps_the_set(lab, tmp_path):
    """As the kernel does (checked with nft 1.0.6): a set declared again with the same properties
    is the same set (its elements join it); the chain gains the file's rules a second time."""
    _traffic(lab)
    before = lab.counts()
    lab.apply(tmp_path, RULES)
    rules = lab.router.ruleset.tables[("ip", "f")].chains["c"].rules
    assert len(rules) == 12
    assert [r.counter.packets for r in rules[6:]] == [0] * 6
    assert [r.counter.packets for r in rules[:6]] == list(before.values())
    assert "elements = { 192.168.1.2 expires 49s" in lab.listing()


def test_a_set_declared_again_differently_is_refused(lab, tmp_path):
    with pytest.raises(nft.NftError, match="File exists"):
        lab.apply(tmp_path, "table ip f {\n\tset seen {\n\t\ttype ipv4_addr\n\t}\n}\n")
    with pytest.raises(nft.NftError, match="File exists"):
        lab.apply(tmp_path, "create set ip f seen { type ipv4_addr; size 1024; flags dynamic,timeout; timeout 1m; }\n")
    merged = nft.loads("table ip t {\n\tset s {\n\t\ttype ipv4_addr\n\t\telements = { 1.1.1.1 }\n\t}\n}\n"
                       "table ip t {\n\tset s {\n\t\ttype ipv4_addr\n\t\telements = { 2.2.2.2 }\n\t}\n}\n")
    assert "elements = { 1.1.1.1, 2.2.2.2 }" in merged.list_ruleset()


def test_flush_chain_resets_its_rules_not_the_set(lab, tmp_path):
    _traffic(lab)
    lab.apply(tmp_path, "flush chain ip f c\nadd rule ip f c udp dport 9000 update @seen { ip saddr } counter\n")
    assert lab.counts() == {"udp dport 9000 update @seen { ip saddr }": 0}
    assert "elements = { 192.168.1.2 expires 49s" in lab.listing(), "flush chain leaves sets alone"


def test_delete_rule_takes_only_that_rule(lab, tmp_path):
    _traffic(lab)
    before = lab.counts()
    gone = lab.router.ruleset.tables[("ip", "f")].chains["c"].rules[0]
    assert gone.format().startswith("udp dport 9000 update @seen { ip saddr } counter packets 2")
    lab.apply(tmp_path, f"delete rule ip f c handle {gone.handle}\n"
                        "add rule ip f c udp dport 9000 update @seen { ip saddr } counter\n")
    before["udp dport 9000 update @seen { ip saddr }"] = 0  # the same text again, a new rule: from zero
    after = lab.counts()
    assert after == before
    assert list(after).index("udp dport 9000 update @seen { ip saddr }") == 5, "added at the end"
    assert "192.168.1.2 expires 49s" in lab.listing(), "the set is not the rule's"
    with pytest.raises(nft.NftError, match="No such file or directory"):
        lab.apply(tmp_path, f"delete rule ip f c handle {gone.handle}\n", "again.nft")


def test_flush_set_empties_that_set_and_later_files_keep_what_came_after(lab, tmp_path):
    _traffic(lab)
    before = lab.counts()
    lab.apply(tmp_path, "flush set ip f seen\n")
    assert "elements" not in lab.listing()
    assert lab.counts() == before
    lab.send(9000)
    assert "elements = { 192.168.1.2 expires 59s" in lab.listing()
    lab.apply(tmp_path, "add rule ip f c udp dport 7 counter\n", "later.nft")  # replays the flush: not a new one
    assert "elements = { 192.168.1.2 expires 59s" in lab.listing()


def test_flush_ruleset_starts_everything_again(lab, tmp_path):
    _traffic(lab)
    lab.apply(tmp_path, "flush ruleset\n" + RULES)
    assert set(lab.counts().values()) == {0}
    assert "elements" not in lab.listing()


def test_flush_table_resets_every_rule_of_it(lab, tmp_path):
    _traffic(lab)
    lab.apply(tmp_path, "flush table ip f\nadd rule ip f c counter\n")
    assert lab.counts() == {"": 0}
    assert "192.168.1.2 expires" in lab.listing()


def test_a_broken_file_changes_nothing(lab, tmp_path):
    _traffic(lab)
    before, listing = lab.counts(), lab.listing()
    with pytest.raises(nft.NftError):
        lab.apply(tmp_path, "add rule ip f c udp dport 7 counter\nadd rule ip f nochain counter\n")
    assert lab.counts() == before and lab.listing() == listing
    lab.send(9000, 1)
    assert lab.counts()["udp dport 9000 update @seen { ip saddr }"] == 3, "the running ruleset still counts"


def test_delete_rule_of_a_missing_handle_errs_as_nft_does(tmp_path):
    """nft 1.0.6 in a namespace, after loading a table with chain c: this very text."""
    path = tmp_path / "d.nft"
    path.write_text("delete rule ip f c handle 99\n")
    lab = Lab()
    with pytest.raises(nft.NftError) as info:
        lab.router.apply(str(path))
    assert str(info.value).split("\n")[1:] == ["delete rule ip f c handle 99", " " * 26 + "^^"]
    assert str(info.value).startswith(f"{path}:1:27-28: Error: Could not process rule: No such file or directory")


QUOTA_RULES = """\
table ip f {
	chain c {
		type filter hook forward priority filter; policy accept;
		udp dport 9003 quota 100 bytes counter
		udp dport 9004 quota 76 bytes counter
		udp dport 9004 quota over 76 bytes counter
	}
}
"""


def test_a_quota_keeps_its_consumption_across_nft_f(tmp_path):
    lab = Lab(QUOTA_RULES)
    lab.send(9003, 2)  # 38-byte datagrams: 76 of 100 bytes used
    lab.apply(tmp_path, "add rule ip f c udp dport 7 counter\n")
    assert "quota 100 bytes used 76 bytes counter packets 2 " in lab.listing()
    lab.send(9003)  # 114 > 100: over the quota, the rule no longer matches
    assert "quota 100 bytes used 100 bytes counter packets 2 " in lab.listing(), "used is listed capped at the quota"


def test_quota_is_over_once_used_goes_past_it():
    """Linux 6.18 (checked in a namespace: quota 168 bytes and two 84-byte pings both match)."""
    lab = Lab(QUOTA_RULES)
    lab.send(9004, 3)
    listing = lab.listing()
    assert "udp dport 9004 quota 76 bytes used 76 bytes counter packets 2 " in listing
    assert "udp dport 9004 quota over 76 bytes used 76 bytes counter packets 1 " in listing
    assert nft.loads(lab.router.ruleset.list_ruleset()).list_ruleset() == lab.router.ruleset.list_ruleset()


def test_a_ruleset_swapped_in_from_elsewhere_lends_no_state(lab, tmp_path):
    """``replace_ruleset`` with a Ruleset of another origin: its handles mean nothing to the
    next rebuild from the sources, so nothing is carried from it."""
    other = nft.loads(RULES)
    other.tables[("ip", "f")].chains["c"].rules[0].counter.packets = 99
    lab.router.replace_ruleset(other)
    lab.apply(tmp_path, "add rule ip f c udp dport 7 counter\n")
    assert lab.counts()["udp dport 9000 update @seen { ip saddr }"] == 0


def test_carry_state_matches_by_table_handle_rule_handle_and_set_type():
    """A table flushed away and declared again (new handle) carries nothing; a set of another type
    under the same name carries nothing; rules of the same handle in the same table carry."""
    old = nft.loads(RULES)
    rule = old.tables[("ip", "f")].chains["c"].rules[0]
    rule.counter.packets = 5
    old.tables[("ip", "f")].sets["seen"].runtime().insert(LAN_HOST, 0.0, 60.0, None)
    same = nft.loads(RULES)
    assert carry_state(old, same) == 7  # the set and the six rules
    assert same.tables[("ip", "f")].chains["c"].rules[0].counter.packets == 5
    assert same.tables[("ip", "f")].sets["seen"].runtime().get(LAN_HOST, 1.0) is not None
    recreated = nft.loads(RULES + "flush ruleset ip\n" + RULES)
    assert recreated.tables[("ip", "f")].handle != old.tables[("ip", "f")].handle
    assert carry_state(old, recreated) == 0
    retyped = nft.loads(RULES.replace("type ipv4_addr", "type inet_service").replace(
        "update @seen { ip saddr }", "update @seen { udp sport }"))
    carry_state(old, retyped)
    assert not retyped.tables[("ip", "f")].sets["seen"].runtime().entries
