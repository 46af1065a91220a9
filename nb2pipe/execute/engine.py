"""Stage 7, run: a generated project -> a Prefect flow run, with caching and live progress.

The flow is built here from pipeline.json (one task per step, each running `job.execute`),
not taken from flow.py, because a local run adds what a deployment does not need: a cache keyed
by content, values handed over in memory or through the store, and progress events.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2pipe.execute.job import RUN_PREFIX, Handoff, Job, execute, warm_up
from nb2pipe.execute.store import Store
from nb2pipe.runtime import errors as cells

RUNNERS = ("thread", "process", "dask")
MODES = ("module", "notebook")


@dataclass(frozen=True)
class RunOptions:
    parameters: dict[str, Any] = field(default_factory=dict)  # checked values, by name
    mode: str = "module"
    runner: str = "thread"
    cache: bool = True
    dask_address: str | None = None
    workdir: str | None = None  # default: the notebook's folder (from pipeline.json)
    store: str | None = None  # default: the user cache folder
    run_dir: str | None = None  # where notebook mode keeps executed step notebooks
    notebook: str | None = None  # the source notebook (notebook mode)
    max_workers: int | None = None
    fingerprints: bool = False  # nb2pipe verify
    # Every step reads its inputs back from the store, as it would in another process, so no
    # object shared in memory can hide a dependency the graph missed (nb2pipe verify).
    isolate: bool = False


@dataclass
class StepReport:
    name: str
    state: str = "pending"  # pending|running|completed|cached|failed|skipped
    duration: float | None = None
    error: str | None = None
    cell: int | None = None
    line: int | None = None
    notebook: str | None = None  # notebook mode: the executed step notebook


@dataclass
class RunResult:
    ok: bool
    steps: dict[str, StepReport]
    outputs: dict[str, Handoff]  # by step, for completed and cached steps
    seconds: float  # the pipeline, from the first step starting to the last one ending
    startup: float  # Prefect's fixed cost: server, flow run creation
    error: str | None = None


Emit = Callable[[StepReport], None]


def run_project(project: Path, options: RunOptions, emit: Emit | None = None) -> RunResult:
    from prefect import flow, task
    from prefect.futures import wait
    from prefect.settings import temporary_settings

    project = project.resolve()
    manifest = cells.load_manifest(str(project))
    store = options.store or str(Store().root)
    jobs = _jobs(project, manifest, options, store)
    Store(store).prune_runs(RUN_PREFIX)
    runner = _task_runner(options, str(project))
    reports = {name: StepReport(name) for name in manifest["order"]}
    notify = emit or (lambda report: None)
    timing: dict[str, float] = {}
    outputs: dict[str, Handoff] = {}

    @flow(name=manifest["flow"]["name"], task_runner=runner, persist_result=False,
          validate_parameters=False)
    def pipeline() -> None:
        timing["start"] = time.perf_counter()
        futures: dict[str, Any] = {}
        for name in manifest["order"]:
            step = next(s for s in manifest["steps"] if s["name"] == name)
            job = jobs[name]
            runs = task(name=name, task_run_name=name, persist_result=False,
                        cache_policy=_no_cache(), retries=step["options"]["retries"] or 0,
                        retry_delay_seconds=0.5, retry_condition_fn=cells.retry_unless_bug,
                        timeout_seconds=step["options"]["timeout"])(execute)
            # Futures stand in for the Handoffs: Prefect resolves them before the step runs.
            upstream: Any = {p: futures[p] for p in sorted({p for _, p in job.inputs})}
            waits = [futures[a] for a in step["after"]]
            with _placement(options):
                futures[name] = runs.submit(job, upstream, wait_for=waits, return_state=False)
        _follow(futures, reports, notify)
        wait(list(futures.values()))
        # Collected here: a Dask cluster is gone once the flow returns.
        outputs.update({name: future.result() for name, future in futures.items()
                        if future.state.is_completed()})
        timing["end"] = time.perf_counter()

    started = time.perf_counter()
    with _shared_server(options.runner), temporary_settings(updates=_quiet_settings()):
        state = pipeline(return_state=True)
    failed = [r for r in reports.values() if r.state == "failed"]
    end = timing.get("end", time.perf_counter())
    return RunResult(
        ok=not failed and state.is_completed() and len(outputs) == len(reports),
        steps=reports,
        outputs=outputs,
        seconds=end - timing.get("start", started),
        startup=timing.get("start", started) - started,
        error=failed[0].error if failed else (None if state.is_completed() else str(state)),
    )


@contextlib.contextmanager
def _shared_server(runner: str) -> Iterator[None]:
    """Worker processes (process pool, Dask) each start their own temporary Prefect server when
    no API is configured, seconds apiece; start one here and point them all at it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if runner == "thread" or PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by the worker processes
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before
        server.stop()


def _jobs(project: Path, manifest: dict[str, Any], options: RunOptions,
          store: str) -> dict[str, Job]:
    workdir = options.workdir or str((project / manifest["workdir"]).resolve())
    defaults = {p["name"]: p["default"] for p in manifest["parameters"]}
    values = {**defaults, **options.parameters}
    in_memory = options.runner == "thread" and not options.isolate
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir = options.run_dir or os.path.join(store, "runs", run_id)
    notebook = options.notebook or str((project / manifest["notebook"]).resolve())
    return {
        step["name"]: Job(
            step=step["name"],
            function=step["function"],
            project=str(project),
            workdir=workdir,
            inputs=tuple((i["name"], i["from"]) for i in step["inputs"]),
            parameters={p: values[p] for p in step["parameters"]},
            returns=tuple(sorted({*step["outputs"], *step["metrics"]})),
            copied=tuple(step["copied"]),
            code=step["code_sha256"],
            store=store,
            cache=options.cache and step["options"]["cache"],
            persist=options.cache or not in_memory or options.mode == "notebook",
            in_memory=in_memory,
            mode=options.mode,
            run_dir=run_dir,
            notebook=notebook,
            split=manifest["options"]["split"],
            fingerprints=options.fingerprints,
            run_id=run_id,
        )
        for step in manifest["steps"]
    }


def _task_runner(options: RunOptions, project: str) -> Any:
    if options.runner == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        # Each worker imports the steps (and what they import) when it starts, not when its
        # first step arrives with a value to hand over.
        return ProcessPoolTaskRunner(max_workers=options.max_workers or os.cpu_count(),
                                     initializer=warm_up, initargs=(project,))
    if options.runner == "dask":
        from prefect_dask.task_runners import DaskTaskRunner

        if options.dask_address:
            return DaskTaskRunner(address=options.dask_address)
        return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
            "n_workers": options.max_workers or 2, "threads_per_worker": 1, "processes": True,
            "dashboard_address": None, "resources": {"step": 1}})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=options.max_workers or max(os.cpu_count() or 1, 2))


def _placement(options: RunOptions) -> Any:
    """On a local Dask cluster, one step per worker at a time (see the cluster's resources):
    Dask would otherwise put steps beside their inputs, on one worker."""
    if options.runner == "dask" and not options.dask_address:
        from dask.base import annotate

        return annotate(resources={"step": 1})
    return contextlib.nullcontext()


def _no_cache() -> Any:
    from prefect.cache_policies import NO_CACHE

    return NO_CACHE


def _quiet_settings() -> dict[str, Any]:
    """No flow heartbeat: joining its thread costs ~1 s per run, which a local run does not need."""
    return {"flows.heartbeat_frequency": None}


def _follow(futures: dict[str, Any], reports: dict[str, StepReport], notify: Emit) -> None:
    """Poll the task futures until every step has finished, reporting each change once."""
    while True:
        for name, future in futures.items():
            _update(reports[name], future, notify)
        if all(reports[n].state in ("completed", "cached", "failed", "skipped") for n in futures):
            return
        time.sleep(0.05)


def _update(report: StepReport, future: Any, notify: Emit) -> None:
    state = future.state
    new = report.state
    if state.is_running():
        new = "running"
    elif state.is_completed():
        handoff: Handoff = future.result()
        new = "cached" if handoff.cached else "completed"
        report.duration = handoff.duration
        report.notebook = handoff.notebook
    elif state.is_failed() or state.is_crashed():
        new = "failed"
        error = _exception(state)
        if error is None and state.name != "TimedOut":  # a timed-out thread runs on: no wait
            future.wait(timeout=30)  # the final in-memory state holds the exception
            state = future.state
            error = _exception(state)
        report.error = str(error) if error is not None else (state.message or "")
        if state.name == "TimedOut":
            seconds = re.search(r"([\d.]+) second", report.error)
            limit = f" of {float(seconds.group(1)):g} s" if seconds else ""
            report.error = (f"step '{report.name}' ran longer than its timeout{limit} "
                            "(tag timeout:SECONDS)")
        if isinstance(error, cells.StepError):
            report.cell, report.line = error.cell, error.line
        else:
            found = re.search(r"cell (\d+), line (\d+) \(step ", report.error)
            if found:
                report.cell, report.line = int(found.group(1)), int(found.group(2))
    elif state.name == "NotReady":
        new = "skipped"
        report.error = "an earlier step it needs failed"
    if new != report.state:
        report.state = new
        notify(report)


def _exception(state: Any) -> BaseException | None:
    """The exception a failed state holds, when it holds one (a state read back from the API
    may carry only its message)."""
    try:
        found = state.result(raise_on_failure=False)
    except Exception:  # the result is not available here
        return None
    return found if isinstance(found, BaseException) else None
