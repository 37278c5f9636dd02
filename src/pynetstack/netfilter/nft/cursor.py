"""A token cursor with ``$VAR`` expansion, shared by the command and the rule parsers."""

from __future__ import annotations

from typing import Dict, List, Optional

from .errors import Location, NftError
from .keywords import KEYWORDS, OPERATOR_WORDS, is_number
from .lexer import Token

SEPARATORS = ("nl", ";")
MAX_EXPANSIONS = 10000  # a define that (indirectly) uses itself must not loop forever


def describe(tok: Token) -> str:
    """How nft's parser names a token in ``syntax error, unexpected X``."""
    if tok.kind == "eof":
        return "end of file"
    if tok.kind == "nl":
        return "newline"
    if tok.kind == ";":
        return "semicolon"
    if tok.kind == ",":
        return "comma"
    if tok.kind == "string":
        return "quoted string"
    if tok.kind == "{":
        return "'{'"
    if tok.kind == "}":
        return "'}'"
    if tok.kind == "|":
        return "'|'"
    if tok.kind == "word":
        if tok.value in OPERATOR_WORDS:
            return OPERATOR_WORDS[tok.value]
        if is_number(tok.value):
            return "number"
    return tok.value


class Cursor:
    def __init__(self, tokens: List[Token], defines: Dict[str, List[Token]]):
        self.tokens = tokens
        self.pos = 0
        self.defines = defines
        self.expansions = 0

    def peek(self, ahead: int = 0) -> Token:
        while True:
            idx = self.pos + ahead
            if idx >= len(self.tokens):
                return self.tokens[-1]
            tok = self.tokens[idx]
            if tok.kind != "var":
                return tok
            self._expand(idx, tok)

    def _expand(self, idx: int, tok: Token) -> None:
        value = self.defines.get(tok.value)
        if value is None:
            raise NftError(f"unknown identifier '{tok.value}'", tok.loc)
        self.expansions += 1
        if self.expansions > MAX_EXPANSIONS:
            raise NftError(f"recursive definition of '{tok.value}'", tok.loc)
        self.tokens[idx:idx + 1] = list(value)

    def next(self) -> Token:
        tok = self.peek()
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def at(self, *values: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.value in values

    def at_kind(self, *kinds: str) -> bool:
        return self.peek().kind in kinds

    def accept(self, value: str) -> Optional[Token]:
        tok = self.peek()
        if (tok.kind == "word" and tok.value == value) or (tok.kind == value and tok.kind != "word"):
            self.pos += 1
            return tok
        return None

    def expect(self, value: str, what: str = "") -> Token:
        tok = self.accept(value)
        if tok is None:
            raise self.unexpected(what or value)
        return tok

    def word(self, what: str = "") -> Token:
        tok = self.peek()
        if tok.kind != "word":
            raise self.unexpected(what)
        self.pos += 1
        return tok

    def name(self, what: str = "identifier") -> Token:
        """A name: a word or a quoted string."""
        tok = self.peek()
        if tok.kind not in ("word", "string"):
            raise self.unexpected(what)
        self.pos += 1
        return tok

    def identifier(self) -> Token:
        """A name nft's grammar takes as an identifier (of a table, chain, set or define): a plain
        word that is none of nft's keywords; nft 1.0.6 refuses a quoted string or a number there."""
        tok = self.peek()
        if tok.kind != "word" or tok.value in KEYWORDS or is_number(tok.value):
            raise self.unexpected("string")
        self.pos += 1
        return tok

    def unexpected(self, expecting: str = "", tok: Optional[Token] = None) -> NftError:
        tok = tok or self.peek()
        msg = f"syntax error, unexpected {describe(tok)}"
        if expecting:
            msg += f", expecting {expecting}"
        return NftError(msg, tok.loc)

    def end_statement(self) -> None:
        """A command or a chain property ends with a newline, ``;``, ``}`` or the end of file."""
        if self.at_kind(*SEPARATORS):
            self.pos += 1
        elif not self.at_kind("}", "eof"):
            raise self.unexpected("newline or semicolon")

    def skip_separators(self) -> None:
        while self.at_kind(*SEPARATORS):
            self.pos += 1

    def span(self, first: Token) -> Location:
        last = self.tokens[max(self.pos - 1, 0)]
        return first.loc.span(last.loc)
