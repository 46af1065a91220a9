"""`nb2pipe run` from a terminal: the flow runs in a child process that this one watches.

A step can end the process it runs in (`os._exit`, a crash in native code), and Ctrl-C must stop
a step that Python cannot interrupt (a thread deep in a C call). So the run happens in a child
process, in a process group of its own; this process reads the step events and, when the child
ends without finishing the run (or Ctrl-C is pressed), reports the step that was running, with
its cell, and stops every process the run started: worker processes, a temporary Prefect server,
notebook kernels. If this process is killed outright, a watchdog of the child does it (child.py),
and the next run removes the run's folder if nothing else could (step_events.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from nb2pipe.execute import prefect_api
from nb2pipe.execute.engine import RunOptions, RunResult, written_report
from nb2pipe.execute.step_events import Channel, Emit, Ended, Tracker, remove_stale_folders
from nb2pipe.groups import kill_group, signal_group
from nb2pipe.runtime.manifest import load

GRACE = 3.0  # seconds a stopped run has to end by itself before it is killed
EXIT_GRACE = 30.0  # seconds a run that wrote how it ended has to end before it is killed
MARK = "NB2PIPE_RUN_MARK"  # in the environment of every process of one run


class Interrupted(Exception):
    """Ctrl-C stopped the run; `result` says how far it got."""

    def __init__(self, result: RunResult) -> None:
        super().__init__("interrupted")
        self.result = result


def supervise(project: Path, options: RunOptions, emit: Emit | None = None,
              warn: Callable[[str], None] | None = None, verbose: bool = False,
              stdout: IO[str] | None = None,
              phase: Callable[..., None] | None = None) -> RunResult:
    """Run the project in a child process (with the Prefect API of this one's environment);
    raises Interrupted on Ctrl-C."""
    project = project.resolve()
    manifest = load(project)
    api_url = os.environ.get("PREFECT_API_URL")

    def linked(name: str, message: str, url: str | None, **waiting: Any) -> None:
        # The flow run's address, from Prefect's settings in the child (which a prefect.toml
        # in the notebook's folder can change): shown only if it leads to the run's server
        # (the local server's record names it when it was still starting as the run began).
        known = api_url or prefect_api.known_api_url()
        if phase is not None and (url is None or prefect_api.ui_link(url, known)):
            phase(name, message, url, **waiting)

    tracker = Tracker(list(manifest.order), emit, warn, linked)
    remove_stale_folders()
    channel = Channel()
    ended = threading.Event()  # the child wrote how the run ended: all that is left is exiting

    def follow(event: dict[str, Any]) -> None:
        if event.get("event") == "ended":
            ended.set()
        tracker.apply(event)

    channel.follow(follow)
    outcome = channel.folder / "result.json"
    mark = uuid.uuid4().hex
    child, lifeline = _start(project, options, channel, outcome, mark, verbose, stdout)
    interrupted = False
    started = time.perf_counter()
    # Stopped from outside (the JupyterLab server ending a run, a closed terminal): like Ctrl-C.
    # (Signal handlers belong to the main thread: elsewhere, the caller stops the run.)
    handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)
                if threading.current_thread() is threading.main_thread()}
    exited = threading.Event()
    threading.Thread(target=_reap, args=(child, ended, exited), daemon=True,
                     name="nb2pipe-reap").start()
    try:
        try:
            code = child.wait()
        except KeyboardInterrupt:
            interrupted = True
            code = _stop(child)
        finally:
            exited.set()
            ended.set()
        channel.close()
        stop_leftovers(child.pid, mark)
        finished = _read(outcome)
        if interrupted:
            tracker.interrupted()
        else:  # a worker process may have ended under a step even when the run finished
            how = _how(code) if finished is None else "its process ended"
            started_any = any(r.state != "pending" for r in tracker.reports.values())
            tracker.finish(Ended(channel.folder, manifest, project, how),
                           "an earlier step it needs failed" if finished and started_any
                           else "the run stopped before it ran")
    finally:
        channel.remove()
        os.close(lifeline)  # the watchdog was stopped with the rest: it does nothing
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    result = _result(tracker, finished, code, interrupted, started, options)
    if interrupted:
        raise Interrupted(result)
    return result


def _start(project: Path, options: RunOptions, channel: Channel, outcome: Path, mark: str,
           verbose: bool, stdout: IO[str] | None) -> tuple[subprocess.Popen[bytes], int]:
    """The child process that runs the flow, in a process group of its own; with the write end
    of its lifeline, which the caller closes once the run is over."""
    spec = channel.folder / "run.json"
    spec.write_text(json.dumps({"project": str(project), "options": asdict(options)}),
                    encoding="utf-8")
    env = {**os.environ, "NB2PIPE_PROGRESS": str(channel.path), MARK: mark}
    if verbose:
        env["NB2PIPE_VERBOSE"] = "1"
    else:  # Prefect's own lines in the terminal (failed tasks' tracebacks): with --verbose
        env["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "CRITICAL"
    # The lifeline: the key of the step events, then open until this process ends (child.py).
    lifeline_end, lifeline = os.pipe()
    os.write(lifeline, f"{channel.key}\n".encode())
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "nb2pipe.execute.child", str(spec), str(outcome),
             str(lifeline_end)], env=env, stdout=stdout, start_new_session=True,
            pass_fds=(lifeline_end, channel.lock))
    except BaseException:
        os.close(lifeline)
        channel.remove()
        raise
    finally:
        os.close(lifeline_end)
    return child, lifeline


def _result(tracker: Tracker, finished: dict[str, Any] | None, code: int | None,
            interrupted: bool, started: float, options: RunOptions) -> RunResult:
    """How the run went: from what the child wrote when it finished, else from its steps'
    events and how its process ended."""
    failed = tracker.failed
    ok = finished is not None and bool(finished["ok"]) and not failed and not interrupted
    error = None
    if not ok:
        error = (failed[0].error if failed else (finished or {}).get("error")) or (
            "interrupted" if interrupted else f"the run ended unexpectedly ({_how(code)})")
    elapsed = time.perf_counter() - started  # when the run could not say how long it took
    return RunResult(ok=ok, steps=tracker.reports, outputs={},
                     seconds=float((finished or {}).get("seconds", elapsed)),
                     startup=float((finished or {}).get("startup", 0.0)), error=error,
                     warnings=tracker.warnings, report=written_report(options))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(child: subprocess.Popen[bytes]) -> int:
    """Ctrl-C: ask the run's processes to stop, then kill what is left; a second Ctrl-C kills
    at once."""
    for sig, wait in ((signal.SIGINT, GRACE), (signal.SIGKILL, GRACE)):
        signal_group(child.pid, sig)
        try:
            return child.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:
            kill_group(child.pid)
            return child.wait()
    return child.wait()


def _reap(child: subprocess.Popen[bytes], ended: threading.Event,
          exited: threading.Event) -> None:
    """A run that has written how it ended but whose process does not end (a library's
    thread it waits for at exit is stuck) is over: its processes are killed."""
    ended.wait()
    if not exited.wait(EXIT_GRACE):
        kill_group(child.pid)


def stop_leftovers(group: int, mark: str) -> None:
    """Kill what the run left behind (but this process): its process group, and processes
    that left the group (notebook kernels start sessions of their own, the watchdog one too)
    but carry the run's mark."""
    kill_group(group)
    if not mark:
        return
    needle = f"{MARK}={mark}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if (needle in (entry / "environ").read_bytes().split(b"\0")
                    and int(entry.name) != os.getpid()):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _read(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"
