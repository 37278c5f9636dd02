"""The DNS usage example runs and prints the answers it should."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_dns_example_runs():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "dns_resolution.py")],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert "www.example.test A -> 192.0.2.10" in p.stdout
    assert "['10 mail.example.test.']" in p.stdout
    assert "missing.example.test -> NXDOMAIN" in p.stdout
    assert "mail.example.test. 300 IN A 192.0.2.25 RA" in p.stdout or "IN A 192.0.2.25 RA" in p.stdout
    assert "'hits'" in p.stdout
