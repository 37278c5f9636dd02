"""The monitor checked by real peers: a Prometheus server scraping the stack during a curl
transfer, a ping flood firing an alert at a webhook receiver, the dashboard in headless Chromium.
The stack runs in this process on a TAP whose kernel side lives in a namespace of its own."""

from __future__ import annotations

import json
import os
import re
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

from .waiting import wait_for

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
    store = os.path.join(tempfile.mkdtemp(prefix="pns-mon-"), "monitor.db")
    config = MonitorConfig(listen=("127.0.0.1", 0), collection_interval=0.5, alerts=[flood], store=store,
                           notify={"webhook": webhook.url, "group_wait": 0, "group_interval": 0})
    monitor = Monitor(stack, config).start()
    stack.start_background()
    try:
        yield MonitoredLab(lab, host, stack, monitor, webhook)
    finally:
        stack.close()
        webhook.close()
        shutil.rmtree(os.path.dirname(store), ignore_errors=True)


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
    """Prometheus' rate() over the scrapes that bracket a curl transfer, times that span, is what
    curl moved (plus headers: under 1 % with the TAP's segmentation offload)."""
    metric = f'pynetstack_network_transmit_bytes_total{{device="{TAP}"}}'
    size = 12_000_000
    deadline = time.monotonic() + 30  # prometheus hands new targets to its scrapers every 5 s
    while not query(prometheus, metric, time.time()):
        assert time.monotonic() < deadline, "prometheus never scraped the stack"
        time.sleep(0.5)
    time.sleep(1.5)  # a few scrapes before the transfer starts
    # the counter as a scrape would read it now: the transfer has not moved a byte of it yet
    sent_before = float(re.search(rf"^{re.escape(metric)} (\S+)$", mlab.monitor.exposition.text().decode(),
                                  re.M).group(1))
    started = time.time()
    result = mlab.lab.run(mlab.host, "curl", "-s", "-o", "/dev/null", "--limit-rate", "2000000",
                          "-w", "%{size_download} %{speed_download}", f"http://{STACK}/bytes/{size}", timeout=60)
    ended = time.time()
    downloaded, speed = result.stdout.split()
    assert int(downloaded) == size, result.stdout + result.stderr
    def window():  # the samples since before the transfer, once one was scraped after it
        got = query(prometheus, f"{metric}[{int(time.time() - started) + 5}s]", time.time())
        return got if got and any(float(t) >= ended for t, _ in got[0]["values"]) else []
    raw = wait_for(window, timeout=15, interval=0.5)  # scrapes are 1 s apart, when not delayed
    assert raw, "prometheus has no sample of the stack's transmit bytes after the transfer"
    stamps = [float(t) for t, _ in raw[0]["values"]]
    # the last scrape before the transfer, by its value: Prometheus stamps a scrape when it starts,
    # and one stamped just before ``started`` but answered late (a loaded machine, a GC pause)
    # would already hold some of the transfer
    before = max(float(t) for t, value in raw[0]["values"] if float(value) <= sent_before)
    after = min(t for t in stamps if t >= ended)     # the first one after it
    span = after - before
    series = query(prometheus, f"rate({metric}[{int(span * 1000) + 1}ms])", after)
    measured = float(series[0]["value"][1])
    moved = size / span
    print(f"curl moved {size} B at {float(speed):.0f} B/s; over the {span:.1f} s between the scrapes around it "
          f"that is {moved:.0f} B/s; prometheus rate {measured:.0f} B/s ({measured / moved - 1:+.2%})")
    assert abs(measured / moved - 1) < 0.05
    up = query(prometheus, 'up{job="pynetstack"}', after)
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
    # ping -f: as fast as the replies come (at least 100 a second), 4 s of it; three in flight
    # (-l 3), so the rate stays well over the alert's 300 a second even when a loaded machine
    # stretches the stack's round trip to a few ms
    flood = mlab.lab.run(mlab.host, "ping", "-f", "-l", "3", "-q", "-w", "4", STACK, timeout=20)
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


def parse_rate(text: str) -> float:
    """The dashboard's numbers back: '1.02M' -> 1020000.0."""
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:], 1.0)
    return float(text[:-1] if text[-1:] in "kMG" else text) * scale if text not in ("", "-") else 0.0


class Browser:
    """Headless Chromium through chromedriver's W3C WebDriver HTTP API (no client library needed)."""

    def __init__(self):
        port = free_port()
        self.proc = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                assert time.monotonic() < deadline, "chromedriver did not start"
                time.sleep(0.1)
        options = {"binary": shutil.which("chromium"), "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                                                "--disable-dev-shm-usage", "--window-size=1280,1400"]}
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options,
                                                 "goog:loggingPrefs": {"browser": "ALL"}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method, path, body=None):
        request = urllib.request.Request(self.base + path, method=method, headers={"Content-Type": "application/json"},
                                         data=None if body is None else json.dumps(body).encode())
        return json.loads(urllib.request.urlopen(request, timeout=60).read())["value"]

    def get(self, url):
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def js(self, script):
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": []})

    def errors(self):
        return [e for e in self._call("POST", f"/session/{self.session}/se/log", {"type": "browser"})
                if e["level"] == "SEVERE"]

    def screenshot(self, name):
        import base64
        os.makedirs(ARTEFACTS, exist_ok=True)
        path = os.path.join(ARTEFACTS, name)
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(self._call("GET", f"/session/{self.session}/screenshot")))
        return path

    def close(self):
        try:
            self._call("DELETE", f"/session/{self.session}")
        finally:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("chromium and chromium-driver (Debian packages) not installed")
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def test_the_dashboard_loads_cleanly_and_its_numbers_move_with_traffic(mlab, browser):
    browser.get(mlab.monitor.server.url + "/")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and int(browser.js("return document.body.dataset.updates || 0")) < 2:
        time.sleep(0.3)
    assert int(browser.js("return document.body.dataset.updates || 0")) >= 2, "no events reached the page"
    # The kernel's receive buffer may grow to 32 MB (tcp_rmem's maximum on kernels >= 6.x), enough
    # to take a 20 MB body in one burst whatever curl reads; capped at 1 MB, the stack's sending is
    # paced by curl's 1 MB/s after the first buffer fills, so the rate the page shows keeps moving.
    mlab.lab.run(mlab.host, "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 131072 1048576")
    curl = mlab.lab.popen(mlab.host, "curl", "-s", "-o", "/dev/null", "--limit-rate", "1000000",
                          f"http://{STACK}/bytes/20000000")  # stopped after 14 samples
    seen = []
    try:
        # 14 samples half a second apart, taken however long each WebDriver call takes (a loaded
        # machine can stretch one to hundreds of ms, and 8 s of wall clock then held fewer than
        # 10); 16 s at most, while the 20 s transfer at 1 MB/s is still running
        deadline = time.monotonic() + 16
        while len(seen) < 14 and time.monotonic() < deadline and curl.poll() is None:
            seen.append(parse_rate(browser.js("return document.getElementById('tx-rate').textContent")))
            if len(seen) == 6:
                shot = browser.screenshot("dashboard.png")  # mid-transfer
            time.sleep(0.5)
        rows = browser.js("return document.querySelectorAll('#interfaces tbody tr').length")
        canvases = browser.js("return document.querySelectorAll('.uplot canvas').length")
    finally:
        os.killpg(curl.pid, signal.SIGTERM)
        curl.wait(timeout=10)
    print("transmit rates the page showed:", seen)
    # curl pulls 1 MB/s (more at first, while the socket buffers fill): for most of the samples the
    # page shows the stack sending at that pace (a second or so passes before its first update)
    moving = [rate for rate in seen if rate > 0.5e6]
    assert len(seen) >= 10 and len(moving) >= len(seen) // 2, f"the transmit rate did not follow curl: {seen}"
    assert rows == 1 and canvases >= 2
    assert os.path.getsize(shot) > 10_000
    assert browser.errors() == []


def test_the_html_report_renders_its_plots_in_chromium(mlab, browser):
    from pynetstack.monitor import reports
    from pynetstack.monitor.store import Store
    store = Store(mlab.monitor.config.store)
    try:
        report = reports.build(store, "performance", 600)
    finally:
        store.close()
    os.makedirs(ARTEFACTS, exist_ok=True)
    path = os.path.join(ARTEFACTS, "performance-report.html")
    with open(path, "w") as handle:
        handle.write(reports.render_html(report))
    browser.get("file://" + path)
    assert int(browser.js("return document.body.dataset.plots")) == len(report["plots"]) >= 3
    assert browser.js("return document.querySelectorAll('.uplot canvas').length") == len(report["plots"])
    assert "PacketFlood" in browser.js("return document.body.textContent")  # the alert of the flood test
    browser.screenshot("performance-report.png")
    assert browser.errors() == []
