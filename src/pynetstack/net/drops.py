"""Named drop reasons, counted per reason (like Linux's skb drop reasons).

Parsers raise ``MalformedPacket(reason)`` with their own reason strings ("ipv4-bad-checksum");
the stack's own decisions use the names below.  Both end up as keys of one counter.
"""

from __future__ import annotations

from collections import Counter


class DropReason:
    LINK_DOWN = "link-down"
    NOT_FOR_US_MAC = "eth-not-for-us"
    VLAN_NOT_CONFIGURED = "eth-vlan-not-configured"
    UNKNOWN_ETHERTYPE = "eth-unknown-ethertype"
    ARP_NOT_FOR_US = "arp-not-for-us"
    IP_BAD_SOURCE = "ipv4-bad-source"
    IP_NOT_FOR_US = "ipv4-not-for-us"
    IP_TTL_EXPIRED = "ipv4-ttl-expired"
    IP_NO_ROUTE = "ipv4-no-route"
    IP_FRAG_NEEDED = "ipv4-fragmentation-needed"
    FRAG_OVERLAP = "ipv4-frag-overlap"
    FRAG_TOO_BIG = "ipv4-frag-too-big"
    FRAG_BAD_LENGTH = "ipv4-frag-bad-length"
    FRAG_TIMEOUT = "ipv4-frag-timeout"
    FRAG_MEMORY = "ipv4-frag-memory-limit"
    FRAG_DUPLICATE = "ipv4-frag-duplicate"
    FRAG_TOO_MANY = "ipv4-frag-too-many"
    PROTO_UNREACHABLE = "ipv4-unknown-protocol"
    NEIGH_QUEUE_FULL = "neigh-queue-full"
    NEIGH_FAILED = "neigh-resolution-failed"
    HOOK_DROP = "netfilter-drop"
    HOOK_BAD_VERDICT = "netfilter-bad-verdict"
    HOOK_REJECT = "netfilter-reject"
    ROUTE_BLACKHOLE = "ipv4-route-blackhole"
    ROUTE_UNREACHABLE = "ipv4-route-unreachable"
    ROUTE_PROHIBIT = "ipv4-route-prohibit"
    CT_INVALID = "conntrack-invalid"
    CT_TABLE_FULL = "conntrack-table-full"
    CT_INSERT_FAILED = "conntrack-insert-failed"
    NAT_NO_MAPPING = "nat-no-mapping"
    ICMP_NOT_OURS = "icmp-error-not-about-us"
    ICMP_UNHANDLED = "icmp-unhandled-type"
    ICMP_RATE_LIMITED = "icmp-error-rate-limited"
    UDP_NO_SOCKET = "udp-port-unreachable"
    UDP_RCVBUF_FULL = "udp-receive-buffer-full"
    INTERNAL_ERROR = "internal-error"


class DropCounter(Counter):
    """reason -> number of packets dropped for it. ``observer`` (if set) hears each drop."""

    observer = None

    def drop(self, reason: str) -> None:
        self[reason] += 1
        if self.observer is not None:
            self.observer(reason)

    @property
    def total(self) -> int:
        return sum(self.values())
