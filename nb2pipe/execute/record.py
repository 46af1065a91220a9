"""Run the notebook once, for real, and keep what crosses every step boundary.

A copy of the notebook gets a cell before each step's first cell that saves the values the step
reads, and a cell after its last cell that saves the values it returns. papermill runs the copy in
a kernel (in the notebook's folder, like a person would); the user's notebook is never modified.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nb2pipe.exceptions import Nb2pipeError
from nb2pipe.model import StepGraph
from nb2pipe.runtime.files import read_bytes
from nb2pipe.runtime.notebook import setup_code

_SETUP_NAME = "_nb2pipe_values"


class RecordError(Nb2pipeError):
    """The notebook failed while it was being recorded; the message names the cell."""

    exit_code = 1
    label = "nb2pipe: "  # the notebook failed, not nb2pipe
    one_line = False  # it ends with the cell's error as the kernel reported it


def boundary_cells(graph: StepGraph, folder: Path) -> dict[int, list[str]]:
    """Code to run before (negative cell index) and after (positive) cells: saving values."""
    inserts: dict[int, list[str]] = {}
    states = random_states(graph)
    for node in graph.steps:
        inserts.setdefault(-node.cells[0], []).append(
            states + _save(folder / node.name / "inputs", list(node.reads)))
        inserts.setdefault(node.cells[-1], []).append(
            states + _save(folder / node.name / "outputs", list(node.returns)))
    return inserts


def random_states(graph: StepGraph) -> str:
    """Code binding the variables that carry global generators' states in the pipeline to
    their states in the notebook at this point (taking a state does not change it)."""
    getters = {"numpy": "__import__('numpy.random').random.get_state()",
               "random": "__import__('random').getstate()"}
    return "".join(f"{name} = {getters[generator]}\n"
                   for name, generator in graph.random_states)


def _save(folder: Path, names: list[str]) -> str:
    modules = folder.parent.parent / "modules.txt"
    # Saved together, so that values sharing objects (an array and a view of it) share them
    # again when a generated test loads them.
    return (f"_nb2pipe_found = {{_nb2pipe_name: globals()[_nb2pipe_name] for _nb2pipe_name in "
            f"{names!r} if _nb2pipe_name in globals()}}\n"
            f"{_SETUP_NAME}.dump_all({str(folder)!r}, _nb2pipe_found)\n"
            f"for _nb2pipe_value in _nb2pipe_found.values():\n"
            f"    with open({str(modules)!r}, 'a') as _nb2pipe_file:\n"
            f"        _nb2pipe_file.write(type(_nb2pipe_value).__module__.split('.')[0] + "
            f"'\\n')\n"
            f"del _nb2pipe_found")


@contextmanager
def instrumented(graph: StepGraph, inserts: dict[int, list[str]]) -> Iterator[Path]:
    """A temporary copy of the notebook with the extra cells; yields its path."""
    raw = json.loads(read_bytes(graph.notebook.path))  # read as the reader did: no pipe
    setup = setup_code({_SETUP_NAME: "values", "_nb2pipe_fingerprint": "fingerprint"})
    cells = [_code_cell(setup, "nb2pipe-setup")]
    for index, cell in enumerate(raw["cells"], start=1):
        before = inserts.get(-index, [])
        cells.extend(_code_cell(code, f"nb2pipe-before-{index}") for code in before)
        cells.append(cell)
        cells.extend(_code_cell(code, f"nb2pipe-after-{index}") for code in inserts.get(index, []))
    raw["cells"] = cells
    raw.setdefault("metadata", {}).setdefault("kernelspec", {
        "name": graph.notebook.kernel_name, "language": "python", "display_name": "Python 3"})
    raw["metadata"].setdefault("language_info", {"name": "python"})
    with tempfile.TemporaryDirectory(prefix="nb2pipe-record-") as folder:
        path = Path(folder) / graph.notebook.path.name
        path.write_text(json.dumps(raw), encoding="utf-8")
        yield path


def _code_cell(source: str, cell_id: str) -> dict[str, object]:
    return {"cell_type": "code", "id": cell_id, "metadata": {"tags": ["nb2pipe-injected"]},
            "execution_count": None, "outputs": [], "source": source}


def execute(graph: StepGraph, path: Path, parameters: dict[str, object] | None = None,
            environment: dict[str, str] | None = None) -> None:
    """Run a notebook copy with papermill, in the original notebook's folder (`environment`:
    variables the kernel gets besides this process's)."""
    from nb2pipe.runtime.notebook import run_notebook

    failure = run_notebook(path, path.with_suffix(".out.ipynb"),
                           graph.notebook.path.resolve().parent, parameters, environment)
    if failure is not None:
        cell = next((c.index for c in graph.notebook.cells if c.id == failure.cell_id), None)
        where = f"cell {cell}" if cell else "a cell"
        if cell and failure.line:
            where += f", line {failure.line}"
        raise RecordError(f"{graph.notebook.display_path}: {where} failed while the notebook "
                          f"ran: {failure.error}")


def record_fixtures(graph: StepGraph) -> dict[str, bytes]:
    """Run the notebook; return tests/fixtures/STEP/{inputs,outputs}/NAME.ext -> bytes."""
    with tempfile.TemporaryDirectory(prefix="nb2pipe-values-") as folder:
        root = Path(folder)
        with instrumented(graph, boundary_cells(graph, root)) as path:
            execute(graph, path)
        modules = root / "modules.txt"
        if modules.exists():  # one sorted line each, so the file is deterministic
            found = sorted(set(modules.read_text().split()) - {"builtins"})
            modules.write_text("".join(f"{m}\n" for m in found))
        return {f"tests/fixtures/{p.relative_to(root).as_posix()}": p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}
