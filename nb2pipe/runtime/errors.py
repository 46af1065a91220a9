"""An error in a step, named by the notebook cell and line that raised it; a result storage
that fails a step, named with what the step was doing.

The line map from steps.py back to the notebook's cells comes from the project's pipeline.json.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any

from .manifest import Manifest

# A retry cannot fix these: they come from the code or the data, not from the environment.
BUG_ERRORS: tuple[type[BaseException], ...] = (
    NameError, KeyError, TypeError, ValueError, AssertionError, SyntaxError, AttributeError,
    IndexError, ZeroDivisionError, ImportError,
)


class StepError(Exception):
    """A step failed. The message names the notebook, cell and line, and the original error."""

    def __init__(self, message: str, step: str = "", cell: int | None = None,
                 line: int | None = None, error: str = "", deterministic: bool = True,
                 seconds: float | None = None) -> None:
        super().__init__(message)
        self.step, self.cell, self.line = step, cell, line
        self.error, self.deterministic = error, deterministic
        self.seconds = seconds  # how long the step's code ran before it failed (calls.Clock)

    def __reduce__(self) -> tuple[Any, ...]:  # keeps the fields across processes (Dask, pools)
        return (StepError, (str(self), self.step, self.cell, self.line, self.error,
                            self.deterministic, self.seconds))


def locate(manifest: Manifest, step: str, line_in_steps: int) -> tuple[int, int] | None:
    """steps.py line -> (cell, line in cell), through the manifest's line map."""
    for entry in manifest.steps:
        if entry.name != step:
            continue
        for start, cell, first, count in entry.lines:
            if start <= line_in_steps < start + count:
                return cell, first + line_in_steps - start
    return None


def step_error(manifest: Manifest, steps_file: str, step: str,
               exc: BaseException) -> StepError:
    """A StepError for `exc`, raised while running `step` from `steps_file` (`sys.exit()` in
    a step is an error of the step too, never the end of the run)."""
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SystemExit):
        error = f"sys.exit({exc.code!r}) ended the step"
    found = where(manifest, steps_file, step, traceback.extract_tb(exc.__traceback__))
    return StepError(describe(manifest, step, error, found), step,
                     found[0] if found else None, found[1] if found else None,
                     error, isinstance(exc, (*BUG_ERRORS, SystemExit)))


def where(manifest: Manifest, steps_file: str, step: str,
          frames: list[traceback.FrameSummary]) -> tuple[int, int, str] | None:
    """(cell, line, source line) of the innermost frame in steps.py that is code of `step`'s
    cells; a function defined in another cell and called from the step is seen through."""
    mine = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(steps_file)]
    for frame in reversed(mine):
        found = locate(manifest, step, frame.lineno or 0)
        if found is not None:
            return found[0], found[1], (frame.line or "").strip()
    return None


def describe(manifest: Manifest, step: str, error: str,
             found: tuple[int, int, str] | None) -> str:
    """`churn.ipynb: cell 14, line 3 (step 'features'): KeyError: 'tenure'` + the line."""
    notebook = os.path.basename(manifest.notebook)
    if found is None:
        return f"{notebook}: step '{step}' failed: {error}"
    cell, line, source = found
    message = f"{notebook}: cell {cell}, line {line} (step '{step}'): {error}"
    return message + (f"\n    {source}" if source else "")


def retry_unless_bug(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry transient failures (I/O, network), not errors in the code."""
    error = state.result(raise_on_failure=False, _sync=True)
    if isinstance(error, StepError):
        return not error.deterministic
    return not isinstance(error, BUG_ERRORS)


class StorageError(RuntimeError):
    """The result storage cannot be reached or written: a failure of the environment (retried
    by `retries:N`), named with the storage and what the step was doing."""


def storing(step: str, doing: str, function: Callable[..., Any], *arguments: Any,
            location: str | None = None) -> Any:
    """`function(*arguments)`, which writes to the result storage for `step`, `doing` what is
    said: a failure of a storage block is a StorageError naming it."""
    try:
        return function(*arguments)
    except Exception as error:
        from .store import Store

        store = Store(location) if location else Store.configured()
        if isinstance(error, OSError) and store.folder is not None:
            raise  # a folder's own error names its file
        raise StorageError(_storage_message(step, doing, store.location, error)) from error


def _storage_message(step: str, doing: str, location: str, error: BaseException) -> str:
    return (f"step '{step}' could not {doing} in the result storage {location}: "
            f"{type(error).__name__}: {error}; when the storage answers again, run the flow "
            "again (steps already saved are not computed again)")
