"""Advanced TCP connections: the Python counterpart of the seed's TCPConnectionManager example.

Two stacks are cabled together in memory and run on a virtual clock (no root, no real
network).  The client opens a connection to the server's HTTP service, sends
``GET / HTTP/1.1``, and the state machine handles the handshake, the data and the close by
itself; every state transition of both ends is printed as it happens, then the connection
table (like ``ss -ti``) and each connection's event log.

    python examples/tcp_connections.py [--loss 0.05]
"""

from __future__ import annotations

import argparse
import sys

from pynetstack.api.tcp import tcp_layer
from pynetstack.services import http
from pynetstack.sim import Simulation
from pynetstack.status import tcp_table
from pynetstack.transport.tcp import CLOSED
from pynetstack.wire.addr import ip_to_int


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loss", type=float, default=0.0, help="loss probability on the cable")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    sim = Simulation()
    client, server = sim.stack(), sim.stack()
    faults = dict(seed=args.seed, loss=args.loss, delay=0.002) if args.loss else None
    sim.link(client, "192.168.1.100/24", server, "192.168.1.1/24", faults_ab=faults, faults_ba=faults)
    http.install(server)
    client_tcp, server_tcp = tcp_layer(client), tcp_layer(server)

    def show(side):
        def observer(conn, old, new, why, now):
            print(f"  t={now - 1000.0:8.4f}s  {side:6} {conn.name()}  {old:>12} -> {new:<12} ({why})")
        return observer
    client_tcp.on_state_change = show("client")
    server_tcp.on_state_change = show("server")

    # "create_connection" + "send_data": the state machine takes it from here
    print("connect and send a request:")
    conn = client_tcp.connect(ip_to_int("192.168.1.1"), 80, sim.now)
    with client.lock:
        conn.send(b"GET / HTTP/1.1\r\nHost: 192.168.1.1\r\nConnection: close\r\n\r\n", sim.now)
    sim.run(duration=30, until=lambda: conn.fin_received)
    response = conn.recv(1 << 20, sim.now)
    print("\nresponse:")
    print("  " + response.decode(errors="replace").replace("\r\n", "\n  ")[:1500])

    print("connection table while closing (client side):")
    print(tcp_table(client_tcp))
    conn.close(sim.now)
    sim.run(duration=120, until=lambda: conn.state == CLOSED and not server_tcp.connections)
    print("\nclient event log:")
    for now, old, new, why in conn.log:
        print(f"  {now - 1000.0:8.4f}s {old:>12} -> {new:<12} {why}")
    info = conn.info()
    print(f"\nrtt {info['srtt_ms']} ms, retransmissions {info['retransmits']}, options {info['options']}")
    return 0 if conn.state == CLOSED and response.startswith(b"HTTP/1.1 200") else 1


if __name__ == "__main__":
    sys.exit(main())
