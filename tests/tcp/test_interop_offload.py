"""TAP offloads with the Linux kernel as the peer: with IFF_VNET_HDR + TSO4/checksum offload
(the default) 64 KB segments cross the TAP both ways and 100 MB arrive byte-exact; without
offloads the same transfers use MTU-sized frames only.  Root only; bounded in time."""

from __future__ import annotations

import hashlib
import os

import pytest

from pynetstack.services import http

from .kernel_lab import expected_bytes_digest, kernel_lab, require

pytestmark = pytest.mark.interop

KERNEL, STACK = "10.99.3.1", "10.99.3.2"
SIZE = int(os.environ.get("PYNETSTACK_TCP_INTEROP_MB", "100")) * 1_000_000


@pytest.fixture(scope="module", params=[True, False], ids=["offload", "plain"])
def rig(request):
    require({"ip": "iproute2", "curl": "curl", "sha256sum": "coreutils"})
    with kernel_lab("tcpo", "pnstcpo0", KERNEL, STACK, offload=request.param, install=(http.install,)) as the_lab:
        yield the_lab.lab, the_lab.ns, the_lab.stack, request.param


def test_download_and_upload_byte_exact(rig, tmp_path):
    lab, ns, stack, offload = rig
    r = lab.run(ns, "sh", "-c", f"curl -sS --max-time 200 http://{STACK}/bytes/{SIZE} | sha256sum", timeout=220)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == expected_bytes_digest(SIZE)
    # upload a pseudo-random file (not zeros: a misplaced segment must change the digest)
    path = tmp_path / "upload.bin"
    with open(path, "wb") as f:
        seed = os.urandom(32)
        for i in range(SIZE // (1 << 20) + 1):
            f.write(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() * 32768)
    r = lab.run(ns, "sh", "-c", f"head -c {SIZE} {path} | sha256sum; head -c {SIZE} {path} | "
                                f"curl -sS --max-time 200 --data-binary @- http://{STACK}/sha256", timeout=220)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == lines[-1]
    counters = stack.host.counters
    if offload:
        # large segments went down (TSO) and came up (the kernel's GSO) with trusted checksums
        assert counters["ip_out_offloaded"] > 0
        assert counters["ip_in_checksum_trusted"] > 0
        assert stack.host.drops.get("tcp-bad-checksum", 0) == 0
        assert stack.tcp.drops.get("tcp-bad-checksum", 0) == 0
    else:
        assert counters["ip_out_offloaded"] == 0 and counters["ip_in_checksum_trusted"] == 0
