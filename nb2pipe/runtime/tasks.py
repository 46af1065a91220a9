"""A step as a Prefect task: its cache policy, where its values go, how it runs, what it reports.

flow.py declares each step with `step_task` (Prefect's `task`, with nb2pipe's cache policy and
progress hooks; every other option is Prefect's own) and runs it with `run_step`:

    @step_task("features", retries=2)
    def features(clean: Values, test_size: float) -> Values:
        return run_step("features", steps.features, df=clean["df"], test_size=test_size)
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec

from prefect import Task, task
from prefect.context import TaskRunContext
from prefect.transactions import get_transaction

from . import (
    auth,
    cache,
    capture,
    errors,
    progress,
    project,
    records,
    report,
    runners,
    verified,
    writes,
)
from .cache import StepCache
from .final import call_keeping_locals
from .fingerprint import fingerprint
from .handoff import Values, reading
from .store import Store, configured_storage

__all__ = ["Values", "finish_writes", "result_storage", "run_step", "step_task"]

P = ParamSpec("P")
STEP_CACHE = StepCache()
# pyplot's current figure is one per process: steps that plot take turns on the threads.
PYPLOT = threading.Lock()
# So is the maths library's thread count, which scikit-learn and SciPy change while they run:
# steps using them take turns, so each computes with the setting it has in the notebook.
BLAS = threading.Lock()


def step_task(name: str, **options: Any) -> Callable[[Callable[P, Values]], Task[P, Values]]:
    """`prefect.task` for the step `name`: task runs named after the step, nb2pipe's cache
    policy, its values' record written as signed JSON (records.py), errors in the code never
    retried, and progress hooks under `nb2pipe run`. Other options are passed to Prefect as
    they are (retries, timeout_seconds, cache_policy)."""
    options = {"name": name, "task_run_name": name, "cache_policy": STEP_CACHE,
               "result_serializer": records.SERIALIZER, **options}
    if options.get("retries"):
        options.setdefault("retry_condition_fn", errors.retry_unless_bug)
    completion: list[Callable[..., None]] = [report.step_cached]
    if progress.channel():
        options.update(on_running=[progress.started], on_failure=[progress.failed])
        completion.append(progress.finished)
    options["on_completion"] = [*completion, *options.get("on_completion", [])]

    def decorate(function: Callable[P, Values]) -> Task[P, Values]:
        @functools.wraps(function)
        def step(*args: P.args, **kwargs: P.kwargs) -> Values:
            with reading():
                return function(*args, **kwargs)

        made: Task[P, Values] = task(step, **options)
        return made

    return decorate


def run_step(name: str, function: Callable[..., dict[str, Any]], /,
             **arguments: Any) -> Values:
    """Run a step (its function, or in notebook mode its cells as a notebook) in the notebook's
    folder; an error names the cell and line that raised it. Its values are saved for later
    runs unless caching is off (NB2PIPE_CACHE=off), and its metrics published. (`name` and
    `function` are positional only: a step may read a value called `name`.)"""
    progress.watch_process()
    verified.passed(name)  # its inputs are read: what its cache lookup kept for it is let go
    context = TaskRunContext.get()
    caching = os.environ.get("NB2PIPE_CACHE") != "off"
    if context is not None and caching:  # a key that cannot be had: said before the step runs
        store = Store.for_storage(context.result_store.result_storage)
        auth.check_outside(store.folder)
        auth.storage_key()
    attempt = _storing(name, "record where it runs", report.begin_attempt, name)
    fingerprints = os.environ.get("NB2PIPE_FINGERPRINTS")
    if fingerprints:
        _write_fingerprints(fingerprints, name, "inputs", arguments)
    executed = None
    left: dict[str, Any] = {}  # verify: what the step's cells leave behind (its locals)
    if fingerprints:
        function = _keeping_locals(function, left)
    clock = Clock()
    try:
        if os.environ.get("NB2PIPE_MODE") == "notebook":
            outputs, executed, shown = _call_notebook(name, arguments, clock)
        else:
            outputs, shown = _call(name, function, arguments, clock)
    except Exception as error:
        with contextlib.suppress(Exception):  # the storage may be what failed
            report.attempt_failed(attempt, str(error))
        raise
    if fingerprints:
        _write_fingerprints(fingerprints, name, "outputs", outputs)
        _write_fingerprints(fingerprints, name, "final", left)
    run = str(context.task_run.flow_run_id or context.task_run.id) if context else None
    values = Values(name, outputs, run=run)
    values.notebook = executed
    values.seconds = clock.seconds
    values.record = _storing(name, "save its outputs for the run's report", _recorded, name,
                             outputs, shown, clock.seconds)
    if context is not None:
        store = Store.for_storage(context.result_store.result_storage)
        if caching:
            # Hashed now (later steps' cache keys need the hashes), written meanwhile unless
            # a later step changes the value in place or reads it in another process.
            background = _background(name, outputs)
            _storing(name, "save its values", functools.partial(
                values.save, store, True, background=background), location=store.location)
            transaction = get_transaction()
            values.key = transaction.key if transaction is not None else None
            if background:
                _WRITING.append((values, context.result_store.result_storage))
        else:
            values.location = store.location  # saved only to cross processes
            if os.environ.get("NB2PIPE_HANDOFF") == "store":
                _storing(name, "save its values", values.save, store, False,
                         location=store.location)
        publish_metrics(name, outputs)
    return values


class StorageError(RuntimeError):
    """The result storage cannot be reached or written: a failure of the environment (retried
    by `retries:N`), named with the storage and what the step was doing."""


def _storing(step: str, doing: str, function: Callable[..., Any], *arguments: Any,
             location: str | None = None) -> Any:
    try:
        return function(*arguments)
    except Exception as error:
        where = location or _configured_location()
        if isinstance(error, OSError) and not where.startswith("block:"):
            raise  # a folder's own error names its file
        raise StorageError(_storage_message(step, doing, where, error)) from error


def _configured_location() -> str:
    """The result storage as Store names it: block:TYPE/NAME, or the folder."""
    configured = configured_storage()
    return f"block:{configured}" if isinstance(configured, str) else str(configured)


def _storage_message(step: str, doing: str, location: str, error: BaseException) -> str:
    return (f"step '{step}' could not {doing} in the result storage {location}: "
            f"{type(error).__name__}: {error}; when the storage answers again, run the flow "
            "again (steps already saved are not computed again)")


Shown = dict[str, Any]  # what a step showed, for its record in the run's report
# Steps whose values are being written in the background: their records are dropped when a
# write fails (finish_writes).
_WRITING: list[tuple[Values, Any]] = []


def _background(name: str, outputs: dict[str, Any]) -> set[str]:
    """The outputs of a step that may be written while the next steps run: those the next
    steps take from memory (steps on threads of this process) and none changes in place."""
    if not runners.shares_memory():
        return set()
    return set(outputs) - set(project.step(name).consumed_in_place)


def finish_writes() -> None:
    """The end of a flow run: wait for the values still being written to the result
    storage. One that could not be written is a warning, and the cached result of its step
    is dropped: the step runs again next time."""
    failed = writes.settle()
    verified.forget()
    done = list(_WRITING)
    del _WRITING[:len(done)]
    for values, storage in done:
        if values.location is None:
            continue
        broken = {name: failed[(values.location, ref.path)] for name, ref in
                  sorted(values.refs.items()) if (values.location, ref.path) in failed}
        if not broken:
            continue
        if values.key:
            cache.drop(storage, values.key)
        names = ", ".join(f"'{name}'" for name in broken)
        cache.warn(values.step, f"step '{values.step}': {names} could not be stored in the "
                   f"result storage ({next(iter(broken.values()))}): the step runs again "
                   "next time")


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


def _call(name: str, function: Callable[..., dict[str, Any]], arguments: dict[str, Any],
          clock: Clock) -> tuple[dict[str, Any], Shown | None]:
    here = project.workdir()
    if Path.cwd() != here:
        os.chdir(here)
    steps_file = str(project.PROJECT / "steps.py")
    if not capture.enabled():
        try:
            with _turns(name), clock.running():
                return function(**arguments), None
        except (Exception, SystemExit) as error:
            failure = errors.step_error(project.manifest(), steps_file, name, error)
            failure.seconds = clock.seconds
            raise failure from error
    report.prepare()
    raised: BaseException | None = None
    with _turns(name), capture.capturing(name) as shown:
        try:
            with clock.running():
                outputs = function(**arguments)
        except (Exception, SystemExit) as error:
            raised = error
            cell = shown.error(error)
    if raised is not None:
        failure = errors.step_error(project.manifest(), steps_file, name, raised)
        failure.seconds = clock.seconds
        report.save_step(name, shown.cells, "failed", shown.started, clock.seconds,
                         shown.figures, error=str(failure), error_cell=failure.cell or cell)
        raise failure from raised
    return outputs, {"cells": shown.cells, "started": shown.started, "figures": shown.figures}


def _call_notebook(name: str, arguments: dict[str, Any], clock: Clock
                   ) -> tuple[dict[str, Any], str, Shown | None]:
    """Notebook mode: the executed step notebook's outputs are the step's, for the report."""
    from .notebook import executed_outputs, executed_path, run_notebook_step

    started = time.time()
    try:
        with clock.running():
            outputs, executed = run_notebook_step(name, arguments)
    except errors.StepError as failure:
        failure.seconds = clock.seconds
        report.save_step(name, executed_outputs(executed_path(name)), "failed", started,
                         clock.seconds, error=str(failure), error_cell=failure.cell,
                         notebook=str(executed_path(name)))
        raise
    shown = {"cells": executed_outputs(Path(executed)), "started": started, "figures": [],
             "notebook": executed}
    return outputs, executed, shown if capture.enabled() else None


def _recorded(name: str, outputs: dict[str, Any], shown: Shown | None,
              seconds: float | None) -> str | None:
    """Write the step's record for the report (its metrics included); its path, or None."""
    if shown is None:
        return None
    return report.save_step(name, shown["cells"], "completed", shown["started"], seconds,
                            shown["figures"], metrics=progress.scalar_metrics(name, outputs),
                            notebook=shown.get("notebook"))


@contextlib.contextmanager
def _turns(name: str) -> Iterator[None]:
    """The locks the step's code needs, in one order (two steps never wait for each other)."""
    entry = project.step(name)
    with contextlib.ExitStack() as turns:
        for lock, needed in ((BLAS, entry.blas), (PYPLOT, entry.pyplot)):
            if needed:
                turns.enter_context(lock)
        yield


def _keeping_locals(function: Callable[..., dict[str, Any]],
                    left: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """The step's function, keeping its local variables as it returns in `left`."""
    def call(**arguments: Any) -> dict[str, Any]:
        result, found = call_keeping_locals(function, arguments)
        left.update(found)
        return result

    return call


def _write_fingerprints(path: str, step: str, kind: str, found: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for name, value in sorted(found.items()):
            handle.write(json.dumps({"step": step, "kind": kind, "name": name,
                                     "fingerprint": fingerprint(value)}) + "\n")


def result_storage() -> Path | str:
    """Where results and cached values go: NB2PIPE_RESULT_STORAGE, a folder or a Prefect
    filesystem block as TYPE/NAME (e.g. s3-bucket/pipeline-results); by default the folder
    `results` in the user's cache (NB2PIPE_CACHE_DIR, else ~/.cache/nb2pipe)."""
    return configured_storage()


def publish_metrics(step: str, outputs: dict[str, Any]) -> None:
    """A step's metrics as Prefect table artifacts: scalars in one table, frames in their own."""
    from prefect.artifacts import create_table_artifact
    from prefect.logging import get_run_logger

    rows = []
    for name in project.step(step).metrics:
        value: Any = outputs.get(name)
        if hasattr(value, "item") and getattr(value, "shape", None) == ():
            value = value.item()  # a numpy scalar
        if isinstance(value, bool | int | float | str):
            rows.append({"metric": name, "value": value})
            get_run_logger().info("%s: %s = %r", step, name, value)
        elif hasattr(value, "to_json") and hasattr(value, "columns"):
            table = json.loads(value.reset_index().to_json(orient="records", date_format="iso"))
            create_table_artifact(key=_artifact_key(f"{step}-{name}"), table=table,
                                  description=f"{name}, from step {step}")
    if rows:
        create_table_artifact(key=_artifact_key(f"{step}-metrics"), table=rows,
                              description=f"Metrics of step {step}")


def _artifact_key(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
