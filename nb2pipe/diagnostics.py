"""Diagnostic codes (one table) and helpers to build, sort and suggest."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from nb2pipe.model import Cell, Diagnostic, Severity, split_lines

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    title: str


CODES: dict[str, Code] = {
    c.code: c
    for c in (
        # NB1xx: tags, steps, parameters, cells
        Code("NB101", E, "invalid step name"),
        Code("NB102", E, "duplicate step name"),
        Code("NB103", W, "unknown tag that looks like an nb2pipe tag"),
        Code("NB104", E, "after: names an unknown step"),
        Code("NB105", E, "parameters cell holds something other than literal assignments"),
        Code("NB106", W, "more than one parameters cell"),
        Code("NB107", E, "invalid tag value"),
        Code("NB108", E, "cell does not parse"),
        Code("NB109", W, "IPython magic with no pipeline equivalent"),
        Code("NB110", W, "step has no code"),
        Code("NB111", E, "no step runs code"),
        Code("NB112", E, "Python 2 notebook"),
        Code("NB113", W, "parameter renamed in the flow"),
        # NB2xx: dependency errors
        Code("NB201", E, "undefined name"),
        Code("NB202", E, "dependency cycle"),
        Code("NB203", E, "import *, %run or dynamic code hides where a needed name comes from"),
        Code("NB204", E, "IPython output history (_, Out[N], In) used"),
        # NB3xx: dependency warnings
        Code("NB301", W, "del of a name a later step needs"),
        Code("NB302", W, "global statement"),
        Code("NB303", W, "exec, eval or globals()"),
        Code("NB304", W, "value unlikely to cross a process boundary"),
        Code("NB305", W, "file written in one step and read in another without a dependency"),
        Code("NB306", INFO, "display-only cell inside a step (its output goes to the report)"),
        Code("NB307", W, "global random seed"),
        Code("NB308", W, "a function or class made a value reads notebook values when it runs"),
        Code("NB309", W, "a function reads a name the notebook never defines"),
        Code("NB310", W, "a formula or query string built at run time: names it reads unknown"),
    )
}


def diagnostic(
    code: str,
    message: str,
    *,
    path: str,
    cell: Cell | None = None,
    line: int | None = None,
    hint: str | None = None,
) -> Diagnostic:
    if cell is not None and line is not None:
        source = split_lines(cell.source)
        if line > len(source):  # the call a `%%timeit` cell ends with: the magic's own line
            line = next((n for n, text in enumerate(source, start=1) if text.strip()), 1)
    return Diagnostic(
        code=code,
        severity=CODES[code].severity,
        message=message,
        path=path,
        cell=cell.index if cell else None,
        cell_id=cell.id if cell else None,
        line=line,
        hint=hint,
    )


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    unique = {(d.code, d.cell, d.line, d.message): d for d in diagnostics}
    return tuple(sorted(unique.values(), key=Diagnostic.sort_key))


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def problems(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """The errors and warnings: what a person may have to act on (not the information)."""
    return tuple(d for d in diagnostics if d.severity is not Severity.INFO)


def close_match(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=cutoff)
    return matches[0] if matches else None
