"""TAP offloads with the Linux kernel as the peer: with IFF_VNET_HDR + TSO4/checksum offload
(the default) 64 KB segments cross the TAP both ways and 100 MB arrive byte-exact; without
offloads the same transfers use MTU-sized frames only.  Root only; bounded in time."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from pynetstack.services import http

pytestmark = pytest.mark.interop

KERNEL, STACK = "10.99.3.1", "10.99.3.2"
SIZE = int(os.environ.get("PYNETSTACK_TCP_INTEROP_MB", "100")) * 1_000_000


def _expected_bytes_digest(n: int) -> str:
    h = hashlib.sha256()
    offset = 0
    while offset < n:
        chunk = http.deterministic_bytes(offset, min(1 << 20, n - offset))
        h.update(chunk)
        offset += len(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module", params=[True, False], ids=["offload", "plain"])
def rig(request):
    if os.geteuid() != 0:
        pytest.fail("TAP offload interop needs root (network namespaces and a TAP device)")
    for tool in ("ip", "curl", "sha256sum"):
        if shutil.which(tool) is None:
            pytest.fail(f"missing tool {tool}")
    from pynetstack import lab as labmod
    from pynetstack.link.tap import TapDevice
    from pynetstack.stack import Stack
    with labmod.Lab("tcpo") as lab:
        ns = lab.netns("k")
        stack = Stack()
        tap = TapDevice("pnstcpo0", host_address=f"{KERNEL}/24", netns=ns, offload=request.param)
        stack.add_interface(tap, f"{STACK}/24")
        http.install(stack)
        stack.start_background()
        try:
            yield lab, ns, stack, request.param
        finally:
            stack.close()


def test_download_and_upload_byte_exact(rig, tmp_path):
    lab, ns, stack, offload = rig
    r = lab.run(ns, "sh", "-c", f"curl -sS --max-time 200 http://{STACK}/bytes/{SIZE} | sha256sum", timeout=220)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == _expected_bytes_digest(SIZE)
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
