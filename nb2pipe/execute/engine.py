"""Stage 7, run: a generated project -> a run of its own flow.py, with progress and results.

The project's flow.py is imported and run as it is: what runs here is what deploys. A local
run chooses only what Prefect lets a caller choose, through the flow's `with_options` (the task
runner, printing to the terminal), and configures the project's runtime package through its
environment variables (result storage, caching, notebook mode; see nb2pipe/runtime). Progress
comes from the tasks' state hooks, which write step events to a pipe read here.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from nb2pipe.execute.step_events import Channel, Emit, StepReport, Tracker
from nb2pipe.runtime import PACKAGE
from nb2pipe.runtime.manifest import load

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
    storage: str | None = None  # result storage: a folder or a block; default: user cache
    run_dir: str | None = None  # where notebook mode keeps executed step notebooks
    notebook: str | None = None  # the source notebook (notebook mode)
    max_workers: int | None = None
    fingerprints: str | None = None  # nb2pipe verify: a file for every value's fingerprint
    # Every step reads its inputs back from the store, as it would in another process, so no
    # object shared in memory can hide a dependency the graph missed (nb2pipe verify).
    isolate: bool = False
    # The run's HTML report: this file (None: no report; nothing is captured).
    report: str | None = None


@dataclass
class RunResult:
    ok: bool
    steps: dict[str, StepReport]
    outputs: dict[str, Any]  # step -> its Values (a mapping), when the flow completed
    seconds: float  # the flow, from running to its end
    startup: float  # Prefect's fixed cost before the flow runs: server, flow run creation
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. a damaged cache entry, recomputed
    report: str | None = None  # the HTML report's file, when one was written

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return {name: r.metrics for name, r in self.steps.items() if r.metrics}


def run_project(project: Path, options: RunOptions, emit: Emit | None = None,
                channel: str | None = None, key: str | None = None,
                connect: Callable[[], AbstractContextManager[object]] | None = None
                ) -> RunResult:
    """Run the project's flow.py in this process. `channel`: a pipe someone else reads the
    step events from, signed with `key` (the run's reports are then theirs to build); by
    default one is made here and read into the result. `connect`: entered once the flow is
    imported, just before it runs (the Prefect server it waits for may still be starting
    until then)."""
    project = project.resolve()
    manifest = load(project)
    tracker = Tracker(list(manifest.order), emit)
    own = Channel() if channel is None else None
    if own is not None:
        own.follow(tracker.apply)
    events = str(own.path) if own is not None else channel
    key = own.key if own is not None else key
    timing: dict[str, float] = {}
    started = time.perf_counter()
    try:
        with _environment(_settings(project, options, events)), _shared_server(options.runner):
            flow_module = load_flow(project)
            _authorize(key)
            pipeline = getattr(flow_module, manifest.flow.function)
            runtime = sys.modules[f"{PACKAGE}.runners"]
            runner = runtime.task_runner(options.runner, address=options.dask_address,
                                         workers=options.max_workers)
            report = importlib.import_module(f"{PACKAGE}.report")
            runs: list[str] = []

            def running(flow: Any, flow_run: Any, state: Any) -> None:
                timing.setdefault("start", time.perf_counter())
                # The report's renderer starts now, also when the steps run in other
                # processes (which cannot start it for this one).
                runs.append(str(flow_run.id))
                report.prepare(flow_run)

            pipeline = pipeline.with_options(
                task_runner=runner, log_prints=False,  # prints go to the terminal
                on_running=[running])
            try:
                with connect() if connect is not None else contextlib.nullcontext():
                    state = _quietly(pipeline, manifest.flow_arguments(options.parameters))
            finally:
                for run in runs:  # a renderer no report took (a crashed run) is stopped
                    report.discard(run)
            # `_sync`: the values, not a coroutine, even when this thread has an event loop
            # running (a Jupyter kernel, or Playwright's sync API), where Prefect would
            # otherwise hand back its async variant.
            outputs = (state.result(raise_on_failure=False, _sync=True)
                       if state.is_completed() else None)
    finally:
        if own is not None:
            own.remove()
    end = time.perf_counter()
    if own is not None:
        tracker.finish()
    failed = tracker.failed
    ok = state.is_completed() and not failed
    return RunResult(
        ok=ok,
        steps=tracker.reports,
        outputs=dict(outputs) if isinstance(outputs, dict) else {},
        seconds=end - timing.get("start", started),
        startup=timing.get("start", started) - started,
        error=None if ok else (failed[0].error if failed else _message(state)),
        warnings=tracker.warnings,
        report=written_report(options),
    )


def written_report(options: RunOptions) -> str | None:
    """The run's HTML report file, if the run wrote it."""
    return options.report if options.report and os.path.isfile(options.report) else None


def load_flow(project: Path) -> ModuleType:
    """Import the project's flow.py as `flow` (with its steps and runtime package), as Prefect
    would from its folder; anything imported from another project before is forgotten."""
    for name in list(sys.modules):
        if name in ("flow", "steps", PACKAGE) or name.startswith(f"{PACKAGE}."):
            del sys.modules[name]
    for path in _LOADED:
        if path in sys.path:
            sys.path.remove(path)
    sys.path.insert(0, str(project))
    _LOADED.append(str(project))
    importlib.invalidate_caches()
    return importlib.import_module("flow")


_LOADED: list[str] = []  # project folders put on sys.path by load_flow


def _authorize(key: str | None) -> None:
    """Give the run's key to the project's runtime (its copy of nb2pipe/runtime) and to
    nb2pipe's own, whose events this process writes too (the flow run's address)."""
    from nb2pipe.runtime import progress

    progress.authorize(key)
    runtime = sys.modules[f"{PACKAGE}.progress"]
    if not hasattr(runtime, "authorize"):
        raise RuntimeError(f"{Path(runtime.__file__ or PACKAGE).parent.parent}: written by an "
                           "older nb2pipe; convert the notebook again")
    runtime.authorize(key)


def _settings(project: Path, options: RunOptions, events: str | None) -> dict[str, str | None]:
    """The runtime's environment variables for this run (None: unset)."""
    from nb2pipe.runtime.store import cache_folder

    return {
        "NB2PIPE_PROGRESS": events,
        "NB2PIPE_RESULT_STORAGE": options.storage or os.environ.get(
            "NB2PIPE_RESULT_STORAGE") or str(cache_folder() / "results"),
        "NB2PIPE_CACHE": None if options.cache else "off",
        "NB2PIPE_WORKDIR": options.workdir or os.environ.get("NB2PIPE_WORKDIR"),
        "NB2PIPE_MODE": options.mode if options.mode != "module" else None,
        "NB2PIPE_NOTEBOOK": options.notebook,
        "NB2PIPE_RUN_DIR": options.run_dir,
        "NB2PIPE_FINGERPRINTS": options.fingerprints,
        "NB2PIPE_HANDOFF": "store" if options.isolate else None,
        "NB2PIPE_REPORT": options.report or "off",
    }


@contextlib.contextmanager
def _environment(updates: dict[str, str | None]) -> Iterator[None]:
    """Set (or unset) variables for the run; worker processes started meanwhile inherit them."""
    before = {name: os.environ.get(name) for name in updates}
    for name, value in updates.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _shared_server(runner: str) -> Iterator[None]:
    """Worker processes (process pool, Dask) each start their own temporary Prefect server when
    no API is configured, seconds apiece; start one here and point them all at it. A server
    that is configured (PREFECT_API_URL) is always the one used."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from nb2pipe.execute.prefect_api import FOLLOW

    # FOLLOW: the local server is starting; the run uses it once it answers.
    if runner == "thread" or PREFECT_API_URL.value() or os.environ.get(FOLLOW):
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    try:
        with _environment({"PREFECT_API_URL": server.api_url}), temporary_settings(
                updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        server.stop()


def _quietly(pipeline: Any, arguments: dict[str, Any]) -> Any:
    """Run the flow; its state, failed or not. No flow heartbeat: joining its thread costs
    about a second a run, which a local run does not need."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return pipeline(**arguments, return_state=True)


def _message(state: Any) -> str:
    try:
        error = state.result(raise_on_failure=False, _sync=True)
    except Exception:  # the state holds no result
        error = None
    return str(error) if isinstance(error, BaseException) else (state.message or str(state))
