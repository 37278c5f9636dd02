"""Linux IPVS as the oracle for the balancer's deterministic schedulers -- a script, not a test.

This machine's kernel is built without IPVS (CONFIG_IP_VS unset: `modprobe ip_vs` finds no module,
`ipvsadm -Ln` answers "Protocol not available"), so the comparison cannot run in the suite here; a
skipped interop test would count as a failure.  On a kernel with IPVS, as root:

    PYTHONPATH=src:. .venv/bin/python -m tests.interop.ipvs_oracle

builds the same service (servers added in the same order) in a Linux router namespace with ipvsadm
and on the stack, sends the same connections, and compares the per-server counts for rr, wrr, wlc,
sh and dh.  It exits 0 when they agree, 1 when they differ, 2 when it cannot run.
"""

from __future__ import annotations

import sys
import time

from pynetstack import lab as labmod

from .test_lb import SERVERS, TOOLS, VIP, WEB_SERVER, LbLab, names


class CannotRun(RuntimeError):
    pass


def _kernel_has_ipvs(lab, ns) -> bool:
    return lab.run(ns, "ipvsadm", "-Ln").returncode == 0


ORACLE_CASES = (("rr", (1, 1, 1), 12), ("wrr", (1, 2, 3), 12), ("wlc", (1, 1, 2), 12), ("sh", (1, 1, 1), 6),
                ("dh", (1, 1, 1), 6))


def compare_with_linux_ipvs():
    """The same service, servers (added in the same order) and connections through Linux IPVS
    in a router namespace: the per-server connection counts must be the stack's, for each
    deterministic scheduler."""
    reason = labmod.can_run() or (", ".join(labmod.missing_tools(dict(TOOLS, ipvsadm="ipvsadm"))) or None)
    if reason:
        raise CannotRun(reason)
    kernel = {}
    with labmod.Lab("ipvs") as lab:
        rtr = lab.netns("rtr")
        if not _kernel_has_ipvs(lab, rtr):
            raise CannotRun("this kernel has no IPVS (CONFIG_IP_VS is not set): no oracle to compare with")
        cli, rs = lab.netns("cli"), [lab.netns(f"rs{i + 1}") for i in range(3)]
        lab.veth(cli, "eth0", rtr, "cli0", address_a="10.0.0.2/24", address_b="10.0.0.1/24")
        lab.run(rtr, "ip", "link", "add", "br0", "type", "bridge", check=True)
        lab.run(rtr, "ip", "addr", "add", "10.0.1.1/24", "dev", "br0", check=True)
        lab.run(rtr, "ip", "link", "set", "br0", "up", check=True)
        lab.run(rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
        lab.ip("-n", cli, "route", "add", "10.0.9.0/24", "via", "10.0.0.1")
        lab.ip("-n", rtr, "addr", "add", f"{VIP}/32", "dev", "lo")
        for i, ns in enumerate(rs):
            lab.veth(ns, "eth0", rtr, f"rs{i + 1}p", address_a=f"{SERVERS[i]}/24")
            lab.ip("-n", rtr, "link", "set", f"rs{i + 1}p", "master", "br0")
            lab.ip("-n", ns, "route", "add", "default", "via", "10.0.1.1")
            lab.popen(ns, sys.executable, "-c", WEB_SERVER, f"rs{i + 1}")
        time.sleep(0.5)
        for scheduler, weights, n in ORACLE_CASES:
            lab.run(rtr, "ipvsadm", "-C", check=True)
            lab.run(rtr, "ipvsadm", "-A", "-t", f"{VIP}:80", "-s", scheduler, check=True)
            for address, weight in zip(SERVERS, weights):
                lab.run(rtr, "ipvsadm", "-a", "-t", f"{VIP}:80", "-r", f"{address}:80", "-m", "-w", str(weight),
                        check=True)
            script = f"for i in $(seq {n}); do curl -s --max-time 2 http://{VIP}/ || echo FAILED; done"
            kernel[scheduler] = names(line.strip() for line in lab.run(cli, "sh", "-c", script, timeout=60)
                                      .stdout.splitlines() if line.strip())
    mine = {}
    with labmod.Lab("lbcmp") as lab:
        ours = LbLab(lab)
        try:
            for scheduler, weights, n in ORACLE_CASES:
                ours.service(scheduler, weights)
                mine[scheduler] = names(ours.curl(n))
        finally:
            ours.stack.close()
    differ = [s for s, _, _ in ORACLE_CASES if mine[s] != kernel[s]]
    for scheduler, _, _ in ORACLE_CASES:
        # sh and dh too: the same hash (hash_32) over the same table (filled newest server first)
        print(f"{scheduler:4} kernel {kernel[scheduler]}  pynetstack {mine[scheduler]}")
    return not differ


if __name__ == "__main__":
    try:
        sys.exit(0 if compare_with_linux_ipvs() else 1)
    except CannotRun as exc:
        print(f"ipvs_oracle: cannot run: {exc}", file=sys.stderr)
        sys.exit(2)
