"""Every malformed input gives one NftError printed like nft's own errors (the expected texts
marked "as nft" were printed by nft 1.0.6 for the same file)."""

from __future__ import annotations

import pytest

from pynetstack.netfilter.nft import NftError, load, loads

AS_NFT = [
    ("table ip t {\n chain c { type filter hook input priority 0; ip saddr 1.2.3.4/33 accept; }\n}\n",
     "e.nft:2:56-65: Error: Prefix length 33 is invalid for type of 32 bits width\n"
     " chain c { type filter hook input priority 0; ip saddr 1.2.3.4/33 accept; }\n"
     "                                                       ^^^^^^^^^^"),
    ("table ip t {\n chain c { tcp dport 70000 accept; }\n}\n",
     "e.nft:2:22-26: Error: Service out of range\n chain c { tcp dport 70000 accept; }\n"
     "                     ^^^^^"),
    ("table ip t {\n chain c { jump nope; }\n}\n",
     "e.nft:2:17-20: Error: Could not process rule: No such file or directory\n chain c { jump nope; }\n"
     "                ^^^^"),
    ("table ip t {\n chain c { ip saddr $X; }\n}\n",
     "e.nft:2:22-22: Error: unknown identifier 'X'\n chain c { ip saddr $X; }\n                     ^"),
    ("table ip t {\n chain c { type filter hook bogus priority 0; }\n}\n",
     "e.nft:2:29-33: Error: unknown chain hook\n chain c { type filter hook bogus priority 0; }\n"
     "                            ^^^^^"),
    ("table ip t {\n chain c { type nat hook forward priority 0; }\n}\n",
     "e.nft:2:8-8: Error: Could not process rule: Operation not supported\n"
     " chain c { type nat hook forward priority 0; }\n       ^"),
    ("table ip t {\n chain c { tcp dport foo; }\n}\n",
     "e.nft:2:22-24: Error: Could not resolve service: Servname not supported for ai_socktype\n"
     " chain c { tcp dport foo; }\n                     ^^^"),
    ("table ip t {\n chain c { accept; }\n\n",
     "e.nft:4:1-1: Error: syntax error, unexpected end of file\n\n^"),
    ("table ip t {\n chain c { ip protocol tcp dnat to 1.2.3.4:99999; }\n}\n",
     "e.nft:2:44-48: Error: Service out of range\n chain c { ip protocol tcp dnat to 1.2.3.4:99999; }\n"
     "                                           ^^^^^"),
    ("create table ip t\ncreate table ip t\n",
     "e.nft:2:17-17: Error: Could not process rule: File exists\ncreate table ip t\n                ^"),
    ("table inet t {\n chain c { type nat hook postrouting priority 0; snat to 1.2.3.4; }\n}\n",
     "e.nft:2:50-53: Error: ip or ip6 must be specified with address for inet tables.\n"
     " chain c { type nat hook postrouting priority 0; snat to 1.2.3.4; }\n"
     "                                                 ^^^^"),
    ("table ip t { chain c { tcp dport 1; } }\n",
     "e.nft:1:39-39: Error: syntax error, unexpected '}', expecting newline or semicolon\n"
     "table ip t { chain c { tcp dport 1; } }\n                                      ^"),
    ("table ip t {\n chain c { type nat hook input priority srcnat; }\n}\n",
     "e.nft:2:32-46: Error: invalid priority expression value in this context.\n"
     " chain c { type nat hook input priority srcnat; }\n                               ^^^^^^^^^^^^^^^"),
    ("table ip t {\n chain c { meta l4proto udp tcp dport 1; }\n}\n",
     "e.nft:2:29-37: Error: conflicting protocols specified: udp vs. tcp\n"
     " chain c { meta l4proto udp tcp dport 1; }\n                            ^^^^^^^^^"),
]


@pytest.mark.parametrize("text,expected", AS_NFT)
def test_error_text_is_what_nft_prints(text, expected):
    with pytest.raises(NftError) as info:
        loads(text, "e.nft")
    assert str(info.value) == expected


# (source, line, first column, words the message must contain)
MALFORMED = [
    ('table ip t {\n\tchain c {\n\t\tiifname "eth0 accept\n\t}\n}\n', 3, 11, "unterminated string"),
    ("table ip t {\n chain c { frobnicate 1; }\n}\n", 2, 12, "unexpected frobnicate"),
    ("tabel ip t {\n}\n", 1, 1, "unexpected tabel"),
    ("table ip t {\n chain c { ip saddr 10.0.0.256 accept; }\n}\n", 2, 21, "ipv4_addr"),
    ("table ip t {\n chain c { ip daddr 10.0.0.9-10.0.0.1 accept; }\n}\n", 2, 21, "zero or negative"),
    ("table ip t {\n chain c { tcp dport 10-65536 accept; }\n}\n", 2, 25, "Service out of range"),
    ("table ip t {\n chain c { tcp dport { 22, 80 accept; }\n}\n", 2, 31, "unexpected accept"),
    ("table ip t {\n chain c {\n", 3, 1, "end of file"),
    ("table ip t {\n chain c { jump c; }\n}\n", 2, 17, "Too many levels"),
    ("table ip t {\n chain c { type filter hook input priority 0; }\n chain d { jump c; }\n}\n", 3, 17,
     "Operation not supported"),
    ("table ip t {\n chain c { type filter hook input priority 0; policy reject; }\n}\n", 2, 54,
     "accept or drop"),
    ("table ip t {\n chain c { type nat hook prerouting priority 0; snat to 1.1.1.1; }\n}\n", 2, 49,
     "Operation not supported"),
    ("table ip t {\n chain c { type nat hook postrouting priority 0; masquerade to :80; }\n}\n", 2, 65,
     "transport protocol mapping"),
    ("table ip t {\n chain c { type filter hook input priority 0; reject with icmpx type no-route; }\n}\n",
     2, 59, "icmpx is only supported"),
    ("table ip t {\n chain c { limit rate 10/fortnight; }\n}\n", 2, 26, "unknown unit"),
    ("table ip t {\n chain c { icmp type echo-bogus; }\n}\n", 2, 22, "icmp_type"),
    ("table ip t {\n chain c { ct state fresh; }\n}\n", 2, 21, "ct_state"),
    ("table ip t {\n chain c { ip saddr @nope; }\n}\n", 2, 21, "No such file or directory"),
    ("table ip t {\n set s { type inet_service; }\n chain c { ip saddr @s; }\n}\n", 3, 21,
     "datatype mismatch, expected IPv4 address"),
    ("table ip t {\n set s { type foo; }\n}\n", 2, 15, "unknown datatype foo"),
    ("table ip t {\n set s { type ipv4_addr; elements = { 10.0.0.0/8 } }\n}\n", 2, 39, "flags interval"),
    ("table ip t {\n set s { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 10.1.0.0/16 } }\n}\n",
     2, 67, "conflicting intervals"),
    ("add rule ip nope c accept\n", 1, 13, "No such file or directory"),
    ("add table ip t\nadd rule ip t nope accept\n", 2, 15, "No such file or directory"),
    ("define X = $X\n", 1, 8, "recursive definition"),
    ("table ip t {\n chain c { type filter hook input priority 0; }\n chain c { type filter hook output priority 0; }\n}\n",
     3, 12, "Device or resource busy"),
    ('table ip t {\n chain c { iifname "abcdefghijklmnopq"; }\n}\n', 2, 20, "Interface name too long"),
]


@pytest.mark.parametrize("text,line,col,words", MALFORMED)
def test_malformed_input_names_file_line_and_column(text, line, col, words):
    with pytest.raises(NftError) as info:
        loads(text, "bad.nft")
    msg = str(info.value)
    assert msg.startswith(f"bad.nft:{line}:{col}-"), msg
    assert words in msg
    head, source, marker = msg.split("\n")
    assert source == text.split("\n")[line - 1]
    assert marker.lstrip().startswith("^") and len(marker) >= col


UNSUPPORTED = [
    ("table ip6 t {\n}\n", 1, 7, "family ip6"),
    ("table ip t {\n chain c { ip6 saddr ::1 accept; }\n}\n", 2, 12, "ip6"),
    ("table ip t {\n chain c { ether saddr 00:11:22:33:44:55 accept; }\n}\n", 2, 12, "ether"),
    ("table ip t {\n chain c { ip ttl set 5; }\n}\n", 2, 12, "ip ttl set"),
    ("table ip t {\n chain c { add @s { ip saddr . tcp dport }; }\n}\n", 2, 30, "concatenated set keys"),
    ("table ip t {\n chain c { add @s { tcp flags }; }\n}\n", 2, 21, "tcp flags as a set key"),
    ("table ip t {\n map m { type ipv4_addr : verdict; }\n}\n", 2, 2, "table map"),
    ("table ip t {\n set s { type ipv4_addr; policy memory; }\n}\n", 2, 26, "set policy"),
    ("table ip t {\n set s { type ipv4_addr; elements = { 1.2.3.4 timeout 1m } }\n}\n", 2, 47,
     "set element timeout"),
    ("table ip t {\n chain c { type filter hook ingress priority 0; }\n}\n", 2, 29, "hook ingress"),
    ("table ip t {\n chain c { log flags all; }\n}\n", 2, 16, "log flags"),
    ("table ip t {\n chain c { log level loud; }\n}\n", 2, 22, "invalid log level"),
    ("table ip t {\n chain c { ct mark 1; }\n}\n", 2, 15, "ct mark"),
    ("list ruleset\n", 1, 1, "the 'list' command"),
    ("table ip t {\n chain c { limit rate 10 mbytes/second; }\n}\n", 2, 26, "byte rate"),
]


@pytest.mark.parametrize("text,line,col,words", UNSUPPORTED)
def test_unsupported_features_are_named_never_ignored(text, line, col, words):
    with pytest.raises(NftError) as info:
        loads(text, "u.nft")
    msg = str(info.value)
    assert msg.startswith(f"u.nft:{line}:{col}-"), msg
    assert words in msg


def test_include_of_a_missing_file(tmp_path):
    main = tmp_path / "main.nft"
    main.write_text('include "missing.nft"\n')
    with pytest.raises(NftError) as info:
        load(str(main))
    assert str(info.value).startswith(f"{main}:1:1-22: Error: File not found: missing.nft")


def test_include_loop(tmp_path):
    (tmp_path / "a.nft").write_text('include "b.nft"\n')
    (tmp_path / "b.nft").write_text('table ip t {\n}\ninclude "a.nft"\n')
    with pytest.raises(NftError, match="Include nested too deeply"):
        load(str(tmp_path / "a.nft"))


def test_error_inside_an_included_file_names_that_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "rules.nft").write_text("table ip t {\n chain c { tcp dport 99999; }\n}\n")
    (tmp_path / "main.nft").write_text('include "sub/rules.nft"\n')
    with pytest.raises(NftError) as info:
        load(str(tmp_path / "main.nft"))
    assert str(info.value).startswith(str(tmp_path / "sub" / "rules.nft") + ":2:22-26: Error: Service")


def test_load_of_a_missing_file_is_an_nft_error(tmp_path):
    with pytest.raises(NftError, match="File not found"):
        load(str(tmp_path / "nope.nft"))


def test_nft_error_is_a_value_error():
    assert issubclass(NftError, ValueError)


# Names in the places nft's grammar wants an identifier.  nft 1.0.6 refuses its scanner's keywords
# there (and quoted strings and numbers) and takes every other word, whatever it means elsewhere;
# test_nft_interop asks the real ``nft -c`` about each of these cases.
NAME_PLACES = {
    "table": "table ip NAME {\n}\n",
    "chain": "table ip t {\n\tchain NAME {\n\t\ttype filter hook input priority 0;\n\t}\n}\n",
    "set": "table ip t {\n\tset NAME {\n\t\ttype ipv4_addr\n\t}\n}\n",
    "define": "define NAME = 1.2.3.4\n",
    "add chain": "add table ip t\nadd chain ip t NAME\n",
}
# (name as written, how nft names it in "unexpected X")
REFUSED_NAMES = [("fwd", "fwd"), ("accept", "accept"), ("chain", "chain"), ("ip", "ip"),
                 ("inet", "inet"), ("tcp", "tcp"), ("meta", "meta"), ("type", "type"),
                 ("policy", "policy"), ("counter", "counter"), ("jump", "jump"), ("map", "map"),
                 ("auto-merge", "auto-merge"), ("rt0", "rt0"), ("vmap", "vmap"), ("and", "&"),
                 ("eq", "=="), ("or", "'|'"), ("lshift", "<<"), ('"c"', "quoted string"),
                 ("123", "number"), ("0x1f", "number")]
ACCEPTED_NAMES = ["input", "forward", "output", "prerouting", "postrouting", "filter", "nat", "foo",
                  "saddr", "daddr", "dport", "protocol", "to", "prefix", "port", "state", "version",
                  "ttl", "level", "rate", "8021q", "Accept", "_x", "a.b"]


def refused_message(template: str, name: str, shown: str) -> str:
    """What nft prints for ``name`` in the template's NAME."""
    lineno, line = next((i, line) for i, line in enumerate(template.split("\n"), 1) if "NAME" in line)
    col = line.index("NAME") + 1
    pad = "".join(c if c == "\t" else " " for c in line[:col - 1])
    line = line.replace("NAME", name)
    return (f"e.nft:{lineno}:{col}-{col + len(name) - 1}: Error: syntax error, unexpected {shown}, "
            f"expecting string\n{line}\n{pad}{'^' * len(name)}")


REFUSED_NAME_CASES = [pytest.param(template.replace("NAME", name), refused_message(template, name, shown),
                                   id=f"{place}-{name}")
                      for place, template in NAME_PLACES.items() for name, shown in REFUSED_NAMES]
ACCEPTED_NAME_CASES = [pytest.param(template.replace("NAME", name), id=f"{place}-{name}")
                       for place, template in NAME_PLACES.items() for name in ACCEPTED_NAMES]


@pytest.mark.parametrize("text,expected", REFUSED_NAME_CASES)
def test_a_keyword_is_no_name(text, expected):
    with pytest.raises(NftError) as info:
        loads(text, "e.nft")
    assert str(info.value) == expected


@pytest.mark.parametrize("text", ACCEPTED_NAME_CASES)
def test_other_words_are_names(text):
    loads(text, "e.nft")


def test_the_chain_named_fwd_as_nft_prints_it():
    with pytest.raises(NftError) as info:
        loads("table ip t {\n\tchain fwd {\n\t}\n}\n", "c.nft")
    assert str(info.value) == ("c.nft:2:8-10: Error: syntax error, unexpected fwd, expecting string\n"
                               "\tchain fwd {\n\t      ^^^")
