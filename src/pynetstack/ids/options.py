"""Rule options: each keyword's value checked and compiled onto the Rule. A keyword that is not
here raises Unsupported(keyword); a bad value raises ValueError (the loader adds file and line)."""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from .classify import DEFAULT_CLASSES
from .content import BufferSize, ByteJump, ByteTest, Content, IsDataAt, compile_pcre
from . import http
from .header_keywords import HEADER_KEYWORDS, compare
from .header_keywords import parse_int as _int
from .rules import Rule, Unsupported

# keywords read and kept for output only, or without effect on an IPv4 engine
_IGNORED = {"target", "rawbytes", "requires"}
_STICKY = {"dns.query": "dns.query", "dns_query": "dns.query", "pkt_data": "payload", "ipv4.hdr": "ipv4.hdr",
           "tcp.hdr": "tcp.hdr", "udp.hdr": "udp.hdr", "icmpv4.hdr": "icmpv4.hdr"}
_BUFFER_PROTO = {"tcp.hdr": 6, "udp.hdr": 17, "icmpv4.hdr": 1}
_STICKY.update({name: name for name in http.BUFFERS})
_STICKY.update({"file_data": "file.data", "http.client_body": "http.request_body"})
# the legacy content modifiers; the other http_* names (http_header_names, http_accept, ...) were
# born sticky buffers
_HTTP_MODIFIERS = {k: http.ALIASES[k] for k in (
    "http_uri", "http_raw_uri", "http_method", "http_header", "http_raw_header", "http_cookie", "http_user_agent",
    "http_host", "http_raw_host", "http_client_body", "http_stat_code", "http_stat_msg", "http_server_body")}
_STICKY.update({k: v for k, v in http.ALIASES.items() if k not in _HTTP_MODIFIERS})


def unquote(value: Optional[str], what: str) -> str:
    if value is None:
        raise ValueError(f"{what} needs a value")
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    elif value.startswith('"') or value.endswith('"') and not value.endswith('\\"'):
        raise ValueError(f"{what}: unbalanced quote in {value!r}")
    return value


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def content_bytes(text: str) -> bytes:
    """'abc|0d 0a|\\"x' -> bytes; hex between pipes, backslash escapes ; " \\ :"""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out += text[i + 1].encode("latin-1")
            i += 2
        elif ch == "|":
            close = text.find("|", i + 1)
            if close < 0:
                raise ValueError(f"content {text!r}: hex part without closing '|'")
            digits = text[i + 1:close].replace(" ", "")
            if len(digits) % 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(f"content {text!r}: bad hex {text[i + 1:close]!r}")
            out += bytes.fromhex(digits)
            i = close + 1
        elif ch == '"':
            raise ValueError(f"content {text!r}: a '\"' inside must be escaped")
        else:
            try:
                out += ch.encode("latin-1")
            except UnicodeEncodeError:
                out += ch.encode("utf-8")
            i += 1
    if not out:
        raise ValueError("content is empty")
    return bytes(out)


_FLOW_WORDS = {"to_server": "to_server", "from_client": "to_server", "to_client": "to_client",
               "from_server": "to_client", "established": "established", "not_established": "not_established",
               "stateless": "stateless", "only_stream": "only_stream", "no_stream": "no_stream",
               "only_frag": None, "no_frag": None}


def _target(rule: Rule, buffer: str) -> list:
    return rule.items if buffer == "payload" else rule.buffers.setdefault(buffer, [])


def _last_content(rule: Rule, what: str) -> Content:
    if rule.last_content is None:
        raise ValueError(f"{what} needs a content before it")
    return rule.last_content


def _track(value: str, what: str) -> str:
    track = value.strip()
    if track not in ("by_src", "by_dst", "by_rule", "by_both"):
        raise ValueError(f"{what}: track {track!r} is not by_src, by_dst, by_rule or by_both")
    return track


def _threshold(value: Optional[str], what: str) -> Dict[str, object]:
    if value is None:
        raise ValueError(f"{what} needs a value")
    spec: Dict[str, object] = {}
    for part in value.split(","):
        key, _, val = part.strip().partition(" ")
        val = val.strip()
        if key == "type":
            if val not in ("limit", "threshold", "both"):
                raise ValueError(f"{what}: type {val!r} is not limit, threshold or both")
            spec["type"] = val
        elif key == "track":
            spec["track"] = _track(val, what)
        elif key == "unique_on":
            raise Unsupported(f"{what}/unique_on")
        elif key in ("count", "seconds"):
            spec[key] = _int(val, f"{what} {key}", 0 if key == "seconds" else 1)
        else:
            raise ValueError(f"{what}: unknown part {key!r}")
    need = ("track", "count", "seconds") + (("type",) if what == "threshold" else ())
    missing = [k for k in need if k not in spec]
    if missing:
        raise ValueError(f"{what}: missing {', '.join(missing)}")
    return spec


def _byte_test(value: Optional[str], buffer: str) -> ByteTest:
    parts = [p.strip() for p in (value or "").split(",")]
    if len(parts) < 4:
        raise ValueError("byte_test: bytes, operator, value, offset [, options]")
    nbytes = _int(parts[0], "byte_test bytes", 0, 10)  # 0 with string: the digits to the buffer's end
    op = parts[1].replace(" ", "")
    negated = op.startswith("!") and len(op) > 1
    if negated:
        op = op[1:]
    if op not in ("<", ">", "=", "!", "<=", ">=", "&", "^"):
        raise ValueError(f"byte_test: bad operator {parts[1]!r}")
    number = _int(parts[2], "byte_test value", 0, 2 ** 64)
    offset = _int(parts[3], "byte_test offset", -65535, 65535)
    relative = little = False
    base = None
    bitmask = 0
    for flag in parts[4:]:
        if flag == "relative":
            relative = True
        elif flag == "little":
            little = True
        elif flag in ("big", ""):
            pass
        elif flag == "string":
            base = base or 10
        elif flag in ("hex", "dec", "oct"):
            base = {"hex": 16, "dec": 10, "oct": 8}[flag]
        elif flag.startswith("bitmask"):
            bitmask = _int(flag.split()[-1], "byte_test bitmask", 0, 2 ** 32)
        elif flag == "dce":
            raise Unsupported("byte_test/dce")
        else:
            raise ValueError(f"byte_test: unknown option {flag!r}")
    if base is None and nbytes > 8 or base is None and nbytes == 0:
        raise ValueError("byte_test: 0 or more than 8 bytes needs 'string'")
    return ByteTest(nbytes, op, negated, number, offset, relative, little, base, bitmask, buffer)


def _byte_jump(value: Optional[str], buffer: str) -> ByteJump:
    parts = [p.strip() for p in (value or "").split(",")]
    if len(parts) < 2:
        raise ValueError("byte_jump: bytes, offset [, options]")
    nbytes = _int(parts[0], "byte_jump bytes", 1, 10)
    offset = _int(parts[1], "byte_jump offset", -65535, 65535)
    flags = dict(relative=False, little=False, base=None, multiplier=1, align=False, from_beginning=False,
                 from_end=False, post_offset=0, bitmask=0)
    for part in parts[2:]:
        word, _, arg = part.partition(" ")
        if word in ("relative", "align", "from_beginning", "from_end"):
            flags[word] = True
        elif word == "little":
            flags["little"] = True
        elif word in ("big", ""):
            pass
        elif word == "string":
            flags["base"] = flags["base"] or 10
        elif word in ("hex", "dec", "oct"):
            flags["base"] = {"hex": 16, "dec": 10, "oct": 8}[word]
        elif word == "multiplier":
            flags["multiplier"] = _int(arg, "byte_jump multiplier", 1, 65535)
        elif word == "post_offset":
            flags["post_offset"] = _int(arg, "byte_jump post_offset", -65535, 65535)
        elif word == "bitmask":
            flags["bitmask"] = _int(arg, "byte_jump bitmask", 0, 2 ** 32)
        elif word == "dce":
            raise Unsupported("byte_jump/dce")
        else:
            raise ValueError(f"byte_jump: unknown option {part!r}")
    if flags["base"] is None and nbytes > 8:
        raise ValueError("byte_jump: more than 8 bytes needs 'string'")
    return ByteJump(nbytes, offset, flags["relative"], flags["little"], flags["base"], flags["multiplier"],
                    flags["align"], flags["from_beginning"], flags["from_end"], flags["post_offset"],
                    flags["bitmask"], buffer)


def apply_options(rule: Rule, options: List[Tuple[str, Optional[str]]], classes=None) -> None:
    classes = classes or DEFAULT_CLASSES
    buffer = "payload"
    fast_given = False
    for name, value in options:
        if name in _STICKY:
            buffer = _STICKY[name]
            if buffer == "dns.query" and rule.proto not in (17, 6, None):
                raise ValueError("dns.query applies to udp/tcp/dns rules")
            if buffer in _BUFFER_PROTO and rule.proto not in (None, _BUFFER_PROTO[buffer]):
                raise ValueError(f"{name} does not apply to this rule's protocol")
            continue
        if name in _HTTP_MODIFIERS:  # legacy: the content before moves into that HTTP buffer
            item = _last_content(rule, name)
            holder = rule.items if item in rule.items else rule.buffers[item.buffer]
            holder.remove(item)
            item.buffer = _HTTP_MODIFIERS[name]
            rule.buffers.setdefault(item.buffer, []).append(item)
            continue
        if name == "urilen":
            text, _, raw = (value or "").partition(",")
            target = "http.uri.raw" if raw.strip() == "raw" else "http.uri"
            rule.buffers.setdefault(target, []).append(BufferSize(compare(text, "urilen", 65535), target))
            continue
        if name == "dotprefix":
            if buffer not in ("dns.query", "http.host", "http.host.raw"):
                raise Unsupported(f"dotprefix on {buffer}") if buffer != "payload" else \
                    ValueError("dotprefix goes after a sticky buffer (dns.query, http.host)")
            # after some content, the transformed buffer is a new one for what follows
            buffer = buffer + "+dot"
            continue
        if name == "bsize":
            if buffer == "payload":
                raise ValueError("bsize needs a sticky buffer before it")
            _target(rule, buffer).append(BufferSize(compare(value, "bsize", 65535), buffer))
            continue
        if name == "byte_jump":
            _target(rule, buffer).append(_byte_jump(value, buffer))
            continue
        if name == "msg":
            rule.msg = _unescape(unquote(value, "msg"))
        elif name == "sid":
            rule.sid = _int(value, "sid", 1)
        elif name == "rev":
            rule.rev = _int(value, "rev")
        elif name == "gid":
            rule.gid = _int(value, "gid")
        elif name == "classtype":
            key = (value or "").strip()
            if key not in classes:
                raise ValueError(f"unknown classtype {key!r}")
            rule.classtype = key
            rule.category, severity = classes[key]
            if rule.priority is None:
                rule.severity = severity
        elif name == "priority":
            rule.priority = rule.severity = _int(value, "priority", 1, 255)
        elif name == "reference":
            rule.references.append((value or "").strip())  # kept as written (some carry stray quotes)
        elif name == "metadata":
            rule.metadata.extend(p.strip() for p in unquote(value, "metadata").split(","))
        elif name in _IGNORED:
            pass
        elif name == "content":
            text = (value or "").strip()
            negated = text.startswith("!")
            item = Content(content_bytes(unquote(text[1:] if negated else text, "content")), negated, buffer)
            _target(rule, buffer).append(item)
            rule.last_content = item
        elif name in ("nocase", "fast_pattern", "startswith", "endswith"):
            item = _last_content(rule, name)
            if name == "nocase":
                item.nocase = True
            elif name == "fast_pattern":
                if item.negated:
                    raise ValueError("fast_pattern on a negated content")
                item.fast_pattern = fast_given = True
                item.fast_only = (value or "").strip() == "only"
            elif name == "startswith":
                item.offset, item.startswith = 0, True
            else:
                item.endswith = True
        elif name in ("depth", "offset", "distance", "within"):
            item = _last_content(rule, name)
            number = _int(value, name, -65535 if name == "distance" else 0, 65535)
            if name in ("distance", "within"):
                if item.depth is not None or item.offset:
                    raise ValueError(f"{name} with depth/offset on one content")
                item.relative = True
            elif item.relative:
                raise ValueError(f"{name} with distance/within on one content")
            if name == "within" and number < len(item.pattern):
                raise ValueError(f"within {number} is shorter than the content ({len(item.pattern)} bytes)")
            if name == "depth" and number < len(item.pattern):
                raise ValueError(f"depth {number} is shorter than the content ({len(item.pattern)} bytes)")
            setattr(item, name, number)
        elif name == "isdataat":
            text = (value or "").replace(" ", "")
            negated = text.startswith("!")
            at, _, rel = text.lstrip("!").partition(",")
            if rel not in ("", "relative"):
                raise ValueError(f"isdataat: unknown option {rel!r}")
            _target(rule, buffer).append(IsDataAt(_int(at, "isdataat", 0, 65535), negated, rel == "relative", buffer))
        elif name == "pcre":
            try:
                item = compile_pcre(unquote_pcre(value), buffer)
            except KeyError as exc:
                raise Unsupported(exc.args[0]) from None
            _target(rule, item.buffer).append(item)
        elif name == "byte_test":
            _target(rule, buffer).append(_byte_test(value, buffer))
        elif name == "flow":
            for word in (value or "").replace(" ", "").split(","):
                if word not in _FLOW_WORDS:
                    raise ValueError(f"flow: unknown option {word!r}")
                if _FLOW_WORDS[word]:
                    rule.flow[_FLOW_WORDS[word]] = True
            if rule.flow.get("to_server") and rule.flow.get("to_client"):
                raise ValueError("flow: to_server and to_client together")
            if rule.flow.get("established") and rule.flow.get("not_established"):
                raise ValueError("flow: established and not_established together")
        elif name == "flowbits":
            _flowbits(rule, value)
        elif name == "noalert":
            rule.noalert = True
        elif name == "threshold":
            rule.threshold = _threshold(value, "threshold")
        elif name == "detection_filter":
            rule.detection_filter = _threshold(value, "detection_filter")
        elif name in HEADER_KEYWORDS:
            rule.checks.append(HEADER_KEYWORDS[name](value))
        else:
            raise Unsupported(name)
    _http_rule(rule)
    _choose_fast_pattern(rule, fast_given)


def _http_rule(rule: Rule) -> None:
    """A rule on HTTP buffers is an HTTP rule: judged per transaction, on its request or response."""
    names = {name.split("+")[0] for name in rule.buffers}
    if names & http.BUFFERS:
        if rule.app not in (None, "http"):
            raise ValueError(f"HTTP buffers in a {rule.app} rule")
        if rule.proto not in (None, 6):
            raise ValueError("HTTP buffers in a rule that is not tcp/http")
        rule.app, rule.proto = "http", 6
    if rule.app == "http":
        if names & http.RESPONSE_BUFFERS or rule.flow.get("to_client"):
            rule.http_side = 1
        elif not names & http.REQUEST_BUFFERS and not rule.flow.get("to_server"):
            rule.http_side = 2  # buffers both sides have (http.header, file.data): judged on each


def unquote_pcre(value: Optional[str]) -> str:
    text = (value or "").strip()
    if not text:
        raise ValueError("pcre needs a value")
    return text


def _flowbits(rule: Rule, value: Optional[str]) -> None:
    parts = [p.strip() for p in (value or "").split(",", 1)]
    command = parts[0]
    if command == "noalert":
        rule.noalert = True
        return
    if command not in ("set", "isset", "unset", "isnotset", "toggle"):
        raise ValueError(f"flowbits: unknown command {command!r}")
    if len(parts) < 2 or not parts[1]:
        raise ValueError(f"flowbits:{command} needs a name")
    names = parts[1]
    if "&" in names and "|" in names:
        raise ValueError("flowbits: '&' and '|' together")
    if "|" in names:
        if command not in ("isset", "isnotset"):
            raise ValueError("flowbits: '|' only with isset/isnotset")
        rule.flowbits.append((command + "_any", tuple(n.strip() for n in names.split("|"))))
    else:
        rule.flowbits.append((command, tuple(n.strip() for n in names.split("&"))))


def _choose_fast_pattern(rule: Rule, given: bool) -> None:
    """The prefilter's pattern: the one marked fast_pattern, else the longest positive content
    (Suricata's choice too), in the payload buffer or the DNS name."""
    best = None
    if rule.app == "http":  # the HTTP prefilter reads the transaction's buffers, not the stream
        pool = [i for name, items in rule.buffers.items() if name.split("+")[0] in http.BUFFERS for i in items]
        if not any(isinstance(i, Content) and not i.negated for i in pool):
            pool = rule.items  # only raw content: prefiltered on the message's bytes ("http.raw")
    else:
        pool = rule.items + rule.buffers.get("dns.query", []) + rule.buffers.get("dns.query+dot", [])
    for item in pool:
        if not isinstance(item, Content) or item.negated:
            continue
        if given and item.fast_pattern:
            best = item
            break
        if not given and (best is None or len(item.pattern) > len(best.pattern)):
            best = item
    if best is not None:
        # the DNS prefilter reads the dotted name: a plain dns.query pattern is found there too
        buffer = "dns.query" if best.buffer.startswith("dns.") else best.buffer
        if rule.app == "http":
            buffer = "http.raw" if best.buffer == "payload" else "http:" + best.buffer
        rule.fast = (buffer, best.lower)
