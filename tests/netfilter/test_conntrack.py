"""Conntrack: TCP/UDP/ICMP states, RELATED errors, timeouts on a virtual clock, table bounds,
events and ``conntrack -L`` lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.netfilter import ct_tcp
from pynetstack.netfilter.conntrack import Conntrack, ConntrackError, Timeouts
from pynetstack.netfilter.types import CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.icmp import build_echo, build_error
from pynetstack.wire.ipv4 import IPv4
from pynetstack.wire.tcp import ACK, FIN, RST, SYN, build_tcp
from pynetstack.wire.udp import build_udp

C = ip_to_int("10.0.0.2")
S = ip_to_int("10.0.1.2")
WS7 = b"\x01\x03\x03\x07"  # NOP, window scale 7


def tcp(src, dst, sport, dport, seq, ack, flags, window=65535, data=b"", options=b""):
    return IPv4.parse(IPv4(src, dst, 6, build_tcp(src, dst, sport, dport, seq, ack, flags, window, data,
                                                   options)).build())


def udp(src, dst, sport, dport, data=b"x"):
    return IPv4.parse(IPv4(src, dst, 17, build_udp(src, dst, sport, dport, data)).build())


def echo(src, dst, ident, request=True, seq=1):
    return IPv4.parse(IPv4(src, dst, 1, build_echo(request, ident, seq, b"ping")).build())


def icmp_error(src, dst, quoted: IPv4, type=3, code=3):
    return IPv4.parse(IPv4(src, dst, 1, build_error(type, code, quoted.build())).build())


class Flow:
    """A TCP connection C:40000 -> S:80 driven segment by segment on a virtual clock."""

    def __init__(self, ct, now=0.0, wscale=True, opts=None):
        self.ct = ct
        self.cseq, self.sseq = 1000, 5000
        if opts is None:
            opts = WS7 if wscale else b""
        e, d, s = ct.track(tcp(C, S, 40000, 80, self.cseq, 0, SYN, options=opts), now)
        assert (d, s) == (0, CT_NEW)
        assert ct.confirm(e, now)
        self.entry = e
        self.cseq += 1
        self.opts = opts

    def c(self, flags, data=b"", now=0.0, seq=None, window=65535, options=b""):
        seq = self.cseq if seq is None else seq
        r = self.ct.track(tcp(C, S, 40000, 80, seq, self.sseq, flags, window, data, options), now)
        if r[2] != CT_INVALID:
            self.cseq = max(self.cseq, seq + len(data) + (1 if flags & (FIN | SYN) else 0))
        return r

    def s(self, flags, data=b"", now=0.0, seq=None, window=65535, options=b""):
        seq = self.sseq if seq is None else seq
        r = self.ct.track(tcp(S, C, 80, 40000, seq, self.cseq, flags, window, data, options), now)
        if r[2] != CT_INVALID:
            self.sseq = max(self.sseq, seq + len(data) + (1 if flags & (FIN | SYN) else 0))
        return r

    def handshake(self, now=0.0):
        assert self.s(SYN | ACK, now=now, options=self.opts)[1:] == (1, CT_ESTABLISHED)
        assert self.entry.tcp_state == "SYN_RECV"
        assert self.c(ACK, now=now)[2] == CT_ESTABLISHED
        assert self.entry.tcp_state == "ESTABLISHED"
        return self


def state(entry):
    return entry.tcp_state


# -- TCP -------------------------------------------------------------------------------------------

def test_tcp_handshake_unconfirmed_then_confirmed_then_assured():
    ct = Conntrack(timeouts=Timeouts.linux())
    syn = tcp(C, S, 40000, 80, 1000, 0, SYN)
    e, d, s = ct.track(syn, 0.0)
    assert s == CT_NEW and e.tcp_state == "SYN_SENT"
    assert len(ct) == 0 and ct.entries() == []  # not in the table until confirmed
    assert ct.confirm(e, 0.0) and len(ct) == 1
    # a retransmitted SYN before any reply is still "new", as in Linux
    e2, d2, s2 = ct.track(tcp(C, S, 40000, 80, 1000, 0, SYN), 0.5)
    assert (e2, d2, s2) == (e, 0, CT_NEW)
    f = Flow.__new__(Flow)
    f.ct, f.entry, f.cseq, f.sseq, f.opts = ct, e, 1001, 5000, b""
    f.handshake(1.0)
    assert e.status & 0x4  # assured
    assert ct.format_entry(e, 2.0) == (
        "tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=10.0.1.2 sport=40000 dport=80 "
        "src=10.0.1.2 dst=10.0.0.2 sport=80 dport=40000 [ASSURED] mark=0 use=1")


def test_tcp_unreplied_line_and_counters():
    ct = Conntrack(timeouts=Timeouts.linux(), acct=True)
    e, _, _ = ct.track(tcp(C, S, 40000, 80, 1000, 0, SYN), 0.0)
    ct.confirm(e, 0.0)
    assert ct.format_entry(e, 1.0) == (
        "tcp      6 119 SYN_SENT src=10.0.0.2 dst=10.0.1.2 sport=40000 dport=80 packets=1 bytes=40 "
        "[UNREPLIED] src=10.0.1.2 dst=10.0.0.2 sport=80 dport=40000 packets=0 bytes=0 mark=0 use=1")


def test_tcp_data_and_fin_close_through_every_closing_state():
    ct = Conntrack(timeouts=Timeouts.linux())
    f = Flow(ct).handshake()
    assert f.c(ACK, b"GET / HTTP/1.0\r\n\r\n")[2] == CT_ESTABLISHED
    assert f.s(ACK, b"HTTP/1.0 200 OK\r\n\r\n" * 10)[2] == CT_ESTABLISHED
    assert f.c(FIN | ACK)[2] == CT_ESTABLISHED and state(f.entry) == "FIN_WAIT"
    assert f.s(ACK)[2] == CT_ESTABLISHED and state(f.entry) == "CLOSE_WAIT"
    assert f.s(FIN | ACK)[2] == CT_ESTABLISHED and state(f.entry) == "LAST_ACK"
    assert f.c(ACK, now=1.0)[2] == CT_ESTABLISHED and state(f.entry) == "TIME_WAIT"
    assert f.entry.deadline == 1.0 + 120
    ct.poll(120.9)
    assert len(ct) == 1
    ct.poll(121.0)
    assert len(ct) == 0


def test_tcp_rst_closes_and_expires_after_close_timeout():
    ct = Conntrack(timeouts=Timeouts.linux())
    f = Flow(ct).handshake()
    assert f.s(RST | ACK, now=5.0)[2] == CT_ESTABLISHED
    assert state(f.entry) == "CLOSE" and f.entry.deadline == 15.0
    ct.poll(14.99)
    assert len(ct) == 1
    ct.poll(15.0)
    assert len(ct) == 0


def test_rst_answering_syn_deletes_the_entry_at_once():
    ct = Conntrack()
    f = Flow(ct)
    assert f.s(RST | ACK, seq=0)[1:] == (1, CT_ESTABLISHED)
    assert len(ct) == 0


def test_rst_below_the_acknowledged_sequence_is_invalid():
    ct = Conntrack()
    f = Flow(ct).handshake()
    f.c(ACK, b"x" * 100)
    f.s(ACK)  # the server acknowledges the 100 bytes
    assert f.c(RST, seq=f.cseq - 50)[2] == CT_INVALID
    assert state(f.entry) == "ESTABLISHED"


def test_out_of_window_is_invalid_unless_liberal():
    for liberal, expect in ((False, CT_INVALID), (True, CT_ESTABLISHED)):
        ct = Conntrack(liberal=liberal)
        f = Flow(ct, wscale=False).handshake()
        far = f.cseq + 10_000_000
        assert f.c(ACK, b"data", seq=far)[2] == expect
        # an ACK for data the server never sent
        assert f.c(ACK, seq=f.cseq)[2] == CT_ESTABLISHED
        r = ct.track(tcp(C, S, 40000, 80, f.cseq, f.sseq + 5_000_000, ACK), 0.0)
        assert r[2] == expect
    assert ct.counters["invalid"] == 0


def test_window_scale_from_syn_options():
    # The server advertises 1000 << 7 bytes: data beyond 1000 but within 128000 is in window.
    ct = Conntrack()
    f = Flow(ct)
    f.s(SYN | ACK, window=1000, options=WS7)
    f.c(ACK)
    f.s(ACK, window=1000)
    assert f.c(ACK, b"y" * 1400, seq=f.cseq + 100_000)[2] == CT_ESTABLISHED
    # without scaling on both sides the same segment is out of window
    ct2 = Conntrack()
    g = Flow(ct2, wscale=False)
    g.s(SYN | ACK, window=1000)
    g.c(ACK)
    g.s(ACK, window=1000)
    assert g.c(ACK, b"y" * 1400, seq=g.cseq + 100_000)[2] == CT_INVALID


def test_non_syn_first_packet_is_invalid_unless_loose():
    ct = Conntrack()
    assert ct.track(tcp(C, S, 40000, 80, 1, 1, ACK), 0.0) == (None, 0, CT_INVALID)
    loose = Conntrack(loose=True)
    e, d, s = loose.track(tcp(C, S, 40000, 80, 1, 1, ACK), 0.0)
    assert s == CT_NEW and e.tcp_state == "ESTABLISHED"
    loose.confirm(e, 0.0)
    assert loose.track(tcp(S, C, 80, 40000, 77, 1, ACK), 0.1)[2] == CT_ESTABLISHED


@pytest.mark.parametrize("flags", [SYN | FIN, SYN | RST, FIN, 0, FIN | RST | ACK | SYN])
def test_impossible_flag_combinations_are_invalid(flags):
    ct = Conntrack()
    assert ct.track(tcp(C, S, 40000, 80, 1, 0, flags), 0.0)[2] == CT_INVALID


def test_truncated_tcp_is_invalid():
    ct = Conntrack()
    assert ct.track(IPv4(C, S, 6, b"\x00" * 12), 0.0)[2] == CT_INVALID


def test_syn_in_time_wait_reopens_as_new():
    ct = Conntrack(timeouts=Timeouts.linux())
    f = Flow(ct).handshake()
    f.c(FIN | ACK)
    f.s(FIN | ACK)
    f.c(ACK)
    assert state(f.entry) == "TIME_WAIT"
    old = f.entry
    e, d, s = ct.track(tcp(C, S, 40000, 80, 99999, 0, SYN), 3.0)
    assert s == CT_NEW and e is not old and e.tcp_state == "SYN_SENT"
    assert ct.confirm(e, 3.0) and ct.entries() == [e]


def test_syn_in_established_is_ignored_not_invalid():
    ct = Conntrack()
    f = Flow(ct).handshake()
    e, d, s = ct.track(tcp(C, S, 40000, 80, 42, 0, SYN), 1.0)
    assert (e, s) == (f.entry, CT_ESTABLISHED) and state(e) == "ESTABLISHED"
    assert ct.counters["ignore"] == 1


def test_dropped_first_packet_leaves_nothing():
    ct = Conntrack()
    freed = []
    ct.destroy_hooks.append(freed.append)
    e, _, s = ct.track(tcp(C, S, 40000, 80, 1000, 0, SYN), 0.0)
    assert s == CT_NEW
    ct.poll(0.1)  # the packet was dropped: never confirmed
    assert freed == [e] and len(ct) == 0
    assert ct.track(tcp(C, S, 40000, 80, 1000, 0, SYN), 0.2)[2] == CT_NEW
    assert not ct.confirm(e, 0.3)  # a forgotten entry cannot be confirmed later


# -- UDP and ICMP ---------------------------------------------------------------------------------

def test_udp_unreplied_replied_assured_stream():
    ct = Conntrack(timeouts=Timeouts.linux())
    e, d, s = ct.track(udp(C, S, 5000, 53), 0.0)
    assert (d, s) == (0, CT_NEW)
    ct.confirm(e, 0.0)
    assert ct.track(udp(C, S, 5000, 53), 0.5)[2] == CT_NEW  # still no reply
    assert ct.format_entry(e, 0.5).startswith("udp      17 30 src=10.0.0.2 dst=10.0.1.2 sport=5000 dport=53 [UNREPLIED]")
    assert ct.track(udp(S, C, 53, 5000), 1.0)[1:] == (1, CT_ESTABLISHED)
    assert e.deadline == 31.0 and not e.status & 0x4  # replied, but not a stream yet
    assert ct.track(udp(C, S, 5000, 53), 2.5)[1:] == (0, CT_ESTABLISHED)
    assert e.status & 0x4 and e.deadline == 2.5 + 120
    assert ct.format_entry(e, 2.5) == ("udp      17 120 src=10.0.0.2 dst=10.0.1.2 sport=5000 dport=53 "
                                       "src=10.0.1.2 dst=10.0.0.2 sport=53 dport=5000 [ASSURED] mark=0 use=1")


def test_icmp_echo_entry_outlives_its_reply_as_in_linux():
    ct = Conntrack(timeouts=Timeouts.linux())
    e, d, s = ct.track(echo(C, S, 77), 0.0)
    assert s == CT_NEW and e.original == (1, C, 77, S, 8 << 8) and e.reply == (1, S, 77, C, 0)
    ct.confirm(e, 0.0)
    assert ct.format_entry(e, 0.0) == ("icmp     1 30 src=10.0.0.2 dst=10.0.1.2 type=8 code=0 id=77 [UNREPLIED] "
                                       "src=10.0.1.2 dst=10.0.0.2 type=0 code=0 id=77 mark=0 use=1")
    assert ct.track(echo(S, C, 77, request=False), 0.1)[1:] == (1, CT_ESTABLISHED)
    # Linux keeps an answered query's entry until its timeout (what `conntrack -L` shows after a
    # ping), so a duplicate reply passes; RFC 5508 REQ-1 wants the mapping to live 60 s
    assert len(ct) == 1
    assert ct.format_entry(e, 0.1) == ("icmp     1 30 src=10.0.0.2 dst=10.0.1.2 type=8 code=0 id=77 "
                                       "src=10.0.1.2 dst=10.0.0.2 type=0 code=0 id=77 mark=0 use=1")
    assert ct.track(echo(S, C, 77, request=False), 0.2)[1:] == (1, CT_ESTABLISHED)
    ct.poll(30.3)
    assert len(ct) == 0
    assert ct.track(echo(S, C, 77, request=False), 30.4)[2] == CT_INVALID  # no query: an orphan reply


def test_icmp_entry_serves_every_query_and_reply_of_its_id():
    ct = Conntrack()
    e, _, _ = ct.track(echo(C, S, 5, seq=1), 0.0)
    ct.confirm(e, 0.0)
    assert ct.track(echo(C, S, 5, seq=2), 0.1)[1:] == (0, CT_NEW)  # no reply yet
    assert ct.track(echo(S, C, 5, request=False, seq=1), 0.2)[1:] == (1, CT_ESTABLISHED)
    assert ct.track(echo(S, C, 5, request=False, seq=2), 0.3)[1:] == (1, CT_ESTABLISHED)
    assert len(ct) == 1
    assert ct.track(echo(C, S, 5, seq=3), 0.4)[1:] == (0, CT_ESTABLISHED)  # a request after the replies




def test_other_protocols_are_tracked_without_ports():
    ct = Conntrack(timeouts=Timeouts.linux())
    e, d, s = ct.track(IPv4(C, S, 47, b"gre!"), 0.0)
    assert s == CT_NEW and e.original == (47, C, 0, S, 0)
    ct.confirm(e, 0.0)
    assert ct.track(IPv4(S, C, 47, b"gre!"), 1.0)[1:] == (1, CT_ESTABLISHED)
    assert ct.format_entry(e, 2.0) == ("unknown  47 599 src=10.0.0.2 dst=10.0.1.2 src=10.0.1.2 dst=10.0.0.2 "
                                       "mark=0 use=1")


# -- RELATED ----------------------------------------------------------------------------------------

def test_icmp_errors_are_related_in_both_directions():
    ct = Conntrack()
    out = udp(C, S, 5000, 53)
    e, _, _ = ct.track(out, 0.0)
    ct.confirm(e, 0.0)
    deadline = e.deadline
    # the server's port unreachable about our datagram travels in the reply direction
    assert ct.track(icmp_error(S, C, out), 10.0) == (e, 1, CT_RELATED)
    # a router between, time exceeded
    assert ct.track(icmp_error(ip_to_int("10.0.9.9"), C, out, 11, 0), 10.0) == (e, 1, CT_RELATED)
    # an error we send about the server's answer goes in the original direction
    back = udp(S, C, 53, 5000)
    assert ct.track(icmp_error(C, S, back, 12, 0), 10.0) == (e, 0, CT_RELATED)
    assert ct.track(icmp_error(C, S, back, 4, 0), 10.0)[2] == CT_RELATED
    assert e.deadline == deadline and e.counters[2] == 0  # errors never refresh nor count


def test_icmp_error_without_connection_or_about_an_error_is_invalid():
    ct = Conntrack()
    stray = udp(C, S, 1, 2)
    assert ct.track(icmp_error(S, C, stray), 0.0)[2] == CT_INVALID
    err = icmp_error(S, C, stray)
    assert ct.track(icmp_error(C, S, err), 0.0)[2] == CT_INVALID
    assert ct.track(IPv4(S, C, 1, b"\x03\x03\x00\x00\x00\x00\x00\x00\x45"), 0.0)[2] == CT_INVALID


def test_icmp_error_about_echo_is_related():
    ct = Conntrack()
    ping = echo(C, S, 9)
    e, _, _ = ct.track(ping, 0.0)
    ct.confirm(e, 0.0)
    assert ct.track(icmp_error(ip_to_int("10.0.5.5"), C, ping, 11, 0), 1.0) == (e, 1, CT_RELATED)


# -- timeouts ---------------------------------------------------------------------------------------

def _drive_to(ct, target):
    f = Flow(ct)
    steps = {
        "SYN_SENT": [], "SYN_RECV": [("s", SYN | ACK)],
        "ESTABLISHED": [("s", SYN | ACK), ("c", ACK)],
        "FIN_WAIT": [("s", SYN | ACK), ("c", ACK), ("c", FIN | ACK)],
        "CLOSE_WAIT": [("s", SYN | ACK), ("c", ACK), ("c", FIN | ACK), ("s", ACK)],
        "LAST_ACK": [("s", SYN | ACK), ("c", ACK), ("c", FIN | ACK), ("s", FIN | ACK)],
        "TIME_WAIT": [("s", SYN | ACK), ("c", ACK), ("c", FIN | ACK), ("s", FIN | ACK), ("c", ACK)],
        "CLOSE": [("s", SYN | ACK), ("c", ACK), ("c", RST)],
        "SYN_SENT2": [("s", SYN)],
    }[target]
    for who, flags in steps:
        r = (f.c if who == "c" else f.s)(flags, options=f.opts if flags & SYN else b"")
        assert r[2] != CT_INVALID, (target, who, flags)
    assert state(f.entry) == target
    return f.entry


@pytest.mark.parametrize("profile", ["rfc", "linux"])
@pytest.mark.parametrize("target", ["SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
                                    "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"])
def test_every_tcp_timeout(profile, target):
    timeouts = Timeouts() if profile == "rfc" else Timeouts.linux()
    ct = Conntrack(timeouts=timeouts)
    entry = _drive_to(ct, target)
    expected = getattr(timeouts, "tcp_" + target.lower())
    assert entry.deadline == expected  # all packets at t=0
    ct.poll(expected - 0.001)
    assert len(ct) == 1
    ct.poll(expected)
    assert len(ct) == 0


def test_rfc_profile_values():
    t = Timeouts()
    assert (t.tcp_established, t.tcp_syn_sent, t.tcp_time_wait, t.udp, t.icmp) == (7440, 240, 240, 300, 60)
    lt = Timeouts.linux({"udp": 45})
    assert (lt.tcp_established, lt.tcp_close, lt.udp, lt.udp_stream, lt.icmp) == (432000, 10, 45, 120, 30)


def test_established_7440_seconds_in_milliseconds_of_test():
    ct = Conntrack()
    f = Flow(ct).handshake(now=0.0)
    f.c(ACK, b"keepalive", now=1000.0)  # refreshed: 7440 s from the last packet
    ct.poll(1000.0 + 7439.999)
    assert len(ct) == 1
    ct.poll(1000.0 + 7440.0)
    assert len(ct) == 0


@pytest.mark.parametrize("kind,overrides,deadline", [
    ("udp", {}, 300), ("udp", {"udp": 50}, 50), ("icmp", {}, 60), ("icmp", {"icmp": 7}, 7),
    ("generic", {}, 600), ("generic", {"generic": 9}, 9)])
def test_udp_icmp_generic_timeouts(kind, overrides, deadline):
    ct = Conntrack(timeouts=overrides)
    pkt = {"udp": udp(C, S, 1, 2), "icmp": echo(C, S, 3), "generic": IPv4(C, S, 50, b"esp")}[kind]
    e, _, _ = ct.track(pkt, 0.0)
    ct.confirm(e, 0.0)
    ct.poll(deadline - 0.01)
    assert len(ct) == 1
    assert ct.next_deadline() == deadline
    ct.poll(deadline)
    assert len(ct) == 0 and ct.next_deadline() is None


def test_bad_timeouts_and_sizes_are_one_clear_error():
    with pytest.raises(ConntrackError, match="unknown conntrack timeout 'tcp_forever'"):
        Conntrack(timeouts={"tcp_forever": 1})
    with pytest.raises(ConntrackError, match="positive"):
        Timeouts({"udp": -1})
    with pytest.raises(ConntrackError, match="max_entries"):
        Conntrack(max_entries=0)


def test_refresh_does_not_grow_the_timer_heap():
    ct = Conntrack()
    f = Flow(ct).handshake()
    for i in range(1000):
        f.c(ACK, b"z", now=float(i))
    assert len(ct._heap) <= 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 50)), min_size=1, max_size=40))
def test_expiry_matches_a_brute_force_model(events):
    """UDP flows touched at random times: after each poll the live set is exactly the flows
    whose last packet is younger than the timeout (brute force over every flow)."""
    ct = Conntrack(timeouts={"udp": 10})
    last = {}
    now = 0.0
    for flow, dt in events:
        now += dt
        ct.poll(now)
        for f, t in list(last.items()):
            if t + 10 <= now:
                del last[f]
        assert {e.original[2] for e in ct.entries()} == set(last)
        e, _, s = ct.track(udp(C, S, 1000 + flow, 53), now)
        if s == CT_NEW and not e.confirmed:
            assert ct.confirm(e, now)
        last[1000 + flow] = now


# -- table bound, events, statistics ------------------------------------------------------------------

def test_table_full_early_drops_oldest_unassured_then_refuses():
    ct = Conntrack(max_entries=3, timeouts=Timeouts.linux())
    gone = []
    ct.events.append(lambda kind, e: gone.append(e.original[2]) if kind == "DESTROY" else None)
    for port in (1, 2, 3):
        e, _, _ = ct.track(udp(C, S, port, 53), 0.0)
        ct.confirm(e, 0.0)
    # flow 1 becomes assured (a reply, then more traffic after 2 s): not a candidate
    ct.track(udp(S, C, 53, 1), 1.0)
    ct.track(udp(C, S, 1, 53), 3.0)
    e, _, s = ct.track(udp(C, S, 4, 53), 4.0)
    assert s == CT_NEW and gone == [2] and ct.counters["early_drop"] == 1
    ct.confirm(e, 4.0)
    for port in (3, 4):
        ct.track(udp(S, C, 53, port), 5.0)
        ct.track(udp(C, S, port, 53), 8.0)
    assert ct.track(udp(C, S, 5, 53), 9.0) == (None, 0, CT_INVALID)
    assert ct.refused == "conntrack-table-full" and ct.drops["conntrack-table-full"] == 1
    assert ct.stats()["drop"] == 1 and ct.stats()["entries"] == 3
    assert ct.track(udp(C, S, 4, 53), 9.5)[2] == CT_ESTABLISHED and ct.refused is None


def test_events_in_conntrack_E_format():
    ct = Conntrack(timeouts=Timeouts.linux())
    lines = []
    ct.events.append(lambda kind, e: lines.append(ct.format_event(kind, e)))
    f = Flow(ct, wscale=False).handshake()
    f.entry.mark = 7
    f.c(RST)
    tuples = "src=10.0.0.2 dst=10.0.1.2 sport=40000 dport=80 src=10.0.1.2 dst=10.0.0.2 sport=80 dport=40000"
    assert lines == [
        "    [NEW] tcp      6 120 SYN_SENT src=10.0.0.2 dst=10.0.1.2 sport=40000 dport=80 [UNREPLIED] "
        "src=10.0.1.2 dst=10.0.0.2 sport=80 dport=40000",
        f" [UPDATE] tcp      6 60 SYN_RECV {tuples}",
        f" [UPDATE] tcp      6 432000 ESTABLISHED {tuples} [ASSURED]",
        f" [UPDATE] tcp      6 10 CLOSE {tuples} [ASSURED] mark=7",
    ]
    ct.poll(10.0)
    assert lines[-1] == f"[DESTROY] tcp      6 {tuples} [ASSURED] mark=7"


def test_delete_flush_and_stats():
    ct = Conntrack()
    for port in range(5):
        e, _, _ = ct.track(udp(C, S, port, 9), 0.0)
        ct.confirm(e, 0.0)
    assert len(ct.entries()) == 5
    victim = ct.entries()[0]
    ct.delete(victim)
    assert len(ct) == 4 and victim not in ct.entries()
    assert ct.delete_where(lambda e: e.original[2] == 3) == 1
    ct.flush()
    assert len(ct) == 0 and ct.table == {}
    s = ct.stats()
    assert s["insert"] == 5 and s["found"] == 0 and s["max"] == 65536


def test_confirm_clash_is_insert_failed():
    ct = Conntrack()
    a, _, _ = ct.track(udp(C, S, 1, 2), 0.0)
    b, _, _ = ct.track(udp(S, C, 2, 1), 0.0)  # the same connection seen from the other side first
    assert ct.confirm(a, 0.0)
    assert not ct.confirm(b, 0.0)
    assert ct.counters["insert_failed"] == 1


def test_tcp_state_table_shape():
    assert len(ct_tcp.TRANSITIONS) == 2
    for direction in ct_tcp.TRANSITIONS:
        assert len(direction) == 6 and all(len(row) == 10 for row in direction)


def test_unconfirmed_entries_are_bounded_and_replaced():
    ct = Conntrack(max_unconfirmed=4)
    freed = []
    ct.destroy_hooks.append(freed.append)
    first = ct.track(udp(C, S, 1, 2), 0.0)[0]
    again = ct.track(udp(C, S, 1, 2), 0.1)[0]  # the first packet was dropped, here is another
    assert freed == [first] and again is not first
    for port in range(10, 20):
        ct.track(udp(C, S, port, 2), 0.2)
    assert len(ct._unconfirmed) == 4 and len(freed) == 8


def test_sack_beyond_sent_data_is_invalid():
    ct = Conntrack()
    f = Flow(ct, opts=b"\x01\x01\x04\x02")  # the client accepts SACK blocks
    f.s(SYN | ACK, options=b"\x01\x01\x04\x02")
    f.c(ACK)
    f.c(ACK, b"a" * 100)
    f.s(ACK)
    sack_block = (f.cseq + 500).to_bytes(4, "big")
    bad = b"\x01\x01\x05\x0a" + (f.cseq + 400).to_bytes(4, "big") + sack_block
    assert f.s(ACK, options=bad)[2] == CT_INVALID
    good = b"\x01\x01\x05\x0a" + (f.cseq - 50).to_bytes(4, "big") + f.cseq.to_bytes(4, "big")
    assert f.s(ACK, options=good)[2] == CT_ESTABLISHED


def test_synack_that_does_not_ack_the_syn_is_invalid():
    ct = Conntrack()
    f = Flow(ct)
    assert ct.track(tcp(S, C, 80, 40000, 5000, 77777, SYN | ACK), 0.1)[2] == CT_INVALID
    assert state(f.entry) == "SYN_SENT"
    assert f.s(SYN | ACK, options=WS7)[2] == CT_ESTABLISHED


def test_timer_heap_is_rebuilt_when_stale_items_pile_up():
    ct = Conntrack(timeouts=Timeouts.linux())
    flows = []
    for port in range(600):
        e, _, _ = ct.track(udp(C, S, port, 9), 0.0)
        ct.confirm(e, 0.0)
        flows.append(e)
    for e in flows:
        ct.delete(e)  # leaves 600 stale heap items behind
    for port in range(600, 2000):
        e, _, _ = ct.track(udp(C, S, port, 9), 0.0)
        ct.confirm(e, 0.0)
        ct.delete(e)
    ct.poll(1.0)
    assert len(ct._heap) == 0 and len(ct) == 0
