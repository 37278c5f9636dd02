"""The echo service of RFC 862 over UDP: every datagram goes back to its sender, unless that
would feed a loop or an amplifier.

Not answered (counted in ``stack.udp`` drops under ``udp-echo-refused``):

* a source port below 1024: the well-known services (echo on 7, chargen on 19, DNS on 53, NTP
  on 123...) answer too, so one datagram spoofed from such a port (``sport=7, dport=7``) between
  two echo servers would bounce for ever; inetd's echo refuses ports below 1024 for this reason;
* a datagram not sent to one of our unicast addresses (a broadcast would make every echo
  server on the segment answer one spoofed datagram).
"""

from __future__ import annotations

ECHO_PORT = 7
FIRST_UNPRIVILEGED_PORT = 1024


def install(stack, port: int = ECHO_PORT) -> int:
    udp = stack.udp
    host = stack.host
    bound = 0

    def echo(payload, src, src_port, dst, now) -> None:
        if src_port < FIRST_UNPRIVILEGED_PORT or not host.is_local_address(dst):
            udp.drops.drop("udp-echo-refused")
            return
        udp.sendto(payload, bound, src, src_port, now, src=dst)

    with stack.lock:
        bound = udp.bind(port, echo)
    return bound
