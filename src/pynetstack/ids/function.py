"""The IDS on the stack's packet path.

Where: PREROUTING at priority -150 (after conntrack at -200, before DNAT at -100) and OUTPUT at
-150. PREROUTING sees every packet that arrives, forwarded or for the stack itself, with the
addresses it had on the wire (before DNAT rewrites them), including the packets the filter
will drop: a scan of closed or filtered ports is still seen, and a drop rule stops an attack
before it reaches NAT, routing or a socket. OUTPUT adds the stack's own answers (SYN-ACKs,
resets, replies), which the flows, the stream's to_client side and the flood detector need.
(FORWARD + INPUT would see the same flows but only what routing and the filter let through.)
``sees_every_packet``: the flow table must not carry a flow past the IDS.

Alert-only by default; with ``inline=True`` a matching drop/reject rule drops the packet."""

from __future__ import annotations

from typing import Callable, List, Optional

from ..net import hooks
from .engine import Alert, Detector

PRIORITY_IDS = -150


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
