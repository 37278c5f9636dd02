"""The IDS on a stack in a namespace lab: nmap scans and an hping3 SYN flood from the kernel's
side are detected and named in eve.json; a plain HTTP download raises nothing."""

from __future__ import annotations

import json
import time

import pytest

from pynetstack import lab as labmod
from pynetstack.ids import Detector, load_rules
from pynetstack.ids.eve import EveWriter
from pynetstack.ids.flood import SynFloodDetector
from pynetstack.ids.function import IdsFunction
from pynetstack.ids.scan import ScanDetector
from pynetstack.link.tap import TapDevice
from pynetstack.services import http
from pynetstack.stack import Stack

from .waiting import packet_sockets, wait_for

KERNEL, STACK = "10.97.0.1", "10.97.0.2"
RULES = 'alert tcp any any -> any 80 (msg:"lab marker in a request"; flow:established,to_server; content:"ids-lab-marker"; sid:1000001;)\n'


@pytest.fixture(scope="module")
def ids_lab(tmp_path_factory):
    reason = labmod.can_run()
    if reason:
        pytest.skip(reason)
    eve_path = tmp_path_factory.mktemp("ids") / "eve.json"
    with labmod.Lab() as lab:
        host = lab.netns("host")
        stack = Stack()
        stack.add_interface(TapDevice("idstap0", host_address=f"{KERNEL}/24", netns=host), f"{STACK}/24")
        http.install(stack, 80)
        eve = open(eve_path, "w", buffering=1)
        detector = Detector(load_rules(RULES), detectors=[ScanDetector(), SynFloodDetector()])
        ids = stack.register(IdsFunction(detector, EveWriter(eve, clock_offset=time.time() - time.monotonic()).write))
        stack.start_background()
        try:
            yield lab, host, ids, eve_path, stack
        finally:
            stack.close()
            eve.close()


def events(path):
    with open(path) as handle:
        # (complete lines only: the stack's thread may be writing one while a test waits)
        return [json.loads(line) for line in handle if line.endswith("\n") and line.strip()]


def scan_types(path):
    return [e["pynetstack"]["scan_type"] for e in events(path) if e.get("pynetstack", {}).get("detector") == "scan"]


def test_http_download_is_quiet_and_a_rule_fires_on_the_stream(ids_lab):
    lab, host, ids, eve, stack = ids_lab
    # 300 short HTTP/1.0 connections to one port, and pings: busy, but neither a scan nor a flood.
    # (Each transfer is bounded, so a stalled one -- seen once in a full CI run, never reproduced
    # since -- fails the test with the stack's connection table instead of a bare time-out.)
    per_url = ["-o", "/dev/null", "-w", "%{http_code}\n", f"http://{STACK}/"]
    result = lab.run(host, "curl", "-0", "-s", "--max-time", "15", *(per_url * 300), timeout=200)
    codes = result.stdout.split()
    if codes != ["200"] * 300:
        from pynetstack.status import status_page
        with stack.lock:
            page = status_page(stack, max_rows=40)
        raise AssertionError(f"{len(codes)} transfers, not 200: {[c for c in codes if c != '200'][:5]} "
                             f"(curl exit {result.returncode})\n{page}")
    lab.run(host, "ping", "-c", "3", "-i", "0.2", STACK, timeout=10)
    assert ids.stats()["flows"] >= 300
    lab.run(host, "curl", "-s", "-o", "/dev/null", f"http://{STACK}/ids-lab-marker", timeout=15)
    # the alert is written when the stack's thread inspects the request: wait for it, then
    # whatever else was written by then is compared too
    alerts = wait_for(lambda: events(eve), timeout=10) or []
    assert [e["alert"]["signature_id"] for e in alerts] == [1000001]
    assert alerts[0]["dest_port"] == 80 and alerts[0]["src_ip"] == KERNEL


@pytest.mark.parametrize("flag,name", [("-sS", "TCP SYN"), ("-sT", "TCP connect"), ("-sF", "TCP FIN"),
                                       ("-sX", "TCP Xmas"), ("-sN", "TCP NULL"), ("-sA", "TCP ACK"),
                                       ("-sU", "UDP")])
def test_nmap_scans_are_detected_and_named(ids_lab, flag, name):
    lab, host, ids, eve, _stack = ids_lab
    before = len(scan_types(eve))
    ports = "1-60" if flag == "-sU" else "1-200"
    lab.run(host, "nmap", flag, "-Pn", "-n", "-T4", "--max-retries", "0", "--host-timeout", "25s", "-p", ports,
            STACK, timeout=40)
    found = wait_for(lambda: scan_types(eve)[before:], timeout=10)
    assert found and found[0] == name, found


def test_hping3_syn_flood_is_detected(ids_lab):
    lab, host, ids, eve, _stack = ids_lab
    lab.run(host, "timeout", "3", "hping3", "-S", "-p", "80", "--flood", STACK, timeout=10, check=False)
    # the detector judges at the end of each one-second interval, on the stack's clock, after
    # the stack has worked through what the flood queued
    floods = wait_for(lambda: [e for e in events(eve) if e.get("pynetstack", {}).get("detector") == "synflood"],
                      timeout=15)
    assert floods and floods[0]["dest_port"] == 80 and floods[0]["pynetstack"]["completed"] == 0


def test_passive_inspection_of_an_interface(tmp_path):
    """pynetstack ids -i: the kernel pings across a veth; the IDS watching one end alerts."""
    import threading

    from pynetstack.ids.passive import watch

    reason = labmod.can_run()
    if reason:
        pytest.skip(reason)
    with labmod.Lab() as lab:
        a, b = lab.netns("pa"), lab.netns("pb")
        lab.veth(a, "idsa0", b, "idsb0", address_a="10.95.0.1/24", address_b="10.95.0.2/24")
        rules = load_rules('alert icmp any any -> any any (msg:"marked ping"; itype:8; content:"|de ad be ef|"; sid:7;)')
        detector = Detector(rules)
        with open(tmp_path / "eve.json", "w") as eve:
            done = threading.Event()
            thread = threading.Thread(target=watch, args=("idsb0", detector, EveWriter(eve)),
                                      kwargs={"netns": b, "stop": done.is_set, "duration": 20})
            thread.start()
            # the watcher has its packet socket open (a cold PyPy may take more than half a second)
            assert wait_for(lambda: packet_sockets(lab, b)[0] >= 1, timeout=15), "the watcher never opened its socket"
            lab.run(a, "ping", "-c", "2", "-i", "0.2", "-p", "deadbeef", "10.95.0.2", timeout=10)
            wait_for(lambda: len(events(tmp_path / "eve.json")) >= 2, timeout=10)  # flushed each second
            done.set()
            thread.join(5)
        alerts = events(tmp_path / "eve.json")
        assert [e["alert"]["signature_id"] for e in alerts] == [7, 7]
        assert alerts[0]["src_ip"] == "10.95.0.1"
