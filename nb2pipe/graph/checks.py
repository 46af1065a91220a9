"""Warnings that need the finished graph: values that cannot cross a process boundary, and files
that one step writes and another reads with no dependency between them."""

from __future__ import annotations

from nb2pipe.diagnostics import diagnostic
from nb2pipe.model import Cell, Diagnostic, Fact, StepGraph


def graph_diagnostics(graph: StepGraph) -> list[Diagnostic]:
    return [*_unserializable(graph), *_file_handoffs(graph)]


def _facts(graph: StepGraph, step: str, kind: str) -> list[Fact]:
    node = graph.step(step)
    return [f for c in node.cells for f in graph.symbols[c].facts if f.kind == kind]


def _cell(graph: StepGraph, index: int) -> Cell:
    return graph.notebook.cells[index - 1]


def _unserializable(graph: StepGraph) -> list[Diagnostic]:
    found = []
    for node in graph.steps:
        for fact in _facts(graph, node.name, "unserializable"):
            users = graph.consumers(node.name, fact.name or "")
            if not users:
                continue
            found.append(diagnostic(
                "NB304",
                f"'{fact.name}' ({fact.message.split(' holds ')[-1]}) is passed from step "
                f"'{node.name}' to {', '.join(repr(u) for u in users)}; it cannot be pickled, so "
                "it cannot cross processes or be cached",
                path=graph.notebook.display_path, cell=_cell(graph, fact.cell), line=fact.line,
                hint="open or create it in the step that uses it, or pass what it yields",
            ))
    return found


def _file_handoffs(graph: StepGraph) -> list[Diagnostic]:
    found = []
    writers: dict[str, tuple[str, Fact]] = {}
    for node in graph.steps:  # notebook order
        for fact in _facts(graph, node.name, "read"):
            if fact.path is None or fact.path not in writers:
                continue
            writer, written = writers[fact.path]
            if writer == node.name or writer in graph.ancestors(node.name):
                continue
            found.append(diagnostic(
                "NB305",
                f"step '{node.name}' reads '{fact.path}', which step '{writer}' writes "
                f"(cell {written.cell}, line {written.line}), but '{node.name}' does not depend "
                f"on '{writer}': they may run in either order",
                path=graph.notebook.display_path, cell=_cell(graph, fact.cell), line=fact.line,
                hint=f"add the tag after:{writer} to the first cell of step '{node.name}'",
            ))
        for fact in _facts(graph, node.name, "write"):
            if fact.path is not None:
                writers[fact.path] = (node.name, fact)
    return found

