"""Small, safe building blocks for generated Python: identifiers, literals, indentation. Text
from outside the cells is escaped by nb2pipe.escape."""

from __future__ import annotations

import builtins
import io
import keyword
import re
import tokenize
from collections.abc import Iterable

from nb2pipe.escape import py_string

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = frozenset((*keyword.kwlist, *dir(builtins)))


def is_identifier(name: str) -> bool:
    return bool(_IDENTIFIER.match(name)) and not keyword.iskeyword(name)


class Namer:
    """Hands out identifiers that clash with nothing already taken."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken = set(taken) | set(RESERVED)

    def claim(self, wanted: str, fallback_suffix: str = "_") -> str:
        if not is_identifier(wanted):
            raise ValueError(f"not an identifier: {wanted!r}")  # validated upstream
        name = wanted
        while name in self.taken:
            name += fallback_suffix
        self.taken.add(name)
        return name


def literal(value: object) -> str:
    """A Python literal for a JSON-compatible value, on one line."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return f"float({str(value)!r})"
    if isinstance(value, str):
        return py_string(value)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise TypeError(f"not a literal: {type(value).__name__}")


def string_lines(code: str) -> set[int]:
    """Lines (1-based) that continue a multi-line string: indenting them would change the
    string's value, so they are emitted as written."""
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return inside


def indent(lines: list[tuple[int, str]], code: str, prefix: str = "    ") -> list[tuple[int, str]]:
    """Indent (line number, text) pairs of `code`, leaving string continuation lines alone."""
    keep = string_lines(code)
    return [(n, text if n in keep else (prefix + text if text.strip() else ""))
            for n, text in lines]
