"""Quality of service on egress: classification, an HTB-like class tree with FQ-CoDel in each
class, a policed strict-priority voice class, and SLA monitoring (see qdisc.EgressQdisc)."""

from __future__ import annotations

from .classify import CLASSES, Classifier, Rule
from .qdisc import EgressQdisc
from .tree import ClassSpec, build_tree, default_tree

__all__ = ["CLASSES", "Classifier", "ClassSpec", "EgressQdisc", "Rule", "build_tree", "default_tree",
           "attach_qos"]


def attach_qos(stack, interface: str, rate, classes=None, rules=(), remark_dscp: bool = False,
               targets=None, trust_dscp: bool = True) -> EgressQdisc:
    """Shape ``interface`` of ``stack`` to ``rate`` ('50mbit' or bits/s) with the default five
    classes (or ``classes``: ClassSpecs) and return the qdisc (``tc qdisc replace ... htb``)."""
    from .bucket import parse_rate
    from .sla import SlaMonitor
    from .tree import default_specs
    rate_bytes = parse_rate(rate, "rate")
    now = stack.now()
    specs = list(classes) if classes else list(default_specs(rate_bytes).values())
    tree = build_tree(rate_bytes, specs, now)
    qdisc = EgressQdisc(tree, Classifier(rules, trust_dscp=trust_dscp), SlaMonitor(list(tree.leaves), targets,
                                                                                     now=now),
                        remark_dscp=remark_dscp)
    with stack.lock:
        qdisc.attach(stack.interfaces[interface])
    from .config import install
    install(stack)
    stack.wake()
    return qdisc
