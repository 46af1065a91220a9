"""Calling a step's code: the call as run_step's hooks see it, and the call in this process.

run_step (tasks.py) calls a step's code, saves its values and publishes its metrics. What a
run adds to that (the report's capture, verify's fingerprints) is a `Hook`, called at fixed
points of every step; how the code runs is a runner: `in_process` (steps.py's function, the
default) or notebook mode's (notebook.py).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import errors, project

StepFunction = Callable[..., dict[str, Any]]

# pyplot's current figure is one per process: steps that plot take turns on the threads.
PYPLOT = threading.Lock()
# So is the maths library's thread count, which scikit-learn and SciPy change while they run:
# steps using them take turns, so each computes with the setting it has in the notebook.
BLAS = threading.Lock()


@dataclass
class StepCall:
    """One call of a step's code, as run_step and its hooks see it."""

    step: str
    function: StepFunction  # steps.py's function for the step (a hook may wrap it)
    arguments: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)  # what the code left
    seconds: float | None = None  # how long the code ran (Clock)
    started: float = 0.0  # notebook mode: when the step notebook started (epoch seconds)
    notebook: str | None = None  # notebook mode: the executed step notebook
    record: str | None = None  # the step's record for the run's report (reporting.py)


class Hook:
    """Something a run adds to each of its steps (tasks.HOOKS says what, when), called at
    fixed points of run_step. A hook defines the methods it needs; the others do nothing."""

    def before(self, call: StepCall) -> None:
        """Before the step's code runs; it may wrap `call.function`."""

    def watching(self, call: StepCall) -> contextlib.AbstractContextManager[object]:
        """Around the step's code when it runs in this process, once it has its turn."""
        return contextlib.nullcontext()

    def failed(self, call: StepCall, error: Exception) -> None:
        """The code raised `error` (a StepError naming its cell, when the code raised it);
        it is raised again after the hooks."""

    def after(self, call: StepCall) -> None:
        """The code returned `call.outputs`."""


Runner = Callable[[StepCall, Sequence[Hook]], None]


def in_process(call: StepCall, hooks: Sequence[Hook]) -> None:
    """steps.py's function, in this process, in the notebook's folder, with the locks its
    code needs; an error names the cell and line that raised it."""
    here = project.workdir()
    if Path.cwd() != here:
        os.chdir(here)
    clock = Clock()
    try:
        with _turns(call.step), contextlib.ExitStack() as watched:
            for hook in hooks:
                watched.enter_context(hook.watching(call))
            with clock.running():
                call.outputs = call.function(**call.arguments)
    except (Exception, SystemExit) as error:
        failure = errors.step_error(project.manifest(), str(project.PROJECT / "steps.py"),
                                    call.step, error)
        failure.seconds = clock.seconds
        raise failure from error
    finally:
        call.seconds = clock.seconds


class Clock:
    """How long a step's code ran: from the start of its first cell to the end of its last,
    not counting the wait for its turn (pyplot, BLAS), reading its inputs, saving its values
    or Prefect's own work. The one duration of a step that the progress events (and so the
    JupyterLab panel) and the run's report show."""

    def __init__(self) -> None:
        self.seconds: float | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds = round(time.perf_counter() - start, 3)


@contextlib.contextmanager
def _turns(name: str) -> Iterator[None]:
    """The locks the step's code needs, in one order (two steps never wait for each other)."""
    entry = project.step(name)
    with contextlib.ExitStack() as turns:
        for lock, needed in ((BLAS, entry.blas), (PYPLOT, entry.pyplot)):
            if needed:
                turns.enter_context(lock)
        yield
