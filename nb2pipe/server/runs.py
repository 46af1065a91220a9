"""Pipeline runs started from JupyterLab: one `nb2pipe run --progress jsonl` process group each.

A run is a subprocess in a process group of its own, so Stop and the server's shutdown end it
together with whatever it started (workers, a temporary Prefect server). Its output is read in
chunks, not lines: a step may print megabytes without a newline. Progress events come on its
stdout, which only `nb2pipe run` itself writes; what the steps print comes on its stderr and
is log, whatever it looks like. A flow run's link is kept only if it leads to the Prefect UI
of the server the runs use. A run ends when its process exits, even if something it left
behind still holds the pipes. Every run is saved as a JSON file, so the history of a
notebook's runs survives a restart of the Jupyter server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2pipe.groups import end_group_async
from nb2pipe.server.processes import CHUNK, LineReader, exit_code

LOG_LINES = 400  # the tail of the output kept per run
LOG_LINE_CHARS = 4000  # a longer line of output is cut to this
HISTORY = 30  # runs kept per notebook
STOP_SECONDS = 5.0  # after SIGTERM, before SIGKILL
DRAIN_SECONDS = 2.0  # output still in the pipe once the process group is gone
SAVE_SECONDS = 1.0  # at most one write of a running run's file per this
FINAL_STATES = ("completed", "failed", "cancelled")
STEP_FINAL_STATES = ("completed", "cached", "failed", "skipped", "cancelled")
EVENTS = ("phase", "step", "finished", "report")


@dataclass
class Run:
    id: str
    path: str  # the notebook, as the Contents API names it
    parameters: dict[str, str] = field(default_factory=dict)  # as the user typed them
    state: str = "starting"  # starting | running | completed | failed | cancelled
    phase: str | None = None
    message: str | None = None  # what the run is doing, from its last phase event
    # When the phase is a wait (the local Prefect server starting): since when (seconds since
    # the epoch, this machine's clock) and what is waited for, so the panel can count.
    phase_since: float | None = None
    phase_detail: str | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    error: str | None = None
    report: str | None = None  # the HTML report's file, once the run wrote one
    # Where the server told the run to write its report: a report event counts only if it names
    # this file (a step's printed output can look like any event).
    report_target: str | None = None
    flow_run: str | None = None  # the flow run's page in the Prefect UI
    started: float = field(default_factory=time.time)
    ended: float | None = None
    returncode: int | None = None
    # Being stopped: what the run reports from now on (its step interrupted, the run failing)
    # is the stop's doing; it ends cancelled when its process is gone, never failed before.
    stopping: bool = False

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else round(self.ended - self.started, 3)

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "steps": {n: dict(s) for n, s in sorted(self.steps.items())},
                "log": list(self.log)}

    def summary(self) -> dict[str, Any]:
        """What a notebook's run history lists."""
        return {
            "id": self.id,
            "path": self.path,
            "state": self.state,
            "phase": self.phase,
            "message": self.message,
            "phase_since": self.phase_since,
            "phase_detail": self.phase_detail,
            "error": self.error,
            "parameters": dict(self.parameters),
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "report": self.report is not None,
            "flow_run": self.flow_run,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Run:
        run = cls(id=str(document["id"]), path=str(document["path"]))
        run.parameters = {str(k): str(v) for k, v in document.get("parameters", {}).items()}
        run.state = str(document.get("state", "failed"))
        run.phase, run.message = document.get("phase"), document.get("message")
        run.phase_since = _number(document.get("phase_since"))
        run.phase_detail = _text(document.get("phase_detail"))
        run.steps = {str(k): dict(v) for k, v in document.get("steps", {}).items()}
        run.log = [str(line) for line in document.get("log", [])]
        run.error = document.get("error")
        run.report = document.get("report_file")
        run.flow_run = flow_run_link(document.get("flow_run"))
        run.started = float(document.get("started", 0.0))
        run.ended = document.get("ended")
        return run

    def apply(self, line: str) -> None:
        """One line of the subprocess's stdout: a progress event (or, if not one, text for
        the log). Events of kinds not known here are left out (newer `nb2pipe run` versions
        may add some)."""
        event = _event(line)
        if event is None:
            self.add_log(line)
            return
        kind = event.get("event")
        if kind == "phase":
            self.phase = _text(event.get("phase"))
            self.message = _text(event.get("message"))
            self.phase_since = _number(event.get("since"))
            self.phase_detail = _text(event.get("detail"))
            if self.phase == "flow_run":
                self.flow_run = flow_run_link(event.get("url")) or self.flow_run
        elif kind == "step":
            if self.state == "starting":
                self.state = "running"
            name = str(event.get("step"))
            state = _text(event.get("state")) or "running"
            if self.stopping and state in ("failed", "skipped"):
                state = "cancelled"
            self.steps[name] = {
                "state": state,
                "duration": _number(event.get("duration")),
                "error": _text(event.get("error")),
                "cell": _integer(event.get("cell")),
                "line": _integer(event.get("line")),
            }
        elif kind == "report":
            if self.report_target is not None and event.get("path") == self.report_target:
                self.report = self.report_target
        elif kind == "finished" and self.stopping and event.get("state") != "completed":
            return  # the stop's doing: cancelled once the process is gone (cancelled())
        elif kind == "finished" and not self.finished:
            self.state = "completed" if event.get("state") == "completed" else "failed"
            self.error = _text(event.get("error"))
            self.ended = time.time()  # the work is done; the process only has to exit
            if self.state == "completed":  # every step did its part, whatever was reported last
                for status in self.steps.values():
                    if status["state"] in ("pending", "running"):
                        status["state"] = "completed"

    def add_log(self, line: str) -> None:
        if len(line) > LOG_LINE_CHARS:
            line = line[:LOG_LINE_CHARS] + f" [... {len(line) - LOG_LINE_CHARS} more characters]"
        self.log.append(line)
        del self.log[:-LOG_LINES]

    def cancelled(self, reason: str) -> None:
        """Stopped from outside: every step that had not completed is cancelled. A run that
        completed stays completed; one that reported failing as it was being stopped (the
        signal interrupted its step, the steps after it were skipped) was cancelled."""
        if self.state in ("completed", "cancelled"):
            return
        self.state = "cancelled"
        self.error = reason
        for status in self.steps.values():
            if status["state"] not in ("completed", "cached"):
                status["state"] = "cancelled"
        self.phase = self.message = self.phase_detail = None
        self.phase_since = None

    def exited(self, returncode: int) -> None:
        """The subprocess ended: without a `finished` event, the run failed."""
        self.returncode = returncode
        if self.ended is None or self.state not in ("completed", "failed"):
            self.ended = time.time()
        if not self.finished:
            self.state = "failed"
            tail = next((line for line in reversed(self.log) if line.strip()), "")
            self.error = tail or f"nb2pipe run exited with code {returncode} before finishing"
        for status in self.steps.values():  # a step the run never got to report on
            if status["state"] not in STEP_FINAL_STATES:
                status["state"] = ("cancelled" if self.state == "cancelled" else
                                   "failed" if status["state"] == "running" else "skipped")
        self.phase = self.message = self.phase_detail = None
        self.phase_since = None


def flow_run_link(url: object) -> str | None:
    """`url` if it is an address in the Prefect UI of the server this server's runs use."""
    from nb2pipe.execute import prefect_api

    return prefect_api.ui_link(url, prefect_api.known_api_url())


def _event(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if isinstance(event, dict) and isinstance(event.get("event"), str):
        return event if event["event"] in EVENTS else {"event": "unknown"}
    return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class _Process:
    """A run's subprocess: its group, and the task that follows it."""

    popen: subprocess.Popen[bytes]
    task: asyncio.Task[None] | None = None
    stopping: str | None = None  # why it is being stopped

    @property
    def group(self) -> int:
        return self.popen.pid  # start_new_session: the group's id is the leader's pid


class RunStore:
    """Runs by id, kept on disk in `folder`, and the subprocesses of the active ones."""

    def __init__(self, folder: Path, python: str = sys.executable) -> None:
        self.folder = folder
        self.python = python
        self.runs: dict[str, Run] = {}
        self._processes: dict[str, _Process] = {}
        self._saved: dict[str, float] = {}
        self._load()

    # --- queries -----------------------------------------------------------------------

    def get(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def active(self, path: str) -> Run | None:
        return next((r for r in self.runs.values() if r.path == path and not r.finished), None)

    def history(self, path: str) -> list[Run]:
        """The notebook's runs, newest first."""
        return sorted((r for r in self.runs.values() if r.path == path),
                      key=lambda r: r.started, reverse=True)

    # --- starting and following --------------------------------------------------------

    def start(self, notebook: Path, api_path: str, flags: Sequence[str] = (),
              parameters: dict[str, str] | None = None, steps: Sequence[str] = ()) -> Run:
        """Start `nb2pipe run NOTEBOOK --progress jsonl FLAGS...` in a process group of its own.
        Needs a running event loop."""
        run = Run(id=uuid.uuid4().hex, path=api_path, parameters=dict(parameters or {}))
        run.steps = {name: {"state": "pending", "duration": None, "error": None, "cell": None,
                            "line": None} for name in steps}
        run.phase, run.message = "starting", "Starting nb2pipe run"
        self.runs[run.id] = run
        self._forget_old(api_path)
        run.report_target = str((self.folder / f"{run.id}.html").resolve())
        command = [self.python, "-m", "nb2pipe", "run", str(notebook), "--progress", "jsonl",
                   "--report", run.report_target, *flags]
        try:
            popen = subprocess.Popen(
                command, cwd=notebook.parent, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except OSError as exc:
            run.add_log(f"cannot start nb2pipe run: {exc}")
            run.exited(-1)
            self._save(run, force=True)
            return run
        process = _Process(popen)
        self._processes[run.id] = process
        process.task = asyncio.get_running_loop().create_task(self._follow(run, process))
        self._save(run, force=True)
        return run

    async def _follow(self, run: Run, process: _Process) -> None:
        assert process.popen.stdout is not None and process.popen.stderr is not None
        loop = asyncio.get_running_loop()
        streams = {process.popen.stdout: LineReader(lambda line: self._apply(run, line)),
                   process.popen.stderr: LineReader(lambda line: self._log(run, line))}
        open_streams = len(streams)
        closed = asyncio.Event()

        def follow(fd: int, reader: LineReader) -> None:
            def readable() -> None:
                nonlocal open_streams
                try:
                    chunk = os.read(fd, CHUNK)
                except BlockingIOError:
                    return
                except OSError:
                    chunk = b""
                if chunk:
                    reader.feed(chunk)
                    return
                loop.remove_reader(fd)
                open_streams -= 1
                if not open_streams:
                    closed.set()

            os.set_blocking(fd, False)
            loop.add_reader(fd, readable)

        for stream, reader in streams.items():
            follow(stream.fileno(), reader)
        try:
            returncode = await exit_code(process.popen)
            # Whatever the run left in its group (an orphaned Prefect server) goes too.
            await end_group_async(process.group, grace=0.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), DRAIN_SECONDS)
        finally:
            for stream, reader in streams.items():
                loop.remove_reader(stream.fileno())
                stream.close()
                reader.close()
            self._processes.pop(run.id, None)
        if process.stopping:
            run.cancelled(process.stopping)
        run.exited(returncode)
        self._save(run, force=True)

    def _apply(self, run: Run, line: str) -> None:
        run.apply(line)
        self._save(run)

    def _log(self, run: Run, line: str) -> None:
        run.add_log(line)
        self._save(run)

    # --- stopping ----------------------------------------------------------------------

    async def cancel(self, run_id: str, reason: str = "stopped by the user") -> Run | None:
        """Stop the run's whole process group; returns once it is gone. The run is cancelled
        only then; until then it says it is stopping."""
        run = self.runs.get(run_id)
        process = self._processes.get(run_id)
        if run is None or process is None:
            return run
        if not process.stopping:
            process.stopping = reason
            run.stopping = True
            run.phase, run.message = "stopping", "Stopping the run and what it started"
            run.phase_since, run.phase_detail = None, None
            self._save(run, force=True)
            await end_group_async(process.group, grace=STOP_SECONDS)
        if process.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(process.task)
        return run

    async def stop_all(self, reason: str = "the Jupyter server shut down") -> None:
        await asyncio.gather(*(self.cancel(run_id, reason) for run_id in list(self._processes)))

    # --- on disk ------------------------------------------------------------------------

    def _file(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    def _save(self, run: Run, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._saved.get(run.id, 0.0) < SAVE_SECONDS:
            return
        self._saved[run.id] = now
        document = {**run.to_json(), "report_file": run.report}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = self._file(run.id).with_suffix(".json.tmp")
            temporary.write_text(json.dumps(document), encoding="utf-8")
            os.replace(temporary, self._file(run.id))
        except OSError:  # a full or read-only disk costs the history, not the run
            pass

    def _load(self) -> None:
        if not self.folder.is_dir():
            return
        for file in sorted(self.folder.glob("*.json")):
            try:
                run = Run.from_json(json.loads(file.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            if file.stem != run.id:
                continue
            if not run.finished:  # the server stopped without a chance to stop the run
                run.exited(run.returncode if run.returncode is not None else -1)
                run.error = "the Jupyter server stopped before this run finished"
                self.runs[run.id] = run
                self._save(run, force=True)
            self.runs[run.id] = run

    def _forget_old(self, path: str) -> None:
        for old in self.history(path)[HISTORY:]:
            if old.finished:
                del self.runs[old.id]
                self._saved.pop(old.id, None)
                with contextlib.suppress(OSError):
                    self._file(old.id).unlink()
                with contextlib.suppress(OSError):
                    (self.folder / f"{old.id}.html").unlink()
