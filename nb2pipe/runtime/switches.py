"""The environment variables that change what a step does, read here and nowhere else.

`nb2pipe run` and `verify` set them for the flow they run (a Dask worker gets them with each
step), so they are read as a step runs, not when the flow is imported:

    NB2PIPE_MODE=notebook   each step's cells run as a papermill notebook (notebook.py)
    NB2PIPE_REPORT          a file the run's report is written to (`nb2pipe run`); `off`: no
                            report, and steps do not capture what they show (capture.py)
    NB2PIPE_FINGERPRINTS    a file: `verify` collects summaries of the values there
    NB2PIPE_CACHE=off       no values saved for later runs, none taken from them (cache.py)
    NB2PIPE_HANDOFF=store   values go to the next steps through the store, as between
                            processes, even when the next steps run on threads of this one
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Read on whichever machine the step runs: a Dask cluster's workers are sent them (dask_cluster).
VARIABLES = ("NB2PIPE_MODE", "NB2PIPE_REPORT", "NB2PIPE_FINGERPRINTS", "NB2PIPE_CACHE",
             "NB2PIPE_HANDOFF")


@dataclass(frozen=True)
class Switches:
    notebook: bool
    report: bool
    report_file: str  # where the report goes ("": the result storage)
    fingerprints: str | None  # where verify's fingerprints go
    cache: bool
    handoff_through_store: bool


def read() -> Switches:
    """The switches as the environment sets them now."""
    environ = os.environ
    report = environ.get("NB2PIPE_REPORT", "").strip()
    return Switches(
        notebook=environ.get("NB2PIPE_MODE") == "notebook",
        report=report.lower() != "off",
        report_file=report,
        fingerprints=environ.get("NB2PIPE_FINGERPRINTS") or None,
        cache=environ.get("NB2PIPE_CACHE") != "off",
        handoff_through_store=environ.get("NB2PIPE_HANDOFF") == "store",
    )
