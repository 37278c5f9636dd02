"""`pynetstack up` with a [qos] section, then `pynetstack qos show` asks the running stack."""

from __future__ import annotations

import os
import signal
import sys
import time


def test_qos_from_config_and_qos_show(lab, tmp_path):
    host = lab.netns("qcli")
    tap = f"pnsq{os.getpid() % 100000}"
    config = tmp_path / "stack.toml"
    config.write_text(
        f'[[interface]]\ntap = "{tap}"\naddress = "10.99.7.2/24"\nhost_address = "10.99.7.1/24"\n\n'
        '[services]\nudp_echo = 7\n\n'
        f'[qos]\ninterface = "{tap}"\nrate = "20mbit"\n\n'
        '[qos.class.voice]\nrate = "2mbit"\npolice = "2mbit"\n\n'
        '[[qos.rule]]\nclass = "video"\nprotocol = "udp"\nsport = 7\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = lab.popen(host, sys.executable, "-m", "pynetstack", "up", "--config", str(config), env=env)
    try:
        deadline = time.monotonic() + 30  # a new PyPy process on a loaded machine can take over 10 s
        while time.monotonic() < deadline and tap not in lab.ip("-n", host, "link", "show"):
            time.sleep(0.1)
        result = lab.run(host, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-Q", "0xb8", "10.99.7.2")
        assert "3 received" in result.stdout, result.stdout
        echoed = lab.run(host, "nc", "-u", "-w", "1", "10.99.7.2", "7", input="shaped\n")
        assert echoed.stdout == "shaped\n"
        shown = lab.run(host, sys.executable, "-m", "pynetstack", "qos", "show", "dev", tap, env=env)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout
        assert f"qdisc htb 1: dev {tap} root" in text
        voice = text.split("(voice)")[1].splitlines()
        assert "rate 2Mbit ceil 2Mbit" in text and " Sent 294 bytes 3 pkt" in voice[1], text  # 3 EF echo replies
        video = text.split("(video)")[1].splitlines()
        assert " Sent 60 bytes 1 pkt" in video[1], text  # the echo (padded to 60 bytes), by the rule
        wrong = lab.run(host, sys.executable, "-m", "pynetstack", "qos", "show", "dev", "nope0", env=env)
        assert wrong.returncode == 1 and "has no qdisc" in wrong.stderr
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
