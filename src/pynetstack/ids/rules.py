"""The Suricata rule language: lexer, header, options, and loading with Suricata's statistics.

    action proto src_addr src_port -> dst_addr dst_port (keyword:value; keyword; ...)

A rule that needs a keyword this engine lacks is skipped and counted under that keyword; a rule
that cannot be read raises (or, when loading a file, is counted as failed) naming file and line."""

from __future__ import annotations

from collections import Counter
from typing import Dict, Iterable, List, Optional, Tuple

from . import addresses
from .addresses import HeaderError

ACTIONS = ("alert", "pass", "drop", "reject", "rejectsrc", "rejectdst", "rejectboth")
IP_PROTOCOLS = {"ip": None, "pkthdr": None, "tcp": 6, "udp": 17, "icmp": 1, "tcp-pkt": 6, "tcp-stream": 6}
# app-layer protocols in the header: DNS is inspected (dns.query); the others need parsers we lack
APP_PROTOCOLS = {"dns": 17, "http": 6, "http1": 6}


class RuleError(ValueError):
    """A rule that cannot be read; the message names the source and line."""

    def __init__(self, message: str, source: str = "", line: int = 0):
        where = f"{source}:{line}: " if source else ""
        super().__init__(where + message)
        self.source = source
        self.line = line


class Unsupported(Exception):
    """A keyword (or protocol) this engine does not implement: the rule is skipped, counted."""

    def __init__(self, keyword: str):
        super().__init__(keyword)
        self.keyword = keyword


class Rule:
    __slots__ = ("action", "proto", "app", "src", "sport", "dst", "dport", "bidirectional", "sid", "gid",
                 "rev", "msg", "classtype", "category", "severity", "priority", "references", "metadata",
                 "items", "buffers", "fast", "checks", "flow", "flowbits", "noalert", "threshold",
                 "detection_filter", "source", "line", "text", "order", "stream_ok", "packet_ok", "http_side", "last_content",
                 "addr_negated")

    def __init__(self):
        self.action = "alert"
        self.proto: Optional[int] = None
        self.app: Optional[str] = None
        self.src = self.sport = self.dst = self.dport = None
        self.bidirectional = False
        self.sid = 0
        self.gid = 1
        self.rev = 0
        self.msg = ""
        self.classtype = ""
        self.category = ""
        self.severity = 3
        self.priority: Optional[int] = None
        self.references: List[str] = []
        self.metadata: List[str] = []
        self.items: List = []  # payload matchers in rule order (content, pcre, byte_test, isdataat)
        self.buffers: Dict[str, List] = {}  # sticky buffer (dns.query, tcp.hdr, ...) -> its matchers
        self.fast: Optional[Tuple[str, bytes]] = None  # (buffer, lower-case pattern) for the prefilter
        self.checks: List = []  # header tests: callables (packet) -> bool
        self.flow: Dict[str, bool] = {}
        self.flowbits: List[Tuple[str, Tuple[str, ...]]] = []
        self.noalert = False
        self.threshold = None
        self.detection_filter = None
        self.source = ""
        self.line = 0
        self.text = ""
        self.order = 0
        self.stream_ok = True  # may match on the reassembled stream
        self.packet_ok = True  # may match on a single packet's payload
        self.last_content = None  # while parsing: the content that modifiers apply to
        self.addr_negated = False  # an address negates something: never an IP-only rule
        self.http_side = 0  # an HTTP rule is judged when the request (0) or the response (1) is complete

    def __repr__(self):
        return f"<Rule {self.gid}:{self.sid}:{self.rev} {self.msg!r}>"


def split_options(body: str, source: str, line: int) -> List[Tuple[str, Optional[str]]]:
    """'msg:"a\\;b"; nocase; sid:1;' -> [('msg', '"a\\;b"'), ('nocase', None), ('sid', '1')].
    Options end at a ';' that no backslash escapes, as Suricata reads them."""
    out: List[Tuple[str, Optional[str]]] = []
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        j = i
        escaped = False
        while j < n:
            ch = body[j]
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == ";":
                break
            j += 1
        if j >= n:
            raise RuleError(f"option {body[i:].strip()!r} does not end with ';'", source, line)
        part = body[i:j]
        name, colon, value = part.partition(":")
        name = name.strip()
        if not name or not all(c.isalnum() or c in "_.-" for c in name):
            raise RuleError(f"bad option name {name!r}", source, line)
        out.append((name.lower(), value.strip() if colon else None))
        i = j + 1
    return out


def _header_tokens(head: str) -> List[str]:
    tokens, depth, cur = [], 0, []
    for ch in head:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch in " \t" and depth == 0:
            if cur:
                tokens.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        tokens.append("".join(cur))
    if depth:
        raise ValueError("unbalanced '[' in the header")
    return tokens


def parse_rule(text: str, source: str = "", line: int = 0, variables=None, classes=None) -> Rule:
    """One rule from its text; raises RuleError (malformed) or Unsupported(keyword)."""
    from .options import apply_options

    text = text.strip()
    open_at = text.find("(")
    if open_at < 0 or not text.endswith(")"):
        raise RuleError("a rule is 'action proto src sport -> dst dport (options)': no '(...)'", source, line)
    try:
        tokens = _header_tokens(text[:open_at])
    except ValueError as exc:
        raise RuleError(str(exc), source, line) from None
    if len(tokens) != 7:
        raise RuleError(f"the header has {len(tokens)} fields, not 7 (action proto src sport dir dst dport)",
                        source, line)
    action, proto, src, sport, direction, dst, dport = tokens
    rule = Rule()
    rule.source, rule.line, rule.text = source, line, text
    if action not in ACTIONS:
        raise RuleError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})", source, line)
    rule.action = action
    proto = proto.lower()
    if proto in IP_PROTOCOLS:
        rule.proto = IP_PROTOCOLS[proto]
        if proto == "tcp-pkt":
            rule.stream_ok = False
        elif proto == "tcp-stream":
            rule.packet_ok = False
    elif proto in APP_PROTOCOLS:
        rule.proto = APP_PROTOCOLS[proto]
        rule.app = "http" if proto == "http1" else proto
    elif ":" in proto and proto.split(":")[0].replace("-", "").isalnum():
        raise Unsupported(f"protocol hook {proto}")  # app-layer state hooks (dns:request_complete)
    elif proto.isalnum() or "-" in proto:
        raise Unsupported(f"protocol {proto}")
    else:
        raise RuleError(f"bad protocol {proto!r}", source, line)
    if direction not in ("->", "<>"):
        raise RuleError(f"bad direction {direction!r} (-> or <>)", source, line)
    rule.bidirectional = direction == "<>"
    avars, pvars = variables if variables else (None, None)
    try:
        rule.src = addresses.parse_addresses(src, avars)
        rule.dst = addresses.parse_addresses(dst, avars)
        rule.sport = addresses.parse_ports(sport, pvars)
        rule.dport = addresses.parse_ports(dport, pvars)
        rule.addr_negated = addresses.mentions_negation(src, avars) or addresses.mentions_negation(dst, avars)
    except HeaderError as exc:
        raise RuleError(str(exc), source, line) from None
    options = split_options(text[open_at + 1:-1], source, line)
    try:
        apply_options(rule, options, classes)
    except (ValueError, IndexError) as exc:
        if isinstance(exc, RuleError):
            raise
        raise RuleError(str(exc), source, line) from None
    if not rule.sid:
        raise RuleError("no sid", source, line)
    return rule


class Ruleset:
    """The loaded rules and Suricata's rule-loading statistics: loaded, failed (malformed,
    with file and line), skipped (per unsupported keyword)."""

    def __init__(self):
        self.rules: List[Rule] = []
        self.files = 0
        self.failed: List[str] = []  # "file:line: message"
        self.skipped: Counter = Counter()  # keyword -> rules skipped for it
        self.duplicates = 0
        self._sids: Dict[Tuple[int, int], Rule] = {}

    @property
    def loaded(self) -> int:
        return len(self.rules)

    def add(self, rule: Rule) -> None:
        key = (rule.gid, rule.sid)
        old = self._sids.get(key)
        if old is not None:  # Suricata keeps the higher revision
            self.duplicates += 1
            if rule.rev <= old.rev:
                return
            self.rules.remove(old)
        rule.order = len(self.rules)
        self._sids[key] = rule
        self.rules.append(rule)

    def stats(self) -> dict:
        return {"rules_loaded": self.loaded, "rules_failed": len(self.failed),
                "rules_skipped": sum(self.skipped.values()), "skipped_by_keyword": dict(self.skipped.most_common()),
                "duplicates": self.duplicates, "files": self.files}

    def summary(self) -> str:
        lines = [f"{self.files} rule files processed. {self.loaded} rules successfully loaded, "
                 f"{len(self.failed)} rules failed, {sum(self.skipped.values())} rules skipped (unsupported keyword)"]
        for keyword, count in self.skipped.most_common():
            lines.append(f"  skipped {count:6d}  {keyword}")
        lines.extend(f"  failed: {message}" for message in self.failed[:20])
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more failed rules")
        return "\n".join(lines)


def logical_lines(text: str) -> Iterable[Tuple[int, str]]:
    """(first line number, rule text): comments and blank lines dropped, '\\' continuations joined."""
    pending, first = [], 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            first = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        yield first, " ".join(pending)
        pending = []
    if pending:
        yield first, " ".join(pending)


def load_rules(text: str, source: str = "rules", ruleset: Optional[Ruleset] = None, strict: bool = False,
               variables=None, classes=None) -> Ruleset:
    """Load every rule of ``text`` into ``ruleset`` (a new one by default). With ``strict``, the
    first malformed rule raises RuleError; otherwise it is counted in ``ruleset.failed``."""
    ruleset = ruleset if ruleset is not None else Ruleset()
    ruleset.files += 1
    for number, line in logical_lines(text):
        try:
            ruleset.add(parse_rule(line, source, number, variables, classes))
        except Unsupported as exc:
            ruleset.skipped[exc.keyword] += 1
        except RuleError as exc:
            if strict:
                raise
            ruleset.failed.append(str(exc))
    return ruleset


def load_rule_files(paths: Iterable[str], strict: bool = False, variables=None, classes=None) -> Ruleset:
    ruleset = Ruleset()
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            raise RuleError(f"cannot read {path}: {exc.strerror}") from None
        load_rules(text, path, ruleset, strict, variables, classes)
    return ruleset
