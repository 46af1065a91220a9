"""Run a notebook with papermill in its own process.

papermill's `cwd=` changes the working directory of the whole calling process while the notebook
runs, which other threads (steps, other notebooks) share; a subprocess with `--cwd` changes only
its own. A failure is read back from the executed notebook: the cell holding the error output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class NotebookFailure:
    cell_id: str | None  # id of the failing cell in the executed notebook
    line: int | None  # line in that cell, from IPython's traceback
    ename: str
    evalue: str

    @property
    def error(self) -> str:
        return f"{self.ename}: {self.evalue}"


def run_notebook(notebook: Path, executed: Path, cwd: Path, kernel: str,
                 parameters: dict[str, Any] | None = None) -> NotebookFailure | None:
    """Execute `notebook` into `executed`; None when every cell ran."""
    command = [sys.executable, "-m", "papermill", str(notebook), str(executed),
               "--cwd", str(cwd), "--kernel", kernel, "--language", "python",
               "--no-progress-bar", "--log-level", "ERROR"]
    if parameters:
        command += ["-y", json.dumps(parameters)]  # JSON is YAML
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode == 0:
        return None
    failure = _failure(executed)
    if failure is None:  # papermill itself failed: no kernel, unreadable notebook
        tail = (finished.stderr.strip().splitlines() or ["papermill failed"])[-1]
        return NotebookFailure(None, None, "PapermillError", tail)
    return failure


def _failure(executed: Path) -> NotebookFailure | None:
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
