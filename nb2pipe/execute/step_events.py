"""Step events of a run, as its tasks' state hooks write them (nb2pipe/runtime/progress.py):
a pipe they write to, a reader following it, and the state of every step built from them.

The pipe lives in a temporary folder of the run (`nb2pipe-run-*`), locked for as long as a
process of the run holds it open: a run killed with all its processes leaves its folder, which
the next run removes (`remove_stale_folders`), never one whose run still lives."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2pipe.runtime.manifest import Manifest

END = {"event": "end"}  # written by the reader's owner when the run is over
PREFIX = "nb2pipe-run-"
FINAL = ("completed", "cached", "failed", "skipped")


@dataclass
class StepReport:
    name: str
    state: str = "pending"  # pending|running|completed|cached|failed|skipped
    duration: float | None = None
    error: str | None = None
    cell: int | None = None
    line: int | None = None
    notebook: str | None = None  # notebook mode: the executed step notebook
    metrics: dict[str, Any] = field(default_factory=dict)


Emit = Callable[[StepReport], None]


@dataclass(frozen=True)
class Ended:
    """How a process running steps ended: what `os._exit` from a step said before, or
    Python's fault reports left in the channel's folder by a crash."""

    folder: Path
    manifest: Manifest
    project: Path
    how: str = "it ended"

    def locations(self, exits: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {**fault_locations(self.folder, self.manifest, self.project), **exits}


class Tracker:
    """Every step's state, from the events; each change reported once, a step's start before
    its end, whatever order the events of concurrent processes arrive in."""

    def __init__(self, order: list[str], emit: Emit | None = None,
                 warn: Callable[[str], None] | None = None,
                 phase: Callable[..., None] | None = None) -> None:
        self.reports = {name: StepReport(name) for name in order}
        self.emit = emit or (lambda report: None)
        self.warn = warn or (lambda message: None)
        self.phase = phase or (lambda name, message, url, **waiting: None)
        self.exits: dict[str, dict[str, Any]] = {}  # step -> its "exit" event
        self.warnings: list[str] = []
        self.lock = threading.Lock()

    def apply(self, event: dict[str, Any]) -> None:
        with self.lock:
            kind, step = event.get("event"), str(event.get("step"))
            if kind == "warning":
                self.warnings.append(str(event.get("message", "")))
                self.warn(self.warnings[-1])
            elif kind == "phase":  # e.g. the flow run's address in Prefect's UI
                waiting = {key: event[key] for key in ("since", "detail") if key in event}
                self.phase(str(event.get("phase")), str(event.get("message", "")),
                           event.get("url"), **waiting)
            elif kind == "exit" and step in self.reports:
                self.exits[step] = event
            elif kind == "step" and step in self.reports:
                self._step(self.reports[step], event)

    def _step(self, report: StepReport, event: dict[str, Any]) -> None:
        state = str(event.get("state"))
        if state == "running":
            if report.state in ("pending", "failed"):  # failed: a retry starts
                report.state, report.error = "running", None
                self.emit(report)
            return
        if report.state == "pending":  # started and ended between two reads
            report.state = "running"
            self.emit(report)
        report.state = state
        report.duration = event.get("duration")
        report.error = event.get("error")
        report.cell, report.line = event.get("cell"), event.get("line")
        report.notebook = event.get("notebook")
        report.metrics = event.get("metrics") or {}
        self.emit(report)

    def interrupted(self) -> None:
        with self.lock:
            for report in self.reports.values():
                if report.state == "running":
                    report.state, report.error = "failed", "interrupted (Ctrl-C)"
                    self.emit(report)
        self.finish(reason="the run was interrupted")

    def finish(self, ended: Ended | None = None,
               reason: str = "an earlier step it needs failed") -> None:
        """The run is over: a step still running failed (with the cell it was in, when a
        step ended its process: see Ended), steps that never started are skipped."""
        with self.lock:
            known = ended.locations(self.exits) if ended else {}
            for report in self.reports.values():
                if report.state == "running":
                    found = known.get(report.name, {})
                    report.state = "failed"
                    report.error = found.get("error") or (
                        f"step '{report.name}' ended the process running it ({ended.how})"
                        if ended else "the run ended while it ran")
                    report.cell, report.line = found.get("cell"), found.get("line")
                    self.emit(report)
                elif report.state == "pending":
                    report.state, report.error = "skipped", reason
                    self.emit(report)

    @property
    def failed(self) -> list[StepReport]:
        return [r for r in self.reports.values() if r.state == "failed"]


class Channel:
    """A named pipe in a temporary folder: tasks in any local process append events to it,
    one signed line each (with `key`), and a thread here reads them as they come."""

    def __init__(self) -> None:
        self.folder, self.lock = _new_folder()
        self.path = self.folder / "events"
        self.key = secrets.token_hex(32)
        os.mkfifo(self.path)
        # Open for reading and writing: the pipe stays open between writers, never at EOF.
        self._fd = os.open(self.path, os.O_RDWR)
        self._thread: threading.Thread | None = None

    def follow(self, apply: Callable[[dict[str, Any]], None]) -> None:
        from nb2pipe.runtime.progress import verified

        key = bytes.fromhex(self.key)

        def read() -> None:
            seen: set[str] = set()
            with os.fdopen(os.dup(self._fd), "r", encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    found = verified(line, key)
                    if found is None or found[0] in seen:  # not the run's, or a replay
                        continue
                    seen.add(found[0])
                    if found[1] == END:
                        return
                    apply(found[1])

        self._thread = threading.Thread(target=read, name="nb2pipe-progress", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Read what is left, then stop (once)."""
        from nb2pipe.runtime.progress import signed

        if self._fd < 0:
            return
        if self._thread is not None:
            os.write(self._fd, (signed(END, bytes.fromhex(self.key)) + "\n").encode())
            self._thread.join(timeout=10)
        os.close(self._fd)
        self._fd = -1

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.lock >= 0:
            os.close(self.lock)
            self.lock = -1


def _new_folder() -> tuple[Path, int]:
    """A new run folder, and the open descriptor that holds its lock (inherited by the run's
    child process, so the lock lasts as long as either lives)."""
    while True:
        folder = Path(tempfile.mkdtemp(prefix=PREFIX))
        lock = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another run removes it, thinking it stale
        if os.fstat(lock).st_nlink:
            return folder, lock
        os.close(lock)


def remove_stale_folders(where: Path | None = None) -> list[Path]:
    """Remove the folders of runs that are over without having removed them (killed with every
    process of theirs): this user's `nb2pipe-run-*` folders whose lock nobody holds."""
    removed = []
    for entry in sorted(Path(where or tempfile.gettempdir()).glob(PREFIX + "*")):
        try:
            found = entry.lstat()
            if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
                continue
            lock = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.path.samestat(os.fstat(lock), entry.lstat()):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
        except OSError:
            continue
        finally:
            os.close(lock)
    return removed


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)')


def fault_locations(folder: Path, manifest: Manifest,
                    project: Path) -> dict[str, dict[str, Any]]:
    """Steps that crashed in native code, from Python's fault reports: step -> cell, line."""
    from nb2pipe.runtime.errors import locate

    steps_file = str((project / "steps.py").resolve())
    found: dict[str, dict[str, Any]] = {}
    for report in sorted(folder.glob("events.fault-*")):
        text = report.read_text(encoding="utf-8", errors="replace")
        if "Fatal Python error" not in text:
            continue
        signal = re.search(r"Fatal Python error: ([^\n]+)", text)
        kind = signal.group(1).strip() if signal else "a crash"
        for match in _FRAME.finditer(text):  # innermost frame first
            if os.path.abspath(match["file"]) != steps_file:
                continue
            located = [(entry.name, where) for entry in manifest.steps
                       if (where := locate(manifest, entry.name, int(match["line"])))]
            if located:
                step, (cell, line) = located[0]
                notebook = os.path.basename(manifest.notebook)
                found.setdefault(step, {
                    "cell": cell, "line": line,
                    "error": f"{notebook}: cell {cell}, line {line} (step '{step}'): the "
                             f"process crashed ({kind})"})
                break
    return found
