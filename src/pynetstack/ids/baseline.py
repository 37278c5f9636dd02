"""Anomaly detection against learned baselines, per interface and per host.

Every ``interval`` seconds each metric's value for the interval is compared with its baseline:
an exponentially weighted mean and variance (EWMA, weight ``alpha``) and a one-sided CUSUM of
the standardised excess. After ``warmup`` intervals, a value more than ``z_threshold`` standard
deviations above the mean, or a CUSUM beyond ``cusum_h``, raises an alert naming the metric,
the baseline and the deviation. Anomalous intervals do not train the baseline.

Metrics: packets, bytes, new_flows (per second), syn_synack_ratio, icmp_errors (per second),
dns_nxdomain (share of DNS answers). Bounded: ``max_hosts`` hosts (the oldest goes)."""

from __future__ import annotations

import math
from typing import Dict, List, Optional

from .engine import Alert
from .findings import baseline_rule

METRICS = ("packets", "bytes", "new_flows", "syn_synack_ratio", "icmp_errors", "dns_nxdomain")
_ICMP_ERRORS = (3, 4, 5, 11, 12)


class Baseline:
    """EWMA mean and variance with a one-sided CUSUM and a warm-up."""

    __slots__ = ("mean", "var", "count", "cusum")

    def __init__(self):
        self.mean = 0.0
        self.var = 0.0
        self.count = 0
        self.cusum = 0.0

    def judge(self, value: float, alpha: float, warmup: int, z_threshold: float, k: float, h: float,
              floor: float) -> Optional[dict]:
        """Compare ``value`` with the baseline, then learn it unless anomalous; the finding or None."""
        if self.count < warmup:
            self._learn(value, alpha if self.count else 1.0)
            return None
        std = max(math.sqrt(self.var), floor)
        z = (value - self.mean) / std
        self.cusum = max(0.0, self.cusum + z - k)
        found = None
        if z > z_threshold or self.cusum > h:
            found = {"value": round(value, 3), "baseline_mean": round(self.mean, 3),
                     "baseline_stddev": round(std, 3), "z_score": round(z, 2), "cusum": round(self.cusum, 2)}
            self.cusum = 0.0
        else:
            self._learn(value, alpha)
        return found

    def _learn(self, value: float, alpha: float) -> None:
        diff = value - self.mean
        self.mean += alpha * diff
        self.var = (1 - alpha) * (self.var + alpha * diff * diff)
        self.count += 1


class _Counts:
    __slots__ = ("packets", "bytes", "new_flows", "syn", "synack", "icmp_errors", "dns_answers", "nxdomain",
                 "packet", "flow")

    def __init__(self):
        self.packets = self.bytes = self.new_flows = self.syn = self.synack = 0
        self.icmp_errors = self.dns_answers = self.nxdomain = 0
        self.packet = self.flow = None


class BaselineDetector:
    name = "baseline"

    def __init__(self, interval: float = 1.0, alpha: float = 0.05, warmup: int = 30, z_threshold: float = 6.0,
                 cusum_k: float = 0.5, cusum_h: float = 12.0, max_hosts: int = 1024, per_host: bool = True,
                 interface: str = "all"):
        self.interval = interval
        self.alpha = alpha
        self.warmup = warmup
        self.z_threshold = z_threshold
        self.cusum_k = cusum_k
        self.cusum_h = cusum_h
        self.max_hosts = max_hosts
        self.per_host = per_host
        self.interface = interface
        self.baselines: Dict[tuple, Baseline] = {}
        self.counts: Dict[object, _Counts] = {}
        self.started: Optional[float] = None
        self.detected = 0

    def observe(self, p, flow, direction: int, now: float) -> List[Alert]:
        out: List[Alert] = []
        if self.started is None:
            self.started = now
        elif now - self.started >= self.interval:
            out = self._close(now)
        keys = (self.interface, p.dst) if self.per_host else (self.interface,)
        for key in keys:
            counts = self.counts.get(key)
            if counts is None:
                if len(self.counts) >= self.max_hosts:
                    continue
                counts = self.counts[key] = _Counts()
            counts.packets += 1
            counts.bytes += p.length
            counts.packet, counts.flow = p, flow
            if sum(flow.pkts) == 1:
                counts.new_flows += 1
            if p.proto == 6:
                flags = p.flags & 0x12
                if flags == 0x02:
                    counts.syn += 1
                elif flags == 0x12:
                    counts.synack += 1
            elif p.proto == 1 and p.icmp_type in _ICMP_ERRORS:
                counts.icmp_errors += 1
            elif p.dns_qr == 1:
                counts.dns_answers += 1
                counts.nxdomain += p.dns_rcode == 3
        return out

    def _close(self, now: float) -> List[Alert]:
        span = max(now - self.started, self.interval)
        out: List[Alert] = []
        for key, c in self.counts.items():
            values = {"packets": c.packets / span, "bytes": c.bytes / span, "new_flows": c.new_flows / span,
                      "syn_synack_ratio": c.syn / (c.synack + 1.0), "icmp_errors": c.icmp_errors / span}
            if c.dns_answers:
                values["dns_nxdomain"] = c.nxdomain / c.dns_answers
            for metric, value in values.items():
                bkey = (key, metric)
                baseline = self.baselines.get(bkey)
                if baseline is None:
                    if len(self.baselines) >= self.max_hosts * len(METRICS):
                        del self.baselines[next(iter(self.baselines))]
                    baseline = self.baselines[bkey] = Baseline()
                floor = 0.05 if metric in ("dns_nxdomain", "syn_synack_ratio") else 1.0
                found = baseline.judge(value, self.alpha, self.warmup, self.z_threshold, self.cusum_k,
                                       self.cusum_h, floor)
                if found is not None and c.packet is not None:
                    self.detected += 1
                    scope = "interface" if key == self.interface else "host"
                    found.update({"detector": "baseline", "metric": metric, "scope": scope,
                                  "key": key if scope == "interface" else _ip(key)})
                    out.append(Alert(baseline_rule(metric), c.packet, c.flow, 0, "allowed", found))
        # every key seen before gets a zero interval too when silent: keep the ones with baselines
        self.counts = {}
        self.started = now
        return out

    def poll(self, now: float) -> List[Alert]:
        return []

    def stats(self) -> dict:
        return {"anomalies_detected": self.detected, "baselines": len(self.baselines)}


def _ip(value: int) -> str:
    from ..wire.addr import ip_to_str
    return ip_to_str(value)
