"""The JSON documents the server sends to JupyterLab, built from the library's own results.

The TypeScript types in labextension/src/types.ts mirror these; the frontend fixtures in
labextension/test/fixtures are produced from them (tests/test_server.py keeps them current).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from nb2pipe.diagnostics import has_errors
from nb2pipe.model import Notebook, StepGraph
from nb2pipe.notebook.reader import ReadError, parse_notebook, read_notebook
from nb2pipe.pipeline import notebook_graph
from nb2pipe.render import check_json
from nb2pipe.server.layout import layout
from nb2pipe.server.paths import relative

SPLITS = ("tags", "headings", "cells")


def analyze(root: str | Path, notebook: Path, split: str = "tags",
            content: dict[str, Any] | None = None) -> dict[str, Any]:
    """The analysis of a notebook file, or of `content` (the notebook JSON as the editor
    holds it, not yet saved) under that file's name. Raises ReadError."""
    api_path = relative(root, notebook)
    if content is None:
        parsed = _read(notebook, api_path)
    else:  # the editor's unsaved notebook, named as the file it will be saved to
        parsed = parse_notebook(json.dumps(content), api_path)
    graph = notebook_graph(dataclasses.replace(parsed, path=Path(api_path)), split)
    return analysis_document(root, notebook, graph)


def _read(path: Path, api_path: str) -> Notebook:
    try:
        return read_notebook(path)
    except ReadError as exc:  # name the file as the user sees it, not the server's disk path
        raise ReadError(str(exc).replace(str(path), api_path, 1)) from None


def analysis_document(root: str | Path, notebook: Path, graph: StepGraph) -> dict[str, Any]:
    return {
        "path": relative(root, notebook),
        "ok": not has_errors(graph.diagnostics),
        "check": check_json(graph),
        "layout": layout(graph),
        "default_output": relative(root, default_output(notebook)),
    }


def default_output(notebook: Path) -> Path:
    """Where `nb2pipe convert` writes when no folder is given: next to the notebook."""
    from nb2pipe.convert import default_output as convert_default

    return convert_default(notebook)


def export_document(root: str | Path, result: Any) -> dict[str, Any]:
    """A `nb2pipe.convert.ConvertResult` for the frontend: paths as the Contents API names them."""
    output = Path(result.output).resolve()
    written = sorted(str(p) for p in result.written)
    unchanged = sorted(str(p) for p in getattr(result, "unchanged", ()))
    return {
        "ok": bool(result.ok),
        "output": relative(root, output),
        "written": [relative(root, output / p) for p in written],
        "unchanged": [relative(root, output / p) for p in unchanged],
        "flow": relative(root, output / "flow.py") if "flow.py" in written + unchanged else None,
        "diagnostics": [d.to_json() for d in result.diagnostics],
    }
