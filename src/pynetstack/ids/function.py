"""The IDS on the stack's packet path.

Where: PREROUTING and OUTPUT at priority -90, after conntrack (-200) and DNAT (-100), before the
filter (0). PREROUTING sees every packet that arrives, forwarded or for the stack itself,
including the packets the filter will drop: a scan of closed or filtered ports is still seen,
and an inline drop rule stops an attack before routing, the filter or a socket (a dropped first
packet leaves no conntrack entry, so no NAT mapping either). OUTPUT adds the stack's own answers
(SYN-ACKs, resets, replies), which the flows, the stream's to_client side and the flood
detector need. (FORWARD + INPUT would see the same flows but only what the filter lets through.)
``sees_every_packet``: the flow table must not carry a flow past the IDS.

One connection is one IDS flow, whatever NAT does. When conntrack runs, the flow is keyed by
the conntrack entry (its original tuple) and the direction is conntrack's (``ctx.ct_dir``): the
masqueraded request and its reply, addressed to the router's public address, are one flow and
one reassembled stream. The addresses the rules see are those of the two real hosts, as
Suricata on the router's LAN interface sees them: the client by its own address (before SNAT),
the server by its own address (after DNAT). Linux's NAT hooks make that the address view just
after DNAT: at PREROUTING -100 a new connection's destination is rewritten (DNAT, port forward)
and a reply's destination restored (de-SNAT); sources change only at POSTROUTING / INPUT. So a
port forward from 203.0.113.1:8080 to 192.168.1.10:80 is seen as client -> 192.168.1.10:80
from its first SYN on (before DNAT, at -150 as earlier, the SYN would show the public address
and the rest of the flow the private one), and a masqueraded client as 192.168.1.2, not as the
router. Packets conntrack does not track as a connection of their own (ICMP errors, which
it relates to another entry; invalid or untracked packets) and the IDS without conntrack
(``pynetstack ids -r``) key flows by the 5-tuple, either way round.

Alert-only by default; with ``inline=True`` a matching drop/reject rule drops the packet."""

from __future__ import annotations

from typing import Callable, List, Optional

from ..net import hooks
from .engine import Alert, Detector

PRIORITY_IDS = hooks.PRIORITY_DSTNAT + 10  # -90: after DNAT, before the filter
CT_FLOWS = ("new", "established")  # the packet belongs to ctx.ct's own connection


class IdsFunction(hooks.NetworkFunction):
    name = "ids"
    hooks = ((hooks.PREROUTING, PRIORITY_IDS), (hooks.OUTPUT, PRIORITY_IDS))
    sees_every_packet = True

    def __init__(self, detector: Detector, on_alerts: Optional[Callable[[List[Alert]], None]] = None,
                 poll_interval: float = 1.0):
        self.detector = detector
        self.on_alerts = on_alerts  # e.g. an EveWriter's write
        self.poll_interval = poll_interval
        self._next_poll: Optional[float] = None
        self.recent: List[Alert] = []  # the last alerts, for status and tests (bounded)

    @property
    def inline(self) -> bool:
        return self.detector.inline

    def process(self, ctx) -> str:
        ct = ctx.ct
        if ct is not None and ctx.ct_state in CT_FLOWS:
            alerts = self.detector.inspect_ip(ctx.ip, ctx.now, 0, ct.original, ctx.ct_dir)
        else:
            alerts = self.detector.inspect_ip(ctx.ip, ctx.now)
        if self._next_poll is None:
            self._next_poll = ctx.now + self.poll_interval
        if alerts:
            self._emit(alerts)
            for alert in alerts:
                ctx.note(f"ids: [{alert.rule.gid}:{alert.rule.sid}:{alert.rule.rev}] {alert.rule.msg} ({alert.action})")
        if self.detector.verdict_drop:  # a drop rule matched this packet or earlier in its flow
            return ctx.drop("ids-drop")
        return hooks.ACCEPT

    def _emit(self, alerts: List[Alert]) -> None:
        self.recent.extend(alerts)
        if len(self.recent) > 1000:
            del self.recent[:-1000]
        if self.on_alerts is not None:
            self.on_alerts(alerts)

    def poll(self, now: float) -> None:
        self._next_poll = now + self.poll_interval
        alerts = self.detector.poll(now)
        if alerts:
            self._emit(alerts)

    def next_deadline(self) -> Optional[float]:
        return self._next_poll

    def stats(self) -> dict:
        out = self.detector.stats()
        for detector in self.detector.detectors:
            if hasattr(detector, "stats"):
                out.update(detector.stats())
        return out

    def explain(self) -> str:
        mode = "inline (drop rules drop)" if self.inline else "alert-only"
        return (f"ids: {self.detector.ruleset.loaded} rules, {mode}, on prerouting/output at {PRIORITY_IDS}, "
                f"detectors: {', '.join(d.name for d in self.detector.detectors) or 'none'}")
