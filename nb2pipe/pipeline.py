"""The stages composed: notebook -> StepGraph. The CLI and the server both call this."""

from __future__ import annotations

from pathlib import Path

from nb2pipe.analysis import analyze
from nb2pipe.diagnostics import diagnostic
from nb2pipe.graph.build import build_graph
from nb2pipe.model import Notebook, StepGraph
from nb2pipe.notebook.magics import transform_notebook
from nb2pipe.notebook.reader import read_notebook
from nb2pipe.notebook.split import split as split_cells


def analyze_notebook(path: str | Path, split: str = "tags") -> StepGraph:
    """Read the file and build its graph. Raises ReadError for an unreadable file."""
    return notebook_graph(read_notebook(path), split)


def notebook_graph(notebook: Notebook, split: str = "tags") -> StepGraph:
    """Transform, split, analyze, build the graph: pure, no disk."""
    notebook, unsupported = transform_notebook(notebook)
    parts = split_cells(notebook, split)
    analysis = analyze(notebook, parts)
    skipped = {c.index for c in parts.skipped_cells}
    magics = [
        diagnostic("NB109", magic.message, path=notebook.display_path,
                   cell=notebook.cells[index - 1], line=magic.line, hint=magic.hint)
        for index, found in unsupported.items() if index not in skipped
        for magic in found
    ]
    return build_graph(notebook, parts, analysis, extra=magics)
