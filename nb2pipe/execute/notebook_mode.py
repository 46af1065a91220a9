"""Notebook mode: each step runs as its own papermill-parameterised notebook.

The step notebook holds the step's own cells as written (magics, plots and all), preceded by the
code it needs from other cells (imports, functions) and a cell loading its inputs; papermill
injects the parameters. The executed notebook is kept with the run, outputs and plots included.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from pathlib import Path
from typing import Any

from nb2pipe.execute.job import Job
from nb2pipe.execute.papermill import NotebookFailure
from nb2pipe.runtime import errors as cells
from nb2pipe.runtime import values

_VALUES = "_nb2pipe_values"


def run_step_notebook(job: Job, arguments: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Run the step's notebook; returns its outputs and the executed notebook's path."""
    from nb2pipe.execute.papermill import run_notebook
    from nb2pipe.pipeline import analyze_notebook

    graph = analyze_notebook(job.notebook, job.split)
    node = graph.step(job.step)
    source = {c.index: c for c in graph.notebook.cells}
    with tempfile.TemporaryDirectory(prefix=f"nb2pipe-{job.step}-") as scratch:
        folder = Path(scratch)
        inputs = {name: values.dump(str(folder / "in"), name, value)
                  for name, value in arguments.items() if name not in job.parameters}
        notebook_cells = [_cell(_setup(), "setup")]
        notebook_cells.append(_cell("\n".join(f"{k} = {v!r}" for k, v in
                                              sorted(job.parameters.items())) or "pass",
                                    "parameters", tags=["parameters"]))
        notebook_cells.append(_cell(_load_inputs(folder / "in", inputs), "inputs"))
        seen: set[tuple[int, int]] = set()
        for entity in node.code:
            span = (entity.span.cell, entity.span.start)
            if entity.span.cell in node.cells or entity.span.start == 0 or span in seen:
                continue
            seen.add(span)
            lines = source[entity.span.cell].source.splitlines()
            notebook_cells.append(_cell("\n".join(lines[entity.span.start - 1:entity.span.end]),
                                        f"code-{entity.span.cell}-{entity.span.start}",
                                        origin=entity.span.cell))
        for index in node.cells:
            notebook_cells.append(_cell(source[index].source, f"cell-{index}", origin=index))
        notebook_cells.append(_cell(_save_outputs(folder / "out", job.returns), "outputs"))
        document = {"cells": notebook_cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
            "kernelspec": {"name": graph.notebook.kernel_name, "language": "python",
                           "display_name": "Python 3"}, "language_info": {"name": "python"}}}
        step_notebook = folder / f"{job.step}.ipynb"
        step_notebook.write_text(json.dumps(document), encoding="utf-8")
        executed = Path(job.run_dir) / "notebooks" / f"{job.step}.ipynb"
        executed.parent.mkdir(parents=True, exist_ok=True)
        failure = run_notebook(step_notebook, executed, Path(job.workdir),
                               graph.notebook.kernel_name, job.parameters)
        if failure is not None:
            raise _step_error(job, executed, failure)
        return values.load(str(folder / "out")), str(executed)


def _cell(code: str, cell_id: str, tags: list[str] | None = None,
          origin: int | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"tags": tags or []}
    if origin is not None:
        metadata["nb2pipe"] = {"cell": origin}
    return {"cell_type": "code", "id": cell_id, "metadata": metadata, "execution_count": None,
            "outputs": [], "source": code}


def _setup() -> str:
    return (f"import types as _nb2pipe_types\n{_VALUES} = _nb2pipe_types.ModuleType({_VALUES!r})\n"
            f"exec({inspect.getsource(values)!r}, {_VALUES}.__dict__)")


def _load_inputs(folder: Path, files: dict[str, str]) -> str:
    lines = [f"{name} = {_VALUES}.load_file({str(folder / file)!r})"
             for name, file in sorted(files.items())]
    return "\n".join(lines) or "pass"


def _save_outputs(folder: Path, names: tuple[str, ...]) -> str:
    return "\n".join(f"{_VALUES}.dump({str(folder)!r}, {name!r}, {name})" for name in names) or (
        "pass")


def _step_error(job: Job, executed: Path, failure: NotebookFailure) -> cells.StepError:
    """The failing cell of the step notebook -> the user's cell (recorded in its metadata)."""
    cell = None
    try:
        document = json.loads(executed.read_text(encoding="utf-8"))
        failing = next(c for c in document["cells"] if c.get("id") == failure.cell_id)
        cell = failing.get("metadata", {}).get("nb2pipe", {}).get("cell")
    except (OSError, ValueError, StopIteration, KeyError, TypeError):
        pass
    line = failure.line
    notebook = Path(job.notebook).name
    where = f"cell {cell}, line {line}" if cell and line else (f"cell {cell}" if cell else "")
    prefix = f"{notebook}: {where} (step '{job.step}')" if where else (
        f"{notebook}: step '{job.step}' failed")
    deterministic = failure.ename in {e.__name__ for e in cells.BUG_ERRORS}
    return cells.StepError(f"{prefix}: {failure.error}\n    executed notebook: {executed}",
                           job.step, cell, line, failure.error, deterministic)
