"""Progress of a run, from Prefect's state hooks: one JSON line per event.

`nb2pipe run` names a channel (a pipe or a file) in NB2PIPE_PROGRESS and reads it; the steps'
tasks carry these hooks only then (see tasks.py), in whichever process they run. Events:

    {"event": "step", "step": NAME, "state": "running"}
    {"event": "step", "step": NAME, "state": "completed" | "cached", "duration": S | null,
     "metrics": {NAME: scalar}, "notebook": PATH | null}
    {"event": "step", "step": NAME, "state": "failed", "duration": S | null, "error": TEXT,
     "cell": N | null, "line": N | null}
    {"event": "exit", "step": NAME, "error": TEXT, "cell": N | null, "line": N | null}
    {"event": "warning", "step": NAME, "message": TEXT}

`duration` is how long the step's code ran (calls.Clock, the figure the report shows too);
null for a cached step, which ran nothing, and for a failure that did not come from its code.

A process that a step ends (`os._exit`, a crash in native code) cannot report its own failure:
`os._exit` from a step first sends an "exit" event naming the cell, and a crash leaves Python's
fault report in the channel's folder (NB2PIPE_PROGRESS + ".fault-PID"), for the reader to map to
a cell.

Each line is signed with the run's key (HMAC-SHA256), and the reader takes no other line. The
key reaches the processes that run steps from the reader, through a pipe or a worker's start-up
arguments (`authorize`), never through the environment: the channel's path is there, and so is
whatever a step's subprocesses and kernels inherit or `/proc` shows. So nothing a step prints,
and no program it starts, can pass for an event. (A step's own Python code shares its process
with the key, as with everything else of that process: it can do whatever the user can.)
"""

from __future__ import annotations

import faulthandler
import functools
import hashlib
import hmac
import json
import os
import re
import sys
import traceback
from typing import Any, NoReturn

from . import errors, project

MAX_LINE = 3500  # under the size a pipe writes at once: lines from processes never interleave

_key: bytes | None = None  # the run's key, from `authorize`


def channel() -> str | None:
    return os.environ.get("NB2PIPE_PROGRESS") or None


def authorize(key: str | None) -> None:
    """Sign this process's events with the run's key (hex), as the reader gave it."""
    global _key
    _key = bytes.fromhex(key) if key else None


def run_key() -> str | None:
    """The run's key, for the worker processes this one starts (see runners.py)."""
    return _key.hex() if _key is not None else None


def signed(event: dict[str, Any], key: bytes) -> str:
    """One line: the signature, a nonce (no two events are the same line, so none can be
    replayed), the event's JSON. The JSON is cut to MAX_LINE at the error's text."""
    body = json.dumps(event, default=repr)
    if len(body) > MAX_LINE and isinstance(event.get("error"), str):
        cut = len(body) - MAX_LINE + 20
        body = json.dumps({**event, "error": event["error"][:-cut] + " [...]"}, default=repr)
    payload = f"{os.urandom(12).hex()} {body}"
    return f"{_signature(key, payload)} {payload}"


def verified(line: str, key: bytes) -> tuple[str, dict[str, Any]] | None:
    """(nonce, event) of a line `signed` with `key`; None for any other line."""
    signature, _, payload = line.rstrip("\n").partition(" ")
    if not hmac.compare_digest(signature.encode(), _signature(key, payload).encode()):
        return None
    nonce, _, body = payload.partition(" ")
    try:
        event = json.loads(body)
    except ValueError:
        return None
    return (nonce, event) if isinstance(event, dict) else None


def _signature(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def emit(event: dict[str, Any]) -> None:
    """Append one event to the channel (nothing when no channel is set, or it is gone, or
    this process was given no key)."""
    path = channel()
    if path is None or _key is None:
        return
    line = signed(event, _key)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
    except OSError:  # the reader went away
        return
    try:
        os.write(handle, (line + "\n").encode())
    except OSError:
        pass
    finally:
        os.close(handle)


def started(task: Any, task_run: Any, state: Any) -> None:
    """Prefect on_running hook."""
    emit({"event": "step", "step": task.name, "state": "running"})


def finished(task: Any, task_run: Any, state: Any) -> None:
    """Prefect on_completion hook: done or cached, with the step's scalar metrics."""
    cached = state.name == "Cached"
    event: dict[str, Any] = {"event": "step", "step": task.name, "duration": None,
                             "state": "cached" if cached else "completed"}
    try:
        result = state.result(raise_on_failure=False, _sync=True)
    except Exception:  # a result that cannot be read back: report the state alone
        result = None
    if result is not None and hasattr(result, "refs"):
        event["metrics"] = scalar_metrics(task.name, result)
        event["notebook"] = getattr(result, "notebook", None)
        if not cached:  # a cached step ran no code in this run: no duration
            event["duration"] = getattr(result, "seconds", None)
    emit(event)


def failed(task: Any, task_run: Any, state: Any) -> None:
    """Prefect on_failure hook: the error, and the cell and line that raised it."""
    try:
        error: Any = state.result(raise_on_failure=False, _sync=True)
    except Exception:  # the state carries only its message
        error = None
    text = str(error) if isinstance(error, BaseException) else (state.message or state.name)
    if state.name == "TimedOut":
        seconds = re.search(r"([\d.]+) second", state.message or "")
        limit = f" of {float(seconds.group(1)):g} s" if seconds else ""
        text = f"step '{task.name}' ran longer than its timeout{limit} (tag timeout:SECONDS)"
    emit({"event": "step", "step": task.name, "state": "failed",
          "duration": getattr(error, "seconds", None), "error": text,
          "cell": getattr(error, "cell", None), "line": getattr(error, "line", None)})


def scalar_metrics(step: str, result: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in project.step(step).metrics:
        try:
            value = result[name]
        except Exception:  # a metric the step did not leave
            continue
        if hasattr(value, "item") and getattr(value, "shape", None) == ():
            value = value.item()  # a numpy scalar
        if isinstance(value, bool | int | float | str):
            found[name] = value
    return found


@functools.cache
def watch_process() -> None:
    """In a process that runs steps for `nb2pipe run`: report a step that ends the process."""
    path = channel()
    if path is None:
        return
    report = open(f"{path}.fault-{os.getpid()}", "w")  # noqa: SIM115 - open until exit
    faulthandler.enable(report, all_threads=True)
    real_exit = os._exit

    def exit_reporting_the_cell(status: int) -> NoReturn:
        frames = traceback.extract_stack(sys._getframe(1))
        found = _step_frame(frames)
        if found is not None:
            step, where = found
            emit({"event": "exit", "step": step, "cell": where[0] if where else None,
                  "line": where[1] if where else None,
                  "error": errors.describe(project.manifest(), step,
                                           f"os._exit({status}) ended the process", where)})
        real_exit(status)

    os._exit = exit_reporting_the_cell


def _step_frame(frames: list[traceback.FrameSummary]
                ) -> tuple[str, tuple[int, int, str] | None] | None:
    """The step whose function in steps.py is on the stack, and the cell it is in."""
    steps_file = str(project.PROJECT / "steps.py")
    functions = {s.function: s.name for s in project.manifest().steps}
    for frame in reversed(frames):
        if os.path.abspath(frame.filename) == steps_file and frame.name in functions:
            step = functions[frame.name]
            return step, errors.where(project.manifest(), steps_file, step, frames)
    return None
