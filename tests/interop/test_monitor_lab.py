"""The monitor checked by real peers: a Prometheus server scraping the stack during a curl
transfer, a ping flood firing an alert at a webhook receiver, the dashboard in headless Chromium.
The stack runs in this process on a TAP whose kernel side lives in a namespace of its own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pynetstack.link.tap import TapDevice
from pynetstack.monitor.config import AlertSpec, MonitorConfig
from pynetstack.monitor.monitor import Monitor
from pynetstack.services import http
from pynetstack.stack import Stack

KERNEL, STACK = "10.99.41.1", "10.99.41.2"
TAP = "pnsmon0"
ARTEFACTS = os.environ.get("PYNETSTACK_ARTEFACTS", os.path.join(tempfile.gettempdir(), "pynetstack-artefacts"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """An Alertmanager-webhook receiver: keeps every JSON payload POSTed to it."""

    def __init__(self):
        self.payloads = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.payloads.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/alerts"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class MonitoredLab:
    def __init__(self, lab, host, stack, monitor, webhook):
        self.lab, self.host, self.stack, self.monitor, self.webhook = lab, host, stack, monitor, webhook


@pytest.fixture(scope="module")
def mlab(lab):
    host = lab.netns("monhost")
    webhook = Webhook()
    stack = Stack()
    stack.add_interface(TapDevice(TAP, host_address=f"{KERNEL}/24", netns=host), f"{STACK}/24")
    http.install(stack)
    flood = AlertSpec("PacketFlood", f'rate(pynetstack_network_receive_packets_total{{device="{TAP}"}}[2s]) > 300',
                      for_=1.0, severity="critical", labels={"team": "net"}, summary="ping flood")
    config = MonitorConfig(listen=("127.0.0.1", 0), collection_interval=0.5, alerts=[flood],
                           notify={"webhook": webhook.url, "group_wait": 0, "group_interval": 0})
    monitor = Monitor(stack, config).start()
    stack.start_background()
    try:
        yield MonitoredLab(lab, host, stack, monitor, webhook)
    finally:
        stack.close()
        webhook.close()


@pytest.fixture()
def prometheus(mlab):
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus (Debian package prometheus) not installed")
    workdir = tempfile.mkdtemp(prefix="pns-prom-")
    port = free_port()
    target = f"{mlab.monitor.server.address[0]}:{mlab.monitor.server.address[1]}"
    with open(os.path.join(workdir, "prometheus.yml"), "w") as handle:
        handle.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
                     f"  - job_name: pynetstack\n    static_configs:\n      - targets: ['{target}']\n")
    proc = subprocess.Popen(["prometheus", f"--config.file={workdir}/prometheus.yml",
                             f"--storage.tsdb.path={workdir}/data", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if urllib.request.urlopen(url + "/-/ready", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def query(url: str, expr: str, at: float) -> list:
    q = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    answer = json.loads(urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10).read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_sees_the_byte_rate_curl_moved(mlab, prometheus):
    rate_limit = 2_000_000
    size = 12 * rate_limit  # about 12 s of transfer
    time.sleep(2.5)  # a few scrapes before the transfer starts
    started = time.time()
    result = mlab.lab.run(mlab.host, "curl", "-s", "-o", "/dev/null", "--limit-rate", str(rate_limit),
                          "-w", "%{size_download} %{time_total} %{speed_download}",
                          f"http://{STACK}/bytes/{size}", timeout=60)
    ended = time.time()
    downloaded, total_time, speed = result.stdout.split()
    assert int(downloaded) == size, result.stdout + result.stderr
    speed = float(speed)
    time.sleep(1.5)  # the last scrape of the transfer
    # a window well inside the transfer: steady state, whole scrapes on both sides
    at = started + 0.75 * (ended - started)
    window = int((ended - started) / 2)
    series = query(prometheus, f'rate(pynetstack_network_transmit_bytes_total{{device="{TAP}"}}[{window}s])', at)
    assert series, "prometheus has no sample of the stack's transmit bytes"
    measured = float(series[0]["value"][1])
    print(f"curl {speed:.0f} B/s, prometheus rate {measured:.0f} B/s ({measured / speed - 1:+.2%})")
    assert abs(measured / speed - 1) < 0.05
    up = query(prometheus, 'up{job="pynetstack"}', ended)
    assert up and up[0]["value"][1] == "1"


def test_promtool_checks_a_live_scrape_cleanly(mlab):
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian package prometheus) not installed")
    body = urllib.request.urlopen(mlab.monitor.server.url + "/metrics", timeout=10).read()
    assert b'pynetstack_network_transmit_bytes_total{device="pnsmon0"}' in body
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_a_ping_flood_fires_an_alert_that_resolves_at_the_webhook(mlab):
    webhook = mlab.webhook
    webhook.payloads.clear()
    # ping -f: as fast as the replies come (at least 100 a second), 4 s of it
    flood = mlab.lab.run(mlab.host, "ping", "-f", "-q", "-w", "4", STACK, timeout=20)
    assert " 0% packet loss" in flood.stdout or "received" in flood.stdout, flood.stdout + flood.stderr
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(p["status"] == "resolved" for p in webhook.payloads):
        time.sleep(0.2)
    statuses = [p["status"] for p in webhook.payloads]
    assert statuses[:1] == ["firing"] and "resolved" in statuses, statuses
    alert = webhook.payloads[0]["alerts"][0]
    assert alert["labels"]["alertname"] == "PacketFlood" and alert["labels"]["device"] == TAP
    assert float(alert["annotations"]["value"]) > 300
    states = {a["name"]: a["state"] for a in mlab.monitor.alert_table()}
    assert states == {"PacketFlood": "resolved"}
