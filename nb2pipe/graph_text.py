"""StepGraph -> text for people and machines: check reports and graph drawings."""

from __future__ import annotations

import json
from typing import Any

from nb2pipe.diagnostics import problems
from nb2pipe.escape import one_line
from nb2pipe.model import Diagnostic, Notebook, Severity, StepGraph
from nb2pipe.runtime.files import read_bytes

CHECK_FORMATS = ("text", "json", "github")
GRAPH_FORMATS = ("mermaid", "dot", "text")


def check_json(graph: StepGraph) -> dict[str, Any]:
    """The `nb2pipe check --format json` document (also served to JupyterLab)."""
    return {
        "notebook": graph.notebook.display_path,
        "steps": [
            {
                "name": step.name,
                "cells": list(step.cells),
                "uses": list(step.uses),
                "defines": list(step.defines),
                "after": list(step.after),
            }
            for step in graph.steps
        ],
        "edges": [
            {"source": e.source, "target": e.target, "variables": list(e.variables)}
            for e in graph.edges
        ],
        "parameters": [  # in the parameters cell's order; `source`: the default as written
            {"name": p.name, "type": p.type, "default": p.default, "source": p.source}
            for p in graph.parameters
        ],
        "diagnostics": [
            {
                "code": d.code,
                "severity": d.severity.value,
                "message": d.message,
                "cell": d.cell,
                "line": d.line,
                "hint": d.hint,
            }
            for d in graph.diagnostics
        ],
    }


def render_check(graph: StepGraph, fmt: str, hint: str | None = None,
                 show_info: bool = False) -> str:
    """The check report; `hint`: one more line for the person reading it (text and github).
    Information (severity info: nothing to fix) is left out of text and github unless
    `show_info`; the JSON document always holds it."""
    if fmt == "json":
        return json.dumps(check_json(graph), indent=2)
    positions = Positions(graph.notebook)
    shown = graph.diagnostics if show_info else problems(graph.diagnostics)
    if fmt == "github":
        lines = [github_annotation(d, graph, positions) for d in shown]
        notice = [f"::notice file={_escape_property(graph.notebook.display_path)}::"
                  f"{_escape_data(hint)}"] if hint else []
        return "\n".join([*lines, summary(graph, show_info), *notice])
    lines = [diagnostic_text(d, positions.of(d)) for d in shown]
    return "\n".join([*lines, summary(graph, show_info), *([f"hint: {hint}"] if hint else [])])


class Positions:
    """Where a cell's line is in the .ipynb file itself (line, column), so that editors and
    CI annotations jump to it: Jupyter writes one source line per JSON line, the column is
    where that line's code starts inside its JSON string."""

    def __init__(self, notebook: Notebook) -> None:
        self.cells = notebook.cells
        try:
            self.lines = read_bytes(notebook.path).decode("utf-8-sig").split("\n")
        except (OSError, UnicodeDecodeError):
            self.lines = []

    def of(self, d: Diagnostic) -> tuple[int, int]:
        cell = self.cells[d.cell - 1] if d.cell and d.cell <= len(self.cells) else None
        if cell is None or cell.json_line is None:
            return 1, 1
        number = cell.json_line + max((d.line or 1) - 1, 0)
        source = cell.source.split("\n")
        wanted = source[(d.line or 1) - 1] if d.line and d.line <= len(source) else None
        written = self.lines[number - 1] if 0 < number <= len(self.lines) else ""
        quote = written.find('"')
        try:
            value = json.loads(written.strip().rstrip(","))
        except ValueError:
            value = None
        if wanted is None or not isinstance(value, str) or value.rstrip("\n") != wanted:
            return cell.json_line, 1  # not one line per JSON line: the cell's first line
        indent = wanted[:len(wanted) - len(wanted.lstrip())]
        return number, quote + 1 + len(json.dumps(indent)) - 1


def diagnostic_text(d: Diagnostic, position: tuple[int, int] | None = None) -> str:
    """`path:line:col: CODE severity: message (cell N, line L)`, then the hint indented; the
    line and column are the .ipynb file's own (see Positions)."""
    line, column = position or (1, 1)
    where = ", ".join(part for part in (
        f"cell {d.cell}" if d.cell is not None else "",
        f"line {d.line}" if d.line is not None else "",
    ) if part)
    text = (f"{one_line(d.path)}:{line}:{column}: {d.code} {d.severity.value}: "
            f"{one_line(d.message)}" + (f" ({where})" if where else ""))
    return text + (f"\n    hint: {one_line(d.hint)}" if d.hint else "")


def summary(graph: StepGraph, show_info: bool = False) -> str:
    """One line: steps, edges, parameters; errors and warnings, and the notes (information)
    when there are some, saying how to see them when they were left out."""
    errors = sum(d.severity is Severity.ERROR for d in graph.diagnostics)
    warnings = sum(d.severity is Severity.WARNING for d in graph.diagnostics)
    notes = sum(d.severity is Severity.INFO for d in graph.diagnostics)
    steps = ", ".join(s.name for s in graph.steps) or "none"
    counted = f"{_count(errors, 'error')}, {_count(warnings, 'warning')}"
    if notes:
        counted += f", {_count(notes, 'note')}" + ("" if show_info else " (--show-info)")
    return (
        f"{one_line(graph.notebook.display_path)}: {_count(len(graph.steps), 'step')} ({steps}), "
        f"{_count(len(graph.edges), 'edge')}, {_count(len(graph.parameters), 'parameter')}; "
        + counted
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def github_annotation(d: Diagnostic, graph: StepGraph, positions: Positions | None = None
                      ) -> str:
    """A GitHub Actions workflow command; the line is the notebook file's own line."""
    properties = [f"file={_escape_property(d.path)}", f"title={d.code}"]
    cell = graph.notebook.cells[d.cell - 1] if d.cell else None
    if cell is not None and cell.json_line is not None:
        line, column = (positions or Positions(graph.notebook)).of(d)
        properties[1:1] = [f"line={line}", f"col={column}"]
    where = f"cell {d.cell}, line {d.line}: " if d.cell and d.line else (
        f"cell {d.cell}: " if d.cell else "")
    message = where + d.message + (f" (hint: {d.hint})" if d.hint else "")
    level = "notice" if d.severity is Severity.INFO else d.severity.value  # GitHub's word
    return f"::{level} {','.join(properties)}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_graph(graph: StepGraph, fmt: str) -> str:
    if fmt == "mermaid":
        return mermaid(graph)
    if fmt == "dot":
        return dot(graph)
    return text_graph(graph)


def mermaid(graph: StepGraph) -> str:
    lines = ["flowchart TD"]
    lines.extend(f'    {s.name}["{s.name}"]' for s in graph.steps)
    for e in graph.edges:
        if e.variables:
            lines.append(f'    {e.source} -->|"{", ".join(e.variables)}"| {e.target}')
        else:
            lines.append(f"    {e.source} -.-> {e.target}")
    return "\n".join(lines)


def dot(graph: StepGraph) -> str:
    lines = ["digraph pipeline {", "    rankdir=TB;", '    node [shape=box, style=rounded];']
    lines.extend(f'    "{s.name}";' for s in graph.steps)
    for e in graph.edges:
        style = f'label="{", ".join(e.variables)}"' if e.variables else "style=dashed"
        lines.append(f'    "{e.source}" -> "{e.target}" [{style}];')
    lines.append("}")
    return "\n".join(lines)


def text_graph(graph: StepGraph) -> str:
    incoming: dict[str, list[str]] = {s.name: [] for s in graph.steps}
    for e in graph.edges:
        label = f"{e.source} [{', '.join(e.variables)}]" if e.variables else f"{e.source} (after)"
        incoming[e.target].append(label)
    width = max((len(name) for name in graph.order), default=0)
    lines = []
    for name in graph.order:
        sources = incoming.get(name, [])
        lines.append(f"{name:<{width}}  <- {'; '.join(sources)}" if sources else name)
    return "\n".join(lines)
