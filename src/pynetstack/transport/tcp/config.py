"""Tunables of the TCP layer, with Linux-like defaults. One object per layer; a connection may
get a copy with per-socket changes (TCP_NODELAY, SO_RCVBUF, SO_KEEPALIVE...)."""

from __future__ import annotations

_DEFAULTS = dict(
    mss=None,               # advertised MSS; None: path MTU - 40
    rcvbuf=1 << 20,         # receive buffer (bytes): the advertised window follows its free space
    sndbuf=1 << 20,         # send buffer (bytes)
    window_scaling=True,    # RFC 7323
    timestamps=True,        # RFC 7323
    sack=True,              # RFC 2018 / RFC 6675
    nodelay=False,          # disable Nagle (TCP_NODELAY)
    congestion="cubic",     # "reno" or "cubic"
    msl=30.0,               # TIME-WAIT lasts 2*MSL
    rto_initial=1.0,        # RFC 6298 2.1
    rto_min=0.2,            # RFC 6298 says 1 s; Linux and most stacks use 200 ms
    rto_max=60.0,           # RFC 6298 2.5
    delack=0.04,            # delayed-ACK timer (RFC 9293: under 0.5 s)
    keepalive=False,        # SO_KEEPALIVE
    keepidle=7200.0,
    keepintvl=75.0,
    keepcnt=9,
    syn_retries=6,
    synack_retries=5,
    retries2=15,            # data retransmissions before giving up (ETIMEDOUT)
    fin_timeout=60.0,       # FIN-WAIT-2 lifetime once the application has closed
    user_timeout=0.0,       # TCP_USER_TIMEOUT: 0 = off
)

_LAYER_DEFAULTS = dict(
    syn_backlog=256,            # half-open connections per listener before SYN cookies
    syncookies=True,            # RFC 4987
    challenge_ack_limit=1000,   # RFC 5961 challenge ACKs per second (whole layer)
    max_connections=200_000,    # all connections, including TIME-WAIT
    max_time_wait=50_000,       # beyond this a connection skips TIME-WAIT (Linux tw_max_buckets)
    ephemeral_ports=(49152, 65535),
    event_log_size=16,          # state transitions kept per connection
    coalesce=None,              # merge a batch's in-order segments (gro.py); None: where it pays
)


class TcpConfig:
    __slots__ = tuple(_DEFAULTS) + tuple(_LAYER_DEFAULTS)

    def __init__(self, **overrides):
        for name, value in _DEFAULTS.items():
            setattr(self, name, value)
        for name, value in _LAYER_DEFAULTS.items():
            setattr(self, name, value)
        for name, value in overrides.items():
            if name not in _DEFAULTS and name not in _LAYER_DEFAULTS:
                raise TypeError(f"unknown TCP option {name!r}")
            setattr(self, name, value)

    def copy(self, **overrides) -> TcpConfig:
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(overrides)
        return TcpConfig(**values)
