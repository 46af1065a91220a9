"""The local Dask cluster of NB2PIPE_DASK_WORKERS: one step per worker at a time.

Dask places a task beside its inputs, so independent steps reading the same value would queue
on one worker; each worker of the local cluster has one `step` resource and every step needs it,
so they spread over the workers. Resource needs from tags are for real clusters and are left
out here: every worker of one machine can run every step.
"""

from __future__ import annotations

from typing import Any

from dask.base import annotate
from distributed.diagnostics.plugin import WorkerPlugin
from prefect_dask.task_runners import DaskTaskRunner

from . import progress


class LocalDaskRunner(DaskTaskRunner):
    @property
    def client(self) -> Any:
        """The cluster's client; its workers get the run's key for their step events as they
        start, through the scheduler (not the environment: see progress.py)."""
        made = self._client is None
        client = super().client
        key = progress.run_key()
        if made and key:
            client.register_plugin(_Authorize(key), name="nb2pipe-progress")
        return client

    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None,
               dependencies: Any = None) -> Any:
        with annotate(resources={"step": 1}):
            return super().submit(task, parameters, wait_for=wait_for,
                                  dependencies=dependencies)


class _Authorize(WorkerPlugin):
    def __init__(self, key: str) -> None:
        self.key = key

    def setup(self, worker: Any) -> None:
        progress.authorize(self.key)
