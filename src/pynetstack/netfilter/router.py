"""The router's network functions on the packet path: connection tracking, NAT, an nft ruleset.

    router = install_router(stack, ruleset_path="rules.nft")      # or ruleset_text=..., or neither
    print(router.conntrack_list())                                   # like conntrack -L
    router.apply("new.nft")                                          # like nft -f, atomically

Where each stage sits follows Linux: conntrack at -200 on PREROUTING and OUTPUT, and its
confirmation after every other stage on INPUT and POSTROUTING (a packet dropped on the way
leaves no entry); NAT at -100 (destination, on PREROUTING and OUTPUT) and 100 (source, on
POSTROUTING and INPUT), where the ruleset's nat chains are asked once per connection and the
binding applies to every later packet of it, in both directions; each filter chain of the
ruleset at its own hook and priority.
"""

from __future__ import annotations

import re
from typing import List, Optional

from ..net import hooks as hk
from ..net.drops import DropReason
from . import nft
from .classifier import Classifier
from .conntrack import S_CONFIRMED, S_DST_NAT, S_DYING, S_SEEN_REPLY, S_SRC_NAT, Conntrack, Timeouts
from .ct_tcp import ESTABLISHED as TCP_ESTABLISHED
from .ct_tcp import F_BE_LIBERAL, TcpTrack
from .ct_list import format_tuple
from .nat import Nat
from .nft.carry import carry_state
from .nft.evaluate import TraceMonitor, evaluate_chain
from .nft.parser import Loader, read_file
from .types import CT_ESTABLISHED, CT_NEW, MASQUERADE, REDIRECT

NAT_HOOKS = ((hk.PREROUTING, hk.PRIORITY_DSTNAT), (hk.OUTPUT, hk.PRIORITY_DSTNAT),
             (hk.POSTROUTING, hk.PRIORITY_SRCNAT), (hk.INPUT, hk.PRIORITY_SRCNAT))
_NAT_BITS = S_SRC_NAT | S_DST_NAT
_TCP_CLOSING = 0x01 | 0x04  # FIN, RST


class ConntrackFunction(hk.NetworkFunction):
    """Connection tracking: every packet gets its entry, direction and state in the context."""

    name = "conntrack"

    def __init__(self, conntrack: Conntrack, flowtable=None):
        self.ct = conntrack
        self.flowtable = flowtable

    def stages(self):
        return [(hk.PREROUTING, hk.PRIORITY_CONNTRACK, self.track, "conntrack"),
                (hk.OUTPUT, hk.PRIORITY_CONNTRACK, self.track, "conntrack"),
                (hk.INPUT, hk.PRIORITY_CONFIRM, self.confirm, "conntrack confirm"),
                (hk.POSTROUTING, hk.PRIORITY_CONFIRM, self.confirm, "conntrack confirm")]

    def track(self, ctx: hk.PacketContext) -> str:
        if ctx.ct is not None:  # the packet was tracked already (a locally generated reply)
            return hk.ACCEPT
        entry, direction, state = self.ct.track(ctx.ip, ctx.now, ctx.hook == hk.PREROUTING)
        if entry is None and self.ct.refused:
            return ctx.drop(self.ct.refused)  # the table is full and nothing could be dropped early
        if entry is not None and ctx.tcp_flags & _TCP_CLOSING and self.flowtable is not None:
            self.flowtable.teardown(entry.original, entry.reply)  # the rest of the close takes the full path
        ctx.ct, ctx.ct_dir, ctx.ct_state = entry, direction, state
        if ctx.trace is not None:
            ctx.note(f"conntrack: {state}" + (f", {'reply' if direction else 'original'} direction of entry "
                                             f"{entry.id}" if entry is not None else ""))
        return hk.ACCEPT

    def confirm(self, ctx: hk.PacketContext) -> str:
        entry = ctx.ct
        if entry is None:
            return hk.ACCEPT
        status = entry.status
        if not status & S_CONFIRMED:
            if not self.ct.confirm(entry, ctx.now):
                return ctx.drop(DropReason.CT_INSERT_FAILED)
        elif ctx.ct_state == CT_ESTABLISHED and status & S_SEEN_REPLY and ctx.proto in (6, 17):
            if ctx.proto == 17:
                ctx.offload = True  # the flow table may take the rest of this direction
            elif entry.tcp_state == "ESTABLISHED":
                # Segments the flow table sends past conntrack leave its window data behind: as
                # Linux does when it offloads a flow, stop checking windows for this connection.
                for side in entry.proto_state.seen:
                    side.flags |= F_BE_LIBERAL
                ctx.offload = True
        return hk.ACCEPT

    # the flow table's view of an entry
    def alive(self, entry, now: float) -> bool:
        """An offloaded flow ends with its entry, and a TCP one when it leaves ESTABLISHED (its
        FIN or RST took the full path: Linux tears the offload down the same way)."""
        if entry.status & S_DYING or entry.deadline <= now:
            return False
        track = entry.proto_state
        return track.__class__ is not TcpTrack or track.state == TCP_ESTABLISHED

    def refresh(self, entry, nbytes: int, now: float) -> None:
        """A packet of an offloaded flow passed: keep the entry alive as conntrack would."""
        timeouts = self.ct.timeouts
        timeout = timeouts.tcp_established if entry.original[0] == 6 else timeouts.udp_stream
        deadline = now + timeout
        if deadline > entry.deadline:
            entry.deadline = deadline  # the timer heap reschedules lazily

    def poll(self, now: float) -> None:
        self.ct.poll(now)

    def next_deadline(self) -> Optional[float]:
        return self.ct.next_deadline()

    def stats(self) -> dict:
        return self.ct.stats()


class RulesetFunction(hk.NetworkFunction):
    """An nft ruleset on the packet path: each filter chain a stage at its hook and priority, the
    nat chains asked by NAT stages at -100 and 100 (once per connection)."""

    name = "nft"

    def __init__(self, ruleset: nft.Ruleset, nat: Optional[Nat] = None, monitor: Optional[TraceMonitor] = None):
        self.ruleset = ruleset
        self.nat = nat
        self.monitor = monitor  # where meta nftrace's lines go (``nft monitor trace``)
        self.nat_chains = {}
        for chain in ruleset.chains():
            if chain.is_base and chain.type == "nat":
                self.nat_chains.setdefault(chain.hook, []).append(chain)
        for chains in self.nat_chains.values():
            chains.sort(key=lambda c: c.priority)  # sorted() is stable: equal priorities keep file order
        self.counters = {"drops": 0, "rejects": 0, "nat-failed": 0}
        # filter chains run compiled (classifier.py): cost flat in the rule count, same semantics
        self.classifier = Classifier(ruleset)

    def stages(self):
        out = []
        for chain in self.ruleset.chains():
            if chain.is_base and chain.type != "nat" and chain.hook in hk.HOOK_NAMES:
                name = f"nft {chain.table.family} {chain.table.name} {chain.name}"
                out.append((chain.hook, chain.priority, self._filter_stage(chain), name))
        if self.nat is not None:
            for hook, priority in NAT_HOOKS:
                out.append((hook, priority, self.nat_stage, f"nat {hook}"))
        return out

    def _filter_stage(self, chain):
        """The stage that runs ``chain`` over the classifier's walks (a closure: a partial of a
        method costs a call more)."""
        walks = self.classifier.walks

        def run_chain(ctx: hk.PacketContext) -> str:
            decision = evaluate_chain(chain, ctx, walks, self.monitor)
            if decision.mark is not None:
                ctx.mark = decision.mark
            verdict = decision.verdict
            if verdict == "accept":
                return hk.ACCEPT
            ctx.drop_reason = _reason(chain, decision)  # every drop counted under its rule or the policy
            if verdict == "reject":
                self.counters["rejects"] += 1
                ctx.reject = decision.reject or ("icmp", 3, 3)
                return hk.REJECT
            self.counters["drops"] += 1
            return hk.DROP
        return run_chain

    def nat_stage(self, ctx: hk.PacketContext) -> str:
        entry = ctx.ct
        if entry is None:
            return hk.ACCEPT
        hook = ctx.hook
        if ctx.ct_state == CT_NEW and not entry.status & S_CONFIRMED:
            verdict = self._bind(ctx, entry, hook)
            if verdict != hk.ACCEPT:
                return verdict
        if entry.status & _NAT_BITS:
            ctx.ip = self.nat.translate(ctx.ip, entry, ctx.ct_dir, hook)
            ctx.refresh()
        return hk.ACCEPT

    def _bind(self, ctx: hk.PacketContext, entry, hook: str) -> str:
        """The first packet of a connection: ask the nat chains of this hook for a binding."""
        if hook == hk.PREROUTING:
            self.nat.inbound(ctx.ip, ctx.now, entry)  # endpoint-independent filtering, if chosen
        for chain in self.nat_chains.get(hook, ()):
            decision = evaluate_chain(chain, ctx, monitor=self.monitor)
            if decision.verdict != "accept":
                ctx.drop_reason = _reason(chain, decision)
                return hk.DROP
            spec = decision.nat
            if spec is None:
                continue
            address = None
            if spec.kind == MASQUERADE and ctx.out_iface is not None:
                route = ctx.route
                address = ctx.out_iface.address_for(route.next_hop if route is not None else ctx.ip.dst)
            elif spec.kind == REDIRECT:
                iface = ctx.in_iface if ctx.in_iface is not None else ctx.out_iface
                address = iface.address_for(ctx.ip.src) if iface is not None else None
            if (spec.kind == MASQUERADE or spec.kind == REDIRECT) and address is None:
                continue  # no address to use: as Linux, the rule does nothing
            if not self.nat.setup(entry, spec, ctx.now, address):
                # RFC 5508 / RFC 4787: no mapping could be made; say so with ICMP 3/13
                self.counters["nat-failed"] += 1
                ctx.drop_reason = DropReason.NAT_NO_MAPPING
                return ctx.reject_with_icmp(3, 13)
            if ctx.trace is not None:
                ctx.note(f"nat: {spec.kind} binding, reply tuple now {format_tuple(entry.reply)}")
            break
        return hk.ACCEPT

    def stats(self) -> dict:
        out = dict(self.counters)
        out.update({f"classifier-{key}": value for key, value in self.classifier.stats().items()})
        if self.nat is not None:
            out.update({f"nat-{key}": value for key, value in self.nat.stats().items()})
        return out


def _reason(chain, decision) -> str:
    """The drop reason of a chain's verdict: the rule that made it (by its chain and handle), or the
    base chain's policy."""
    rule = decision.rule
    if rule is None:
        return f"nft-{chain.table.name}-{chain.name}-policy"
    return f"nft-{chain.table.name}-{decision.chain.name}-rule-{rule.handle}"


class Router:
    """Conntrack, NAT and a ruleset as installed on one stack.  The ruleset comes from nft files
    and text (``sources``); the helpers ``masquerade``, ``snat`` and ``port_forward`` add nft
    commands to it, so ``nft list ruleset`` shows exactly what runs."""

    def __init__(self, stack, conntrack: Conntrack, nat: Nat, ruleset: Optional[nft.Ruleset],
                 flowtable: Optional[bool], sources: Optional[list] = None):
        self.stack = stack
        self.sources = list(sources or [])  # ("file", path, text) or ("text", commands), in load order
        self.conntrack = conntrack
        self.nat = nat
        self.ct_function = ConntrackFunction(conntrack, stack.host.flowtable)
        self.ruleset_function: Optional[RulesetFunction] = None
        self._from_sources = False  # whether the running ruleset is what ``sources`` build
        self.trace_monitor = TraceMonitor()  # kept across ruleset reloads, as its listeners are
        host = stack.host
        host.address_listeners.append(lambda iface, address: nat.address_changed(address))
        stack.register(self.ct_function)
        host.flowtable.ct_alive = self.ct_function.alive
        host.flowtable.ct_refresh = self.ct_function.refresh
        self.flowtable_mode = flowtable  # True, False, or None: on while no filter chain judges forwarding
        self._flow_capacity = host.flowtable.max_flows or 65536
        self.replace_ruleset(ruleset or nft.loads(""))
        self._from_sources = bool(sources) or ruleset is None  # else: shares no handles with a rebuild

    @property
    def ruleset(self) -> nft.Ruleset:
        return self.ruleset_function.ruleset

    def replace_ruleset(self, ruleset: nft.Ruleset, keep_state: bool = False) -> None:
        """Swap the whole ruleset at once: packets see the old or the new.  ``keep_state``: the
        new one was built from the old one's sources and more, and its surviving rules and sets
        take over the old ones' counters, limits and elements (nft/carry.py), as ``nft -f`` keeps
        them; otherwise everything starts from zero."""
        new = RulesetFunction(ruleset, self.nat, self.trace_monitor)
        stack = self.stack
        with stack.lock:
            if keep_state and self._from_sources and self.ruleset_function is not None:
                carry_state(self.ruleset_function.ruleset, ruleset)  # under the lock: no packet counted twice or lost
            self._from_sources = keep_state  # (_rebuild sets it again: its rulesets come from ``sources``)
            if self.ruleset_function is not None:
                stack.host.hooks.unregister(self.ruleset_function)
            stack.host.register(new)
            flows = stack.host.flowtable
            flows.flush()
            flows.max_flows = self._flow_capacity if self._offload_allowed(ruleset) else 0
            self.ruleset_function = new
        stack.wake()

    def _offload_allowed(self, ruleset: nft.Ruleset) -> bool:
        """Whether established forwarded flows may skip the hooks.  Linux offloads a flow only when
        the ruleset says so (a flowtable and ``flow add``), because a filter chain may judge every
        packet (lengths, limits, counters); so by default ("auto") the flow table runs only while no
        filter chain sits on a forwarding hook, and an explicit True or False decides otherwise."""
        if self.flowtable_mode is not None:
            return self.flowtable_mode
        return not any(chain.is_base and chain.type != "nat" and chain.hook in (hk.PREROUTING, hk.FORWARD,
                                                                                  hk.POSTROUTING)
                       for chain in ruleset.chains())

    def load(self, path: Optional[str] = None, text: Optional[str] = None) -> None:
        """Replace the whole ruleset with a file or text (as ``flush ruleset`` and then the file:
        everything starts from zero); on error the old one stays."""
        self._rebuild([_file_source(path)] if path is not None else [("text", text or "")], keep_state=False)

    def apply(self, path: str) -> None:
        """``nft -f FILE``, as Linux does it: the file's commands are applied to the running ruleset
        in one transaction (a ``flush ruleset`` in it empties the ruleset first; a table declared
        again gains the file's chains and rules); on error nothing changes.  What the file leaves
        alone keeps its state, as in the kernel: rules their counters, limits, quotas and ``ct count``
        connections, named sets and meters the elements rules added (with their expiry times);
        what it flushes starts again from zero."""
        source = _file_source(path)
        if _FLUSH_RULESET.search(source[2]):
            self._rebuild([source], keep_state=False)
        else:
            self._rebuild(self.sources + [source])

    def add_commands(self, commands: str) -> None:
        """Add nft commands (``add rule ip nat post ...``) to the ruleset, as another ``nft -f``."""
        self._rebuild(self.sources + [("text", commands)])

    def _rebuild(self, sources: list, keep_state: bool = True) -> None:
        """The ruleset of ``sources``, swapped in at once; on an error nothing changes.
        ``keep_state``: ``sources`` extend the running ones, whose objects keep their state."""
        self.replace_ruleset(_build(sources), keep_state)
        self.sources = sources
        self._from_sources = True  # the running ruleset is what ``sources`` build: handles match a rebuild

    def _nat_chains(self) -> str:
        return ("add table ip nat\n"
                "add chain ip nat prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
                "add chain ip nat postrouting { type nat hook postrouting priority srcnat; policy accept; }\n")

    def masquerade(self, source: str, out_interface: str) -> None:
        """``ip saddr SOURCE oifname OUT masquerade``: SOURCE leaves as OUT's address."""
        self.add_commands(self._nat_chains() + f'add rule ip nat postrouting ip saddr {source} '
                          f'oifname "{out_interface}" masquerade\n')

    def snat(self, source: str, to: str, out_interface: str) -> None:
        """``ip saddr SOURCE oifname OUT snat to TO``: SOURCE leaves as TO (an address or a range)."""
        self.add_commands(self._nat_chains() + f'add rule ip nat postrouting ip saddr {source} '
                          f'oifname "{out_interface}" snat to {to}\n')

    def port_forward(self, port: int, to_address: str, to_port: int, protocol: str = "tcp",
                     in_interface: Optional[str] = None, source: Optional[str] = None) -> None:
        """``[iifname IN] [ip saddr SOURCE] PROTO dport PORT dnat to TO:TO_PORT``."""
        match = (f'iifname "{in_interface}" ' if in_interface else "") + (f"ip saddr {source} " if source else "")
        self.add_commands(self._nat_chains() + f"add rule ip nat prerouting {match}{protocol} dport {port} "
                          f"dnat to {to_address}:{to_port}\n")

    def conntrack_list(self) -> List[str]:
        now = self.stack.now()
        with self.stack.lock:
            return [self.conntrack.format_entry(entry, now) for entry in self.conntrack.entries()]


def _build(sources) -> nft.Ruleset:
    """The ruleset of ``sources`` applied in order: ("file", path, text) or ("text", commands)."""
    loader = Loader(nft.Ruleset())
    for source in sources:
        if source[0] == "file":
            loader.include(source[1], None, source[1], source[2])
        else:
            loader.load_text(source[1], "<commands>")
    return loader.finish()


_FLUSH_RULESET = re.compile(r"^\s*flush\s+ruleset\s*(;|#.*)?$", re.MULTILINE)


def _file_source(path: str) -> tuple:
    return ("file", path, read_file(path))


def install_router(stack, ruleset: Optional[nft.Ruleset] = None, ruleset_text: Optional[str] = None,
                   ruleset_path: Optional[str] = None, max_entries: int = 65536, timeouts=None,
                   liberal: bool = False, nat_filtering: str = "address-and-port", flowtable: Optional[bool] = None,
                   loose: bool = False, checksum: bool = True) -> Router:
    """Put conntrack, NAT and an nft ruleset (a Ruleset, its text, or a file) on ``stack``.
    ``loose``: pick up TCP connections from a mid-stream ACK (Linux's nf_conntrack_tcp_loose,
    1 by default there); ``checksum``: a packet arriving with a bad TCP, UDP or ICMP checksum is
    invalid (Linux's nf_conntrack_checksum, 1 by default)."""
    sources = []
    if ruleset is None and ruleset_text is not None:
        sources = [("text", ruleset_text)]
    elif ruleset is None and ruleset_path is not None:
        sources = [_file_source(ruleset_path)]
    if sources:
        ruleset = _build(sources)
    if timeouts == "linux":
        timeouts = Timeouts.linux()
    conntrack = Conntrack(max_entries=max_entries, timeouts=timeouts, liberal=liberal, loose=loose,
                          checksum=checksum)
    nat = Nat(conntrack, filtering=nat_filtering)
    router = Router(stack, conntrack, nat, ruleset, flowtable, sources)
    stack.router = router
    return router
