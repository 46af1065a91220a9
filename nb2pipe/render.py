"""StepGraph -> text for people and machines: check reports and graph drawings."""

from __future__ import annotations

import json
from typing import Any

from nb2pipe.model import Diagnostic, Severity, StepGraph

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
        "parameters": [
            {"name": p.name, "type": p.type, "default": p.default}
            for p in sorted(graph.parameters, key=lambda p: p.name)
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


def render_check(graph: StepGraph, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(check_json(graph), indent=2)
    if fmt == "github":
        lines = [github_annotation(d, graph) for d in graph.diagnostics]
        return "\n".join([*lines, summary(graph)])
    return "\n".join([*(diagnostic_text(d) for d in graph.diagnostics), summary(graph)])


def diagnostic_text(d: Diagnostic) -> str:
    where = ", ".join(
        part for part in (
            f"cell {d.cell}" if d.cell is not None else "",
            f"line {d.line}" if d.line is not None else "",
        ) if part
    )
    text = f"{d.path}: {where + ': ' if where else ''}{d.code} {d.severity.value}: {d.message}"
    return text + (f"\n    hint: {d.hint}" if d.hint else "")


def summary(graph: StepGraph) -> str:
    errors = sum(d.severity is Severity.ERROR for d in graph.diagnostics)
    warnings = len(graph.diagnostics) - errors
    steps = ", ".join(s.name for s in graph.steps) or "none"
    return (
        f"{graph.notebook.display_path}: {len(graph.steps)} steps ({steps}), "
        f"{len(graph.edges)} edges, {len(graph.parameters)} parameters; "
        f"{_count(errors, 'error')}, {_count(warnings, 'warning')}"
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def github_annotation(d: Diagnostic, graph: StepGraph) -> str:
    """A GitHub Actions workflow command; the line is the notebook file's own line."""
    properties = [f"file={_escape_property(d.path)}", f"title={d.code}"]
    cell = graph.notebook.cells[d.cell - 1] if d.cell else None
    if cell is not None and cell.json_line is not None:
        properties.insert(1, f"line={cell.json_line + max((d.line or 1) - 1, 0)}")
    where = f"cell {d.cell}, line {d.line}: " if d.cell and d.line else (
        f"cell {d.cell}: " if d.cell else "")
    message = where + d.message + (f" (hint: {d.hint})" if d.hint else "")
    return f"::{d.severity.value} {','.join(properties)}::{_escape_data(message)}"


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
