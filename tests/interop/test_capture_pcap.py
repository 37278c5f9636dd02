"""`pynetstack capture` sees what tcpdump sees; pcap files the stack writes satisfy tcpdump."""

from __future__ import annotations

import os
import re
import sys

from pynetstack.link.pcap import PcapDevice, read_pcap
from pynetstack.link.tap import TapDevice
from pynetstack.stack import Stack

from .conftest import STACK_VETH
from .waiting import packet_sockets, wait_for


def test_capture_matches_tcpdump(tap_lab, tmp_path):
    ours, theirs = tmp_path / "ours.pcap", tmp_path / "theirs.pcap"
    tap_lab.run("ping", "-c", "1", "-W", "2", STACK_VETH)  # resolve ARP first: the capture is pure ICMP
    before = packet_sockets(tap_lab.lab, tap_lab.host)[0]
    tcpdump = tap_lab.lab.popen(tap_lab.host, "tcpdump", "-i", "pnsk0", "-nn", "-c", "6", "-w", str(theirs), "icmp")
    capture = tap_lab.lab.popen(tap_lab.host, sys.executable, "-m", "pynetstack", "capture", "-i", "pnsk0",
                                "-c", "6", "-w", str(ours), "--timeout", "20",
                                env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    # (30 s: a new PyPy process importing the package on a loaded machine can take over 10)
    assert wait_for(lambda: packet_sockets(tap_lab.lab, tap_lab.host)[0] >= before + 2, timeout=30), \
        "captures not listening"
    tap_lab.run("ping", "-c", "3", "-i", "0.3", "-W", "2", STACK_VETH)
    tcpdump.wait(timeout=20)
    out, err = capture.communicate(timeout=25)
    lines = out.decode().strip().splitlines()
    assert capture.returncode == 0, err.decode()
    assert len(lines) == 6, out.decode()
    assert sum("echo request" in line for line in lines) == 3, out.decode()
    assert sum("echo reply" in line for line in lines) == 3, out.decode()
    assert list(read_pcap(str(ours)))[0][1] == 1  # Ethernet, as tcpdump -w writes it
    assert [f for _, _, f in read_pcap(str(ours))] == [f for _, _, f in read_pcap(str(theirs))]


def test_stack_pcap_is_read_by_tcpdump(lab, tmp_path):
    host = lab.netns("pcap")
    path = tmp_path / "stack.pcap"
    stack = Stack()
    stack.add_interface(PcapDevice(TapDevice("pnspcap0", host_address="10.99.2.1/24", netns=host), str(path)),
                        "10.99.2.2/24")
    stack.start_background()
    try:
        result = lab.run(host, "ping", "-c", "4", "-i", "0.2", "-W", "2", "-s", "2000", "10.99.2.2")
        assert "4 received" in result.stdout, result.stdout
    finally:
        stack.close()
    result = lab.run(host, "tcpdump", "-nn", "-r", str(path))
    assert result.returncode == 0, result.stderr
    assert re.sub(r"reading from file \S+, link-type EN10MB \(Ethernet\)(, snapshot length \d+)?\n?", "",
                  result.stderr).strip() == ""
    assert result.stdout.count("ICMP echo request") == 4
    assert result.stdout.count("ICMP echo reply") == 4
    assert "ARP, Reply 10.99.2.2 is-at" in result.stdout
