"""Helpers shared by the tests: paths, in-memory notebooks, graph shortcuts."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from nb2pipe.model import Cell, Notebook, StepGraph
from nb2pipe.pipeline import notebook_graph
from nb2pipe.runtime.manifest import Manifest

NOTEBOOKS = Path(__file__).parent / "notebooks"
EXAMPLES = Path(__file__).parent.parent / "examples"


def cells(*specs: Any) -> Notebook:
    """`cells("a = 1", ("b = a", "step:two"), md("# x"))` -> an in-memory Notebook."""
    built = []
    for index, spec in enumerate(specs, start=1):
        if isinstance(spec, Cell):
            built.append(Cell(index, f"c{index}", spec.cell_type, spec.source, spec.tags))
            continue
        source, *tags = (spec,) if isinstance(spec, str) else spec
        built.append(Cell(index, f"c{index}", "code", source, tuple(tags)))
    return Notebook(path=Path("test.ipynb"), cells=tuple(built))


def md(source: str) -> Cell:
    return Cell(0, "", "markdown", source)


def graph_of(*specs: Any, split: str = "tags") -> StepGraph:
    return notebook_graph(cells(*specs), split)


def edges(graph: StepGraph) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(e.source, e.target, e.variables) for e in graph.edges}


def codes(graph: StepGraph) -> list[str]:
    return [d.code for d in graph.diagnostics]


def match_golden(actual: str, golden: Path, update: bool) -> None:
    """`actual` must be what the golden file holds. Only --update-golden writes it: a missing
    golden file fails, so a new case is reviewed before it becomes the expectation."""
    if update:
        golden.write_text(actual, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing: run pytest --update-golden and review it"
    assert actual == golden.read_text(encoding="utf-8")


def write_notebook(path: Path, *specs: Any) -> Path:
    """Write a real .ipynb: each spec is a source string or (source, tag, ...)."""
    import json

    cells_json = []
    for index, spec in enumerate(specs, start=1):
        source, *tags = (spec,) if isinstance(spec, str) else spec
        cells_json.append({"cell_type": "code", "id": f"c{index}", "execution_count": None,
                           "metadata": {"tags": list(tags)} if tags else {}, "outputs": [],
                           "source": source})
    path.write_text(json.dumps({
        "cells": cells_json, "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                    "display_name": "Python 3"},
                     "language_info": {"name": "python"}}}))
    return path


@contextmanager
def project_modules(project: Path) -> Iterator[tuple[ModuleType, ModuleType]]:
    """Import a generated project's steps.py and flow.py (with its nb2pipe_runtime), as Prefect
    and `nb2pipe run` do: each project has its own `steps`, `flow` and runtime copy."""
    from nb2pipe.execute.engine import load_flow

    flow = load_flow(project)
    try:
        yield sys.modules["steps"], flow
    finally:
        if str(project) in sys.path:
            sys.path.remove(str(project))


def manifest_of(steps: dict[str, list[int]], *, notebook: str = "n.ipynb", flow: str = "n",
                edges: tuple[tuple[str, str], ...] = (),
                parameters: dict[str, Any] | None = None) -> Manifest:
    """A pipeline.json for a test: the steps (name -> cells, in order), the edges between
    them and the parameters (name -> default) it names; every other field empty."""
    from nb2pipe.runtime import manifest

    settings = manifest.StepSettings(0, None, True, {})
    return manifest.Manifest(
        nb2pipe="0", notebook=notebook, source_sha256="",
        options=manifest.ConvertOptions("tags", False, False), workdir=".",
        flow=manifest.FlowEntry(flow, flow, f"flow.py:{flow}"),
        parameters=tuple(manifest.ParameterEntry(name, "str", default, None, 1, 1, name)
                         for name, default in (parameters or {}).items()),
        steps=tuple(manifest.StepEntry(name, name, name, tuple(cells), (), (), (), (), (), (),
                                       (), False, False, settings, "", (), ())
                    for name, cells in steps.items()),
        order=tuple(steps), edges=tuple(manifest.EdgeEntry(s, t, ()) for s, t in edges),
        kernel="python3")


# Python started from a script's background job (`cmd &` without job control) ignores SIGINT,
# and what it starts inherits that; a terminal's foreground command has Ctrl-C's default action.
_AS_FROM_A_TERMINAL = ("import os, signal, sys\n"
                       "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
                       "os.execv(sys.argv[1], sys.argv[1:])")


def as_from_a_terminal(command: list[str]) -> list[str]:
    """`command` run with SIGINT's default action, as a terminal runs it, however the tests
    themselves were started (the same process: it replaces itself with `command`)."""
    return [sys.executable, "-c", _AS_FROM_A_TERMINAL, *command]
