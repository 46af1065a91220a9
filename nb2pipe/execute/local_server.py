"""The local Prefect server that `nb2pipe run` and `verify` share between runs.

Without an API to talk to, Prefect starts a temporary server inside every process (6-10 s a
run). nb2pipe starts one `prefect server start` in the background on first use instead and
every later run reuses it. It binds 127.0.0.1 on a free port and runs in a session of its own,
so it outlives the command that started it and Ctrl-C in the terminal does not reach it. Its
state lives in the user cache folder:

    <cache>/server/
      server.json   pid, port, Prefect version, start time (written when the process starts)
      server.lock   held while a server is checked, started or stopped: two runs start one
      server.log    the server's own output: where to look when it does not start
      home/         its PREFECT_HOME: the SQLite database with the runs and their logs (a
                    new one is built from prefect_schema.sql rather than migrated)

`PREFECT_API_URL`, when set, wins: see prefect_api.connecting.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nb2pipe.exceptions import Nb2pipeError
from nb2pipe.execute import prefect_schema
from nb2pipe.execute.prefect_server import (
    HOST,
    answers,
    free_port,
    server_command,
    server_environment,
)
from nb2pipe.groups import end_group
from nb2pipe.runtime.store import cache_folder

START_SECONDS = 300.0  # a first start creates the database: minutes on a busy machine
STOP_SECONDS = 15.0
STARTING = "starting local Prefect server…"
WAITING = "waiting for the local Prefect server…"
# How nb2pipe starts the server, raised when that changes (1: its UI asks its own API): a
# server an older nb2pipe started is replaced.
SETUP = 1


class ServerError(Nb2pipeError):
    """The local server could not be started or stopped: one line, naming its log."""

    exit_code = 1
    one_line = False


@dataclass(frozen=True)
class Server:
    pid: int  # also its process group and session: the server is their leader
    port: int
    prefect: str  # the Prefect version it runs
    python: str  # the interpreter it runs on
    started: float  # time.time() when it was started
    setup: int = SETUP  # how nb2pipe started it

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


@dataclass(frozen=True)
class Status:
    state: str  # running | starting | not answering | not running
    folder: Path
    server: Server | None = None

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def to_json(self) -> dict[str, Any]:
        server = self.server
        return {
            "state": self.state,
            "url": server.url if server else None,
            "api_url": server.api_url if server else None,
            "pid": server.pid if server else None,
            "uptime_seconds": round(time.time() - server.started, 1) if server else None,
            "prefect": server.prefect if server else None,
            "folder": str(self.folder),
            "log": str(self.log),
        }


def state_folder(root: Path | None = None) -> Path:
    """Where the local server keeps its state: `server/` in the user cache folder."""
    return (root or cache_folder()) / "server"


def prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


# --- using the server ---------------------------------------------------------------------

@dataclass(frozen=True)
class Waiting:
    """What a command waits for while the local server gets ready: a line for people, and
    for programs (the JupyterLab panel) since when and why, so they can show the time it
    takes."""

    message: str
    since: float  # time.time() when what is waited for began
    detail: str | None = None


Report = Callable[[Waiting], None]


def ensure_running(report: Report | None = None, root: Path | None = None) -> str:
    """The API URL of the local server, started first if none is running (or the one that
    runs is stale: its process gone, not answering, or another Prefect version)."""
    with starting(report, root) as pending:
        return pending.wait()


@contextlib.contextmanager
def starting(report: Report | None = None, root: Path | None = None) -> Iterator[Pending]:
    """The local server, made ready in the background while the caller goes on (converting
    a notebook, importing a flow's libraries): `wait()` gives its API URL. Leaving the block
    stops the waiting, never the server: one that is starting goes on starting, and the next
    command finds it."""
    pending = Pending(state_folder(root), report or (lambda waiting: None))
    try:
        yield pending
    finally:
        pending.close()


class Pending:
    """The local server being made ready: checked, started or replaced by a thread of this
    process that holds the state folder's lock meanwhile. A run's child process follows it
    through `follow()` (the state folder and a token that names a failure)."""

    def __init__(self, folder: Path, report: Report) -> None:
        self.folder = folder
        self.token = uuid.uuid4().hex
        self._report = report
        self._done = threading.Event()
        self._cancel = threading.Event()
        self._ready: list[Callable[[str], None]] = []
        self._callbacks = threading.Lock()
        self._url: str | None = None
        self._error: ServerError | None = None
        self._thread: threading.Thread | None = None
        server = _read_record(folder)
        if server is not None and _healthy(server):  # the common case: no lock needed
            self._url = server.api_url
            self._done.set()
            return
        folder.mkdir(parents=True, exist_ok=True)
        # Not a daemon: a server this thread spawns is always recorded before the process
        # ends (Ctrl-C reaches the main thread, which then cancels the waiting, see close).
        self._thread = threading.Thread(target=self._prepare, name="nb2pipe-local-server")
        self._thread.start()

    @property
    def failed(self) -> ServerError | None:
        return self._error

    def wait(self) -> str:
        """Block until the server answers; raises ServerError when it cannot start."""
        while not self._done.wait(0.2):  # a timeout keeps Ctrl-C responsive
            pass
        if self._error is not None:
            raise self._error
        assert self._url is not None
        return self._url

    def when_ready(self, action: Callable[[str], None]) -> None:
        """Call `action` with the API URL once the server answers (now, if it does)."""
        with self._callbacks:
            if not self._done.is_set():
                self._ready.append(action)
                return
        if self._url is not None:
            action(self._url)

    def follow(self) -> str | None:
        """For a child process: what `wait_for` needs to follow this start (None: the
        server answers already). Raises ServerError when it could not start."""
        if not self._done.is_set():
            return f"{self.folder}{os.pathsep}{self.token}"
        self.wait()  # raises, if it failed
        return None

    def close(self) -> None:
        self._cancel.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(FileNotFoundError):
            (self.folder / f"failed-{self.token}").unlink()

    def _prepare(self) -> None:
        try:
            with _locked(self.folder, cancel=self._cancel):
                self._url = _ensure_locked(self.folder, self._report, self._cancel)
        except ServerError as exc:
            self._error = exc
        except _Cancelled:
            self._error = ServerError("interrupted while the local Prefect server started")
        except Exception as exc:  # anything else is a server that did not start, too
            self._error = ServerError(f"the local Prefect server did not start "
                                      f"({type(exc).__name__}: {exc})")
        if self._error is not None:  # a child process following this start learns it too
            with contextlib.suppress(OSError):
                (self.folder / f"failed-{self.token}").write_text(str(self._error),
                                                                  encoding="utf-8")
        with self._callbacks:
            self._done.set()
            actions, self._ready = self._ready, []
        if self._url is not None:
            for action in actions:
                action(self._url)


def wait_for(following: str, report: Report | None = None,
             seconds: float = START_SECONDS + 60) -> str:
    """In a run's child process: the API URL of the local server that the parent process
    makes ready (see Pending.follow), once it answers; `report` is told once when it does
    not answer yet. Raises ServerError when the parent says it failed, or has gone."""
    folder_text, _, token = following.rpartition(os.pathsep)
    folder = Path(folder_text)
    parent = os.getppid()
    deadline = time.monotonic() + seconds
    while True:
        server = _read_record(folder)
        if server is not None and _healthy(server):
            return server.api_url
        if report is not None:
            report(Waiting(WAITING, server.started if server else time.time(),
                           "the flow is imported and ready to run"))
            report = None
        failure = folder / f"failed-{token}"
        if failure.exists():
            raise ServerError(failure.read_text(encoding="utf-8").strip())
        if os.getppid() != parent or time.monotonic() > deadline:
            raise ServerError(f"stopped waiting for the local Prefect server; see "
                              f"{folder / 'server.log'}")
        time.sleep(0.05)


def _healthy(server: Server) -> bool:
    return (server.prefect == prefect_version() and server.setup == SETUP and _is_ours(server)
            and _serves(server))


class _Cancelled(Exception):
    """The command stopped waiting (Ctrl-C, or it ended)."""


def _ensure_locked(folder: Path, report: Report, cancel: threading.Event) -> str:
    server = _read_record(folder)
    if server is not None and _is_ours(server):
        problem = _cannot_reuse(server, report, cancel)
        if problem is None:
            return server.api_url
        report(Waiting(f"{problem}: restarting it…", time.time()))
        _terminate(server)
    _remove_record(folder)  # stale: the process is gone, or its pid is another program's now
    return _start(folder, report, cancel).api_url


def _cannot_reuse(server: Server, report: Report, cancel: threading.Event) -> str | None:
    """Why the recorded server cannot serve this run, or None when it can."""
    # Not answering yet: maybe started by a command that was interrupted while it waited.
    if not _serves(server):
        report(Waiting(WAITING, server.started, "started by another command"))
        if _wait(server, server.started + START_SECONDS, cancel=cancel) != "serving":
            return "the local Prefect server does not answer"
    if server.prefect != prefect_version():
        return (f"the local Prefect server runs Prefect {server.prefect}, this is "
                f"{prefect_version()}")
    if server.setup != SETUP:
        return "the local Prefect server was started by an older nb2pipe"
    return None


def _start(folder: Path, report: Report, cancel: threading.Event, attempts: int = 3) -> Server:
    log = folder / "server.log"
    first = not (folder / "home" / "prefect.db").exists()
    began = time.time()
    report(Waiting(STARTING, began, "first start: creating its database" if first
                   else "loading Prefect"))
    for _attempt in range(attempts):
        server, process = _spawn(folder, began)
        began = time.time()  # a next attempt is another process
        outcome = _wait(server, deadline=time.time() + START_SECONDS, process=process,
                        cancel=cancel)
        if outcome == "serving":
            return server
        if outcome == "cancelled":  # it goes on starting; the next command finds it
            raise _Cancelled
        _terminate(server)  # nothing half-started is left behind, whatever happened
        _remove_record(folder)
        if outcome == "timeout":
            raise ServerError(f"the local Prefect server did not answer within "
                              f"{START_SECONDS:.0f} s; see {log}")
        tail = _log_tail(log)
        if "already in use" not in tail:
            raise ServerError(f"the local Prefect server did not start ({_reason(tail)}); "
                              f"see {log}")
        # another program took the free port before the server bound it: take another one
    raise ServerError(f"the local Prefect server found no free port; see {log}")


def _spawn(folder: Path, started: float) -> tuple[Server, subprocess.Popen[bytes]]:
    port = free_port()
    home = folder / "home"
    home.mkdir(exist_ok=True)
    database = home / "prefect.db"
    url = f"http://{HOST}:{port}"
    env = server_environment(home, url)
    # A first start: the database as the migrations would leave it, and the block types as
    # this start would register them (see prefect_schema.py)
    if not database.exists() and prefect_schema.seed(database, prefect_version()).blocks:
        env["PREFECT_API_BLOCKS_REGISTER_ON_START"] = "false"
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(server_command(port), cwd=folder, env=env,
                                   stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, close_fds=True,
                                   start_new_session=True)
        # Kept, never waited for: the server outlives this process (init reaps it then).
        _children.append(process)
        server = Server(pid=process.pid, port=port, prefect=prefect_version(),
                        python=sys.executable, started=started)
        _write_record(folder, server)
    return server, process


_children: list[subprocess.Popen[bytes]] = []


def _wait(server: Server, deadline: float, process: subprocess.Popen[bytes] | None = None,
          cancel: threading.Event | None = None) -> str:
    """serving | exited | timeout | cancelled (`process`: the server, when this process
    started it)"""
    while True:
        if _serves(server):
            return "serving"
        if process.poll() is not None if process else not _alive(server.pid):
            return "exited"
        if time.time() >= deadline:
            return "timeout"
        if cancel is not None and cancel.wait(0.1):
            return "cancelled"
        if cancel is None:
            time.sleep(0.1)


# --- status and stop ----------------------------------------------------------------------

def recorded_api_url(root: Path | None = None) -> str | None:
    """The API address the local server's record names (read only: not checked to answer)."""
    server = _read_record(state_folder(root))
    return server.api_url if server is not None else None


def status(root: Path | None = None) -> Status:
    folder = state_folder(root)
    server = _read_record(folder)
    if server is None or not _is_ours(server):
        return Status("not running", folder)
    if _serves(server):
        return Status("running", folder, server)
    starting = time.time() < server.started + START_SECONDS
    return Status("starting" if starting else "not answering", folder, server)


def stop(root: Path | None = None) -> Server | None:
    """Stop the local server and everything it started; None when none was running."""
    folder = state_folder(root)
    if not folder.is_dir():
        return None
    with _locked(folder):
        server = _read_record(folder)
        stopped = server if server is not None and _is_ours(server) else None
        if stopped is not None:
            _terminate(stopped)
        _remove_record(folder)
        return stopped


def _terminate(server: Server) -> None:
    """SIGTERM to the server's process group (the server and its children), SIGKILL to what
    is left after STOP_SECONDS."""
    stopped = end_group(server.pid, grace=STOP_SECONDS, kill_wait=STOP_SECONDS)
    _reap(server.pid)
    if not stopped:
        raise ServerError(f"the local Prefect server (pid {server.pid}) did not stop")


def _reap(pid: int) -> None:
    """Collect the exit status when the server is this process's own child."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# --- checks -------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    """The process exists and has not exited (an exited child not yet reaped is a zombie)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _state(pid) not in ("Z", "X", None)


def _state(pid: int) -> str | None:
    """The process's state letter (R, S, Z, ...), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0]  # the name, in parentheses, may hold spaces
    except FileNotFoundError:
        return None if Path("/proc/self").exists() else _ps(pid, "stat")[:1] or None
    except (OSError, IndexError):
        return "?"  # exists, state unknown


def _is_ours(server: Server) -> bool:
    """The recorded pid is still the server nb2pipe started: alive, the leader of its own
    session, running `prefect server start` on the recorded port (pids get reused)."""
    if not _alive(server.pid):
        return False
    try:
        if os.getsid(server.pid) != server.pid:
            return False
    except OSError:
        return False
    command = _command_line(server.pid)
    if not command:  # unreadable for a moment (while it execs): not proof of another program
        return True
    return "prefect" in command and "server" in command and f"--port {server.port}" in command


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return "" if Path("/proc/self").exists() else _ps(pid, "command")
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def _ps(pid: int, field: str) -> str:
    """One field of `ps` for the process (systems without /proc)."""
    found = subprocess.run(["ps", "-o", f"{field}=", "-p", str(pid)], capture_output=True,
                           text=True, check=False)
    return found.stdout.strip()


def _serves(server: Server, timeout: float = 3.0) -> bool:
    """The server answers its health check with Prefect's own reply."""
    return answers(server.api_url, timeout)


def _reason(log_tail: str) -> str:
    """The line of a server's log that says why it stopped: its last exception, if any."""
    lines = [line.strip() for line in log_tail.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"[\w.]*(Error|Exception)\b.*:", line)]
    return (errors or lines or ["no output"])[-1]


def _log_tail(log: Path, size: int = 4000) -> str:
    try:
        with log.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - size))
            return stream.read().decode("utf-8", "replace")
    except OSError:
        return ""


# --- the record and the lock --------------------------------------------------------------

def _read_record(folder: Path) -> Server | None:
    try:
        data = json.loads((folder / "server.json").read_text(encoding="utf-8"))
        return Server(pid=int(data["pid"]), port=int(data["port"]), prefect=str(data["prefect"]),
                      python=str(data["python"]), started=float(data["started"]),
                      setup=int(data.get("setup", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_record(folder: Path, server: Server) -> None:
    staging = folder / f".server.json.{os.getpid()}"
    staging.write_text(json.dumps(asdict(server), indent=1), encoding="utf-8")
    os.replace(staging, folder / "server.json")


def _remove_record(folder: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (folder / "server.json").unlink()


@contextlib.contextmanager
def _locked(folder: Path, seconds: float = START_SECONDS + 60,
            cancel: threading.Event | None = None) -> Iterator[None]:
    """An exclusive lock on server.lock, released when the process ends however it ends."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "server.lock").open("a") as handle:
        deadline = time.monotonic() + seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerError(f"{folder / 'server.lock'} stayed locked for "
                                      f"{seconds:.0f} s by another nb2pipe command") from None
                if cancel is not None and cancel.is_set():
                    raise _Cancelled from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
