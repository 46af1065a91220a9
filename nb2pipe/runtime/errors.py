"""An error in a step, named by the notebook cell and line that raised it.

Self-contained (standard library only): nb2pipe uses it when it runs a pipeline, and copies it
into every generated project as cells.py, so a deployed flow reports errors the same way without
nb2pipe installed. The line map comes from the project's pipeline.json.
"""

from __future__ import annotations

import json
import os
import traceback
from typing import Any

# A retry cannot fix these: they come from the code or the data, not from the environment.
BUG_ERRORS: tuple[type[BaseException], ...] = (
    NameError, KeyError, TypeError, ValueError, AssertionError, SyntaxError, AttributeError,
    IndexError, ZeroDivisionError, ImportError,
)


class StepError(Exception):
    """A step failed. The message names the notebook, cell and line, and the original error."""

    def __init__(self, message: str, step: str = "", cell: int | None = None,
                 line: int | None = None, error: str = "", deterministic: bool = True) -> None:
        super().__init__(message)
        self.step, self.cell, self.line = step, cell, line
        self.error, self.deterministic = error, deterministic

    def __reduce__(self) -> tuple[Any, ...]:  # keeps the fields across processes (Dask, pools)
        return (StepError, (str(self), self.step, self.cell, self.line, self.error,
                            self.deterministic))


def load_manifest(project: str) -> dict[str, Any]:
    with open(os.path.join(project, "pipeline.json"), encoding="utf-8") as handle:
        manifest: dict[str, Any] = json.load(handle)
    return manifest


def locate(manifest: dict[str, Any], step: str, line_in_steps: int) -> tuple[int, int] | None:
    """steps.py line -> (cell, line in cell), through the manifest's line map."""
    for entry in manifest["steps"]:
        if entry["name"] != step:
            continue
        for start, cell, first, count in entry["lines"]:
            if start <= line_in_steps < start + count:
                return cell, first + line_in_steps - start
    return None


def step_error(manifest: dict[str, Any], steps_file: str, step: str,
               exc: BaseException) -> StepError:
    """A StepError for `exc`, raised while running `step` from `steps_file`."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if os.path.abspath(f.filename) == os.path.abspath(steps_file)]
    where = None
    source = ""
    if frames:
        where = locate(manifest, step, frames[-1].lineno or 0)
        source = (frames[-1].line or "").strip()
        if where is None:  # a function defined in another cell and called from this step
            for frame in reversed(frames[:-1]):
                where = locate(manifest, step, frame.lineno or 0)
                if where is not None:
                    source = (frame.line or "").strip()
                    break
    notebook = os.path.basename(manifest.get("notebook", "notebook.ipynb"))
    error = f"{type(exc).__name__}: {exc}"
    if where is None:
        message = f"{notebook}: step '{step}' failed: {error}"
    else:
        message = f"{notebook}: cell {where[0]}, line {where[1]} (step '{step}'): {error}"
        if source:
            message += f"\n    {source}"
    return StepError(message, step, where[0] if where else None, where[1] if where else None,
                     error, isinstance(exc, BUG_ERRORS))


def retry_unless_bug(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry transient failures (I/O, network), not errors in the code."""
    error = state.result(raise_on_failure=False)
    if isinstance(error, StepError):
        return not error.deterministic
    return not isinstance(error, BUG_ERRORS)
