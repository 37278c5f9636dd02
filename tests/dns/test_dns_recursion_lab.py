"""Recursion lab: NSD serves a private root, TLDs and domains in a network namespace this test
creates; pynetstack resolves through the delegations and must agree with Unbound on the same lab.

All traffic stays inside the namespace (127.0.0.x addresses on its own loopback, port 53).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from dnsinterop import ROOT, Process, require

pytestmark = pytest.mark.interop
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT_ADDR, TLD_ADDR, DOMAIN_ADDR, PYNETSTACK_ADDR, UNBOUND_ADDR = (
    "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.1", "127.0.0.5")

SOA = "@ SOA ns hostmaster 1 3600 600 86400 30\n"
ZONES = {
    ".": (ROOT_ADDR, "$TTL 3600\n" + SOA + f"""@ NS a.root-servers.lab.
a.root-servers.lab. A {ROOT_ADDR}
lab. NS ns.nic.lab.
ns.nic.lab. A {TLD_ADDR}
test. NS ns.nic.test.
ns.nic.test. A {TLD_ADDR}
"""),
    "lab.": (TLD_ADDR, "$TTL 3600\n" + SOA + f"""@ NS ns.nic
ns.nic A {TLD_ADDR}
a.root-servers A {ROOT_ADDR}
example NS ns1.example
ns1.example A {DOMAIN_ADDR}
glueless NS ns.dom.test.
mismatch NS ns1.mismatch
ns1.mismatch A {DOMAIN_ADDR}
sibling NS ns1.example
twoname NS ns.nowhere.test.
twoname NS ns.dom.test.
"""),
    "test.": (TLD_ADDR, "$TTL 3600\n" + SOA + f"""@ NS ns.nic
ns.nic A {TLD_ADDR}
dom NS ns.dom
ns.dom A {DOMAIN_ADDR}
"""),
    "example.lab.": (DOMAIN_ADDR, "$TTL 600\n" + SOA + f"""@ NS ns1
ns1 A {DOMAIN_ADDR}
@ MX 10 mail
mail A 192.0.2.25
www A 192.0.2.1
www AAAA 2001:db8::1
alias CNAME www.dom.test.
chain CNAME alias
*.wild TXT "wildcard"
gone CNAME nothing.dom.test.
loop1 CNAME loop2
loop2 CNAME loop1
xloop CNAME xloop.dom.test.
dn DNAME dom.test.
"""),
    "dom.test.": (DOMAIN_ADDR, "$TTL 600\n" + SOA + f"""@ NS ns
ns A {DOMAIN_ADDR}
www A 192.0.2.2
xloop CNAME xloop.example.lab.
"""),
    # the child's NS set differs from the parent's referral (ns1 only, TTL 3600), and so does
    # the TTL of its address: clients must get the child's data (RFC 2181 section 5.4.1)
    "mismatch.lab.": (DOMAIN_ADDR, "$TTL 600\n" + SOA + f"""@ NS ns1
@ NS ns2
ns1 120 A {DOMAIN_ADDR}
ns2 A {DOMAIN_ADDR}
www A 192.0.2.4
"""),
    # out of bailiwick and glueless, and the first server's name does not exist
    "twoname.lab.": (DOMAIN_ADDR, "$TTL 600\n" + SOA + """@ NS ns.nowhere.test.
@ NS ns.dom.test.
host A 192.0.2.6
"""),
    "sibling.lab.": (DOMAIN_ADDR, "$TTL 600\n" + SOA + """@ NS ns1.example.lab.
host A 192.0.2.5
"""),
    "glueless.lab.": (DOMAIN_ADDR, "$TTL 600\n" + SOA + """@ NS ns.dom.test.
host A 192.0.2.3
"""),
}

QUERIES = [
    ["www.example.lab.", "A"], ["www.example.lab.", "AAAA"], ["example.lab.", "MX"],
    ["alias.example.lab.", "A"], ["chain.example.lab.", "A"], ["host.glueless.lab.", "A"],
    ["x.wild.example.lab.", "TXT"], ["nope.example.lab.", "A"], ["www.example.lab.", "MX"],
    ["www.dom.test.", "AAAA"], ["nothing.tld.", "A"], ["gone.example.lab.", "A"],
    ["www.example.lab.", "A"],
    # parent/child NS mismatch: the referral is cached first, then the child's data is asked for
    ["www.mismatch.lab.", "A"], ["mismatch.lab.", "NS"], ["ns1.mismatch.lab.", "A"], ["mismatch.lab.", "NS"],
    # a delegation whose server is named in a sibling zone, with the parent's glue
    ["host.sibling.lab.", "A"], ["host.twoname.lab.", "A"],
    # CNAME loops, in one zone and across two
    ["loop1.example.lab.", "A"], ["loop2.example.lab.", "A"], ["xloop.example.lab.", "A"],
    # DNAME (RFC 6672), then again from the cache, and the DNAME itself
    ["www.dn.example.lab.", "A"], ["www.dn.example.lab.", "A"], ["dn.example.lab.", "DNAME"],
    ["nothing.dn.example.lab.", "A"],
]

NSD_CONF = """server:
  ip-address: {addr}
  port: 53
  database: ""
  pidfile: {dir}/nsd.pid
  zonelistfile: {dir}/zone.list
  xfrdfile: {dir}/xfrd.state
  xfrdir: {dir}
  username: ""
  chroot: ""
  logfile: {dir}/nsd.log
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
"""

UNBOUND_CONF = """server:
  interface: {addr}
  port: 53
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: "{dir}/unbound.pid"
  use-syslog: no
  logfile: "{dir}/unbound.log"
  num-threads: 1
  do-ip6: no
  do-not-query-localhost: no
  module-config: "iterator"
  root-hints: "{dir}/root.hints"
  qname-minimisation: no
  local-zone: "test." nodefault
  access-control: 127.0.0.0/8 allow
"""


def netns(name, *args, **kw):
    return subprocess.run(["ip", "netns", "exec", name, *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the recursion lab needs root (network namespaces)")
    if shutil.which("ip") is None:
        pytest.fail("ip is missing: apt-get install iproute2")
    nsd, unbound = require("nsd"), require("unbound")
    name = f"pns-dnslab-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    procs = []
    try:
        netns(name, "ip", "link", "set", "lo", "up", check=True)
        base = tmp_path_factory.mktemp("lab")
        by_addr = {}
        for origin, (addr, text) in ZONES.items():
            path = base / f"{origin.strip('.') or 'root'}.zone"
            path.write_text(text)
            by_addr.setdefault(addr, []).append((origin, str(path)))
        for addr, zones in by_addr.items():
            d = base / f"nsd-{addr}"
            d.mkdir()
            conf = NSD_CONF.format(addr=addr, dir=d) + "".join(
                f'zone:\n  name: "{o}"\n  zonefile: {p}\n' for o, p in zones)
            (d / "nsd.conf").write_text(conf)
            procs.append(Process(["ip", "netns", "exec", name, nsd, "-d", "-c", str(d / "nsd.conf")]))
        ud = base / "unbound"
        ud.mkdir()
        (ud / "root.hints").write_text(f". 3600000 NS a.root-servers.lab.\na.root-servers.lab. 3600000 A {ROOT_ADDR}\n")
        (ud / "unbound.conf").write_text(UNBOUND_CONF.format(addr=UNBOUND_ADDR, dir=ud))
        procs.append(Process(["ip", "netns", "exec", name, unbound, "-d", "-c", str(ud / "unbound.conf")]))
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
        procs.append(Process(["ip", "netns", "exec", name, sys.executable, "-m", "pynetstack.dns.cli", "dns",
                              "serve", "--recursion", "--root-hint", f"a.root-servers.lab.={ROOT_ADDR}",
                              "--listen", f"{PYNETSTACK_ADDR}:53"], env=env))
        yield name, [(a, 53) for a in (ROOT_ADDR, TLD_ADDR, DOMAIN_ADDR, PYNETSTACK_ADDR, UNBOUND_ADDR)]
    finally:
        logs = [p.stop() for p in procs]
        subprocess.run(["ip", "netns", "del", name])
        if any("error" in log.lower() for log in logs):
            print("\n".join(logs))


def ask(lab, servers, queries, wait=True):
    name, addresses = lab
    spec = {"wait": addresses if wait else [], "servers": servers, "queries": queries}
    p = netns(name, sys.executable, os.path.join(HERE, "dnslab_client.py"), input=json.dumps(spec), timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def test_pynetstack_resolves_like_unbound(lab):
    got = ask(lab, {"pynetstack": [PYNETSTACK_ADDR, 53], "unbound": [UNBOUND_ADDR, 53]}, QUERIES)
    ours, theirs = got["pynetstack"], got["unbound"]
    by_name = dict(zip((f"{n} {t}" for n, t in QUERIES), ours))
    assert by_name["www.example.lab. A"]["answer"] == ["www.example.lab. A 192.0.2.1"]
    assert by_name["alias.example.lab. A"]["answer"] == [
        "alias.example.lab. CNAME www.dom.test.", "www.dom.test. A 192.0.2.2"]
    assert by_name["host.glueless.lab. A"]["answer"] == ["host.glueless.lab. A 192.0.2.3"]
    assert by_name["nope.example.lab. A"]["rcode"] == "NXDOMAIN"
    assert by_name["nope.example.lab. A"]["authority_types"] == ["SOA"]
    assert by_name["www.example.lab. MX"]["rcode"] == "NOERROR" and by_name["www.example.lab. MX"]["answer"] == []
    assert all("RA" in r["flags"] and "AA" not in r["flags"] for r in ours)
    assert by_name["mismatch.lab. NS"]["answer"] == ["mismatch.lab. NS ns1.mismatch.lab.",
                                                     "mismatch.lab. NS ns2.mismatch.lab."]
    assert by_name["ns1.mismatch.lab. A"]["ttls"][0] <= 120    # the child's TTL, not the glue's
    assert by_name["loop1.example.lab. A"]["rcode"] == "SERVFAIL"
    assert by_name["www.dn.example.lab. A"]["answer"] == [
        "dn.example.lab. DNAME dom.test.", "www.dn.example.lab. CNAME www.dom.test.", "www.dom.test. A 192.0.2.2"]
    differences = []
    for (qname, qtype), mine, unbound in zip(QUERIES, ours, theirs):
        same = (mine["rcode"], mine["answer"]) == (unbound["rcode"], unbound["answer"])
        if same and not mine["answer"]:
            same = mine["authority_types"] == unbound["authority_types"]
        if same and mine["answer"]:  # answers from the child's data: TTLs no longer than Unbound's
            same = all(a <= b for a, b in zip(mine["ttls"], unbound["ttls"]))
        if not same:
            differences.append((qname, qtype, mine, unbound))
    for d in differences:
        print("DIFF", d[0], d[1], "\n  ours   ", d[2], "\n  unbound", d[3])
    print(f"Unbound comparison: {len(QUERIES)} queries compared, {len(QUERIES) - len(differences)} equal")
    assert differences == []


def test_direct_authoritative_servers_are_not_recursive(lab):
    got = ask(lab, {"tld": [TLD_ADDR, 53]}, [["www.example.lab.", "A"]], wait=False)
    reply = got["tld"][0]
    assert reply["answer"] == [] and "AA" not in reply["flags"]  # a referral: the lab is real
