"""IPython's input syntax -> the Python IPython runs, every line kept where it was.

IPython's own `TransformerManager` is the reference. Importing it costs about a quarter of a
second, more than the rest of `nb2pipe check`, so the forms notebooks use all the time are
rewritten here exactly as IPython rewrites them: `%magic args`, `!command`, `!!command`,
`x = %magic args` and `x = !command`, each alone on its line at the start of a statement, and the
common indentation IPython removes from a cell. Anything else (help with `?`, pasted prompts, an
escape continued with a backslash or inside brackets, `/f x` autocall) goes to IPython itself;
tests/test_magics.py compares the two on every form.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable
from functools import cache

_PROBE = "__nb2pipe_escape__"
_NAME = r"[^\W\d]\w*"
_TARGET = rf"{_NAME}(?:\.{_NAME})*"
# `a = %magic ...`, `a, b.c = !command`: assignment targets made of names, as IPython's
# MagicAssign and SystemAssign find them (the first `=` outside brackets, then the escape).
_ASSIGN = re.compile(rf"^(\s*{_TARGET}(?:\s*,\s*{_TARGET})*\s*=\s*)([%!])(.*)$")
# Lines IPython may read as its syntax where the rewrite here does not: help (`x?`, `?x`),
# autocall escapes (`/f`, `,f`, `;f`), an escape after another kind of assignment target.
_OTHER = re.compile(r"^\s*[?/,;]|\?\s*$|=\s*[%!]")
# Characters that end a line for str.splitlines() (and so for IPython) but not for Python.
_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# Prompts pasted from a console, which IPython strips (doctest `>>>`, IPython's `In [1]:`).
_PROMPT = re.compile(r"^\s*>>>|^((\[nav\]|\[ins\])? )?In \[\d+\]: |^\s*\.{3,}: ?")


def to_ipython(lines: list[str]) -> list[str]:
    """The cell's lines as IPython turns them into Python before running them.

    Line i of the result is line i of `lines` (IPython drops leading blank lines and joins
    continued escapes; both are kept in place here). A cell magic is not handled here.
    """
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return lines
    body = lines[first:]
    if body[0][:1] in (" ", "\t"):
        body = textwrap.dedent("\n".join(body)).split("\n")
    if _PROMPT.match(body[0]) or (len(body) > 1 and _PROMPT.match(body[1])) or any(
        ">>>" in line and _PROMPT.match(line) for line in body
    ):
        converted = None
    else:
        converted = fast_path(body)
    if converted is None:
        converted = with_ipython(body)
    return lines[:first] + automagic(converted)


# IPython's automagic: a line magic or a shell alias called without its `%` (`ls data/`,
# `rm old.csv`, `cd ..`, `pip install x`). These are the names it finds that way on POSIX.
AUTOMAGIC = frozenset((
    # IPython's default shell aliases
    "cat", "clear", "cp", "ldir", "less", "lf", "lk", "ll", "ls", "lx", "man", "mkdir", "more",
    "mv", "rm", "rmdir",
    # line magics a notebook line calls bare
    "alias", "autoreload", "bookmark", "cd", "conda", "config", "dhist", "dirs", "env",
    "history", "load", "load_ext", "lsmagic", "macro", "mamba", "matplotlib", "pinfo", "pip",
    "popd", "prun", "psearch", "pushd", "pwd", "pylab", "recall", "rehashx", "reload_ext",
    "rerun", "reset", "run", "save", "store", "time", "timeit", "unalias", "who", "who_ls",
    "whos", "xmode",
))
# After the name and a space, what makes the line Python for IPython, not a magic call (its
# PythonOpsChecker): an operator, an assignment, a call.
_AUTOMAGIC_LINE = re.compile(rf"^(\s*)({_NAME})(?:\s+([^\s!=()<>,+*/%^&|].*)?)?$")


def automagic(lines: list[str]) -> list[str]:
    """A cell Python cannot compile because a line calls a magic or alias without its `%`
    (IPython runs it as the magic, when automagic is on, as it is by default): the lines
    written that way become the magic's call. Only when the cell then compiles: any other
    syntax error stays the cell's, as it fails in IPython too."""
    calls = [_automagic_call(line) for line in lines]
    if not any(calls) or _compiles(lines):
        return lines
    out = [call or line for call, line in zip(calls, lines, strict=True)]
    return out if _compiles(out) else lines


def _automagic_call(line: str) -> str | None:
    match = _AUTOMAGIC_LINE.match(line)
    if match is None or match.group(2) not in AUTOMAGIC:
        return None
    indent, name, rest = match.groups()
    return indent + _escaped(f"%{name} {rest or ''}".rstrip())


def _compiles(lines: list[str]) -> bool:
    try:
        ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def fast_path(lines: list[str]) -> list[str] | None:
    """IPython's rewrite of the common escapes, or None when IPython itself must decide."""
    out = list(lines)
    probe = list(lines)
    starts: dict[int, int] = {}  # line index -> UTF-8 column where the probe call must start
    other = False
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped:
            continue
        if stripped[0] in "%!":
            if stripped[:2] in ("%%", "%=", "!=") or line.rstrip().endswith("\\"):
                return None
            indent = line[: len(line) - len(stripped)]
            out[i] = indent + _escaped(stripped.rstrip())
            probe[i] = indent + _PROBE + "()"
            starts[i] = len(indent.encode())
            continue
        match = _ASSIGN.match(line)
        if match is None:
            other = other or bool(_OTHER.search(line))
            continue
        target, escape, rest = match.groups()
        continued = line.rstrip().endswith("\\")
        if continued or (escape == "%" and not re.match(rf"\s*{_NAME}", rest)) or (
                escape == "!" and rest.startswith("=")):
            return None
        command = (escape + rest).rstrip()[1:]
        if escape == "%":
            name, _, args = command.partition(" ")
            out[i] = f"{target}get_ipython().run_line_magic({name!r}, {args!r})"
        else:
            out[i] = f"{target}get_ipython().getoutput({command!r})"
        probe[i] = target + _PROBE + "()"
        starts[i] = len(target.encode())
    if not starts and not other:
        return lines
    try:
        tree = ast.parse("\n".join(probe))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return out if _probes_are_statements(tree, starts) else None


def _escaped(text: str) -> str:
    """`%name args`, `!cmd`, `!!cmd` -> the call IPython makes (as its EscapedCommand does)."""
    if text.startswith("!!"):
        return f"get_ipython().getoutput({text[2:]!r})"
    if text.startswith("!"):
        return f"get_ipython().system({text[1:]!r})"
    name, _, args = text[1:].partition(" ")
    return f"get_ipython().run_line_magic({name!r}, {args!r})"


def _probes_are_statements(tree: ast.Module, starts: dict[int, int]) -> bool:
    """Every escape stood at the start of a statement: its probe is a whole statement (not
    part of an expression continued from above, nor text inside a string)."""
    found: dict[int, int] = {}
    names = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == _PROBE:
            names += 1
        if isinstance(node, ast.Expr) or (isinstance(node, ast.Assign) and len(node.targets) == 1):
            value = node.value
            if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                    and value.func.id == _PROBE and not value.args and not value.keywords
                    and value.lineno == value.end_lineno):
                found[value.lineno - 1] = value.col_offset
    return names == len(starts) and found == starts


def with_ipython(lines: list[str]) -> list[str]:
    """IPython's own transformation, aligned back onto the cell's lines.

    IPython splits a cell with str.splitlines(), so a form feed or U+2028 inside a string
    literal would end its line there; they are hidden from it and put back, so lines stay
    Python's lines.
    """
    source = "\n".join(lines)
    hidden = {char: chr(0xF0000 + i) for i, char in enumerate(sorted(set(
        _LINE_BREAKS.findall(source))))}
    if any(stand_in in source for stand_in in hidden.values()):
        return lines  # the stand-ins are taken (private use characters): leave the cell as is
    for char, stand_in in hidden.items():
        source = source.replace(char, stand_in)
    try:
        text = reference_transform(source)
    except Exception:  # IPython raises on input it cannot make sense of; Python will report it
        return lines
    for char, stand_in in hidden.items():
        text = text.replace(stand_in, char)
    return _align(lines, text.split("\n"))


def _align(source: list[str], transformed: list[str]) -> list[str]:
    """Put back the lines IPython folds into an escape continued with a backslash."""
    aligned: list[str] = []
    i = j = 0
    while i < len(source):
        line = source[i]
        aligned.append(transformed[j] if j < len(transformed) else "")
        changed = j < len(transformed) and transformed[j] != line
        i, j = i + 1, j + 1
        while changed and line.endswith("\\") and i < len(source):
            line = source[i]
            aligned.append("")
            i += 1
    return aligned


def reference_transform(source: str) -> str:
    """IPython's `TransformerManager().transform_cell(source)`."""
    return _transformer()(source)


@cache
def _transformer() -> Callable[[str], str]:
    from IPython.core.inputtransformer2 import TransformerManager

    manager = TransformerManager()
    transform_cell: Callable[[str], str] = manager.transform_cell
    return transform_cell
