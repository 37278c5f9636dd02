"""QoS against Linux tc: the same router lab twice, a LAN host and a WAN host with the router
between them shaping the WAN egress to 50 Mbit/s, once with pynetstack as the router and once
with a Linux router namespace running tc (HTB + fq_codel, the same rates).  The same run in
both: an iperf3 TCP upload fills the link while ping, marked EF (the voice class), measures the
round trip; then the same with a plain FIFO shaper (QoS off), which shows the bufferbloat that
the classes and CoDel prevent.  The figures are printed side by side (pytest -s)."""

from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

from pynetstack.qos import ClassSpec, attach_qos

from .routerlab import segmentation_offload, stack_router, wait_listening

LAN_HOST, LAN_GW = "192.168.78.2", "192.168.78.1"
WAN_HOST, WAN_GW = "198.51.101.2", "198.51.101.1"
RATES_MBIT = (50, 20)  # the 50 Mbit/s; 20 when the stack cannot forward 60 on this machine
GOODPUT_PER_WIRE = 1448 / 1514  # TCP payload per wire byte (timestamps on, 1500 MTU)
FIFO_PACKETS = 1000  # the dumb shaper's buffer: 1000 full frames, ~240 ms at 50 Mbit/s
LOAD_SECONDS = 5
TC_CLASSES = [  # classid, name, rate share, prio; the same tree as qos.tree.default_specs
    ("1:10", "voice", 0.10, 0), ("1:20", "interactive", 0.20, 1), ("1:30", "video", 0.30, 1),
    ("1:40", "bulk", 0.30, 1), ("1:50", "background", 0.10, 1)]
RESULTS = {}
SETUP = {"rate_mbit": RATES_MBIT[0]}


def rate_mbit() -> int:
    return SETUP["rate_mbit"]


def _rtts(output: str):
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", output)]


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else float("nan")


def measure(lab, lan, wan, port):
    """Idle RTT, then an iperf3 upload with EF-marked pings during it: figures in a dict."""
    idle = _rtts(lab.run(lan, "ping", "-c", "10", "-i", "0.02", "-Q", "0xb8", WAN_HOST, timeout=10).stdout)
    lab.popen(wan, "iperf3", "-s", "-1", "-p", str(port), "-B", WAN_HOST)
    wait_listening(lab, wan, "tcp", port)
    client = lab.popen(lan, "iperf3", "-c", WAN_HOST, "-p", str(port), "-t", str(LOAD_SECONDS), "-J",
                       "-C", "cubic", text=True)
    time.sleep(1.5)  # the queue fills (TCP's slow start) before measuring
    loaded = _rtts(lab.run(lan, "ping", "-c", "50", "-i", "0.05", "-Q", "0xb8", WAN_HOST, timeout=15).stdout)
    out, err = client.communicate(timeout=LOAD_SECONDS + 20)
    report = json.loads(out)
    goodput = report["end"]["sum_received"]["bits_per_second"] / 1e6
    return {"seconds": report["end"]["sum_received"]["seconds"], "idle_rtt_ms": _median(idle), "voice_rtt_ms": _median(loaded),
            "voice_rtt_p90_ms": sorted(loaded)[int(0.9 * len(loaded))] if loaded else float("nan"),
            "ping_lost": 50 - len(loaded), "goodput_mbit": goodput}


def jain(values):
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def parallel_upload(lab, lan, wan, port, streams=8, seconds=4, tos=None, server=True):
    """An iperf3 upload of ``streams`` TCP flows: the per-flow receive rates in Mbit/s."""
    if server:
        iperf_server(lab, wan, port)
    argv = ["iperf3", "-c", WAN_HOST, "-p", str(port), "-t", str(seconds), "-P", str(streams), "-J", "-O", "1",
            "--get-server-output"]
    if tos is not None:
        argv += ["-S", str(tos)]
    return lab.popen(lan, *argv, text=True)


def iperf_server(lab, wan, port):
    lab.popen(wan, "iperf3", "-s", "-1", "-J", "-p", str(port), "-B", WAN_HOST)
    wait_listening(lab, wan, "tcp", port)


def weighted_run(lab, lan, wan, port):
    """Two uploads at once, AF41 (video) and CS1 (background), four flows each (enough to keep
    each class backlogged through TCP's backing off): their Mbit/s."""
    iperf_server(lab, wan, port)
    iperf_server(lab, wan, port + 1)
    video = parallel_upload(lab, lan, wan, port, streams=4, seconds=5, tos=34 << 2, server=False)
    background = parallel_upload(lab, lan, wan, port + 1, streams=4, seconds=5, tos=8 << 2, server=False)
    return steady_rate(video), steady_rate(background)


def steady_rate(process, timeout=30):
    """Mbit/s received over the middle of the run (seconds 1 to 4 of 5: both uploads running,
    past slow start), from the iperf3 server's one-second intervals (the sender's count what
    went into socket buffers, which is noisier)."""
    out, _ = process.communicate(timeout=timeout)
    intervals = json.loads(out)["server_output_json"]["intervals"][1:4]
    return sum(i["sum"]["bits_per_second"] for i in intervals) / len(intervals) / 1e6


def stream_rates(process, timeout=30):
    out, _ = process.communicate(timeout=timeout)
    report = json.loads(out)
    return [s["receiver"]["bits_per_second"] / 1e6 for s in report["end"]["streams"]]


@pytest.fixture(scope="module")
def stack_lab(lab):
    lan, wan, rtr = lab.netns("qlan"), lab.netns("qwan"), lab.netns("qrtr")
    tag = str(os.getpid() % 100000)
    stack = stack_router(lab, lan, wan, rtr, (LAN_HOST, LAN_GW), (WAN_HOST, WAN_GW), tap=f"qos{tag}",
                         route_back="192.168.78.0/24")
    segmentation_offload(lab, wan, "eth0", False)
    stack.start_background()
    try:
        yield lab, stack, lan, wan
    finally:
        stack.close()


@pytest.fixture(scope="module")
def linux_lab(lab):
    lan, wan, rtr = lab.netns("klan"), lab.netns("kwan"), lab.netns("krtr")
    lab.veth(lan, "eth0", rtr, "lan0", address_a=f"{LAN_HOST}/24", address_b=f"{LAN_GW}/24")
    lab.veth(wan, "eth0", rtr, "wan0", address_a=f"{WAN_HOST}/24", address_b=f"{WAN_GW}/24")
    for ns in (lan, wan):
        segmentation_offload(lab, ns, "eth0", False)
    segmentation_offload(lab, rtr, "wan0", False)
    lab.ip("-n", lan, "route", "add", "default", "via", LAN_GW)
    lab.ip("-n", wan, "route", "add", "192.168.78.0/24", "via", WAN_GW)
    lab.run(rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
    return lab, rtr, lan, wan


def tc(lab, rtr, *words):
    lab.run(rtr, "tc", *words, check=True)


def linux_qos(lab, rtr, on: bool) -> str:
    """tc on the router's WAN egress; returns the leaf qdisc used (fq_codel when the kernel has
    it, else a pfifo: some kernels are built without sch_fq_codel)."""
    lab.run(rtr, "tc", "qdisc", "del", "dev", "wan0", "root")
    total = rate_mbit()
    if not on:  # a shaper with a plain FIFO: what most links have
        tc(lab, rtr, "qdisc", "add", "dev", "wan0", "root", "tbf", "rate", f"{total}mbit", "burst", "15k",
           "limit", str(FIFO_PACKETS * 1514))
        return "tbf"
    tc(lab, rtr, "qdisc", "add", "dev", "wan0", "root", "handle", "1:", "htb", "default", "40")
    tc(lab, rtr, "class", "add", "dev", "wan0", "parent", "1:", "classid", "1:1", "htb", "rate",
       f"{total}mbit", "ceil", f"{total}mbit")
    leaf = "fq_codel"
    for classid, _name, share, prio in TC_CLASSES:
        rate = f"{total * share:g}mbit"
        ceil = rate if prio == 0 else f"{total}mbit"
        tc(lab, rtr, "class", "add", "dev", "wan0", "parent", "1:1", "classid", classid, "htb", "rate", rate,
           "ceil", ceil, "prio", str(prio))
        if lab.run(rtr, "tc", "qdisc", "add", "dev", "wan0", "parent", classid, "fq_codel").returncode:
            leaf = "pfifo"
            tc(lab, rtr, "qdisc", "add", "dev", "wan0", "parent", classid, "pfifo", "limit", str(FIFO_PACKETS))
    # EF (and the other voice codepoints' common one) to the voice class, as the classifier does
    tc(lab, rtr, "filter", "add", "dev", "wan0", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
       "match", "ip", "dsfield", "0xb8", "0xfc", "flowid", "1:10")
    for dsfield, flowid in (("0x88", "1:30"), ("0x20", "1:50")):
        tc(lab, rtr, "filter", "add", "dev", "wan0", "parent", "1:", "protocol", "ip", "prio", "2", "u32",
           "match", "ip", "dsfield", dsfield, "0xfc", "flowid", flowid)
    return "htb+" + leaf


def stack_fifo(stack):
    """The stack's QoS off: one class, one flow queue, no CoDel: a FIFO behind the shaper."""
    spec = ClassSpec("bulk", rate_mbit() * 1e6 / 8, limit=FIFO_PACKETS, target=3600.0, interval=36000.0, flows=1)
    return attach_qos(stack, "wan0", f"{rate_mbit()}mbit", classes=[spec], trust_dscp=False)


def test_stack_unshaped_capacity(stack_lab):
    """What the stack forwards with no qdisc on this machine: it chooses the lab's rate."""
    lab, stack, lan, wan = stack_lab
    figures = RESULTS["stack, no qdisc"] = measure(lab, lan, wan, 5300)
    if figures["goodput_mbit"] < 60:
        SETUP["rate_mbit"] = RATES_MBIT[1]
    assert figures["goodput_mbit"] > 25, figures


def test_stack_with_qos_keeps_voice_latency_under_load(stack_lab):
    lab, stack, lan, wan = stack_lab
    qdisc = attach_qos(stack, "wan0", f"{rate_mbit()}mbit")
    # the shaper's own rate (Ethernet frames, as tc counts them) in the steady part of the upload
    # (iperf3 starts at about 0.3 s and runs 5 s)
    snapshots = []

    def snapshot():
        with stack.lock:
            snapshots.append((time.monotonic(), qdisc.sent_bytes))
    timers = [threading.Timer(delay, snapshot) for delay in (2.0, 5.0)]
    for timer in timers:
        timer.start()
    figures = RESULTS["stack htb+fq_codel"] = measure(lab, lan, wan, 5301)
    for timer in timers:
        timer.join()
    (t0, sent0), (t1, sent1) = snapshots
    figures["shaped_mbit"] = (sent1 - sent0) * 8 / (t1 - t0) / 1e6
    figures["codel_drops"] = qdisc.tree.leaves["bulk"].drops.get("codel", 0)
    stats = qdisc.stats()
    figures["departure_late_avg_us"] = stats["departure_late_avg_us"]
    figures["departure_late_max_us"] = stats["departure_late_max_us"]
    assert qdisc.tree.leaves["voice"].sent_packets >= 50, "EF pings went to the voice class"
    assert figures["voice_rtt_ms"] <= figures["idle_rtt_ms"] + 5.0, figures
    # Never faster than the rate (the shaper's claim, tight); how close it gets below depends on
    # how late a busy machine wakes the loop: PyPy's JIT warming up, and full collections of
    # PyPy's heap that stopped the stack for 147 ms and 215 ms in two CI runs (the second cost
    # iperf3 its queue and a window: 40.5 of 47.8 Mbit/s, 0.847). 0.8 below, as a sanity bound:
    # the exact figures are the benchmark's (benchmarks/bench_qos.py).
    wire = rate_mbit() * GOODPUT_PER_WIRE
    assert wire * 0.8 <= figures["goodput_mbit"] <= wire * 1.02, figures
    assert rate_mbit() * 0.8 <= figures["shaped_mbit"] <= rate_mbit() * 1.03, figures
    assert stats["departures_timed"] > 100 and figures["departure_late_avg_us"] < 2000, stats


def test_stack_shares_fairly_between_eight_flows(stack_lab):
    lab, stack, lan, wan = stack_lab
    attach_qos(stack, "wan0", f"{rate_mbit()}mbit")
    rates = stream_rates(parallel_upload(lab, lan, wan, 5305))
    RESULTS.setdefault("stack htb+fq_codel", {})["jain_8_flows"] = jain(rates)
    assert jain(rates) >= 0.99, rates


def test_stack_weighted_classes_get_their_weights(stack_lab):
    """video (AF41, rate 30 %) and background (CS1, rate 10 %), both saturated, ceil the link:
    each gets its rate and the spare 60 % in proportion to the rates, so 3:1 in all.  Checked
    on the shaper's own byte counts over the steady middle of the run (exact), and reported as
    iperf3's receivers saw it (noisier: one-second intervals, TCP's own ups and downs)."""
    lab, stack, lan, wan = stack_lab
    qdisc = attach_qos(stack, "wan0", f"{rate_mbit()}mbit")
    leaves = qdisc.tree.leaves
    snapshots = []

    def snapshot():
        with stack.lock:
            snapshots.append((leaves["video"].sent_bytes, leaves["background"].sent_bytes))
    timers = [threading.Timer(delay, snapshot) for delay in (1.5, 4.0)]
    for timer in timers:
        timer.start()
    got_video, got_background = weighted_run(lab, lan, wan, 5306)
    for timer in timers:
        timer.join()
    (video_0, background_0), (video_1, background_1) = snapshots
    shaped = (video_1 - video_0) / (background_1 - background_0)
    figures = RESULTS.setdefault("stack htb+fq_codel", {})
    figures["weights_video_background"] = got_video / got_background
    figures["weights_on_the_wire"] = shaped
    assert shaped == pytest.approx(3.0, rel=0.05), snapshots
    # iperf3's receivers see the same split less exactly (one-second intervals, TCP's own ups and
    # downs, a late loop on a busy machine): reported beside Linux's, asserted only roughly
    assert 2.4 <= got_video / got_background <= 3.6, (got_video, got_background)


def test_stack_without_qos_shows_the_bufferbloat(stack_lab):
    lab, stack, lan, wan = stack_lab
    stack_fifo(stack)
    figures = RESULTS["stack fifo"] = measure(lab, lan, wan, 5302)
    assert figures["voice_rtt_ms"] > RESULTS["stack htb+fq_codel"]["voice_rtt_ms"] + 20.0, (figures, RESULTS)


def test_linux_tc_same_runs(linux_lab):
    lab, rtr, lan, wan = linux_lab
    kind = linux_qos(lab, rtr, True)
    kernel = RESULTS["linux " + kind] = measure(lab, lan, wan, 5303)
    kernel["jain_8_flows"] = jain(stream_rates(parallel_upload(lab, lan, wan, 5308)))
    got_video, got_background = weighted_run(lab, lan, wan, 5309)
    kernel["weights_video_background"] = got_video / got_background
    linux_qos(lab, rtr, False)
    RESULTS["linux tbf fifo"] = measure(lab, lan, wan, 5304)
    stats = lab.run(rtr, "tc", "-s", "qdisc", "show", "dev", "wan0").stdout
    assert "tbf" in stats
    print(f"\nlatency under load, {rate_mbit()} Mbit/s WAN egress, iperf3 upload + EF ping (median RTTs):")
    print(f"{'router':22} {'idle ms':>8} {'voice ms':>9} {'p90 ms':>8} {'lost':>5} {'goodput Mbit/s':>15}"
          f" {'shaped Mbit/s':>14} {'Jain 8 flows':>13} {'video:bg 3.0':>13} {'on wire':>8}")
    for name, f in RESULTS.items():
        print(f"{name:22} {f['idle_rtt_ms']:8.2f} {f['voice_rtt_ms']:9.2f} {f['voice_rtt_p90_ms']:8.2f} "
              f"{f['ping_lost']:5d} {f['goodput_mbit']:15.2f} {f.get('shaped_mbit', float('nan')):14.2f} "
              f"{f.get('jain_8_flows', float('nan')):13.3f} {f.get('weights_video_background', float('nan')):13.2f} "
              f"{f.get('weights_on_the_wire', float('nan')):8.2f}")
    with open(os.environ.get("PYNETSTACK_QOS_REPORT", "/tmp/pynetstack_qos_interop.json"), "w") as out:
        json.dump(dict(RESULTS, rate_mbit=rate_mbit()), out, indent=1)
    assert kernel["voice_rtt_ms"] <= kernel["idle_rtt_ms"] + 5.0, kernel

