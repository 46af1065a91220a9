"""On a Dask worker: the project's files, and each step run with its own project and settings.

This module travels to the Dask scheduler and workers by value (cloudpickle), inside what the
flow sends them (dask_cluster.py), so neither needs nb2pipe_runtime, the project or anything but
Python, distributed and the project's requirements installed. It imports nothing of the
runtime for that reason.

    ProjectFiles    a worker plugin holding the project (steps.py, flow.py, pipeline.json,
                    nb2pipe_runtime) and the notebook's folder as a zip archive: every worker,
                    those that join later too, unpacks it once into its own local directory,
                    in a folder named by the archive's hash
    run_step_task   what a step's Dask task runs: it makes that project the one this worker
                    process imports (`steps`, `nb2pipe_runtime`) and sets the run's settings,
                    then unpickles Prefect's task and runs it. What it receives and returns is
                    pickled bytes, so the scheduler and the workers passing results between
                    them never need the project to read them.

A worker process imports one project at a time (modules are named `steps` and `nb2pipe_runtime`
in every project): a step of another project, or of a run with other settings, waits until the
steps running on the worker's other threads end, then switches it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import threading
import types
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

FOLDER = "nb2pipe-projects"  # inside the worker's local directory
STATE = "_nb2pipe_worker_state"  # a module of this process holding which project is imported
MODULES = ("steps", "flow", "nb2pipe_runtime")


class ProjectFiles(WorkerPlugin):
    """The project's files (a zip archive with `work/`, the notebook's folder, and the project
    at `project`, a path inside the archive), unpacked by every worker that gets the plugin."""

    idempotent = True  # registering the same archive again sends nothing

    def __init__(self, archive: bytes, digest: str, project: str) -> None:
        self.archive = archive
        self.digest = digest
        self.project = project

    def setup(self, worker: Any) -> None:
        unpack(Path(worker.local_directory) / FOLDER, self.digest, self.archive)


def unpack(base: Path, digest: str, archive: bytes) -> Path:
    """The archive's files in base/digest (unpacked beside it first, then renamed, so that a
    folder that exists is whole)."""
    target = base / digest
    if target.is_dir():
        return target
    base.mkdir(parents=True, exist_ok=True)
    partial = base / f".{digest}.{os.getpid()}.{threading.get_ident()}"
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        for entry in bundle.infolist():
            name = Path(entry.filename)
            if name.is_absolute() or ".." in name.parts:
                raise ValueError(f"project archive: refused entry {entry.filename!r}")
        bundle.extractall(partial)
    try:
        os.rename(partial, target)
    except OSError:  # another thread or process unpacked it first
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
    return target


class Upstream:
    """Stands for an upstream step's result in a task's pickled parameters."""

    def __init__(self, index: int) -> None:
        self.index = index


def step_runner() -> Callable[..., bytes]:
    """`run_step_task` as a function pickle cannot find by its name, so that the task graph is
    pickled with cloudpickle, which sends this module by value."""

    def run(*arguments: Any) -> bytes:
        return run_step_task(*arguments)

    return run


def run_step_task(digest: str, project: str, settings: dict[str, str], key: str | None,
                  payload: bytes, *upstream: bytes) -> bytes:
    """Run one step's Prefect task (`payload`: the pickled keyword arguments of Prefect's
    `run_task_sync`), with the upstream steps' final states in place of their `Upstream`
    markers; returns the task's final state, pickled. `key`: the run's key for step events
    (progress.py), when its channel is one this worker can write to."""
    import cloudpickle
    from distributed import get_worker

    root = Path(get_worker().local_directory) / FOLDER / digest
    if not root.is_dir():
        raise RuntimeError(f"the project's files ({digest[:12]}) are not on this worker "
                           f"({root}): the flow registers them when it starts; was the "
                           "worker's local directory removed?")
    with _project(root, project, settings):
        importlib.import_module("nb2pipe_runtime.progress").authorize(key)
        states = [cloudpickle.loads(data) for data in upstream]
        arguments = cloudpickle.loads(payload)
        from prefect.task_engine import run_task_sync
        from prefect.utilities.collections import visit_collection

        def restore(expression: Any) -> Any:
            return states[expression.index] if isinstance(expression, Upstream) else expression

        for name in ("parameters", "wait_for"):
            if arguments.get(name) is not None:
                arguments[name] = visit_collection(arguments[name], visit_fn=restore,
                                                   return_data=True)
        state = run_task_sync(**arguments)
        return bytes(cloudpickle.dumps(state))


@contextlib.contextmanager
def _project(root: Path, project: str, settings: dict[str, str]) -> Iterator[None]:
    """This process imports the project at root/project, with these settings, while the step
    runs; steps of the same project and settings run side by side on the worker's threads."""
    state = _state()
    wanted = (str(root), project, tuple(sorted(settings.items())))
    with state.turn:
        while state.active not in (None, wanted) and state.running:
            state.turn.wait()
        if state.active != wanted:
            _switch(state, root, project, settings)
            state.active = wanted
        state.running += 1
    try:
        yield
    finally:
        with state.turn:
            state.running -= 1
            state.turn.notify_all()


def _state() -> Any:
    """The worker process's own record (this module arrives by value with every task, so its
    globals are not one per process: the record lives in a module of its own)."""
    module = sys.modules.get(STATE)
    if module is None:
        module = types.ModuleType(STATE)
        vars(module)["state"] = types.SimpleNamespace(
            turn=threading.Condition(), active=None, running=0, path=None, settings={})
        module = sys.modules.setdefault(STATE, module)
    return vars(module)["state"]


def _switch(state: Any, root: Path, project: str, settings: dict[str, str]) -> None:
    for name in list(sys.modules):
        if name.partition(".")[0] in MODULES:
            del sys.modules[name]
    if state.path in sys.path:
        sys.path.remove(state.path)
    state.path = str(root / project)
    sys.path.insert(0, state.path)
    importlib.invalidate_caches()
    for name in state.settings:
        os.environ.pop(name, None)
    state.settings = {**settings, "NB2PIPE_WORKDIR": str(root / "work")}
    os.environ.update(state.settings)
