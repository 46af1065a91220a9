"""Where steps run: the flow's task runner, and what a step needs of the worker it runs on.

Threads by default. With prefect-dask installed, NB2PIPE_DASK_ADDRESS=tcp://host:port runs the
steps on that Dask cluster (the flow sends its workers the project: dask_cluster.py), and
NB2PIPE_DASK_WORKERS=N on a local cluster of N worker processes, one step per worker at a time.
`nb2pipe run --runner thread|process|dask` chooses with `task_runner(kind)`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from collections.abc import Iterator
from typing import Any

from . import progress


def task_runner(kind: str | None = None, *, address: str | None = None,
                workers: int | None = None) -> Any:
    """A Prefect task runner: `kind` "thread", "process" or "dask"; None reads the environment
    (and gives None, Prefect's default thread pool, when it names no Dask cluster)."""
    if kind is None:
        address = address or os.environ.get("NB2PIPE_DASK_ADDRESS") or None
        configured = os.environ.get("NB2PIPE_DASK_WORKERS")
        workers = workers or (int(configured) if configured else None)
        if not address and not workers:
            return None
        kind = "dask"
    cores = os.cpu_count() or 1
    if kind == "process":
        # Each worker imports the steps (and what they import) as it starts, not when its
        # first step arrives with a value to hand over; it gets the run's key for its step
        # events with its start-up arguments (not the environment: see progress.py).
        return _process_pool()(max_workers=workers or cores, initializer=warm_up,
                               initargs=(progress.run_key(),))
    if kind == "dask":
        if address:
            from .dask_cluster import ClusterRunner

            return ClusterRunner(address=address)
        from .local_dask import LocalDaskRunner

        return LocalDaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
            "n_workers": workers or 2, "threads_per_worker": 1, "processes": True,
            "dashboard_address": None, "resources": {"step": 1}})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=workers or max(cores, 2))


@functools.cache
def _process_pool() -> type:
    """Prefect's process pool task runner, made safe for a step that ends its worker."""
    from prefect.task_runners import ProcessPoolTaskRunner

    class ProcessPool(ProcessPoolTaskRunner):
        """A worker that ends abruptly (`os._exit`, a crash in native code) may die holding
        the lock of the queue that workers send Prefect's events and logs through; nothing
        can be written to that queue again, not even Prefect's goodbye to its reader (which
        Prefect waits 5 s for). Python would then wait forever at exit for the thread that
        feeds the queue, so for a pool a step broke that wait is called off."""

        def __exit__(self, *exc_info: Any) -> None:
            executor = getattr(self, "_executor", None)
            queue = getattr(self, "_subprocess_message_queue", None)
            if queue is not None and getattr(executor, "_broken", False):
                queue.cancel_join_thread()
            super().__exit__(*exc_info)

    return ProcessPool


def shares_memory() -> bool:
    """Whether the running flow's steps run in this process, on threads: the next steps
    then take a step's values from memory, not from the files of the result storage."""
    from prefect.context import FlowRunContext
    from prefect.task_runners import ThreadPoolTaskRunner

    context = FlowRunContext.get()
    return context is not None and isinstance(context.task_runner, ThreadPoolTaskRunner)


def warm_up(key: str | None = None) -> None:
    """A new worker process: the run's key for its step events; import the steps and the
    serializers' libraries now."""
    progress.authorize(key)
    for name in ("steps", "pandas", "pyarrow.ipc", "pyarrow.parquet"):
        with contextlib.suppress(ImportError):  # a project without pandas has no frames
            importlib.import_module(name)


@contextlib.contextmanager
def resources(**needs: float) -> Iterator[None]:
    """Steps submitted here run on a Dask worker that has these resources (tags cpu:N,
    memory:SIZE, gpu:N become CPU, MEMORY in bytes, GPU): start workers with, e.g.,
    `dask worker tcp://scheduler:8786 --resources "CPU=4 MEMORY=16e9 GPU=1"`. Other task
    runners, and the local cluster of NB2PIPE_DASK_WORKERS, run every step where they can."""
    try:
        from dask.base import annotate
    except ImportError:
        yield
        return
    with annotate(resources=needs):
        yield
