#!/bin/bash
# Regenerate tests/wire/fixtures/*.hex: frames produced by the Linux kernel, captured with tcpdump.
#
# VLAN frames are hand-written fixtures in the tests: the kernel this was
# made on has no 8021q module.  Needs root, iproute2, ethtool, tcpdump, ping, arping, socat, nc (OpenBSD).  It builds two network
# namespaces joined by a veth pair (B forwards),
# (and a third, C, behind a narrow link from B), runs one scenario per capture, and writes each capture as hex frames with tcpdump's own one-line
# rendering above each frame as a comment.  The tests only read the stored files; this script is
# run once, by hand, when fixtures are added.  Traffic never leaves the two namespaces.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/fixtures"
A=pnsw-a
B=pnsw-b
C=pnsw-c
TMP=$(mktemp -d)
mkdir -p "$OUT"

cleanup() {
    ip netns pids $A 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns pids $B 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del $A 2>/dev/null || true
    ip netns del $B 2>/dev/null || true
    ip netns del $C 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
cleanup_ns_only() { for ns in $A $B $C; do ip netns del $ns 2>/dev/null || true; done; }
cleanup_ns_only

ina() { ip netns exec $A "$@"; }
inb() { ip netns exec $B "$@"; }

ip netns add $A
ip netns add $B
ip netns add $C
for ns in $A $B $C; do
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec $ns ip link set lo up
done
ip link add veth-a netns $A type veth peer name veth-b netns $B
ina ip link set veth-a address 02:00:00:00:00:0a
inb ip link set veth-b address 02:00:00:00:00:0b
# Checksum offload off, so captured TCP/UDP checksums are the real, complete ones.
ina ethtool -K veth-a tx off rx off >/dev/null
inb ethtool -K veth-b tx off rx off >/dev/null
ina ip addr add 10.99.0.1/24 dev veth-a
inb ip addr add 10.99.0.2/24 dev veth-b
ina ip link set veth-a up
inb ip link set veth-b up
# B forwards: TTL expiry, unreachable / prohibited routes, and a narrow (MTU 1000) link to C.
inb sysctl -qw net.ipv4.ip_forward=1
ina ip route add 10.99.48.0/20 via 10.99.0.2
inb ip route add 10.99.50.0/24 via 10.99.0.1
inb ip route add unreachable 10.99.51.0/24
inb ip route add prohibit 10.99.52.0/24
ip link add veth-bc netns $B mtu 1000 type veth peer name veth-cb netns $C mtu 1000
inb ip addr add 10.99.53.2/24 dev veth-bc
ip netns exec $C ip addr add 10.99.53.1/24 dev veth-cb
inb ip link set veth-bc up
ip netns exec $C ip link set veth-cb up
sleep 1

# capture NAME FILTER COMMAND...: capture on A's veth while COMMAND runs in A
capture() {
    name=$1; filter=$2; shift 2
    ip netns exec $A tcpdump -i veth-a --immediate-mode -U -w "$TMP/$name.pcap" "$filter" 2>"$TMP/$name.err" &
    tpid=$!
    for _ in $(seq 50); do grep -q listening "$TMP/$name.err" 2>/dev/null && break; sleep 0.1; done
    ina "$@" >"$TMP/$name.out" 2>&1 || true
    sleep 0.5
    kill -TERM $tpid 2>/dev/null || true; wait $tpid 2>/dev/null || true
    tcpdump -r "$TMP/$name.pcap" -nn -e -tt 2>/dev/null > "$TMP/$name.txt"
    [ -s "$TMP/$name.txt" ] || { cat "$TMP/$name.out" "$TMP/$name.err" >&2; }
    python3 - "$TMP/$name.pcap" "$TMP/$name.txt" "$OUT/$name.hex" "$*" <<'PY'
import struct, sys
pcap, text, out, command = sys.argv[1:]
data = open(pcap, "rb").read()
magic = struct.unpack_from("<I", data)[0]
endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
assert struct.unpack_from(endian + "I", data)[0] in (0xA1B2C3D4, 0xA1B23C4D), "not a pcap file"
assert struct.unpack_from(endian + "I", data, 20)[0] == 1, "link type is not Ethernet"
lines = [line.rstrip("\n") for line in open(text)]
frames, offset = [], 24
while offset + 16 <= len(data):
    _, _, caplen, origlen = struct.unpack_from(endian + "IIII", data, offset)
    assert caplen == origlen, "truncated capture"
    frames.append(data[offset + 16:offset + 16 + caplen])
    offset += 16 + caplen
assert frames, f"{out}: nothing captured"  # see the .out file
with open(out, "w") as f:
    f.write(f"# captured by tests/wire/make_fixtures.sh on veth-a while running in netns A: {command}\n")
    f.write("# each frame: '# ' + tcpdump -nn -e -tt rendering (timestamp dropped), then the frame in hex\n")
    for i, frame in enumerate(frames):
        rendering = lines[i].split(" ", 1)[1] if i < len(lines) else "?"
        f.write(f"# {rendering}\n{frame.hex()}\n")
print(f"{out}: {len(frames)} frames")
PY
}

capture arp 'arp' arping -c 1 -w 2 -I veth-a 10.99.0.2
capture arp_gratuitous 'arp' arping -c 1 -U -P -I veth-a 10.99.0.1
capture ping 'icmp' ping -c 2 -i 0.2 -p 5a 10.99.0.2
capture ping_frag 'icmp or (ip[6:2] & 0x3fff != 0)' ping -c 1 -s 3000 10.99.0.2
capture ping_record_route 'icmp' ping -c 1 -R 10.99.0.2
capture ping_timestamp_option 'icmp' ping -c 1 -T tsandaddr 10.99.0.2
capture ttl_exceeded 'icmp' ping -c 1 -t 1 -W 1 10.99.50.1
capture host_unreachable 'icmp' ping -c 1 -W 1 10.99.51.1
capture admin_prohibited 'icmp' ping -c 1 -W 1 10.99.52.1
capture frag_needed 'icmp' ping -c 1 -W 1 -M do -s 1200 10.99.53.1

inb socat -T2 UDP4-LISTEN:9000,reuseaddr PIPE &
sleep 0.3
capture udp_echo 'udp' sh -c "printf 'hello, udp' | socat -T1 - UDP4:10.99.0.2:9000,sourceport=40000"
capture udp_port_unreachable 'udp or icmp' sh -c "printf 'anyone?' | socat -T1 - UDP4:10.99.0.2:9999,sourceport=40001"
capture udp_empty 'udp or icmp' sh -c "printf '' | socat -T1 - UDP4:10.99.0.2:9999,sourceport=40002; sleep 0.2; python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b\"\", (\"10.99.0.2\", 9999))'"

inb sh -c 'printf "hello from B\n" | timeout 5 nc -l 9001' &
sleep 0.3
capture tcp_session 'tcp' sh -c "printf 'hello from A\n' | timeout 5 nc -N -p 40100 10.99.0.2 9001"
capture tcp_reset 'tcp' timeout 2 nc -p 40101 10.99.0.2 9002
echo done
