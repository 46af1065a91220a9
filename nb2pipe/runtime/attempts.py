"""Where each step ran, attempt by attempt, for the run's report.

A step that starts writes one record to the result storage, beside the run's report records:

    reports/RUN/attempts/STEP-N.json    {"worker": WHERE, "started": T, "error": TEXT | null}

N counts the step's attempts in this run: a Prefect retry after an error, or Dask running the
step again on another worker after the one running it was lost. A record with no error that is
not the step's last attempt is an attempt that never ended: the process or the machine running
it stopped. The report says so, and names the Dask worker each attempt ran on.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from .store import Store

MOST = 20  # attempts looked for: Prefect's retries and Dask's allowed failures are fewer


def path(run: str, step: str, number: int) -> str:
    return f"reports/{run}/attempts/{step}-{number}.json"


def begin(store: Store, run: str, step: str) -> str:
    """Record that the step starts here; the record's path."""
    number = len(read(store, run, step)) + 1
    where = path(run, step, number)
    store.write_bytes(where, json.dumps({"worker": worker(), "started": time.time(),
                                         "error": None}).encode())
    return where


def failed(store: Store, where: str, error: str) -> None:
    record = json.loads(store.read_bytes(where))
    record["error"] = error
    store.write_bytes(where, json.dumps(record).encode())


def read(store: Store, run: str, step: str) -> list[dict[str, Any]]:
    """The step's attempts in this run, first first."""
    found = []
    for number in range(1, MOST + 1):
        try:
            found.append(json.loads(store.read_bytes(path(run, step, number))))
        except Exception:  # no such record (a missing file, or a block's own error)
            break
    return found


def worker() -> str | None:
    """The Dask worker running this thread, by name and address; None elsewhere."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        running = get_worker()
    except ValueError:  # not in a worker
        return None
    name = str(running.name)
    return name if name == running.address else f"{name} ({running.address})"


def describe(attempts: list[dict[str, Any]]) -> str | None:
    """What the report says of where a step ran; None when there is nothing to say (one
    attempt, not on a Dask worker)."""
    if not attempts or (len(attempts) == 1 and not attempts[0].get("worker")):
        return None
    if len(attempts) == 1:
        return f"Ran on Dask worker {attempts[0]['worker']}."
    parts = []
    for number, attempt in enumerate(attempts, start=1):
        where = f"on Dask worker {attempt['worker']}" if attempt.get("worker") else "here"
        if attempt.get("error"):
            outcome = f"failed: {attempt['error'].splitlines()[0]}"
        elif number < len(attempts):
            outcome = ("ended without a result: the process or machine running it stopped, "
                       "and the step ran again")
        else:
            outcome = "the last attempt"
        parts.append(f"attempt {number} {where}: {outcome}")
    return f"{len(attempts)} attempts: " + "; ".join(parts) + "."
