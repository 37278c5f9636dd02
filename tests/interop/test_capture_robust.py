"""`pynetstack capture` as tcpdump behaves: a SIGTERM keeps the file, `lo` shows each packet
once, and segments whose checksum the kernel left to offload are decoded with their ports."""

from __future__ import annotations

import os
import signal
import sys

from pynetstack.link.pcap import read_pcap

from .waiting import packet_sockets, wait_for

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def capture(lab, ns, *args):
    return lab.popen(ns, sys.executable, "-m", "pynetstack", "capture", "-i", "lo", *args, env=ENV)


def test_sigterm_keeps_the_file_and_lo_shows_each_packet_once(lab, tmp_path):
    ns = lab.netns("caplo")
    path = tmp_path / "t.pcap"
    proc = capture(lab, ns, "-w", str(path))
    # (30 s: a new PyPy process importing the package on a loaded machine can take over 10)
    assert wait_for(lambda: packet_sockets(lab, ns)[0] >= 1, timeout=30), "capture not listening"
    lab.run(ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1")
    assert wait_for(lambda: packet_sockets(lab, ns)[1] == 0), "capture did not read its queue"
    proc.send_signal(signal.SIGTERM)  # timeout 4 pynetstack capture -i lo -w t.pcap
    out, err = proc.communicate(timeout=10)
    lines = out.decode().strip().splitlines()
    assert sum("echo request" in line for line in lines) == 3, out.decode()
    assert sum("echo reply" in line for line in lines) == 3, out.decode()
    frames = [frame for _, _, frame in read_pcap(str(path))]
    assert len(frames) == len(lines), (len(frames), err.decode())
    assert f"written to {path}" in err.decode()


def test_offloaded_checksums_on_lo_are_decoded(lab):
    ns = lab.netns("capck")
    # the SYN and the reset, each once on lo; not a 4 s --timeout (the bound here): the Python
    # process that connects may itself take seconds to start on a loaded machine
    proc = capture(lab, ns, "--count", "2", "--timeout", "60")
    # (30 s: a new PyPy process importing the package on a loaded machine can take over 10)
    assert wait_for(lambda: packet_sockets(lab, ns)[0] >= 1, timeout=30), "capture not listening"
    lab.run(ns, sys.executable, "-c", "import socket; s = socket.socket(); s.settimeout(1); "
            "s.connect_ex(('127.0.0.1', 9))")
    out, err = proc.communicate(timeout=75)
    text = out.decode()
    assert "> 9: Flags [S]" in text, text + err.decode()
    assert "9 > " in text and "Flags [R.]" in text, text
    assert "malformed" not in text, text
