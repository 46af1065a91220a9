"""Analysis and conversion off the event loop, in worker processes a newer request can stop.

The editor asks for an analysis after each edit, and on a large notebook the previous one may
still be running. A request with the same key supersedes it: the older request ends with
`Superseded`, and its worker is killed (a thread could not be interrupted) and replaced. A
worker is a plain `python -m nb2pipe.server.work` child reading pickled calls on stdin and
writing pickled answers on stdout, so it shares nothing with the server's threads and starts
without re-importing the server.

Run as a module, this file is the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, TypeVar

T = TypeVar("T")
_SIZE = struct.Struct(">Q")
PRELOAD = "nb2pipe.server.documents"


class Superseded(Exception):
    """A newer request with the same key replaced this one."""


class WorkerLost(Exception):
    """The worker process ended before it answered (killed, or out of memory)."""


def _send(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_SIZE.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """One message; EOFError when the other side is gone."""
    head = stream.read(_SIZE.size)
    if len(head) < _SIZE.size:
        raise EOFError
    size = _SIZE.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # from our own parent process only


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker: sys.path first, then (function, args) in, ("ok", result) or
    ("error", exception) out, until the input ends."""
    sys.path[:] = _receive(requests)
    __import__(PRELOAD)
    while True:
        try:
            function, args = _receive(requests)
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("ok", function(*args))
        except Exception as exc:  # handed to the caller, who raises it
            answer = ("error", exc)
        try:
            _send(answers, answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            _send(answers, ("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nb2pipe.server.work"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests: IO[bytes] = self.process.stdin
        self.answers: IO[bytes] = self.process.stdout
        _send(self.requests, list(sys.path))

    def call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
        """Blocking: one round trip. EOFError or OSError when the process died."""
        _send(self.requests, (function, args))
        answer: tuple[str, Any] = _receive(self.answers)
        return answer

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()

    def close(self) -> None:
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for stream in (self.requests, self.answers):
            with contextlib.suppress(OSError):
                stream.close()


@dataclass
class _Job:
    worker: _Worker | None = None
    superseded: bool = False

    def supersede(self) -> None:
        self.superseded = True
        if self.worker is not None:
            self.worker.kill()


class Workers:
    """At most `size` calls run at once, each in a worker process of its own."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._current: dict[str, _Job] = {}
        self._threads = ThreadPoolExecutor(max_workers=size + 1,
                                           thread_name_prefix="nb2pipe-work")
        self._closed = False
        self._starting = False

    async def call(self, function: Callable[..., T], *args: Any, key: str | None = None) -> T:
        """`function(*args)` in a worker; `function` must be a module-level function and the
        arguments and result picklable. With a `key`, a later call with the same key
        supersedes this one."""
        if self._closed:
            raise WorkerLost("the server is shutting down")
        job = _Job()
        if key is not None:
            previous = self._current.get(key)
            if previous is not None:
                previous.supersede()
            self._current[key] = job
        self._slots = self._slots or asyncio.Semaphore(self.size)
        loop = asyncio.get_running_loop()
        try:
            async with self._slots:
                if job.superseded:
                    raise Superseded
                worker = self._idle.pop() if self._idle else await loop.run_in_executor(
                    self._threads, self._start)
                self._spare(loop)  # ready for the next request, a superseding one above all
                job.worker = worker
                if job.superseded:  # superseded while its worker started
                    worker.kill()
                try:
                    status, value = await loop.run_in_executor(self._threads, worker.call,
                                                               function, args)
                except (EOFError, OSError):
                    self._discard(worker)
                    if job.superseded:
                        raise Superseded from None
                    raise WorkerLost("the worker process ended before it answered") from None
                self._keep(worker)
        finally:
            if key is not None and self._current.get(key) is job:
                del self._current[key]
        if status == "error":
            raise value
        result: T = value
        return result

    def _start(self) -> _Worker:
        worker = _Worker()
        self._all.add(worker)
        return worker

    def _keep(self, worker: _Worker) -> None:
        if self._closed:
            self._discard(worker)
        else:
            self._idle.append(worker)

    def _spare(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start a worker in the background when none is idle, so the next request (one that
        supersedes a running request above all) need not wait for a process to start."""
        if self._idle or self._starting or self._closed or len(self._all) > self.size:
            return
        self._starting = True

        def started(done: asyncio.Future[_Worker]) -> None:
            self._starting = False
            if not done.cancelled() and done.exception() is None:
                self._keep(done.result())

        loop.run_in_executor(self._threads, self._start).add_done_callback(started)

    def _discard(self, worker: _Worker) -> None:
        self._all.discard(worker)
        worker.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(timeout=0)
        self._threads.submit(worker.close)

    def close(self) -> None:
        """Kill every worker (the server is shutting down)."""
        self._closed = True
        for job in self._current.values():
            job.supersede()
        for worker in list(self._all):
            self._all.discard(worker)
            worker.close()
        self._idle.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    import os

    # answers get the real stdout; anything a library prints goes to stderr instead
    _answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, _answers)
