"""Parsing a cell: its syntax tree, or why Python cannot compile it (with the names it seems
to bind, so they are not reported again as undefined); a Python 2 notebook is one diagnostic."""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nb2pipe.diagnostics import diagnostic
from nb2pipe.model import Bind, Cell, CellSymbols, Diagnostic, Notebook, Read, split_lines

# Python 2 builtins: in a Python 2 notebook their uses are part of the one NB112.
PYTHON2_BUILTINS = frozenset((
    "unicode", "basestring", "long", "xrange", "raw_input", "unichr", "reduce", "execfile",
    "cmp", "file", "buffer", "apply", "intern", "coerce", "reload",
))
# Syntax errors only Python 2 code makes. (Not "leading zeros in decimal integer literals":
# prose pasted into a code cell makes it too, as in "January 09".)
_PYTHON2_SYNTAX = re.compile(
    r"Missing parentheses in call to '(print|exec)'|multiple exception types must be "
    r"parenthesized"
)


@dataclass(frozen=True)
class Unparsed:
    cell: Cell
    line: int
    message: str


def segment(code: str, node: ast.expr) -> str:
    """The source text of `node` (ast.get_source_segment re-splits the whole cell each time)."""
    end_line = node.end_lineno or node.lineno
    lines = code.split("\n")[node.lineno - 1:end_line]
    if not lines:
        return "..."
    lines[-1] = lines[-1].encode()[:node.end_col_offset].decode(errors="replace")
    lines[0] = lines[0].encode()[node.col_offset:].decode(errors="replace")
    return "\n".join(lines)


def parse_code(code: str) -> ast.Module | tuple[int, str]:
    """The cell's syntax tree, or (line, message) saying why Python cannot compile it."""
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        return exc.lineno or 1, f"syntax error: {exc.msg}"
    except (ValueError, OverflowError) as exc:  # e.g. an int literal past the digit limit
        return 1, f"syntax error: {exc}"
    except (RecursionError, MemoryError):
        return 1, "Python cannot compile the cell: an expression is nested too deeply"


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Since Python 3.11 a call from Python code to Python code uses no C stack, so a higher
    limit for the visitor is safe; parsing and compiling keep the default."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, 20_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def syntax_error(unparsed: Unparsed, path: str) -> Diagnostic:
    source_lines = split_lines(unparsed.cell.source) or [""]
    text = source_lines[min(unparsed.line, len(source_lines)) - 1]
    return diagnostic(
        "NB108", unparsed.message, path=path, cell=unparsed.cell, line=unparsed.line,
        hint=f"fix the cell so it runs: {text.strip()[:80]!r}" if text.strip() else None,
    )


def python2_notebook(notebook: Notebook, unparsed: list[Unparsed],
             symbols: dict[int, CellSymbols]) -> Diagnostic | None:
    """One diagnostic for a Python 2 notebook, instead of one per print statement and one per
    name its unparsed cells define."""
    marked = [u for u in unparsed if _PYTHON2_SYNTAX.search(u.message)]
    bound = {e.name for s in symbols.values() for e in s.events if isinstance(e, Bind)}
    reads = [(index, e) for index, s in symbols.items() for e in s.events
             if isinstance(e, Read) and e.name in PYTHON2_BUILTINS and e.name not in bound]
    builtins_used = sorted({e.name for _, e in reads})
    if not marked and not (notebook.python_major == 2 and (unparsed or reads)):
        return None
    also = f"; it uses Python 2 builtins ({', '.join(builtins_used)})" if builtins_used else ""
    if not unparsed:  # a Python 2 kernel, code that parses, but Python 2's builtins
        index, read = min(reads, key=lambda r: (r[0], r[1].line))
        cell = next(c for c in notebook.cells if c.index == index)
        return diagnostic(
            "NB112", f"Python 2 notebook: it uses Python 2 builtins ({', '.join(builtins_used)}), "
            "which Python 3 does not have", path=notebook.display_path, cell=cell,
            line=read.line, hint=_PORT_HINT)
    first = (marked or unparsed)[0]
    cells = ", ".join(str(u.cell.index) for u in unparsed[:8]) + (", ..." if len(unparsed) > 8
                                                                    else "")
    count = f"{len(unparsed)} cell{'s' if len(unparsed) > 1 else ''} ({cells})"
    verb = "does" if len(unparsed) == 1 else "do"
    return diagnostic(
        "NB112",
        f"Python 2 notebook: {count} {verb} not parse as Python 3{also}; first: "
        f"{first.message.removeprefix('syntax error: ')}",
        path=notebook.display_path, cell=first.cell, line=first.line,
        hint=_PORT_HINT,
    )


_PORT_HINT = ("port the notebook to Python 3 (print(...), `except E as e`, range, str), for "
              "example with `2to3 -w` on a script exported from it, then check it again")

_BINDING_KEYWORDS = frozenset(("def", "class", "import", "as", "for", "global"))


def names_bound_in_text(code: str) -> set[str]:
    """Best effort, from tokens: the names a cell that does not parse would bind."""
    found: set[str] = set()
    line: list[tokenize.TokenInfo] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
                found.update(_bound_in_line(line))
                line = []
            elif token.type not in (tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                line.append(token)
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    found.update(_bound_in_line(line))
    return found


def _bound_in_line(tokens: list[tokenize.TokenInfo]) -> set[str]:
    found: set[str] = set()
    depth = 0
    for i, token in enumerate(tokens):
        if token.string in "([{" and token.type == tokenize.OP:
            depth += 1
        elif token.string in ")]}" and token.type == tokenize.OP:
            depth -= 1
        elif token.type == tokenize.NAME and i > 0 and tokens[i - 1].string in _BINDING_KEYWORDS:
            found.add(token.string)
        elif token.type == tokenize.OP and token.string == "=" and depth == 0:
            found.update(t.string for t in tokens[:i] if t.type == tokenize.NAME)
        elif token.string == "import":  # from m import a, b
            found.update(t.string for t in tokens[i + 1:]
                         if t.type == tokenize.NAME and t.string != "as")
    return found
