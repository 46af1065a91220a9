"""Subprocesses of the server: output read in chunks and cut into lines, and the exit awaited
(not the pipe's end, which an orphan may hold). Their process groups are ended by groups.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Callable

EVENT_BYTES = 1 << 20  # a line longer than this is cut (a progress event is one line)
CHUNK = 1 << 16


class LineReader:
    """Bytes in any pieces -> lines. A line longer than `limit` is cut there; the rest of it,
    up to its newline, is dropped."""

    def __init__(self, emit: Callable[[str], None], limit: int = EVENT_BYTES) -> None:
        self.emit = emit
        self.limit = limit
        self.pending = bytearray()
        self.cutting = False  # inside a line that was already cut

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            if not self.cutting:
                self.pending += chunk[start:end]
                self._line()
            self.cutting = False
            self.pending.clear()
            start = end + 1
        if not self.cutting:
            self.pending += chunk[start:]
            if len(self.pending) > self.limit:
                del self.pending[self.limit:]
                self._line()
                self.pending.clear()
                self.cutting = True

    def close(self) -> None:
        if self.pending and not self.cutting:
            self._line()
        self.pending.clear()

    def _line(self) -> None:
        self.emit(self.pending.decode("utf-8", "replace").rstrip("\r"))


async def exit_code(popen: subprocess.Popen[bytes]) -> int:
    """Wait for the process to exit (not for its pipe to close: an orphan may hold it)."""
    loop = asyncio.get_running_loop()
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(popen.pid)
    if pidfd is None:
        while popen.poll() is None:
            await asyncio.sleep(0.2)
        return popen.returncode
    exited = asyncio.Event()
    loop.add_reader(pidfd, exited.set)
    try:
        if popen.poll() is None:
            await exited.wait()
        return popen.wait()
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)

