"""The local Dask cluster of NB2PIPE_DASK_WORKERS: one step per worker at a time.

Dask places a task beside its inputs, so independent steps reading the same value would queue
on one worker; each worker of the local cluster has one `step` resource and every step needs it,
so they spread over the workers. Resource needs from tags are for real clusters and are left
out here: every worker of one machine can run every step.
"""

from __future__ import annotations

from typing import Any

from dask.base import annotate
from prefect_dask.task_runners import DaskTaskRunner


class LocalDaskRunner(DaskTaskRunner):
    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None,
               dependencies: Any = None) -> Any:
        with annotate(resources={"step": 1}):
            return super().submit(task, parameters, wait_for=wait_for,
                                  dependencies=dependencies)
