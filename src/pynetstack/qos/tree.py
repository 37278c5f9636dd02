"""Building a class tree: the default one (the seed's five classes under one shaped rate) and
one from explicit class specifications (what the ``[qos]`` section and the API give)."""

from __future__ import annotations

from typing import Dict, Iterable, Optional

from .bucket import TokenBucket, default_burst
from .classify import BACKGROUND, BULK, INTERACTIVE, VIDEO, VOICE
from .codel import INTERVAL, MTU, TARGET, FqCodel
from .htb import HtbClass, HtbTree

# (share of the rate, prio): voice is strict (prio 0) and policed to its share; the others
# are guaranteed their share and borrow up to the whole rate, sharing the spare by their rates
DEFAULT_SHARES = {VOICE: (0.10, 0), INTERACTIVE: (0.20, 1), VIDEO: (0.30, 1), BULK: (0.30, 1),
                  BACKGROUND: (0.10, 1)}


class ClassSpec:
    """What one leaf class is: rates in bytes per second, sizes in bytes."""

    __slots__ = ("name", "rate", "ceil", "burst", "cburst", "prio", "quantum", "police", "police_burst",
                 "limit", "target", "interval", "flows", "ecn")

    def __init__(self, name: str, rate: float, ceil: Optional[float] = None, burst: Optional[int] = None,
                 cburst: Optional[int] = None, prio: int = 1, quantum: Optional[int] = None,
                 police: Optional[float] = None, police_burst: Optional[int] = None, limit: int = 1000,
                 target: float = TARGET, interval: float = INTERVAL, flows: int = 1024, ecn: bool = True):
        self.name = name
        self.rate = rate
        self.ceil = ceil
        self.burst = burst
        self.cburst = cburst
        self.prio = prio
        self.quantum = quantum
        self.police = police
        self.police_burst = police_burst
        self.limit = limit
        self.target = target
        self.interval = interval
        self.flows = flows
        self.ecn = ecn  # CoDel marks ECN-capable packets instead of dropping them


def default_specs(rate: float) -> Dict[str, ClassSpec]:
    specs = {}
    for name, (share, prio) in DEFAULT_SHARES.items():
        part = rate * share
        if name == VOICE:
            specs[name] = ClassSpec(name, part, ceil=part, prio=prio, police=part)
        else:
            specs[name] = ClassSpec(name, part, ceil=rate, prio=prio)
    return specs


def build_tree(rate: float, specs: Iterable[ClassSpec], now: float = 0.0, burst: Optional[int] = None,
               mtu: int = MTU) -> HtbTree:
    """A root class shaped to ``rate`` (bytes/s) with one leaf per spec."""
    root = HtbClass("root", rate, rate, burst or default_burst(rate, mtu), prio=0, now=now)
    specs = list(specs)
    # DRR quanta in proportion to the rates, the slowest class getting one MTU a round: spare
    # bandwidth is shared by rate (as HTB's rate / r2q), in rounds short enough that no class
    # waits through a long turn of another (which its CoDel would answer with drops)
    slowest = min((spec.rate for spec in specs), default=rate)
    for spec in specs:
        ceil = spec.ceil if spec.ceil is not None else rate
        leaf_burst = spec.burst or default_burst(spec.rate, mtu)
        leaf_cburst = spec.cburst or default_burst(ceil, mtu)
        policer = None
        if spec.police is not None:
            police_burst = spec.police_burst or default_burst(spec.police, mtu) * 4
            policer = TokenBucket(spec.police, police_burst, now)
            # what the policer lets in must not queue behind the class's own shaper
            leaf_burst = max(leaf_burst, police_burst)
            leaf_cburst = max(leaf_cburst, police_burst)
        queue = FqCodel(limit=spec.limit, flows=spec.flows, quantum=mtu, target=spec.target,
                        interval=spec.interval, mtu=mtu, ecn=spec.ecn)
        root.add(HtbClass(spec.name, spec.rate, ceil, leaf_burst, leaf_cburst,
                          spec.prio, spec.quantum or int(mtu * spec.rate / slowest), queue, policer, now))
    return HtbTree(root)


def default_tree(rate: float, now: float = 0.0) -> HtbTree:
    return build_tree(rate, default_specs(rate).values(), now)
