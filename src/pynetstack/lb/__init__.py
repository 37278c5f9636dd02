"""A load balancer as Linux IPVS has it: virtual services, IPVS's schedulers (and Maglev), NAT
and direct-routing forwarding, persistence, draining and health checks.

    from pynetstack.lb import VirtualService, install_lb
    web = VirtualService("tcp", "10.0.0.100", 80, scheduler="wlc")
    web.add_server("10.0.1.2", 80, weight=2)
    lb = install_lb(stack, [web])
"""

from __future__ import annotations

from .function import LoadBalancer, install_lb
from .health import HealthCheckConfig
from .service import LbError, RealServer, VirtualService

__all__ = ["HealthCheckConfig", "LbError", "LoadBalancer", "RealServer", "VirtualService", "install_lb"]
