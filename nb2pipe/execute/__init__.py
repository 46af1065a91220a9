"""Running a written project: its own flow.py, in this process (engine) or a watched child
process (supervise), with papermill's parameter flags (params); recording and verifying the
notebook (record, verify); the local Prefect server (local_server, prefect_api)."""

from __future__ import annotations

from nb2pipe.execute.engine import RunOptions, RunResult, run_project
from nb2pipe.execute.param_flags import ParameterArgs, ParameterError

__all__ = ["ParameterArgs", "ParameterError", "RunOptions", "RunResult", "run_project"]
