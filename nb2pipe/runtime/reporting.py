"""Each step's part in the run's report: where it ran, what it showed, how it ended.

The hook `Reporting` (unless NB2PIPE_REPORT=off) records the step's attempt (attempts.py),
captures what its code shows while it runs in this process (capture.py) or, in notebook mode,
takes it from the executed step notebook, and writes the step's record (report.py), failed
or completed, that the report is built from when the flow ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import capture, errors, progress, report
from .calls import Hook, StepCall
from .notebook import executed_outputs, executed_path


class Reporting(Hook):
    """The report's hook on one step (a new one for each step it runs)."""

    def __init__(self, notebook: bool) -> None:
        self.notebook = notebook  # notebook mode: what the step shows is in its notebook
        self.attempt: str | None = None
        self.shown: capture.Capture | None = None  # what its code showed in this process
        self.error_cell: int | None = None

    def before(self, call: StepCall) -> None:
        self.attempt = errors.storing(call.step, "record where it runs", report.begin_attempt,
                                      call.step)
        if not self.notebook:
            report.prepare()

    @contextlib.contextmanager
    def watching(self, call: StepCall) -> Iterator[None]:
        with capture.capturing(call.step) as shown:
            self.shown = shown
            try:
                yield
            except (Exception, SystemExit) as error:
                self.error_cell = shown.error(error)
                raise

    def failed(self, call: StepCall, error: Exception) -> None:
        try:
            self._save_failed(call, error)
        except Exception as failing:  # the storage, most likely: the attempt failed of it
            error = failing
            raise
        finally:
            with contextlib.suppress(Exception):  # the storage may be what failed
                report.attempt_failed(self.attempt, str(error))

    def _save_failed(self, call: StepCall, error: Exception) -> None:
        if not isinstance(error, errors.StepError):
            return  # not the step's code: nothing it showed to keep
        if self.notebook:
            executed = executed_path(call.step)
            report.save_step(call.step, executed_outputs(executed), "failed", call.started,
                             call.seconds, error=str(error), error_cell=error.cell,
                             notebook=str(executed))
        elif self.shown is not None:
            report.save_step(call.step, self.shown.cells, "failed", self.shown.started,
                             call.seconds, self.shown.figures, error=str(error),
                             error_cell=error.cell or self.error_cell)

    def after(self, call: StepCall) -> None:
        call.record = errors.storing(call.step, "save its outputs for the run's report",
                                      self._save_completed, call)

    def _save_completed(self, call: StepCall) -> str | None:
        shown: dict[str, Any]
        if self.notebook and call.notebook is not None:
            shown = {"cells": executed_outputs(Path(call.notebook)), "started": call.started,
                     "figures": [], "notebook": call.notebook}
        elif self.shown is not None:
            shown = {"cells": self.shown.cells, "started": self.shown.started,
                     "figures": self.shown.figures}
        else:
            return None
        return report.save_step(call.step, shown["cells"], "completed", shown["started"],
                                call.seconds, shown["figures"],
                                metrics=progress.scalar_metrics(call.step, call.outputs),
                                notebook=shown.get("notebook"))
