"""The fixed costs of a run's process around its steps: importing Prefect, and leaving.

Importing Prefect builds a great many objects (pydantic models, settings, schemas); with the
garbage collector on, that sets off dozens of full collections, about 0.8 s of CPU. The
collector is paused while Prefect is imported, and what was imported is then frozen, so later
collections (during the steps, with the collector on again) skip it. When the process ends, a
last full collection over everything a run imported (Prefect, pandas, scikit-learn) costs about
as much again, for memory the operating system takes back anyway: `leave` skips it.

jsonschema, which Prefect imports, builds a grammar of IRIs with lark when the optional package
rfc3987-syntax is installed (JupyterLab's dependencies install it): about 1.2 s of CPU, half of
importing Prefect. A flow run never checks the "iri" formats it is for (Prefect's schemas come
from pydantic, which writes "uri"), so jsonschema is imported as if the package were missing,
as the local server is (prefect_server.py); the steps' own code can still import it.
"""

from __future__ import annotations

import gc
import sys

LEFT_OUT = "rfc3987_syntax"


def import_prefect() -> None:
    """Import what a flow run needs from Prefect, with the garbage collector paused."""
    enabled = gc.isenabled()
    gc.disable()
    left_out = LEFT_OUT not in sys.modules
    if left_out:
        sys.modules[LEFT_OUT] = None  # type: ignore[assignment]  # its import fails
    try:
        import prefect.flow_engine
        import prefect.main  # what `from prefect import flow, task` loads
        import prefect.task_engine
        import prefect.task_runners  # noqa: F401
    finally:
        if left_out and sys.modules.get(LEFT_OUT, ...) is None:
            del sys.modules[LEFT_OUT]
        if enabled:
            gc.enable()
        gc.freeze()


def leave() -> None:
    """Just before the process ends: no last full collection over what it imported.
    Objects still referenced are finalized as usual; only unreachable cycles are left to the
    operating system."""
    gc.freeze()
