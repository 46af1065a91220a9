"""Shared test helpers: in-memory notebooks and the --update-golden flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nb2pipe.graph import StepGraph
from nb2pipe.model import Cell, Notebook
from nb2pipe.pipeline import notebook_graph

NOTEBOOKS = Path(__file__).parent / "notebooks"
EXAMPLES = Path(__file__).parent.parent / "examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the golden files from the current output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


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
