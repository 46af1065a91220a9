"""Writes to the result storage that go on while the next steps run.

A step's values kept for later runs are hashed before the step ends: its record, and the cache
keys of the steps that read them, hold those hashes. The files themselves may be written
meanwhile, on threads of their own, while the next steps start from the values in memory;
the run waits for them at its end (`settle`). Each file is copied a few MiB at a time as it
is written, and the copy hashed, so that a file is kept only when it holds what was hashed
(store.py): a value whose memory changed before its write ended (through a name the analysis
of the notebook did not see) is not stored (`Changed`), a cache miss next time, never a wrong
value and never a file that fails its check when read. A step whose values a later step
changes in place writes them before it ends, as does a step whose values go to another
process, which reads them from the files (tasks.py): on a machine whose cores are busy, a
write in the background slows the steps it runs beside by as much as it saves them, and its
check costs a second pass over the bytes.

A write that fails is a warning at the end of the run, and a cache miss the next time.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

_LOCK = threading.Lock()
# Files this process wrote or is writing, by (store location, path): a chunk that several
# values hold (a frame and the same frame with one column more) is written once.
_WRITTEN: dict[tuple[str, str], Future[None]] = {}
# The chunks each value file names, by (location, path of the value file).
_NAMES: dict[tuple[str, str], tuple[str, ...]] = {}


class Changed(ValueError):
    """The memory of a value changed between its hashing and its write: nothing was kept."""


def claim(location: str, path: str) -> Future[None] | None:
    """The caller's to write this file: a future to finish (`start`, `run`, or set_result
    when the store holds it already); None when this process wrote it or is writing it."""
    with _LOCK:
        found = _WRITTEN.get((location, path))
        if found is not None and not (found.done() and found.exception() is not None):
            return None
        claimed: Future[None] = Future()
        _WRITTEN[(location, path)] = claimed
        return claimed


def start(claimed: Future[None], write: Callable[[], None]) -> None:
    """Write a claimed file in the background."""
    _writers().submit(run, claimed, write)


def run(claimed: Future[None], write: Callable[[], None]) -> None:
    """Write a claimed file now; raises what the write raised."""
    try:
        write()
    except BaseException as error:
        claimed.set_exception(error)
        raise
    claimed.set_result(None)


def forget(location: str, path: str) -> None:
    """A file removed from the store (it was damaged): the next value holding it writes it."""
    with _LOCK:
        _WRITTEN.pop((location, path), None)


def names(location: str, path: str, chunks: Iterable[str]) -> None:
    """The chunk files a value file names: its write fails when theirs does."""
    with _LOCK:
        _NAMES[(location, path)] = tuple(chunks)


def wait_for(location: str, paths: Iterable[str]) -> None:
    """Wait for the writes of these files (and of the chunks they name) under way in this
    process; raises the first one's error."""
    with _LOCK:
        futures = [_WRITTEN.get((location, p)) for path in paths
                   for p in (path, *_NAMES.get((location, path), ()))]
    for future in futures:
        if future is not None:
            future.result()


def settle() -> dict[tuple[str, str], str]:
    """Wait for every write under way; the value files that could not be written whole
    (theirs or a chunk's write failed), by (location, path), with why."""
    with _LOCK:
        pending = dict(_WRITTEN)
        named = dict(_NAMES)
    failed: dict[tuple[str, str], str] = {}
    for where, future in pending.items():
        error = future.exception()
        if error is not None:
            failed[where] = str(error) if isinstance(error, Changed) else (
                f"{type(error).__name__}: {error}")
    with _LOCK:
        for where in pending:
            if _WRITTEN.get(where) is pending[where] and where not in failed:
                del _WRITTEN[where]  # written: later runs find the file itself
        for where in failed:
            _WRITTEN.pop(where, None)
        _NAMES.clear()
    broken = {}
    for (location, path), chunks in named.items():
        for part in (path, *chunks):
            if (location, part) in failed:
                broken[(location, path)] = failed[(location, part)]
                break
    return broken


@functools.cache
def _writers() -> ThreadPoolExecutor:
    # Not daemons: an interpreter that exits waits for the files it is writing.
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="nb2pipe-write")
