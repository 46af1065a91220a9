"""Pipeline runs started from JupyterLab: one `nb2pipe run --progress jsonl` subprocess each.

The state of every run lives in the server process; the frontend polls it. The subprocess
prints one JSON event per line; anything else it prints is kept as log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_LINES = 200  # the tail of the output kept per run
FINAL_STATES = ("completed", "failed")


@dataclass
class Run:
    id: str
    path: str  # the notebook, as the Contents API names it
    state: str = "starting"  # starting | running | completed | failed
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    error: str | None = None
    returncode: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "state": self.state,
            "steps": {name: dict(status) for name, status in sorted(self.steps.items())},
            "log": list(self.log),
            "error": self.error,
        }

    def apply(self, line: str) -> None:
        """One line of the subprocess's stdout: a progress event, or text for the log."""
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or event.get("event") not in ("step", "finished"):
            self.add_log(line)
            return
        if event["event"] == "step":
            self.state = "running"
            self.steps[str(event.get("step"))] = {
                "state": event.get("state"),
                "duration": event.get("duration"),
                "error": event.get("error"),
            }
        else:
            self.state = "completed" if event.get("state") == "completed" else "failed"
            self.error = event.get("error")

    def add_log(self, line: str) -> None:
        self.log.append(line)
        del self.log[:-LOG_LINES]

    def exited(self, returncode: int) -> None:
        """The subprocess ended: without a `finished` event, the run failed."""
        self.returncode = returncode
        if not self.finished:
            self.state = "failed"
            tail = next((line for line in reversed(self.log) if line.strip()), "")
            self.error = tail or f"nb2pipe run exited with code {returncode} before finishing"


class RunStore:
    """Runs by id, and the tasks that follow their subprocesses."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.runs: dict[str, Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._processes: dict[str, asyncio.subprocess.Process] = {}

    def get(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def active(self, path: str) -> Run | None:
        return next((r for r in self.runs.values() if r.path == path and not r.finished), None)

    async def start(self, notebook: Path, api_path: str) -> Run:
        run = Run(id=uuid.uuid4().hex, path=api_path)
        self.runs[run.id] = run
        try:
            process = await asyncio.create_subprocess_exec(
                self.python, "-m", "nb2pipe", "run", str(notebook), "--progress", "jsonl",
                cwd=notebook.parent, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                limit=1 << 20,  # a step error with a long traceback is still one event
            )
        except OSError as exc:
            run.add_log(f"cannot start nb2pipe run: {exc}")
            run.exited(-1)
            return run
        self._processes[run.id] = process
        task = asyncio.get_running_loop().create_task(self._follow(run, process))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    async def _follow(self, run: Run, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            run.apply(raw.decode("utf-8", "replace").rstrip("\r\n"))
        run.exited(await process.wait())
        self._processes.pop(run.id, None)

    async def stop_all(self) -> None:
        for process in list(self._processes.values()):
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
