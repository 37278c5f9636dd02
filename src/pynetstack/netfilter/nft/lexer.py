"""Split nftables source text into tokens that remember where they came from.

Kinds: ``word`` (keywords, names, numbers, addresses), ``string`` (quoted), ``var`` (``$NAME``),
``nl`` (end of line, which ends a statement like ``;``), ``eof``, and single punctuation
characters or the operators ``== != <= >=``.  A ``-`` belongs to a word only between letters
(``fully-random``, ``echo-request``) so that ranges such as ``443-445`` split into three tokens.
"""

from __future__ import annotations

from typing import List

from .errors import Location, NftError

PUNCT = set("{}()[];,:/&|=!<>-+*@^")
TWO_CHAR_OPS = ("==", "!=", "<=", ">=")


class Token:
    __slots__ = ("kind", "value", "loc")

    def __init__(self, kind: str, value: str, loc: Location):
        self.kind = kind
        self.value = value
        self.loc = loc

    def __repr__(self) -> str:
        return f"Token({self.kind}, {self.value!r}, {self.loc!r})"


def _is_word_char(c: str) -> bool:
    return c.isalnum() and c.isascii() or c in "_.*"


def tokenize(text: str, filename: str) -> List[Token]:
    lines = text.split("\n")
    out: List[Token] = []
    for lineno, line in enumerate(lines, 1):
        i, n = 0, len(line)

        def loc(a: int, b: int, lineno: int = lineno, line: str = line) -> Location:
            return Location(filename, lineno, a + 1, b, line)

        while i < n:
            c = line[i]
            if c in " \t\r":
                i += 1
            elif c == "#":
                break
            elif c == "\\" and line[i + 1:].strip() == "":
                break  # line continuation: the newline does not end the statement
            elif c == '"':
                j = line.find('"', i + 1)
                if j < 0:
                    raise NftError("unterminated string", loc(i, n))
                out.append(Token("string", line[i + 1:j], loc(i, j + 1)))
                i = j + 1
            elif c == "$":
                j = i + 1
                while j < n and (_is_word_char(line[j]) or line[j] == "-") and line[j] != "*":
                    j += 1
                if j == i + 1:
                    raise NftError("syntax error, unexpected junk", loc(i, i + 1))
                out.append(Token("var", line[i + 1:j], loc(i + 1, j)))
                i = j
            elif _is_word_char(c):
                j = i
                while j < n:
                    d = line[j]
                    if _is_word_char(d):
                        j += 1
                    elif (d == "-" and line[i].isalpha() and j + 1 < n and line[j + 1].isalpha()
                          and line[j - 1].isalnum()):
                        j += 1
                    else:
                        break
                out.append(Token("word", line[i:j], loc(i, j)))
                i = j
            elif line[i:i + 2] in TWO_CHAR_OPS:
                out.append(Token(line[i:i + 2], line[i:i + 2], loc(i, i + 2)))
                i += 2
            elif c in PUNCT:
                out.append(Token(c, c, loc(i, i + 1)))
                i += 1
            else:
                raise NftError("syntax error, unexpected junk", loc(i, i + 1))
        if not (line.rstrip().endswith("\\") and "#" not in line):
            out.append(Token("nl", "\n", Location(filename, lineno, n + 1, n + 1, line)))
    last = len(lines)
    out.append(Token("eof", "", Location(filename, last, 1, 1, lines[-1] if lines else "")))
    return out
