"""The detection engine: a packet in, alerts out.

Per packet, as Suricata runs its detection: decode, find the flow and its direction, follow TCP
into the stream; then the IP-only rules (first packet of each flow direction only), the packet
rules (those whose fast pattern the prefilter finds, and those without one), and the HTTP
transaction rules, each set in the rules' evaluation order (ids/order.py), flowbits taking
effect as rules match. The matches are then finalised in that order: a pass rule ends the list,
drop rules drop (inline), a pass or drop of a kind that acts on flows ends the flow's inspection,
thresholds decide what is logged. GRE tunnels are decapsulated and their inner packet inspected.
Content on TCP flows whose handshake was seen is matched on the reassembled stream (once per
rule and direction), falling back to the packet's payload when the packet's bytes did not go
into the stream; otherwise, and past the stream depth, on the packet's payload."""

from __future__ import annotations

from typing import Dict, List, Optional

from ..wire.errors import MalformedPacket
from ..wire.ipv4 import IPv4
from .addresses import contains
from .content import Content, match_items
from .flow import TCP_ESTABLISHED, TCP_SYN, TCP_SYNACK, FlowTable
from .http import LINE_BUFFERS, HttpParser, looks_like_http
from .order import DEFAULT_ACTION_ORDER, acts_on_flow, evaluation_order, is_app_packet_rule, is_ip_only
from .packet import Packet, decode, gre_inner, header_buffer, tcp_fast_open
from .prefilter import Prefilter
from .rules import Rule, Ruleset
from .thresholds import Thresholds

BLOCKING = ("drop", "reject", "rejectsrc", "rejectdst", "rejectboth")
MAX_ALERTS_PER_PACKET = 15  # Suricata's packet-alert-max
MAX_TUNNEL_DEPTH = 3  # GRE inside GRE: decapsulated this many times at most


class Alert:
    """A rule (or a detector) fired on a packet. ``action`` is EVE's: allowed or blocked."""

    __slots__ = ("rule", "packet", "flow", "direction", "action", "extra", "app", "tx")

    def __init__(self, rule: Rule, packet: Packet, flow, direction: int, action: str, extra=None, app=None,
                 tx=None):
        self.app = app  # the app-layer record for EVE (the HTTP transaction's fields)
        self.tx = tx  # the HTTP transaction the alert is on (EVE's X-Forwarded-For handling reads it)
        self.rule = rule
        self.packet = packet
        self.flow = flow
        self.direction = direction
        self.action = action
        self.extra = extra  # detector details (scan type, metric, baseline) for the EVE record

    def __repr__(self):
        return f"<Alert {self.rule.gid}:{self.rule.sid} {self.rule.msg!r} {self.action}>"


class _Group:
    """The rules that can match one IP protocol, with their prefilters."""

    def __init__(self, rules: List[Rule], rank: Dict[int, int]):
        rules = sorted(rules, key=lambda r: rank[id(r)])
        self.rank = rank
        self.always = [r for r in rules if r.fast is None]
        table: Dict[str, Dict[bytes, list]] = {"payload": {}, "dns.query": {}, "http.raw": {}}
        for r in rules:
            if r.fast is not None:
                table.setdefault(r.fast[0], {}).setdefault(r.fast[1], []).append(r)
        self.payload = Prefilter(table["payload"])
        self.dns = Prefilter(table["dns.query"])
        # HTTP: one prefilter per buffer (a pattern is looked for only where its rule looks)
        self.http = {name[5:]: Prefilter(t) for name, t in table.items() if name.startswith("http:")}
        self.http_raw = Prefilter(table["http.raw"])  # HTTP rules with raw content only: the message's bytes
        self.count = len(rules)
        self.packet_only = any(not r.stream_ok for r in rules)  # tcp-pkt rules: payloads even on streams
        # rules with a content at an absolute place (depth, offset) are tried on the packet's own
        # payload too when the stream does not match (Suricata gives them both flags)
        self.packet_too = {id(r) for r in rules if r.stream_ok and r.packet_ok and any(
            isinstance(i, Content) and not i.relative and (i.depth is not None or i.offset) for i in r.items)}


class Detector:
    """Signature engine plus optional detectors (scan, flood, baseline: objects with
    ``observe(packet, flow, direction, now) -> list of Alert`` and ``poll(now) -> list``).
    ``action_order``: suricata.yaml's action-order (default pass, drop, reject, alert)."""

    def __init__(self, ruleset: Optional[Ruleset] = None, inline: bool = False, stream_depth: int = 1 << 16,
                 max_flows: int = 65536, flow_timeout: float = 120.0, detectors=(), midstream: bool = False,
                 action_order=DEFAULT_ACTION_ORDER):
        # stream_depth: Suricata keeps 1 MiB; each new segment re-reads the held bytes, so the cost
        # of a flow grows with the square of this bound: 64 KiB by default here
        self.ruleset = ruleset if ruleset is not None else Ruleset()
        self.inline = inline
        self.flows = FlowTable(max_flows, flow_timeout, stream_depth, midstream)
        self.thresholds = Thresholds()
        self.detectors = list(detectors)
        ordered = evaluation_order(self.ruleset.rules, action_order)
        rank = self.rank = {id(r): i for i, r in enumerate(ordered)}
        self.ip_only = [r for r in ordered if is_ip_only(r)]
        rules = [r for r in ordered if (r.app != "http" or is_app_packet_rule(r)) and not is_ip_only(r)]
        http_rules = [r for r in ordered if r.app == "http" and not is_app_packet_rule(r)]
        self.http = _Group(http_rules, rank) if http_rules else None
        self.groups = {proto: _Group([r for r in rules if r.proto in (proto, None)], rank) for proto in (1, 6, 17)}
        self.other = _Group([r for r in rules if r.proto is None], rank)
        self.packets = 0
        self.alerts = 0
        self.blocked = 0
        self.undecodable = 0
        self.by_sid: Dict[int, int] = {}
        self.verdict_drop = False  # inline: the last packet inspected is to be dropped

    # -- inputs --------------------------------------------------------------------------------
    def inspect_ip(self, ip: IPv4, now: float, _depth: int = 0, ct_key=None, ct_dir: int = 0) -> List[Alert]:
        """``ct_key``/``ct_dir``: the conntrack entry's original tuple and the packet's
        direction in it, when conntrack runs (see FlowTable.lookup)."""
        if ip.protocol == 47 and not ip.frag_offset and _depth < MAX_TUNNEL_DEPTH:
            inner = gre_inner(ip.payload)
            if inner is not None:  # a GRE tunnel: the inner packet is what is inspected (its own flow)
                return self.inspect_bytes(inner, now, _depth + 1)
        packet = decode(ip, now)
        if packet is None:
            self.undecodable += 1
            return []
        return self.inspect(packet, now, ct_key, ct_dir)

    def inspect_bytes(self, datagram: bytes, now: float, _depth: int = 0) -> List[Alert]:
        try:
            ip = IPv4.parse(datagram, check=False)
        except MalformedPacket:
            self.undecodable += 1
            return []
        return self.inspect_ip(ip, now, _depth)

    # -- the work ------------------------------------------------------------------------------
    def inspect(self, p: Packet, now: float, ct_key=None, ct_dir: int = 0) -> List[Alert]:
        self.packets += 1
        self.verdict_drop = False
        flow, d = self.flows.lookup(p.proto, p.src, p.sport, p.dst, p.dport, now, ct_key, ct_dir)
        flow.pkts[d] += 1
        flow.bytes[d] += p.length
        if d:
            flow.seen_reply = True
        # flow:established reads the state the flow was in before this packet (the handshake's
        # last ACK is not established), except for an ACK that completes it carrying data
        est = flow.established
        stream = None
        syn_data_outside = False  # a SYN's data that did not go into the stream
        if p.proto == 6:
            before = flow.tcp_state
            fast_open = bool(p.flags & 0x02 and p.payload) and tcp_fast_open(p)
            stream = self.flows.track_tcp(flow, d, p.flags, p.seq, p.payload, fast_open)
            if not est and before == TCP_SYNACK and flow.established and p.payload:
                est = True
            syn_data_outside = bool(p.flags & 0x02 and p.payload) and stream is None
            if flow.app_proto is None and flow.ever_established:
                self._detect_app(p, flow, d)
        alerts: List[Alert] = []
        for detector in self.detectors:
            found = detector.observe(p, flow, d, now)
            if found:
                alerts.extend(found)
        if flow.dropped:  # a drop rule dropped the flow: the rest is not inspected (inline: dropped)
            if self.inline:
                self.verdict_drop = True
                self.blocked += 1
            return self._count(alerts)
        if flow.passed:
            return self._count(alerts)
        matches: List[tuple] = []  # (rank, rule, app record): finalised in rank order
        if self.ip_only and flow.pkts[d] == 1:
            self._ip_only(p, flow, d, matches)
        group = self.groups.get(p.proto, self.other)
        if group.count:
            self._packet_rules(group, p, flow, d, stream, est, syn_data_outside, matches)
        if stream is not None and self.http is not None and flow.http is not False:
            self._http(p, flow, d, stream, est, matches)
        if matches:
            self._finalise(matches, p, flow, d, now, alerts)
        return self._count(alerts)

    def _detect_app(self, p: Packet, flow, d: int) -> None:
        """When Suricata knows the flow speaks HTTP: its app layer reads a side's bytes once the
        other side has acknowledged them (in IDS mode; inline, as they come), and recognises
        HTTP from a request or a response ("HTTP/"), on either side (a flow taken up midstream
        may have its first packet from the server)."""
        for side in (0, 1):
            st = flow.streams[side]
            if st is None or not st.data:
                continue
            if self.inline:
                ready = d == side
            else:
                base = (st.next_seq - len(st.data)) & 0xFFFFFFFF
                ready = d != side and bool(p.flags & 0x10) and 0 < ((p.ack - base) & 0xFFFFFFFF) < 0x80000000
            head = bytes(st.data[:16])
            if ready and (looks_like_http(head) or head.startswith(b"HTTP/")):
                flow.app_proto = "http"
                return

    def _ip_only(self, p: Packet, flow, d: int, matches: List[tuple]) -> None:
        """The IP-only rules, on the first packet of each direction of a flow."""
        rank = self.rank
        for rule in self.ip_only:
            if rule.proto is not None and rule.proto != p.proto or not self._header(rule, p, flow, d, False):
                continue
            if rule.flowbits and not self._flowbits(rule, flow):
                continue
            matches.append((rank[id(rule)], rule, None, True))

    def _packet_rules(self, group: _Group, p: Packet, flow, d: int, stream, est: bool, syn_data_outside: bool,
                      matches: List[tuple]) -> None:
        payload = p.payload
        lower = payload.lower() if payload else b""
        st = flow.streams[d]
        # a tracked stream (data that came with the SYN included) is inspected as a stream, once
        on_stream = st is not None and not (st.full and stream is None) and flow.tcp_state in (
            TCP_SYN, TCP_SYNACK, TCP_ESTABLISHED) and not syn_data_outside
        sbuf = slower = None
        candidates = set(group.always)
        if on_stream:
            if stream is not None:
                sbuf = bytes(stream.data)
                slower = sbuf.lower()
                start = max(0, stream.inspected - 256)  # new bytes, with room for a pattern across the seam
                found = group.payload.candidates(slower[start:]) if len(group.payload) else ()
                # a rule whose fast pattern came in an earlier segment stays a candidate for this
                # stream until it matches: its other contents may arrive later
                stream.rules.update(found)
                candidates.update(stream.rules)
                stream.inspected = len(sbuf)
        if payload and len(group.payload) and (not on_stream or group.packet_only):
            candidates.update(group.payload.candidates(lower))
        if p.dns_query is not None and len(group.dns):
            candidates.update(group.dns.candidates(b"." + p.dns_query.lower()))
        if not candidates:
            return
        rank = group.rank
        for rule in sorted(candidates, key=lambda r: rank[id(r)]):
            if rule.app == "http" and flow.app_proto != "http" or not self._header(rule, p, flow, d, est):
                continue
            streamed = False
            if rule.items:
                if on_stream and rule.stream_ok:
                    if (sbuf is not None and (rule.order, d) not in flow.stream_matched
                            and match_items(rule.items, sbuf, slower)):
                        flow.stream_matched.add((rule.order, d))
                        stream.rules.discard(rule)
                        streamed = True
                    elif not (id(rule) in group.packet_too and payload and match_items(rule.items, payload, lower)):
                        continue
                elif not (rule.packet_ok and payload and match_items(rule.items, payload, lower)):
                    continue
            elif (rule.flow.get("only_stream") and not on_stream) or (rule.flow.get("no_stream") and on_stream):
                continue
            if rule.buffers and not self._buffers(rule, p):
                continue
            if rule.flowbits and not self._flowbits(rule, flow):
                continue
            matches.append((rank[id(rule)], rule, None, acts_on_flow(rule, streamed)))

    def _finalise(self, matches: List[tuple], p: Packet, flow, d: int, now: float, alerts: List[Alert]) -> None:
        """Apply the matched rules in evaluation order, as Suricata finalises a packet's alert
        queue: a pass rule ends it (the rules after it do not alert), a drop rule drops
        (inline), thresholds decide which alerts are logged, at most MAX_ALERTS_PER_PACKET.
        A pass or drop takes the rest of the flow with it when the rule is of a kind that acts
        on flows (order.acts_on_flow)."""
        matches.sort(key=lambda m: m[0])
        blocked = False
        logged = 0
        for _, rule, tx, to_flow in matches:
            if not self.thresholds.allow(rule, p.src, p.dst, now):
                continue
            if rule.action == "pass":
                if to_flow and not flow.dropped:
                    flow.passed = True
                break
            if rule.action in BLOCKING and to_flow and not flow.passed:
                flow.dropped = True  # as Suricata, in IDS mode too: the flow is no longer inspected
            block = self.inline and rule.action in BLOCKING
            if block:  # a drop rule drops even when it does not alert
                blocked = True
            if rule.noalert or logged >= MAX_ALERTS_PER_PACKET:
                continue
            alerts.append(Alert(rule, p, flow, d, "blocked" if block else "allowed",
                                app=tx.eve() if tx is not None else None, tx=tx))
            logged += 1
        if blocked:
            self.blocked += 1
            self.verdict_drop = True

    def _count(self, alerts: List[Alert]) -> List[Alert]:
        if alerts:
            self.alerts += len(alerts)
            by_sid = self.by_sid
            for alert in alerts:
                sid = alert.rule.sid
                by_sid[sid] = by_sid.get(sid, 0) + 1
                if alert.flow is not None:
                    alert.flow.alerts += 1
        return alerts

    @staticmethod
    def _header(rule: Rule, p: Packet, flow, d: int, est: bool) -> bool:
        if rule.app == "dns" and p.dns_query is None:
            return False
        ok = (contains(rule.src, p.src) and contains(rule.dst, p.dst) and contains(rule.sport, p.sport)
              and contains(rule.dport, p.dport))
        if not ok and rule.bidirectional:
            ok = (contains(rule.src, p.dst) and contains(rule.dst, p.src) and contains(rule.sport, p.dport)
                  and contains(rule.dport, p.sport))
        if not ok:
            return False
        fl = rule.flow
        if fl:
            if fl.get("to_server") and d != 0 or fl.get("to_client") and d != 1:
                return False
            if fl.get("established") and not est:
                return False
            if fl.get("not_established") and est:
                return False
        for check in rule.checks:
            if not check(p):
                return False
        return True

    def _http(self, p: Packet, flow, d: int, stream, est: bool, matches: List[tuple]) -> None:
        """Feed the flow's HTTP parser the new stream bytes; judge the HTTP rules on every
        request or response it completes."""
        if flow.http is None:
            client, server = flow.streams
            if client is None or len(client.data) < 16 and b"\n" not in client.data:
                return
            if not looks_like_http(bytes(client.data)):
                # not a request; but an HTTP response to it makes it HTTP still (libhtp reads the
                # bytes as a request line that is not one, not as HTTP/0.9)
                if server is None or len(server.data) < 5:
                    return
                if not bytes(server.data[:5]) == b"HTTP/":
                    flow.http = False
                    return
                flow.http = HttpParser()
                flow.http.junk_request(bytes(client.data))
            else:
                flow.http = HttpParser()
                if d == 1:  # the request came first: read it now
                    self._http_events(flow.http.feed(0, bytes(client.data)), p, flow, d, est, matches)
        data = bytes(stream.data)
        self._http_events(flow.http.feed(d, data, stream.closed or stream.full), p, flow, d, est, matches, data)

    def _http_events(self, events, p: Packet, flow, d: int, est: bool, matches: List[tuple],
                     data: bytes = b"") -> None:
        group = self.http
        rank = group.rank
        for kind, tx in events:
            side = 1 if kind == "response" else 0
            line_only = kind == "request_line"  # the request line alone: rules on its buffers
            candidates = set(group.always)
            for name, prefilter in group.http.items():
                base, _, transform = name.partition("+")
                buf = tx.buffer(base, side)
                if buf:
                    candidates.update(prefilter.candidates(b"." + buf.lower() if transform else buf.lower()))
            if len(group.http_raw):
                message = tx.response if side else tx.request
                raw = message.line + b"\r\n" + message.raw_headers + b"\r\n" + message.body
                candidates.update(group.http_raw.candidates(raw.lower()))
            for rule in sorted(candidates, key=lambda r: rank[id(r)]):
                if rule.http_side != side and rule.http_side != 2 or not self._header(rule, p, flow, d, est):
                    continue
                if line_only and (rule.items or not rule.buffers or
                                  any(name.split("+")[0] not in LINE_BUFFERS for name in rule.buffers)):
                    continue
                if not side and id(rule) in tx.alerted:
                    continue
                if rule.items and not (data and match_items(rule.items, data, data.lower())):
                    continue
                ok = True
                for name, items in rule.buffers.items():
                    base, _, transform = name.partition("+")
                    buf = tx.buffer(base, side) if base.startswith(("http.", "file.")) else None
                    if buf is not None and transform == "dot":
                        buf = b"." + buf
                    if buf is None or not match_items(items, buf, buf.lower()):
                        ok = False
                        break
                if not ok or (rule.flowbits and not self._flowbits(rule, flow)):
                    continue
                if line_only:
                    tx.alerted.add(id(rule))
                matches.append((rank[id(rule)], rule, tx, True))

    @staticmethod
    def _buffers(rule: Rule, p: Packet) -> bool:
        for name, items in rule.buffers.items():
            if name.startswith("dns.query"):
                if p.dns_query is None or p.dns_qr != 0:
                    return False
                buf = b"." + p.dns_query if name.endswith("+dot") else p.dns_query
            else:
                buf = header_buffer(p, name)
                if buf is None:
                    return False
            if not match_items(items, buf, buf.lower()):
                return False
        return True

    @staticmethod
    def _flowbits(rule: Rule, flow) -> bool:
        bits = flow.bits
        for op, names in rule.flowbits:  # conditions first: a failed one changes nothing
            if op == "isset" and not all(n in bits for n in names):
                return False
            if op == "isnotset" and any(n in bits for n in names):
                return False
            if op == "isset_any" and not any(n in bits for n in names):
                return False
            if op == "isnotset_any" and all(n in bits for n in names):
                return False
        for op, names in rule.flowbits:
            if op == "set":
                bits.update(names)
            elif op == "unset":
                bits.difference_update(names)
            elif op == "toggle":
                bits.symmetric_difference_update(names)
        return True

    # -- timers and counters -------------------------------------------------------------------
    def poll(self, now: float) -> List[Alert]:
        self.flows.expire(now)
        alerts: List[Alert] = []
        for detector in self.detectors:
            found = detector.poll(now)
            if found:
                alerts.extend(found)
        return self._count(alerts)

    def stats(self) -> dict:
        return {"packets": self.packets, "alerts": self.alerts, "blocked": self.blocked,
                "undecodable": self.undecodable, "flows": len(self.flows.flows), "flows_evicted": self.flows.evicted,
                "flows_expired": self.flows.expired, "threshold_suppressed": self.thresholds.suppressed,
                "rules_loaded": self.ruleset.loaded}
