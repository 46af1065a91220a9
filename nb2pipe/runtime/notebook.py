"""Notebook mode (NB2PIPE_MODE=notebook): each step runs as its own papermill notebook.

The step notebook holds the step's cells as written (magics, plots and all), preceded by the code
it needs from other cells (imports, functions: their cell spans are in pipeline.json) and a cell
reading its inputs; papermill injects the parameters. The executed notebook is kept, outputs and
plots included. Needs papermill and a Jupyter kernel where the flow runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import errors, project, values
from .calls import Clock, Hook, StepCall
from .manifest import Manifest

ALIAS = "_nb2pipe_values"


@dataclass(frozen=True)
class NotebookFailure:
    cell_id: str | None  # id of the failing cell in the executed notebook
    line: int | None  # line in that cell, from IPython's traceback
    ename: str
    evalue: str

    @property
    def error(self) -> str:
        return f"{self.ename}: {self.evalue}"


def in_notebook(call: StepCall, hooks: Sequence[Hook]) -> None:
    """The runner of notebook mode: the step's cells run as the step notebook; its outputs
    and its executed notebook are the call's. (`hooks` watch code in this process only.)"""
    call.started = time.time()
    clock = Clock()
    try:
        with clock.running():
            call.outputs, call.notebook = run_notebook_step(call.step, call.arguments)
    except errors.StepError as failure:
        failure.seconds = clock.seconds
        raise
    finally:
        call.seconds = clock.seconds


def run_notebook_step(name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Run the step's notebook; returns its outputs and the executed notebook's path."""
    manifest = project.manifest()
    entry = project.step(name)
    notebook = project.notebook(manifest)
    cells = _notebook_cells(notebook, manifest)
    parameters = {p: arguments[p] for p in entry.parameters}
    with tempfile.TemporaryDirectory(prefix=f"nb2pipe-{name}-") as scratch:
        folder = Path(scratch)
        inputs = {n: values.dump(str(folder / "in"), n, v)
                  for n, v in arguments.items() if n not in parameters}
        document_cells = [
            _cell(setup_code(), "setup"),
            _cell("\n".join(f"{k} = {v!r}" for k, v in sorted(parameters.items())) or "pass",
                  "parameters", tags=["parameters"]),
            _cell("\n".join(f"{n} = {ALIAS}.load_file({str(folder / 'in' / f)!r})"
                            for n, f in sorted(inputs.items())) or "pass", "inputs"),
        ]
        for cell, start, end in entry.notebook_code:  # code it needs from other cells
            lines = cells[cell].split("\n")
            document_cells.append(_cell("\n".join(lines[start - 1:end]),
                                        f"code-{cell}-{start}", origin=cell))
        for cell in entry.cells:
            document_cells.append(_cell(cells[cell], f"cell-{cell}", origin=cell))
        returns = sorted({*entry.outputs, *entry.metrics})
        document_cells.append(_cell("\n".join(
            f"{ALIAS}.dump({str(folder / 'out')!r}, {n!r}, {n})" for n in returns) or "pass",
            "outputs"))
        document = {"cells": document_cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
            "kernelspec": {"name": KERNEL, "language": "python", "display_name": KERNEL},
            "language_info": {"name": "python"}}}
        step_notebook = folder / f"{name}.ipynb"
        step_notebook.write_text(json.dumps(document), encoding="utf-8")
        executed = executed_path(name)
        executed.parent.mkdir(parents=True, exist_ok=True)
        failure = run_notebook(step_notebook, executed, project.workdir(), parameters)
        if failure is not None:
            raise _step_error(manifest, name, executed, failure)
        return values.load(str(folder / "out")), str(executed)


def executed_path(step: str) -> Path:
    """Where the step's executed notebook is kept."""
    return _run_dir() / "notebooks" / f"{step}.ipynb"


def executed_outputs(executed: Path) -> dict[int, list[dict[str, Any]]]:
    """The outputs of the user's cells in an executed step notebook, by cell (for the
    report); empty when the notebook is not there."""
    try:
        document = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[int, list[dict[str, Any]]] = {}
    for cell in document.get("cells", []):
        origin = cell.get("metadata", {}).get("nb2pipe", {}).get("cell")
        if cell.get("cell_type") == "code" and str(cell.get("id", "")).startswith("cell-") \
                and isinstance(origin, int):
            found[origin] = list(cell.get("outputs", []))
    return found


def setup_code(modules: dict[str, str] | None = None) -> str:
    """Code for a kernel: import modules of this package (found by its folder, whatever it is
    called) under private names, {alias: module}; by default `values` as ALIAS."""
    package = __package__ or "nb2pipe_runtime"
    top = Path(__file__).resolve().parents[package.count(".") + 1]
    lines = ["import importlib as _nb2pipe_importlib", "import sys as _nb2pipe_sys",
             f"_nb2pipe_sys.path.insert(0, {str(top)!r})"]
    lines += [f"{alias} = _nb2pipe_importlib.import_module({f'{package}.{module}'!r})"
              for alias, module in (modules or {ALIAS: "values"}).items()]
    return "\n".join(lines)


def _notebook_cells(path: Path, manifest: Manifest) -> dict[int, str]:
    """The notebook's cell sources by position; it must be the notebook the project was
    converted from (the cell spans in pipeline.json point into it)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    cells: dict[int, str] = {}
    digest = hashlib.sha256()
    for index, cell in enumerate(document.get("cells", []), start=1):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        tags = cell.get("metadata", {}).get("tags", [])
        digest.update(json.dumps([cell.get("cell_type"), source, list(tags)]).encode())
        cells[index] = source
    if manifest.source_sha256 != digest.hexdigest():
        raise errors.StepError(f"{path}: the notebook changed since the project was converted; "
                               "convert it again (nb2pipe convert)")
    return cells


def _run_dir() -> Path:
    configured = os.environ.get("NB2PIPE_RUN_DIR")
    if configured:
        return Path(configured)
    from prefect.context import TaskRunContext

    from .store import cache_folder

    context = TaskRunContext.get()
    run = context.task_run.flow_run_id if context else None
    return cache_folder() / "notebooks" / str(run or os.getpid())


def _cell(code: str, cell_id: str, tags: list[str] | None = None,
          origin: int | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"tags": tags or []}
    if origin is not None:
        metadata["nb2pipe"] = {"cell": origin}
    return {"cell_type": "code", "id": cell_id, "metadata": metadata, "execution_count": None,
            "outputs": [], "source": code}


KERNEL = "nb2pipe-python"  # the kernel every notebook runs with here: this Python


def run_notebook(notebook: Path, executed: Path, cwd: Path,
                 parameters: dict[str, Any] | None = None,
                 environment: dict[str, str] | None = None) -> NotebookFailure | None:
    """Execute `notebook` into `executed` with papermill, in its own process: papermill's `cwd=`
    would change the working directory of this whole process. None when every cell ran.
    `environment`: variables set for papermill and so for the kernel, which inherits them.

    The kernel is this Python, whatever kernel the notebook names ("python2", a conda
    environment of its author's machine): the steps run in this Python, so the notebook they
    are compared with must too."""
    with tempfile.TemporaryDirectory(prefix="nb2pipe-kernel-") as folder:
        spec = Path(folder) / "kernels" / KERNEL
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python (nb2pipe)", "language": "python"}), encoding="utf-8")
        paths = [folder, *filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep))]
        env = {**os.environ, **(environment or {}), "JUPYTER_PATH": os.pathsep.join(paths)}
        command = [sys.executable, "-m", "papermill", str(notebook), str(executed),
                   "--cwd", str(cwd), "--kernel", KERNEL, "--language", "python",
                   "--no-progress-bar", "--log-level", "ERROR"]
        if parameters:
            command += ["-y", json.dumps(parameters)]  # JSON is YAML
        finished = subprocess.run(command, capture_output=True, text=True, env=env)
    if finished.returncode == 0:
        return None
    failure = _failure(executed)
    if failure is None:  # papermill itself failed: no kernel, unreadable notebook
        tail = (finished.stderr.strip().splitlines() or ["papermill failed"])[-1]
        return NotebookFailure(None, None, "PapermillError", tail)
    return failure


def _failure(executed: Path) -> NotebookFailure | None:
    """The cell holding the error output of an executed notebook."""
    try:
        document = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for cell in document.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") == "error":
                text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.get("traceback", [])))
                lines = re.findall(r"Cell In\[\d+\], line (\d+)", text)
                return NotebookFailure(cell.get("id"), int(lines[0]) if lines else None,
                                       output.get("ename", "Error"), output.get("evalue", ""))
    return None


def _step_error(manifest: Manifest, step: str, executed: Path,
                failure: NotebookFailure) -> errors.StepError:
    """The failing cell of the step notebook -> the user's cell (kept in its metadata)."""
    cell = None
    try:
        document = json.loads(executed.read_text(encoding="utf-8"))
        failing = next(c for c in document["cells"] if c.get("id") == failure.cell_id)
        cell = failing.get("metadata", {}).get("nb2pipe", {}).get("cell")
    except (OSError, ValueError, StopIteration, KeyError, TypeError):
        pass
    line = failure.line
    found = (cell, line, "") if cell and line else None
    message = errors.describe(manifest, step, failure.error, found)
    if cell and not line:
        message = message.replace(f"step '{step}' failed", f"cell {cell} (step '{step}')")
    deterministic = failure.ename in {e.__name__ for e in errors.BUG_ERRORS}
    return errors.StepError(f"{message}\n    executed notebook: {executed}", step, cell, line,
                            failure.error, deterministic)
