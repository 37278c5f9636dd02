"""A load-balancer lab on the virtual clock: clients -- balancer -- three real servers.

    client 10.0.0.2 ---- 10.0.0.1 [balancer] 10.0.N.1 ---- 10.0.N.2 server N (N = 1, 2, 3)

The virtual address 10.0.9.100 is routed to the balancer; the servers route back through it
(NAT).  For direct routing the servers also hold the virtual address themselves.
"""

from __future__ import annotations

from pynetstack.api.tcp import TcpHandler, serve_events, tcp_layer
from pynetstack.lb import VirtualService, install_lb
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int

VIP = "10.0.9.100"


class NameServer(TcpHandler):
    """Says its name and closes, like the lab's tiny web servers."""

    def __init__(self, name):
        self.name = name

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.write(self.name.encode())
        transport.close()


class Lab:
    def __init__(self, scheduler="rr", weights=(1, 1, 1), forward="nat", health=None, persistence=0,
                 servers=3, **service_options):
        sim = self.sim = Simulation()
        self.client = sim.stack()
        self.lb_stack = sim.stack(forwarding=True)
        sim.link(self.client, "10.0.0.2/24", self.lb_stack, "10.0.0.1/24", names=("eth0", "cli0"))
        self.client.add_route("10.0.9.0/24", "10.0.0.1")
        self.servers = []
        self.listeners = []
        for n in range(1, servers + 1):
            server = sim.stack()
            addresses = [f"10.0.{n}.2/24"] + ([f"{VIP}/32"] if forward == "dr" else [])
            sim.link(self.lb_stack, f"10.0.{n}.1/24", server, addresses, names=(f"srv{n}", "eth0"))
            server.add_route("0.0.0.0/0", f"10.0.{n}.1")
            tcp_layer(server)
            self.listeners.append(serve_events(server, 80, lambda n=n: NameServer(f"server{n}")))
            self.servers.append(server)
        self.service = VirtualService("tcp", VIP, 80, scheduler=scheduler, forward=forward,
                                      persistence=persistence, **service_options)
        self.service.health = health
        # added in order 1, 2, 3: IPVS lists (and ipvsadm shows) them newest first
        for n, weight in zip(range(1, servers + 1), weights):
            self.service.add_server(f"10.0.{n}.2", 80, weight=weight)
        self.lb = install_lb(self.lb_stack, [self.service])

    def server(self, n):
        return self.service.find(f"10.0.{n}.2", 80)

    def request(self, src_port=0, run=2.0):
        """One connection from the client to the VIP; returns what it read ('' if nothing)."""
        got = bytearray()
        state = {"closed": False}

        def event(conn, kind):
            if kind == "readable":
                got.extend(conn.recv(65536, self.sim.now))
            elif kind == "closed":
                state["closed"] = True
            if conn.fin_received and not state.get("fin"):
                state["fin"] = True
                conn.close(self.sim.now)

        layer = tcp_layer(self.client)
        with self.client.lock:
            layer.connect(ip_to_int(VIP), 80, self.sim.now, local_port=src_port, on_event=event)
        self.sim.run(run, until=lambda: state["closed"] or state.get("fin"))
        return got.decode()
