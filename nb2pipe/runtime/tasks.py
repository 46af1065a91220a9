"""A step as a Prefect task: its cache policy, where its values go, how it runs, what it reports.

flow.py declares each step with `step_task` (Prefect's `task`, with nb2pipe's cache policy and
progress hooks; every other option is Prefect's own) and runs it with `run_step`:

    @step_task(retries=2)
    def features(clean: Values, test_size: float) -> Values:
        return run_step(steps.features, df=clean["df"], test_size=test_size)

`run_step` calls the step's function from steps.py, saves its values in the result storage
and publishes its metrics. The rest is optional and chosen per step from the environment
(switches.py), by two tables below: HOOKS, what a run adds to each step (the report's record
of what it showed, `nb2pipe verify`'s fingerprints), and RUNNERS, how its code runs (in this
process, or in notebook mode as a papermill notebook).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, overload

from prefect import Task, task
from prefect.context import TaskRunContext
from prefect.transactions import get_transaction

from . import (
    auth,
    cache,
    errors,
    own_random,
    progress,
    project,
    records,
    report,
    runners,
    switches,
    verified,
    writes,
)
from .cache import StepCache
from .calls import Hook, Runner, StepCall, in_process
from .cell_ends import CellEnds
from .errors import storing
from .fingerprint import Fingerprints
from .handoff import Values, reading
from .notebook import in_notebook
from .reporting import Reporting
from .store import Store, configured_storage
from .switches import Switches
from .text import artifact_key

__all__ = ["Values", "finish_writes", "result_storage", "run_step", "step_task"]

P = ParamSpec("P")
STEP_CACHE = StepCache()
own_random.separate()  # the `random` module's generator is the steps' alone


@overload
def step_task(function: Callable[P, Values], /) -> Task[P, Values]: ...


@overload
def step_task(*, name: str | None = None,
              **options: Any) -> Callable[[Callable[P, Values]], Task[P, Values]]: ...


def step_task(function: Callable[P, Values] | None = None, /, *, name: str | None = None,
              **options: Any) -> Task[P, Values] | Callable[[Callable[P, Values]],
                                                              Task[P, Values]]:
    """`prefect.task` for a step, named after its function unless `name` says otherwise: task
    runs named after the step, nb2pipe's cache policy, its values' record written as signed
    JSON (records.py), errors in the code never retried, and progress hooks under `nb2pipe
    run`. Other options are passed to Prefect as they are (retries, timeout_seconds,
    cache_policy). `@step_task` or `@step_task(retries=2)`."""
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

        step_name = name or function.__name__
        made: Task[P, Values] = task(step, **{
            "name": step_name, "task_run_name": step_name, "cache_policy": STEP_CACHE,
            "result_serializer": records.SERIALIZER, **options})
        return made

    return decorate if function is None else decorate(function)


def run_step(function: Callable[..., dict[str, Any]], /, **arguments: Any) -> Values:
    """Run a step: call its code (steps.py's `function`, in the notebook's folder; an error
    names the cell and line that raised it), save its values for later runs unless caching is
    off (NB2PIPE_CACHE=off), and publish its metrics. What the run adds to the step comes
    from HOOKS and RUNNERS. (`function` is positional only: a step may read a value called
    `function`.)"""
    name = project.manifest().step_of(function.__name__).name
    on = switches.read()  # what this run asks of its steps: the environment, read once
    hooks = [hook for hook in (make(on) for make in HOOKS) if hook is not None]
    progress.watch_process()
    verified.passed(name)  # its inputs are read: what its cache lookup kept for it is let go
    context = TaskRunContext.get()
    if context is not None and on.cache:  # a key that cannot be had: said before the step runs
        store = Store.for_storage(context.result_store.result_storage)
        auth.check_outside(store.folder)
        auth.storage_key()
    call = _call(StepCall(name, function, arguments), RUNNERS[on.notebook], hooks)
    run = str(context.task_run.flow_run_id or context.task_run.id) if context else None
    values = Values(name, call.outputs, run=run)
    values.notebook = call.notebook
    values.seconds = call.seconds
    values.record = call.record
    if context is not None:
        _save(values, context.result_store.result_storage, on)
        publish_metrics(name, call.outputs)
    return values


# What a run adds to each of its steps, in the order they start: each makes the hook of one
# step (calls.Hook), or None when the switches (switches.py) leave it out.
HOOKS: tuple[Callable[[Switches], Hook | None], ...] = (
    # A plotting step's figures are shown and closed where each cell ends, as in Jupyter;
    # first, as the others may wrap the function it compiles again.
    lambda on: None if on.notebook else CellEnds(),
    lambda on: Reporting(on.notebook) if on.report else None,  # the run's report
    lambda on: Fingerprints(on.fingerprints) if on.fingerprints else None,  # nb2pipe verify
)
# How a step's code runs: steps.py's function in this process, or (notebook mode) its cells
# as a papermill notebook.
RUNNERS: dict[bool, Runner] = {False: in_process, True: in_notebook}


def _call(call: StepCall, runner: Runner, hooks: list[Hook]) -> StepCall:
    """Run the step's code with its hooks: each is told before it runs, and once it failed or
    returned (in the opposite order, as nested blocks end)."""
    for hook in hooks:
        hook.before(call)
    try:
        runner(call, hooks)
    except Exception as error:
        for hook in reversed(hooks):
            hook.failed(call, error)
        raise
    for hook in reversed(hooks):
        hook.after(call)
    return call


def _save(values: Values, storage: Any, on: Switches) -> None:
    """Save a step's values to the result storage for later runs; with caching off, only so
    far as they must cross processes (NB2PIPE_HANDOFF=store: all of them)."""
    name, store = values.step, Store.for_storage(storage)
    if not on.cache:
        values.location = store.location  # saved only to cross processes
        # Steps in other processes (a Dask cluster) read them from the store: written now, by
        # the step's task, rather than when the task runner pickles them to pass them on
        # (Dask does that on its event loop, which then stops answering while they upload).
        if on.handoff_through_store or not runners.shares_memory():
            storing(name, "save its values", values.save, store, False, location=store.location)
        return
    # Hashed now (later steps' cache keys need the hashes), written meanwhile unless a later
    # step changes the value in place or reads it in another process.
    background = _background(name, values.memory or {})
    storing(name, "save its values", functools.partial(
        values.save, store, True, background=background), location=store.location)
    transaction = get_transaction()
    values.key = transaction.key if transaction is not None else None
    if background:
        _WRITING.append((values, storage))


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
            create_table_artifact(key=artifact_key(f"{step}-{name}"), table=table,
                                  description=f"{name}, from step {step}")
    if rows:
        create_table_artifact(key=artifact_key(f"{step}-metrics"), table=rows,
                              description=f"Metrics of step {step}")
