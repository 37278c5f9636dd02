"""Parsing nft files into the ruleset model, and listing it back exactly as ``nft list ruleset``."""

from __future__ import annotations

import os

import pytest

from pynetstack.netfilter import types
from pynetstack.netfilter.nft import NftError, check, load, loads
from pynetstack.netfilter.nft.statements import Counter, Nat

from .nftstub import DATA, EXAMPLES


def golden(name: str) -> str:
    with open(os.path.join(DATA, name[:-4] + ".list")) as fh:
        return fh.read()


@pytest.mark.parametrize("name", EXAMPLES)
def test_listing_matches_the_kernels_listing(name):
    # the .list files were written by `nft list ruleset` after `nft -f` of the same file
    assert load(os.path.join(DATA, name)).list_ruleset() == golden(name)


@pytest.mark.parametrize("name", EXAMPLES)
def test_list_parse_list_is_a_fixed_point(name):
    first = load(os.path.join(DATA, name)).list_ruleset()
    second = loads(first).list_ruleset()
    assert second == first
    assert loads(second).list_ruleset() == second


def test_brief_example_model():
    rs = load(os.path.join(DATA, "nat_example.nft"))
    (table,) = rs.tables.values()
    assert (table.family, table.name) == ("ip", "nat")
    pre, post = table.chains["prerouting"], table.chains["postrouting"]
    assert (pre.type, pre.hook, pre.priority, pre.policy) == ("nat", "prerouting", -100, "accept")
    assert (post.type, post.hook, post.priority) == ("nat", "postrouting", 100)
    dnat = pre.rules[0].items[-1]
    assert isinstance(dnat, Nat)
    assert dnat.spec == types.NatSpec(types.DNAT, 0xC0A8010A, None, 80)
    rule = post.rules[0]
    assert isinstance(rule.counter, Counter) and rule.counter.packets == 0
    assert post.rules[0].items[-1].spec == types.NatSpec(types.MASQUERADE)
    assert rs.base_chains("postrouting") == [post]
    assert rs.base_chains("forward") == []


def test_handles_number_chains_then_rules_per_table_like_the_kernel():
    rs = load(os.path.join(DATA, "nat_example.nft"))
    text = rs.list_ruleset(handles=True)
    assert "table ip nat { # handle 1" in text
    assert "chain prerouting { # handle 1" in text and "chain postrouting { # handle 2" in text
    assert "dnat to 192.168.1.10:80 # handle 3" in text and "masquerade # handle 4" in text


def test_base_chains_sorted_by_priority_and_stable():
    rs = loads("""
table ip a {
	chain late { type filter hook input priority 10; }
	chain first { type filter hook input priority -5; }
	chain tie1 { type filter hook input priority 0; }
}
table inet b {
	chain tie2 { type filter hook input priority filter; }
	chain other { type filter hook output priority 0; }
}
""")
    assert [c.name for c in rs.base_chains("input")] == ["first", "tie1", "tie2", "late"]


def test_nat_specs_of_every_form():
    rs = load(os.path.join(DATA, "nat_commands.nft"))
    specs = [r.items[-1].spec for r in rs.rules()]
    assert types.NatSpec("redirect", None, None, 22) in specs
    assert types.NatSpec("masquerade", None, None, 20000, 30000, {"random", "persistent"}) in specs
    assert types.NatSpec("snat", 0xCB007101, 0xCB007104, 1024, 65535, {"fully-random"}) in specs
    assert types.NatSpec("dnat", 0x0A000035) in specs
    # insert rule puts the rule first
    assert rs.tables[("ip", "nat")].chains["pre"].rules[0].items[-1].spec.kind == "redirect"


def test_inet_nat_needs_the_ip_keyword_or_an_ip_match():
    rs = load(os.path.join(DATA, "nat_inet.nft"))
    assert "dnat ip to 192.168.1.11:80" in rs.list_ruleset()
    with pytest.raises(NftError, match="ip or ip6 must be specified"):
        loads("table inet t {\n chain c { type nat hook postrouting priority 0; snat to 1.2.3.4; }\n}\n")


def test_flush_ruleset_and_merging_blocks():
    rs = loads("table ip a { }\nflush ruleset\ntable ip b {\n chain c { accept; }\n}\n"
               "table ip b {\n chain c { drop; }\n}\n")
    assert list(rs.tables) == [("ip", "b")]
    assert [r.format() for r in rs.rules()] == ["accept", "drop"]


def test_defines_nest_and_sets_expand():
    rs = loads('define A = 22\ndefine P = { $A, 80 }\ndefine IF = "eth0"\n'
               'table ip t {\n chain c { iifname $IF tcp dport $P accept; }\n}\n')
    assert rs.rules()[0].format() == 'iifname "eth0" tcp dport { 22, 80 } accept'


def test_comments_semicolons_and_line_continuation():
    rs = loads("table ip t { # a comment\n chain c { tcp dport 1 \\\n accept ; udp dport 2 drop # x\n }\n}\n")
    assert [r.format() for r in rs.rules()] == ["tcp dport 1 accept", "udp dport 2 drop"]


def test_check_accepts_valid_and_raises_on_invalid(tmp_path):
    assert check(os.path.join(DATA, "filter.nft")) is None
    bad = tmp_path / "bad.nft"
    bad.write_text("table ip t {\n chain c { tcp dport 70000 accept; }\n}\n")
    with pytest.raises(NftError):
        check(str(bad))


def test_counter_values_are_kept_and_listed():
    rs = load(os.path.join(DATA, "include_main.nft"))
    counter = rs.rules()[0].counter
    assert (counter.packets, counter.bytes) == (3, 180)
