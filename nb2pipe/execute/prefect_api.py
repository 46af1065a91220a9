"""Which Prefect API a run talks to, and where its flow run shows in Prefect's UI.

PREFECT_API_URL, when set (in the environment or the active Prefect profile), wins; otherwise
runs use the local server (local_server.py), started on first use.
"""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nb2pipe.execute import local_server

# Prefect Cloud serves its UI on another origin than its API.
CLOUD = {"https://api.prefect.cloud:443": "https://app.prefect.cloud:443"}


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment or, failing that, the active Prefect profile."""
    found = os.environ.get("PREFECT_API_URL")
    if found:
        return found
    if not _profile_may_set_api_url():
        return None
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def _profile_may_set_api_url() -> bool:
    """Reading Prefect's settings costs an import of Prefect; a profiles file that does not
    mention the API URL cannot set it."""
    from_env = os.environ.get("PREFECT_PROFILES_PATH")
    home = os.environ.get("PREFECT_HOME") or os.path.join(os.path.expanduser("~"), ".prefect")
    profiles = Path(from_env) if from_env else Path(home) / "profiles.toml"
    try:
        return "PREFECT_API_URL" in profiles.read_text(encoding="utf-8")
    except OSError:
        return False


def known_api_url() -> str | None:
    """The API a run started now would use, without starting anything: PREFECT_API_URL when
    set, else the local server's (when one was started)."""
    return configured_api_url() or local_server.recorded_api_url()


def ui_link(url: object, api_url: str | None) -> str | None:
    """`url` if it is an http(s) address in the Prefect UI of `api_url` (on its origin, or on
    PREFECT_UI_URL's when set), else None: where a flow run's link may lead."""
    if not isinstance(url, str):
        return None
    allowed = {_origin(os.environ.get("PREFECT_UI_URL")), _origin(api_url)}
    allowed.add(CLOUD.get(_origin(api_url) or ""))
    found = _origin(url)
    return url if found is not None and found in allowed else None


def _origin(url: str | None) -> str | None:
    """scheme://host:port of an http(s) URL; None for anything else, and for what a browser
    may read differently from Python (spaces, control characters, backslashes, user names)."""
    if not url or "\\" in url or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if (parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or "@" in parts.netloc):
        return None
    scheme = parts.scheme.lower()
    return f"{scheme}://{parts.hostname}:{port or (443 if scheme == 'https' else 80)}"


FOLLOW = "NB2PIPE_LOCAL_SERVER"  # a run's child process: the local server its parent starts


@dataclass
class Connection:
    """The Prefect API a command uses: configured, or the local server, which may still be
    starting while the command goes on (converting, running papermill, importing)."""

    pending: local_server.Pending | None
    configured: str | None = None

    def wait(self) -> str:
        """The API URL, once it answers. Raises local_server.ServerError."""
        return self.configured or self._pending().wait()

    @property
    def failed(self) -> local_server.ServerError | None:
        return self.pending.failed if self.pending is not None else None

    def when_ready(self, action: Callable[[str], None]) -> None:
        if self.configured:
            action(self.configured)
        else:
            self._pending().when_ready(action)

    @contextlib.contextmanager
    def connected(self) -> Iterator[str]:
        """Prefect pointed at the API for the duration, once it answers."""
        with pointed_at(self.wait()) as url:
            yield url

    @contextlib.contextmanager
    def handed_over(self) -> Iterator[None]:
        """For the child processes started meanwhile: the API, or the local server still
        starting, which they wait for (see `awaited`) once they have imported the flow."""
        following = self.pending.follow() if self.pending is not None else None
        with pointed_at(self.wait()) if following is None else _variable(FOLLOW, following):
            yield

    def _pending(self) -> local_server.Pending:
        assert self.pending is not None
        return self.pending


@contextlib.contextmanager
def connecting(report: local_server.Report | None = None,
               root: Path | None = None) -> Iterator[Connection]:
    """The Prefect API for the duration, without waiting for it: PREFECT_API_URL when set,
    else the local server, started in the background if needed (it goes on starting when
    the block is left early)."""
    configured = configured_api_url()
    if configured:
        with pointed_at(configured):
            yield Connection(None, configured)
        return
    with local_server.starting(report, root) as pending:
        yield Connection(pending)


@contextlib.contextmanager
def awaited() -> Iterator[None]:
    """In a run's child process, just before the flow runs: the local server its parent is
    starting, once it answers (the child imported the flow meanwhile). Nothing to wait for
    otherwise."""
    following = os.environ.get(FOLLOW)
    if not following:
        yield
        return
    from nb2pipe.runtime.progress import emit

    def waiting(found: local_server.Waiting) -> None:  # the phase the parent shows meanwhile
        emit({"event": "phase", "phase": "server", "message": found.message,
              "since": found.since, "detail": found.detail})

    with pointed_at(local_server.wait_for(following, waiting)):
        yield


@contextlib.contextmanager
def pointed_at(url: str) -> Iterator[str]:
    """PREFECT_API_URL set to `url` for the duration: in the environment (read when Prefect is
    imported, and by the worker processes, kernels and Dask workers a run starts) and in
    Prefect's settings, when Prefect was imported already."""
    with _variable("PREFECT_API_URL", url):
        if "prefect.context" in sys.modules:  # its settings were read when it was imported
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield url
        else:
            yield url


@contextlib.contextmanager
def _variable(name: str, value: str) -> Iterator[None]:
    """An environment variable set for the duration (child processes started meanwhile see
    it)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextlib.contextmanager
def flow_run_links(found: Callable[[str], None]) -> Iterator[None]:
    """Call `found` with the Prefect UI address of each flow run this process starts, as soon
    as Prefect has created it (read from the log records Prefect tags with the flow run's id;
    they reach the `prefect.flow_runs` logger only when its level lets INFO through)."""
    import logging

    from prefect.logging.configuration import ensure_logging_setup
    from prefect.utilities.urls import url_for

    ensure_logging_setup()  # Prefect's set-up replaces the handlers of its loggers: first

    class Links(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.seen: set[str] = set()

        def emit(self, record: logging.LogRecord) -> None:
            run_id = getattr(record, "flow_run_id", None)
            if not run_id or run_id in self.seen:
                return
            self.seen.add(run_id)
            url = url_for("flow-run", obj_id=run_id)
            if url:
                found(url)

    logger = logging.getLogger("prefect.flow_runs")
    handler = Links()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def send_pending_events(timeout: float = 15.0) -> None:
    """Send what Prefect still holds to send (run state events, logs) now, so that the process
    ends without Prefect's "EventsWorker - Still processing items" warning on the terminal
    (logged while it sends them at exit, whenever some are left). A process that has not
    imported Prefect has nothing to send, and does not import it here."""
    import logging

    if "prefect" not in sys.modules:
        return

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (EventsWorker, APILogWorker):
        logger = logging.getLogger(service.__name__)
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            service.drain_all(timeout=timeout, at_exit=False)
        finally:
            logger.setLevel(level)
