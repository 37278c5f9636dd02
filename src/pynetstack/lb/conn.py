"""IPVS's connection table: which server each connection went to, its IPVS state and time-out.

The state follows IPVS's TCP state table (ip_vs_proto_tcp.c): the first flag of a segment
among RST, SYN, FIN, ACK (in that order of precedence) and the direction (input from the
client, output from the server, or input-only while no output has been seen, as for direct
routing) give the next state.  Counters on the server follow IPVS: a new connection counts as
inactive, and it is active while its state is SYN_SENT, SYN_RECV, SYNACK or ESTABLISHED.
Every state has IPVS's time-out (``ipvsadm --set`` tcp/tcpfin/udp default 900/120/300 s).
"""

from __future__ import annotations

import heapq
from typing import Dict, Optional

NONE, ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, SYNACK = range(11)
UDP = 11
STATE_NAMES = ("NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT",
               "LAST_ACK", "LISTEN", "SYNACK", "UDP")
ACTIVE_STATES = frozenset((ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK))

# IPVS's default time-outs in seconds, per state (tcp_timeouts[], udp_timeouts[])
DEFAULT_TIMEOUTS = {"NONE": 2, "ESTABLISHED": 900, "SYN_SENT": 120, "SYN_RECV": 60, "FIN_WAIT": 120,
                    "TIME_WAIT": 120, "CLOSE": 10, "CLOSE_WAIT": 60, "LAST_ACK": 30, "LISTEN": 120,
                    "SYNACK": 120, "UDP": 300}

INPUT, OUTPUT, INPUT_ONLY = 0, 1, 2
_SYN, _FIN, _ACK, _RST = 0, 1, 2, 3
_ = None
# next state by [direction][event][current state], in the order of the state constants above
_TABLE = (
    (  # input: client -> server
        (SYN_RECV, ESTABLISHED, ESTABLISHED, SYN_RECV, SYN_RECV, SYN_RECV, SYN_RECV, SYN_RECV, SYN_RECV, SYN_RECV,
         SYN_RECV),
        (CLOSE, CLOSE_WAIT, SYN_SENT, TIME_WAIT, TIME_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, TIME_WAIT),
        (ESTABLISHED, ESTABLISHED, SYN_SENT, ESTABLISHED, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, CLOSE, LISTEN,
         ESTABLISHED),
        (CLOSE, CLOSE, CLOSE, SYN_RECV, CLOSE, CLOSE, CLOSE, CLOSE, LAST_ACK, LISTEN, SYN_RECV),
    ),
    (  # output: server -> client
        (SYN_SENT, ESTABLISHED, SYN_SENT, SYN_RECV, SYN_SENT, SYN_SENT, SYN_SENT, SYN_SENT, SYN_SENT, LISTEN,
         SYN_RECV),
        (TIME_WAIT, FIN_WAIT, SYN_SENT, TIME_WAIT, FIN_WAIT, TIME_WAIT, CLOSE, TIME_WAIT, LAST_ACK, LISTEN, TIME_WAIT),
        (ESTABLISHED, ESTABLISHED, SYN_SENT, ESTABLISHED, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK,
         ESTABLISHED, ESTABLISHED),
        (CLOSE, CLOSE, SYN_SENT, CLOSE, CLOSE, TIME_WAIT, CLOSE, CLOSE, CLOSE, CLOSE, CLOSE),
    ),
    (  # input only: no output seen (direct routing)
        (SYN_RECV, ESTABLISHED, ESTABLISHED, SYN_RECV, SYN_RECV, SYN_RECV, SYN_RECV, SYN_RECV, SYN_RECV, SYN_RECV,
         SYN_RECV),
        (CLOSE, FIN_WAIT, SYN_SENT, TIME_WAIT, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, TIME_WAIT),
        (ESTABLISHED, ESTABLISHED, SYN_SENT, ESTABLISHED, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, CLOSE, LISTEN,
         ESTABLISHED),
        (CLOSE, CLOSE, CLOSE, SYN_RECV, CLOSE, CLOSE, CLOSE, CLOSE, LAST_ACK, LISTEN, CLOSE),
    ),
)


def tcp_event(flags: int) -> int:
    if flags & 0x04:
        return _RST
    if flags & 0x02:
        return _SYN
    if flags & 0x01:
        return _FIN
    if flags & 0x10:
        return _ACK
    return -1


def next_state(state: int, direction: int, flags: int) -> int:
    """IPVS's set_tcp_state: a segment without SYN/FIN/ACK/RST takes the connection to CLOSE."""
    event = tcp_event(flags)
    if event < 0:
        return CLOSE
    return _TABLE[direction][event][state]


class LbConnection:
    __slots__ = ("key", "service", "server", "template", "state", "inactive", "no_output", "deadline", "ct",
                 "scheduled", "replied")

    def __init__(self, key, service, server, template, no_output: bool, deadline: float):
        self.key = key  # (proto, client, client port, virtual address, virtual port)
        self.service = service
        self.server = server
        self.template = template
        self.state = NONE if key[0] == 6 else UDP
        self.inactive = True
        self.no_output = no_output  # IP_VS_CONN_F_NOOUTPUT: not NAT, the replies bypass us
        self.deadline = deadline
        self.scheduled = 0.0
        self.ct = None
        self.replied = False

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]


class ConnectionTable:
    """Connections by client tuple, with IPVS's time-outs, bounded (``max_connections``: a new
    connection past it is refused, as IPVS refuses when it cannot allocate one)."""

    def __init__(self, timeouts: Optional[dict] = None, max_connections: int = 1 << 20):
        values = dict(DEFAULT_TIMEOUTS)
        for name, value in (timeouts or {}).items():
            if name not in values:
                raise ValueError(f"unknown IPVS time-out {name!r} (use {', '.join(values)})")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"time-out {name} must be a positive number of seconds, not {value!r}")
            values[name] = value
        self.timeouts = [values[name] for name in STATE_NAMES]
        self.max_connections = max_connections
        self.by_key: Dict[tuple, LbConnection] = {}
        self._heap = []
        self.on_expire = None  # callback(conn) before an expired connection goes
        self.refused = 0

    def __len__(self) -> int:
        return len(self.by_key)

    def get(self, key) -> Optional[LbConnection]:
        return self.by_key.get(key)

    def add(self, key, service, server, template, now: float) -> Optional[LbConnection]:
        if len(self.by_key) >= self.max_connections:
            self.refused += 1
            return None
        conn = LbConnection(key, service, server, template, server.forward != "nat",
                            now + self.timeouts[NONE if key[0] == 6 else UDP])
        self.by_key[key] = conn
        server.inactive += 1  # IP_VS_CONN_F_INACTIVE at first, as __ip_vs_update_dest sets it
        server.check_threshold()
        server.stats.conns += 1
        service.stats.conns += 1
        if template is not None:
            template.refs += 1
        self._schedule(conn)
        return conn

    def packet(self, conn: LbConnection, output: bool, flags: int, now: float) -> None:
        """A packet of ``conn`` passed: move its state (TCP) and push its time-out on."""
        if conn.key[0] == 6:
            if output:
                direction = OUTPUT
                conn.no_output = False
                conn.replied = True
            else:
                direction = INPUT_ONLY if conn.no_output else INPUT
            new = next_state(conn.state, direction, flags)
            if new != conn.state:
                server = conn.server
                active = new in ACTIVE_STATES
                if active and conn.inactive:
                    server.inactive -= 1
                    server.active += 1
                    conn.inactive = False
                elif not active and not conn.inactive:
                    server.active -= 1
                    server.inactive += 1
                    conn.inactive = True
                conn.state = new
        elif output:
            conn.replied = True
        deadline = now + self.timeouts[conn.state]
        conn.deadline = deadline
        if deadline < conn.scheduled or not conn.scheduled:
            self._schedule(conn)

    def _schedule(self, conn: LbConnection) -> None:
        conn.scheduled = conn.deadline
        heapq.heappush(self._heap, (conn.deadline, id(conn), conn))

    def remove(self, conn: LbConnection) -> None:
        if self.by_key.get(conn.key) is not conn:
            return
        del self.by_key[conn.key]
        server = conn.server
        if conn.inactive:
            server.inactive -= 1
        else:
            server.active -= 1
        server.check_threshold()
        if conn.template is not None:
            conn.template.refs -= 1

    def poll(self, now: float) -> int:
        heap = self._heap
        gone = 0
        while heap and heap[0][0] <= now:
            _, _, conn = heapq.heappop(heap)
            if self.by_key.get(conn.key) is not conn:
                continue
            if conn.deadline > now:  # pushed on since: wait again
                self._schedule(conn)
                continue
            if self.on_expire is not None:
                self.on_expire(conn)
            self.remove(conn)
            gone += 1
        if len(heap) > 4 * len(self.by_key) + 1024:  # drop stale timer entries
            self._heap = [(c.deadline, id(c), c) for c in self.by_key.values()]
            heapq.heapify(self._heap)
        return gone

    def next_deadline(self) -> Optional[float]:
        return self._heap[0][0] if self._heap else None
