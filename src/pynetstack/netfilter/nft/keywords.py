"""The words nft's scanner always turns into keywords, so that nft 1.0.6 refuses them where its
grammar wants a plain name (a table, chain or set name, a define's name): ``chain fwd {`` is
``syntax error, unexpected fwd, expecting string``.

The list was found by asking ``nft -c -f`` (1.0.6) about every word of its scanner in each of
those positions; each word was refused in all of them or in none.  Words the scanner makes a
keyword only inside an expression (``saddr``, ``dport``, ``protocol``, ``to``, ...) and words it
never knows (``input``, ``forward``, ``output``) are names.
"""

from __future__ import annotations

# keywords nft names by their own spelling in "unexpected X"
NAMED_KEYWORDS = frozenset("""
    accept add ah all arp auto-merge bridge cgroup chain comment comp constant continue counter
    cpu create ct day dccp define delete describe device devices dnat drop dst dup dynamic
    ecn element elements esp ether exists expires export exthdr fib flags flow flowtable flush
    frag fwd gc-interval get goto handle hbh hook hour ibriport ibrname icmp icmpv6 igmp iif
    iifgroup iifname iiftype import include index inet insert interval ip ip6 ipsec jhash jump
    limit list log map mark masquerade meta meter mh missing monitor netdev nftrace notrack
    numgen obriport obrname offload oif oifgroup oifname oiftype osf pkttype policy position
    priority queue quota random redefine redirect reject rename replace reset return rt rt0 rt2
    rtclassid rule ruleset sctp secmark set size skgid skuid snat socket srh symhash synproxy
    table tcp th time timeout tproxy type typeof udp udplite undefine update vlan vmap xt
""".split())

# operator keywords, which nft names by the operator they stand for
OPERATOR_WORDS = {"and": "&", "eq": "==", "ge": ">=", "gt": ">", "le": "<=", "lshift": "<<",
                  "lt": "<", "ne": "!=", "not": "!", "or": "'|'", "rshift": ">>", "xor": "^"}

KEYWORDS = NAMED_KEYWORDS | frozenset(OPERATOR_WORDS)


def is_number(word: str) -> bool:
    """A word nft's scanner reads as a number (decimal or 0x hex), never as a name."""
    if word[:2] in ("0x", "0X") and len(word) > 2:
        return all(c in "0123456789abcdefABCDEF" for c in word[2:])
    return word.isdigit()
