"""Conntrack's idle timeouts, one per protocol state, and its configuration error."""

from __future__ import annotations

TIMEOUT_KEYS = ("tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_close_wait",
                "tcp_last_ack", "tcp_time_wait", "tcp_close", "tcp_syn_sent2", "udp", "udp_stream",
                "icmp", "generic")
# the timeout key of each ct_tcp state number (0 is "none")
_TCP_STATE_KEYS = (None, "tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait",
                   "tcp_close_wait", "tcp_last_ack", "tcp_time_wait", "tcp_close", "tcp_syn_sent2")


class ConntrackError(ValueError):
    """Bad configuration given to conntrack or NAT."""


class Timeouts:
    """Idle timeouts in seconds.  The default profile is the RFC minimum for a NAT: UDP 300 s
    (RFC 4787 REQ-5: at least 2 min, 5 min recommended), TCP established 7440 s and transitory
    240 s (RFC 5382 REQ-5), ICMP query 60 s (RFC 5508 REQ-1).  ``Timeouts.linux()`` has the
    kernel's defaults (the nf_conntrack_*_timeout sysctls).  Overrides: a dict by key name."""

    __slots__ = TIMEOUT_KEYS + ("tcp",)

    RFC = dict(tcp_syn_sent=240, tcp_syn_recv=240, tcp_established=7440, tcp_fin_wait=240,
               tcp_close_wait=240, tcp_last_ack=240, tcp_time_wait=240, tcp_close=240, tcp_syn_sent2=240,
               udp=300, udp_stream=300, icmp=60, generic=600)
    LINUX = dict(tcp_syn_sent=120, tcp_syn_recv=60, tcp_established=432000, tcp_fin_wait=120,
                 tcp_close_wait=60, tcp_last_ack=30, tcp_time_wait=120, tcp_close=10, tcp_syn_sent2=120,
                 udp=30, udp_stream=120, icmp=30, generic=600)

    def __init__(self, overrides=None, base=None):
        values = dict(self.RFC if base is None else base)
        for key, value in (overrides or {}).items():
            if key not in values:
                raise ConntrackError(f"unknown conntrack timeout {key!r} (known: {', '.join(TIMEOUT_KEYS)})")
            if not isinstance(value, (int, float)) or value <= 0:
                raise ConntrackError(f"conntrack timeout {key} must be a positive number of seconds, not {value!r}")
            values[key] = value
        for key, value in values.items():
            setattr(self, key, value)
        # by TCP state number, for the hot path
        self.tcp = tuple(0 if k is None else values[k] for k in _TCP_STATE_KEYS)

    @classmethod
    def linux(cls, overrides=None) -> Timeouts:
        return cls(overrides, base=cls.LINUX)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in TIMEOUT_KEYS}
