"""The Dask cluster of NB2PIPE_DASK_ADDRESS, from the flow's side: workers that share nothing.

The scheduler and the workers need the project's requirements installed and nothing else: no
project folder, no PYTHONPATH, no shared disk, no environment variables of nb2pipe.

- **Code.** When the flow starts, the project (steps.py, flow.py, pipeline.json,
  nb2pipe_runtime) and the notebook's folder (the data its relative paths read) go to every
  worker as a zip archive, through a worker plugin (dask_worker.ProjectFiles; workers that join
  later get it too). Each step's task runs `dask_worker.run_step_task`, which travels by value:
  it imports that project on the worker, then runs Prefect's task.
- **Settings.** The run's settings (result storage, caching, report, hand-over) travel with each
  step, not through the workers' environment. The storage key does not: a worker needs
  NB2PIPE_STORAGE_KEY or NB2PIPE_STORAGE_KEY_BLOCK of its own.
- **Resources.** Before the first step is submitted, every step's needs (tags cpu:, memory:,
  gpu:) are checked against the workers' resources: a step no worker can run is an error
  naming the step, its tags and what each worker has, not a wait without end.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cloudpickle
from prefect.futures import PrefectFuture
from prefect.utilities.collections import visit_collection
from prefect_dask.task_runners import DaskTaskRunner, PrefectDaskFuture

from . import dask_worker, progress, project, switches
from .store import configured_storage

# Sent by value to the scheduler and workers, which need not have the runtime installed.
cloudpickle.register_pickle_by_value(dask_worker)

# Settings of the run that its steps read wherever they run; paths of the flow's machine
# (the working folder, notebook mode's files) are not among them.
FORWARDED = (*switches.VARIABLES, "NB2PIPE_PROGRESS", "NB2PIPE_STORAGE_KEY_BLOCK")
MAX_BYTES = 512 << 20  # the notebook's folder and project, shipped to every worker
SKIPPED = ("__pycache__",)  # and folders whose name starts with "."


class MissingResources(RuntimeError):
    """A step needs resources that no worker of the cluster has."""


class ShippingError(RuntimeError):
    """The project cannot be sent to the workers (too large, unreadable)."""


class ClusterRunner(DaskTaskRunner):
    """Prefect's DaskTaskRunner for an existing cluster, whose workers get the project from the
    flow (see the module's docstring)."""

    def __init__(self, address: str, **options: Any) -> None:
        super().__init__(address=address, **options)
        self._shipped: tuple[str, str] | None = None  # archive digest, project inside it

    def duplicate(self) -> ClusterRunner:
        return type(self)(address=str(self.address), client_kwargs=self.client_kwargs)

    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None,
               dependencies: Any = None) -> Any:
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        from prefect.context import serialize_context
        from prefect.utilities.engine import collect_task_run_inputs_sync

        client: Any = self.client
        if self._shipped is None:
            needs = {name: project.step(name).options.resources
                     for name in project.manifest().order}
            check_resources(needs, workers(client), str(self.address))
            self._shipped = ship(client)
            storage = configured_storage()
            if isinstance(storage, Path):
                self.logger.warning(
                    "the result storage is the folder %s: the Dask workers at %s must see it "
                    "at that path (a shared disk); else name a bucket's block in "
                    "NB2PIPE_RESULT_STORAGE", storage, self.address)
        digest, inside = self._shipped
        upstream: list[Any] = []

        def mark(expression: Any) -> Any:
            if isinstance(expression, PrefectDaskFuture):
                wrapped: Any = expression.wrapped_future
                upstream.append(wrapped.future)
                return dask_worker.Upstream(len(upstream) - 1)
            return expression

        task_run_id = uuid.uuid4()
        inputs = {name: collect_task_run_inputs_sync(value, future_cls=PrefectFuture)
                  for name, value in parameters.items()}
        for name, extra in (dependencies or {}).items():
            inputs[name] = inputs.get(name, set()) | set(extra)
        arguments = {
            "task": task, "task_run_id": task_run_id, "return_type": "state",
            "parameters": visit_collection(parameters, visit_fn=mark, return_data=True),
            "wait_for": (visit_collection(list(wait_for), visit_fn=mark, return_data=True)
                         if wait_for else None),
            "dependencies": inputs,
            "context": serialize_context(asset_ctx_kwargs={
                "task": task, "task_run_id": task_run_id, "task_inputs": inputs,
                "copy_to_child_ctx": True}),
        }
        future = client.submit(dask_worker.step_runner(), digest, inside, settings(),
                               progress.run_key(), cloudpickle.dumps(arguments), *upstream,
                               key=f"{task.name}-{task_run_id}", pure=False)
        states: Any = StateFuture(future)
        return PrefectDaskFuture(wrapped_future=states, task_run_id=task_run_id)


class StateFuture:
    """A Dask future whose result is a pickled Prefect state, read as the state."""

    def __init__(self, future: Any) -> None:
        self.future = future

    def result(self, timeout: float | None = None) -> Any:
        return cloudpickle.loads(self.future.result(timeout=timeout))

    def done(self) -> bool:
        return bool(self.future.done())

    def cancel(self) -> Any:
        return self.future.cancel()

    def add_done_callback(self, callback: Any) -> None:
        self.future.add_done_callback(lambda _: callback(self))

    @property
    def key(self) -> Any:
        return self.future.key


def settings() -> dict[str, str]:
    """The run's settings its steps read, as the flow's process has them."""
    found = {name: os.environ[name] for name in FORWARDED if os.environ.get(name)}
    storage = configured_storage()
    found["NB2PIPE_RESULT_STORAGE"] = str(storage)
    return found


# -- the project's files -----------------------------------------------------------------


def ship(client: Any) -> tuple[str, str]:
    """Register the project's files with the cluster; returns the archive's digest and where
    the project is inside it."""
    archive, digest, inside = bundle(project.PROJECT, project.workdir())
    client.register_plugin(dask_worker.ProjectFiles(archive, digest, inside),
                           name=f"nb2pipe-project-{digest[:16]}")
    return digest, inside


def bundle(folder: Path, workdir: Path) -> tuple[bytes, str, str]:
    """A zip archive of the notebook's folder (`work/`) and the project (inside it, or at
    `project/` when it lies elsewhere); its digest (of names and contents); the project's path
    in it. Hidden folders, __pycache__ and the project's tests are left out, and links too."""
    folder, workdir = folder.resolve(), workdir.resolve()
    roots = [("work", workdir)]
    if folder.is_relative_to(workdir):
        inside = "/".join(("work", *folder.relative_to(workdir).parts))
    else:
        inside = "project"
        roots.append((inside, folder))
    files = sorted({name: path for prefix, root in roots
                    for name, path in _files(prefix, root, skip=folder / "tests")}.items())
    total = sum(path.stat().st_size for _, path in files)
    if total > MAX_BYTES:
        largest = sorted(files, key=lambda item: -item[1].stat().st_size)[:3]
        raise ShippingError(
            f"{workdir} holds {total / 1e6:.0f} MB to send to every Dask worker (at most "
            f"{MAX_BYTES / 1e6:.0f} MB; largest: " + ", ".join(
                f"{name} {path.stat().st_size / 1e6:.0f} MB" for name, path in largest) +
            "): keep large data in the object store, or on the workers' image")
    digest = hashlib.sha256()
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, path in files:
            content = path.read_bytes()
            digest.update(f"{name}\0{len(content)}\0".encode())
            digest.update(content)
            archive.writestr(zipfile.ZipInfo(name, (2000, 1, 1, 0, 0, 0)), content,
                             zipfile.ZIP_DEFLATED)
    return data.getvalue(), digest.hexdigest(), inside


def _files(prefix: str, root: Path, skip: Path) -> list[tuple[str, Path]]:
    found = []
    for here, folders, names in os.walk(root):
        base = Path(here)
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f not in SKIPPED
                            and base / f != skip and not (base / f).is_symlink())
        for name in sorted(names):
            path = base / name
            if path.is_symlink() or not path.is_file() or name.endswith(".pyc"):
                continue
            found.append(("/".join((prefix, *path.relative_to(root).parts)), path))
    return found


# -- resources ---------------------------------------------------------------------------


def workers(client: Any) -> dict[str, dict[str, float]]:
    """Each worker (its name and address) -> its resources."""
    found = client.scheduler_info(n_workers=-1).get("workers", {})
    return {(address if str(info.get("name", address)) == address else
             f"{info['name']} ({address})"): dict(info.get("resources") or {})
            for address, info in found.items()}


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_resources(steps: Mapping[str, Mapping[str, float]],
                    available: dict[str, dict[str, float]],
                    address: str) -> None:
    """MissingResources for the first step (of pipeline.json's, in order) no worker can run."""
    for name, needed in steps.items():
        needs = dict(needed)
        if not needs or any(all(has.get(k, 0) >= v for k, v in needs.items())
                            for has in available.values()):
            continue
        have = "; ".join(f"{worker}: " + (", ".join(f"{k}={_amount(v)}" for k, v in sorted(
            has.items())) or "no resources") for worker, has in sorted(available.items()))
        wanted = " ".join(f"{k}={_amount(v)}" for k, v in sorted(needs.items()))
        raise MissingResources(
            f"step '{name}' needs {project.resource_tags(needs)} (its tags), but no worker of "
            f"the Dask cluster at {address} has them ({have or 'no workers'}): start one with "
            f'`dask worker {address} --resources "{wanted}"`')
