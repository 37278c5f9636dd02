"""Parsing nft files: commands (block and one-line forms), ``define``, ``include``, tables and
chains, into a :class:`Ruleset`.  Rules are parsed by :mod:`.ruleparse`."""

from __future__ import annotations

import glob
import os
from typing import Dict, List, Optional

from . import symbols as S
from .cursor import Cursor
from .errors import Location, NftError, unsupported
from .lexer import Token, tokenize
from .expressions import FIELDS
from .ruleparse import RuleContext, parse_element, parse_rule
from .sets import DESCRIPTIONS, NamedSet, parse_set_body
from .ruleset import HOOKS, Chain, Rule, Ruleset, Table
from .statements import Verdict, VerdictMap

FAMILIES = ("ip", "inet")
OTHER_FAMILIES = ("ip6", "arp", "bridge", "netdev")
MAX_INCLUDE_DEPTH = 16
MAX_FILE_BYTES = 16 << 20


def read_file(path: str, loc: Optional[Location] = None, display: Optional[str] = None) -> str:
    """An nft file's text, or NftError as nft words it."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        raise NftError(f"File not found: {display or path}", loc) from None
    if len(data) > MAX_FILE_BYTES:
        raise NftError(f"File too large: {display or path}", loc)
    return data.decode("utf-8", errors="replace")


class Loader:
    """Reads one top-level file (and what it includes) into a ruleset."""

    def __init__(self, ruleset: Ruleset):
        self.ruleset = ruleset
        self.defines: Dict[str, List[Token]] = {}
        self.include_stack: List[str] = []
        self.jumps: List = []  # (chain, verdict) to resolve once everything is declared
        self.set_refs: List = []  # (table, match) for "@name" matches

    # -- files -----------------------------------------------------------------------------------
    def load_text(self, text: str, filename: str) -> None:
        cur = Cursor(tokenize(text, filename), self.defines)
        while True:
            cur.skip_separators()
            if cur.at_kind("eof"):
                break
            self._command(cur, filename)

    def include(self, path: str, loc: Optional[Location], display: str, text: Optional[str] = None) -> None:
        """Load the file at ``path`` (``text``: its contents as read before, so a file that has
        changed on disk since it was loaded is not read again)."""
        real = os.path.realpath(path)
        if len(self.include_stack) >= MAX_INCLUDE_DEPTH or real in self.include_stack:
            raise NftError(f"Include nested too deeply, max {MAX_INCLUDE_DEPTH} levels", loc)
        if text is None:
            text = read_file(path, loc, display)
        self.include_stack.append(real)
        try:
            self.load_text(text, path)
        finally:
            self.include_stack.pop()

    # -- commands --------------------------------------------------------------------------------
    def _command(self, cur: Cursor, filename: str) -> None:
        tok = cur.peek()
        if tok.kind != "word":
            raise cur.unexpected()
        w = tok.value
        if w == "define" or w == "redefine":
            cur.next()
            self._define(cur)
        elif w == "undefine":
            cur.next()
            name = cur.identifier()
            if self.defines.pop(name.value, None) is None:
                raise NftError(f"undefined symbol '{name.value}'", name.loc)
            cur.end_statement()
        elif w == "include":
            cur.next()
            path_tok = cur.peek()
            if path_tok.kind != "string":
                raise cur.unexpected("quoted string")
            cur.next()
            base = os.path.dirname(filename) if filename and not filename.startswith("<") else "."
            path = path_tok.value if os.path.isabs(path_tok.value) else os.path.join(base, path_tok.value)
            where = cur.span(tok)
            where = Location(where.filename, where.line, where.col, where.end_col + 1, where.text)
            if any(c in path_tok.value for c in "*?["):
                # a pattern includes every match in name order; matching nothing is fine (as nft)
                for match in sorted(glob.glob(path)):
                    self.include(match, where, match)
            else:
                self.include(path, where, path_tok.value)
            cur.end_statement()
        elif w == "flush":
            cur.next()
            self._flush(cur)
        elif w in ("add", "create", "insert"):
            cur.next()
            what = cur.word("table, chain or rule")
            self._object(cur, what, w)
        elif w in ("table", "chain"):  # "table ip t { ... }" is "add table ip t { ... }"
            cur.next()
            self._object(cur, tok, "add")
        elif w == "delete" and cur.peek(1).kind == "word" and cur.peek(1).value == "rule":
            cur.next()
            cur.next()
            self._delete_rule(cur)
        elif w in ("delete", "destroy", "list", "reset", "rename", "replace", "monitor", "describe",
                   "export", "import", "get"):
            raise unsupported(f"the '{w}' command", tok.loc)
        else:
            raise cur.unexpected()

    def _define(self, cur: Cursor) -> None:
        name = cur.identifier()
        cur.expect("=", "'='")
        value: List[Token] = []
        depth = 0
        # the value is taken raw (its $VARs expand where it is used)
        while True:
            raw = cur.tokens[cur.pos]
            if raw.kind == "eof" or (depth == 0 and raw.kind in ("nl", ";", "}")):
                break
            depth += {"{": 1, "}": -1}.get(raw.kind, 0)
            value.append(raw)
            cur.pos += 1
        if not value:
            raise cur.unexpected()
        if any(t.kind == "var" and t.value == name.value for t in value):
            raise NftError(f"recursive definition of '{name.value}'", name.loc)
        self.defines[name.value] = value
        cur.end_statement()

    def _flush(self, cur: Cursor) -> None:
        what = cur.word("ruleset, table or chain")
        if what.value == "ruleset":
            family = self._family(cur, required=False)
            for key in [k for k in self.ruleset.tables if family is None or k[0] == family]:
                del self.ruleset.tables[key]
        elif what.value == "table":
            table = self._lookup_table(cur)
            for chain in table.chains.values():
                chain.rules.clear()
        elif what.value == "chain":
            table = self._lookup_table(cur)
            self._lookup_chain(cur, table).rules.clear()
        elif what.value == "set":
            table = self._lookup_table(cur)
            name = cur.identifier()
            nset = table.sets.get(name.value)
            if nset is None:
                raise NftError("Could not process rule: No such file or directory", name.loc)
            nset.elements = []
            nset.flushes += 1  # the elements rules added before go too (carry.py)
        else:
            raise unsupported(f"flush {what.value}", what.loc)
        cur.end_statement()

    def _delete_rule(self, cur: Cursor) -> None:
        """``delete rule [FAMILY] TABLE CHAIN handle N``: the rule goes (with its state)."""
        table = self._lookup_table(cur)
        chain = self._lookup_chain(cur, table)
        cur.expect("handle")
        number = cur.word("number")
        if not number.value.isdigit():
            raise cur.unexpected("number", number)
        handle = int(number.value)
        for i, rule in enumerate(chain.rules):
            if rule.handle == handle:
                del chain.rules[i]
                break
        else:
            raise NftError("Could not process rule: No such file or directory", number.loc)  # as nft points
        cur.end_statement()

    def _family(self, cur: Cursor, required: bool = True) -> Optional[str]:
        tok = cur.peek()
        if tok.kind == "word" and tok.value in FAMILIES:
            cur.next()
            return tok.value
        if tok.kind == "word" and tok.value in OTHER_FAMILIES:
            raise unsupported(f"family {tok.value} (only ip and inet)", tok.loc)
        return "ip" if required else None

    def _lookup_table(self, cur: Cursor) -> Table:
        family = self._family(cur)
        name = cur.identifier()
        table = self.ruleset.tables.get((family, name.value))
        if table is None:
            raise NftError("Could not process rule: No such file or directory", name.loc)
        return table

    def _lookup_chain(self, cur: Cursor, table: Table) -> Chain:
        name = cur.identifier()
        chain = table.chains.get(name.value)
        if chain is None:
            raise NftError("Could not process rule: No such file or directory", name.loc)
        return chain

    def _object(self, cur: Cursor, what: Token, verb: str) -> None:
        if what.value == "table":
            if verb == "insert":
                raise cur.unexpected("rule", what)
            self._table(cur, verb)
        elif what.value == "chain":
            if verb == "insert":
                raise cur.unexpected("rule", what)
            table = self._lookup_table(cur)
            self._chain(cur, table, verb, pending=None)
        elif what.value == "set":
            table = self._lookup_table(cur)
            nset = self._set(cur, table, verb)
            if nset is not None:
                nset.handle = table.new_handle()
            return
        elif what.value == "rule":
            table = self._lookup_table(cur)
            chain = self._lookup_chain(cur, table)
            if cur.at("position", "handle", "index"):
                raise unsupported(f"rule {cur.peek().value}", cur.peek().loc)
            rule = self._rule(cur, chain)
            self._attach(chain, rule, front=(verb == "insert"))
            cur.end_statement()
        else:
            raise unsupported(f"{verb} {what.value}", what.loc)

    # -- tables and chains -----------------------------------------------------------------------
    def _table(self, cur: Cursor, verb: str) -> None:
        family = self._family(cur)
        name = cur.identifier()
        key = (family, name.value)
        table = self.ruleset.tables.get(key)
        if table is not None and verb == "create":
            raise NftError("Could not process rule: File exists", name.loc)
        if table is None:
            table = Table(family, name.value, self.ruleset.next_table_handle, name.loc)
            self.ruleset.next_table_handle += 1
            self.ruleset.tables[key] = table
        if cur.accept("{"):
            pending: List = []  # the kernel numbers a block's chains first, then sets, then rules
            new_sets: List = []
            while True:
                cur.skip_separators()
                tok = cur.peek()
                if cur.accept("}"):
                    break
                if tok.kind == "word" and tok.value == "chain":
                    cur.next()
                    self._chain(cur, table, "add", pending, strict=True)
                elif tok.kind == "word" and tok.value in ("define", "redefine"):
                    cur.next()
                    self._define(cur)
                elif tok.kind == "word" and tok.value == "set":
                    cur.next()
                    nset = self._set(cur, table, "add")
                    if nset is not None:
                        new_sets.append(nset)
                elif tok.kind == "word" and tok.value in ("map", "flowtable", "counter", "quota",
                                                           "flags", "comment", "ct", "limit", "secmark",
                                                           "synproxy"):
                    raise unsupported(f"table {tok.value}", tok.loc)
                else:
                    raise cur.unexpected()
            for nset in new_sets:
                nset.handle = table.new_handle()
            for chain, rule in pending:
                self._attach(chain, rule)
        cur.end_statement()

    def _set(self, cur: Cursor, table: Table, verb: str):
        """A set declaration; None when it declares again, as ``add``, a set that exists with the
        same properties (nft -f of a file loaded before): as the kernel, its elements join it."""
        name = cur.identifier()
        old = table.sets.get(name.value)
        if old is not None and verb == "create":
            raise NftError("Could not process rule: File exists", name.loc)
        nset = NamedSet(name.value, table, name.loc)
        cur.expect("{")
        parse_set_body(cur, nset, parse_element, FIELDS)
        if cur.at_kind("}"):  # nft wants a newline or ';' after a set block
            raise cur.unexpected("newline or semicolon")
        cur.end_statement()
        if old is None:
            table.sets[name.value] = nset
            return nset
        if _declared(old) != _declared(nset):
            raise NftError("Could not process rule: File exists", name.loc)
        old.elements.extend(e for e in nset.elements if e not in old.elements)
        return None

    def _chain(self, cur: Cursor, table: Table, verb: str, pending: Optional[List],
               strict: bool = False) -> None:
        name = cur.identifier()
        chain = table.chains.get(name.value)
        if chain is not None and verb == "create":
            raise NftError("Could not process rule: File exists", name.loc)
        if chain is None:
            chain = Chain(name.value, table, name.loc)
            chain.handle = table.new_handle()
            table.chains[name.value] = chain
        if cur.accept("{"):
            rules: List = []
            while True:
                cur.skip_separators()
                if cur.accept("}"):
                    break
                if cur.at("type"):
                    self._chain_type(cur, chain)
                elif cur.at("policy"):
                    cur.next()
                    pol = cur.word("accept or drop")
                    if pol.value not in ("accept", "drop"):
                        raise cur.unexpected("accept or drop", pol)
                    if not chain.is_base:
                        raise NftError("Could not process rule: Operation not supported", pol.loc)
                    chain.policy = pol.value
                    cur.end_statement()
                elif cur.at("define", "redefine"):
                    cur.next()
                    self._define(cur)
                elif cur.at("comment", "flags", "devices", "device"):
                    raise unsupported(f"chain {cur.peek().value}", cur.peek().loc)
                else:
                    rule = self._rule(cur, chain)
                    if cur.at_kind("nl", ";"):
                        cur.next()
                    elif not cur.at_kind("}"):
                        raise cur.unexpected("newline or semicolon")
                    rules.append((chain, rule))
            if pending is None:
                for ch, rule in rules:
                    self._attach(ch, rule)
            else:
                pending.extend(rules)
            if strict and cur.at_kind("}"):  # nft wants a newline or ';' after a chain block
                raise cur.unexpected("newline or semicolon")
        cur.end_statement()

    def _chain_type(self, cur: Cursor, chain: Chain) -> None:
        first = cur.next()
        ctype = cur.word("chain type")
        if ctype.value == "route":
            raise unsupported("chain type route", ctype.loc)
        if ctype.value not in ("filter", "nat"):
            raise NftError("unknown chain type", ctype.loc)
        cur.expect("hook")
        hook = cur.word("hook name")
        if hook.value in ("ingress", "egress"):
            raise unsupported(f"hook {hook.value}", hook.loc)
        if hook.value not in HOOKS:
            raise NftError("unknown chain hook", hook.loc)
        if cur.at("device"):
            raise unsupported("chain device", cur.peek().loc)
        prio_tok = cur.expect("priority")
        prio = self._priority(cur, hook.value, prio_tok)
        if ctype.value == "nat" and hook.value == "forward":
            raise NftError("Could not process rule: Operation not supported", chain.loc)
        if chain.is_base and (chain.type, chain.hook, chain.priority) != (ctype.value, hook.value, prio):
            raise NftError("Could not process rule: Device or resource busy", first.loc)
        chain.type, chain.hook, chain.priority = ctype.value, hook.value, prio
        cur.end_statement()

    def _priority(self, cur: Cursor, hook: str, first: Token) -> int:
        negative = bool(cur.accept("-"))
        tok = cur.word("priority")
        names = dict(S.STD_PRIORITIES)
        if tok.value in names and not negative:
            if S.PRIORITY_HOOK.get(tok.value, hook) != hook:
                raise NftError("invalid priority expression value in this context.", cur.span(first))
            base = names[tok.value]
            if cur.accept("-"):
                return base - self._prio_number(cur)
            if cur.accept("+"):
                return base + self._prio_number(cur)
            return base
        cur.pos -= 1
        value = self._prio_number(cur)
        return -value if negative else value

    def _prio_number(self, cur: Cursor) -> int:
        tok = cur.peek()
        if tok.kind != "word" or not tok.value.isdigit():
            raise NftError("invalid priority expression value in this context.", tok.loc) \
                if tok.kind == "word" else cur.unexpected("number")
        cur.next()
        value = int(tok.value)
        if value > 2 ** 31 - 1:
            raise NftError("priority value out of range", tok.loc)
        return value

    # -- rules -------------------------------------------------------------------------------------
    def _rule(self, cur: Cursor, chain: Chain) -> Rule:
        ctx = RuleContext(chain.table.family, chain.type, chain.hook)
        items, loc = parse_rule(cur, ctx)
        self.set_refs.extend((chain.table, m) for m in ctx.set_refs)
        rule = Rule(items, loc)
        rule.comment = ctx.comment
        rule.handle = ctx.sets  # anonymous sets to number before the rule; fixed in _attach
        for item in items:
            if isinstance(item, Verdict) and item.target is not None:
                self.jumps.append((chain, item))
            elif isinstance(item, VerdictMap):
                self.jumps.extend((chain, v) for _, v in item.entries if v.target is not None)
        return rule

    def _attach(self, chain: Chain, rule: Rule, front: bool = False) -> None:
        for _ in range(rule.handle):
            chain.table.new_handle()
        rule.handle = chain.table.new_handle()
        rule.chain = chain
        if front:
            chain.rules.insert(0, rule)
        else:
            chain.rules.append(rule)

    # -- whole-ruleset checks the kernel makes -------------------------------------------------------
    def finish(self) -> Ruleset:
        for chain, verdict in self.jumps:
            if chain.table.chains.get(chain.name) is not chain:
                continue  # flushed away later in the file
            target = chain.table.chains.get(verdict.target)
            if target is None:
                raise NftError("Could not process rule: No such file or directory", verdict.loc)
            if target.is_base:
                raise NftError("Could not process rule: Operation not supported", verdict.loc)
        for table, match in self.set_refs:
            if self.ruleset.tables.get((table.family, table.name)) is not table:
                continue  # flushed away later in the file
            nset = table.sets.get(match.set_ref) if isinstance(match.set_ref, str) else match.set_ref
            if nset is None:
                raise NftError("No such file or directory", match.loc)
            if nset.dtype != match.field.dtype:  # identical types (concatenations: equal parts)
                want = DESCRIPTIONS.get(match.field.dtype.name, match.field.dtype.name)
                raise NftError(f"datatype mismatch, expected {want}, expression has type "
                               f"{DESCRIPTIONS.get(nset.type_name, nset.type_name)}", match.loc)
            match.set_ref = nset
            if getattr(match, "op", None) in ("add", "update"):
                nset.used_by_rules()
        self._check_loops()
        self.ruleset.compile()
        return self.ruleset

    def _check_loops(self) -> None:
        for table in self.ruleset.tables.values():
            edges = {c.name: [(v, v.target) for r in c.rules for v in _verdicts(r.items) if v.target]
                     for c in table.chains.values()}
            state: Dict[str, int] = {}
            for name in edges:
                if name not in state:
                    _visit(edges, state, name, 0)


def _declared(nset) -> tuple:
    """What a set's declaration says of it besides its elements."""
    return (nset.type_name, nset.typeof, nset.interval, nset.constant, nset.dynamic, nset.timeout_flag, nset.size,
            nset.timeout_ms, nset.gc_interval_ms)


def _verdicts(items: List) -> List[Verdict]:
    out: List[Verdict] = []
    for item in items:
        if isinstance(item, Verdict):
            out.append(item)
        elif isinstance(item, VerdictMap):
            out.extend(v for _, v in item.entries)
    return out


def _visit(edges: Dict, state: Dict[str, int], name: str, depth: int) -> None:
    """Depth-first walk of jump/goto edges; a chain reached again while on the path is a loop."""
    state[name] = 1
    for verdict, target in edges.get(name, ()):
        if state.get(target) == 1 or depth > 16:
            raise NftError("Could not process rule: Too many levels of symbolic links", verdict.loc)
        if state.get(target) is None:
            _visit(edges, state, target, depth + 1)
    state[name] = 2
