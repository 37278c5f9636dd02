"""The one error type of the nftables language, printed the way ``nft`` prints its errors.

``nft`` shows ``FILE:LINE:COL-COL: Error: problem``, then the source line, then a marker line that
keeps the tabs of the source line (so the marker lines up in a terminal) and puts ``^`` under the
offending columns.
"""

from __future__ import annotations

from typing import Optional


class Location:
    """Where a token sits: file name, 1-based line, 1-based first and last column, the line text."""

    __slots__ = ("filename", "line", "col", "end_col", "text")

    def __init__(self, filename: str, line: int, col: int, end_col: int, text: str):
        self.filename = filename
        self.line = line
        self.col = col
        self.end_col = max(col, end_col)
        self.text = text

    def span(self, other: "Location") -> "Location":
        """From the start of self to the end of other when both are on one line."""
        if other.filename == self.filename and other.line == self.line:
            return Location(self.filename, self.line, self.col, max(self.end_col, other.end_col), self.text)
        return self

    def __repr__(self) -> str:
        return f"{self.filename}:{self.line}:{self.col}-{self.end_col}"


def format_error(message: str, loc: Optional[Location]) -> str:
    if loc is None:
        return f"Error: {message}"
    head = f"{loc.filename}:{loc.line}:{loc.col}-{loc.end_col}: Error: {message}"
    text = loc.text.rstrip("\n")
    pad = "".join(c if c == "\t" else " " for c in text[: loc.col - 1])
    return f"{head}\n{text}\n{pad}{'^' * (loc.end_col - loc.col + 1)}"


class NftError(ValueError):
    """Malformed or unsupported nftables input.  ``str(err)`` is the nft-style three-line message."""

    def __init__(self, message: str, loc: Optional[Location] = None):
        self.problem = message
        self.location = loc
        super().__init__(format_error(message, loc))


def unsupported(what: str, loc: Optional[Location]) -> NftError:
    return NftError(f"unsupported in pynetstack: {what}", loc)
