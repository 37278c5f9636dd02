"""The seed's "Network Monitoring" example in Python: initialise monitoring, configure an alert,
start monitoring, move some traffic, generate a performance report.

Runs as root: it builds its own namespaces (nothing else on the machine is touched)."""

import time
import urllib.request

from pynetstack.lab import Lab
from pynetstack.link.tap import TapDevice
from pynetstack.monitor import NetworkMonitor
from pynetstack.services import http
from pynetstack.stack import Stack

with Lab("monitor") as lab, Stack() as stack:
    kernel = lab.netns("kernel")
    stack.add_interface(TapDevice("exmon0", host_address="10.99.42.1/24", netns=kernel), "10.99.42.2/24")
    http.install(stack)

    # Initialize monitoring (the seed samples every 5 s; half a second keeps this example short).
    # The "link" is 100 Mbit/s, so a fast download is a high utilisation.
    monitor = NetworkMonitor(stack, {"collection_interval": 0.5, "analysis_interval": 2, "link_speed_mbps": 100})

    # Configure alerts
    monitor.configure_alerts([{
        "name": "High bandwidth utilization",
        "metric_path": "bandwidth_usage.utilization_percent",
        "threshold": 85.0,
        "severity": "high",
    }])

    # Start monitoring
    monitor.start_monitoring()
    stack.start_background()
    print(f"monitoring: dashboard and /metrics on {monitor.url}")

    # Traffic: the kernel downloads 200 MB from the stack's HTTP service.
    result = lab.run(kernel, "curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{speed_download}",
                     "http://10.99.42.2/bytes/200000000", timeout=90)
    size, speed = result.stdout.split()
    print(f"curl moved {int(size)} bytes at {float(speed) * 8 / 1e6:.0f} Mbit/s")
    time.sleep(3)  # the utilisation falls: the alert resolves
    for alert in monitor.alerts():
        print(f"alert {alert['name']!r}: {alert['state']} (last over the threshold: {alert['value'] * 8 / 1e6:.0f} Mbit/s)")
    metrics = urllib.request.urlopen(monitor.url + "/metrics", timeout=10).read().decode()
    print(next(line for line in metrics.splitlines() if line.startswith('pynetstack_network_transmit_bytes_total')))

    # Generate reports
    report = monitor.generate_report("performance", 3600)
    print(report)
    monitor.stop_monitoring()
