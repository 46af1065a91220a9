"""Values: what a step leaves for the steps after it, and what its Prefect task returns.

In memory while the next step runs in the same process; as files in the store (store.py) when
the step is cached, or when the values cross to another process: pickling a `Values` saves
what is only in memory, so a process pool or a Dask worker receives a small handle (through
the task runner, never through the storage) and reads the files it needs, each checked
against the hash in the handle before it is decoded. Values saved together (sharing objects)
are read once per task, so they share them again in the step that reads them.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import os
import pickle
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from . import errors, switches, writes
from .store import Ref, Store, Tampered
from .values import pickled_out_of_band, view_copies

# The files read by the running task: a file is read once per task, never shared between two.
_READ: contextvars.ContextVar[dict[tuple[str, str], Any] | None] = contextvars.ContextVar(
    "nb2pipe_read", default=None)


def copied(value: Any, *, step: str | None = None, names: Sequence[str] = ()) -> Any:
    """A copy of `value` for a step that changes its inputs in place while other steps read
    them: the value as another process would receive it (its pickle, read back into memory
    of its own), so it behaves as the notebook's did. `copy.deepcopy` does not keep that:
    it merges a frame's blocks into one (after `df.insert(...)`, `df.values` is a writable
    copy in the notebook, a read-only view of the deep copy), makes read-only arrays
    writable, and copies each view of one array apart. A value pickle cannot take (one
    holding a function or class a step defines) is deep-copied, as before, its views of one
    array kept views of one copy.

    flow.py passes the step and the names of the values (`value` is then a tuple of them):
    a value that cannot be copied fails the step with an error saying which, and what to do."""
    try:
        return _copy(value)
    except Exception as error:
        if step is None:
            raise
        raise _copy_error(value, step, names, error) from error


def _copy(value: Any) -> Any:
    try:
        head, buffers = pickled_out_of_band(value, by_value=False)
    except Exception:  # not picklable by reference (a step's own function): deepcopy
        return copy.deepcopy(value, view_copies(value))
    # Each buffer into memory of its own (one copy, as deepcopy makes); pickle marks the
    # read-only ones, which it reads back read-only (an array the notebook could not write
    # to stays so).
    return pickle.loads(head, buffers=[_owned(buffer) for buffer in buffers])


def _owned(buffer: memoryview) -> Any:
    """A copy of `buffer` in memory numpy allocates, as for its own arrays (aligned, and in
    huge pages where large: a bytearray of the same size takes four times as long to fill)."""
    numpy: Any = sys.modules.get("numpy")
    if numpy is None:
        return bytearray(buffer)
    owned = numpy.empty(buffer.nbytes, dtype=numpy.uint8)
    owned[...] = numpy.frombuffer(buffer, dtype=numpy.uint8)
    return memoryview(owned)


def _copy_error(value: Any, step: str, names: Sequence[str],
                error: Exception) -> errors.StepError:
    """The step, the value that cannot be copied (its name and type), and what to do."""
    subject = f"{', '.join(repr(n) for n in names) or 'its inputs'}"
    failing: list[str] = []
    if isinstance(value, tuple) and len(names) == len(value):
        for name, item in zip(names, value, strict=True):
            try:
                _copy(item)
            except Exception as failure:
                kind = type(item)
                failing.append(f"'{name}' ({kind.__module__}.{kind.__qualname__})")
                error = failure
        subject = " and ".join(failing) or subject
    where, cell = f"step '{step}'", None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, IndexError):
        from . import project

        cells = project.step(step).cells
        notebook = os.path.basename(project.manifest().notebook)
        cell = int(cells[0])
        where = (f"{notebook}: cell{'s' if len(cells) > 1 else ''} "
                 f"{', '.join(map(str, cells))} (step '{step}')")
    reason = f"{type(error).__name__}: {error}"
    them, they = ("them", "they") if len(failing) > 1 else ("it", "it")
    return errors.StepError(
        f"{where}: the step changes {subject} in place while another step reads {them}, so "
        f"it works on a copy, but {they} cannot be copied ({reason}). Make or load {them} "
        f"again in this step, or tag the cells that read and change {them} into one step",
        step, cell, None, reason)


class Values(Mapping[str, Any]):
    """A step's values by name: `values["df"]`."""

    def __init__(self, step: str, memory: dict[str, Any] | None = None,
                 refs: dict[str, Ref] | None = None, location: str | None = None,
                 run: str | None = None, unsaved: dict[str, str] | None = None) -> None:
        self.step = step
        self.memory = memory
        self.refs = dict(refs or {})
        self.location = location  # the store holding the files of `refs`
        self.run = run  # the flow run: where values only this run needs are saved
        self.unsaved = dict(unsaved or {})  # values that cannot be saved, and why
        self.notebook: str | None = None  # notebook mode: the executed step notebook
        self.record: str | None = None  # the step's outputs for the run's report (report.py)
        self.key: str | None = None  # the cache key it is stored under, if any (records.py)
        self.seconds: float | None = None  # how long the step's code ran (calls.Clock)

    def __getitem__(self, name: str) -> Any:
        from_store = switches.read().handoff_through_store
        if self.memory is not None and name in self.memory and not (
                from_store and name in self.refs):
            return self.memory[name]
        if name not in self.refs:
            if name in self.unsaved:
                raise RuntimeError(f"step '{self.step}': '{name}' cannot be passed to another "
                                   f"process or run: {self.unsaved[name]}")
            raise KeyError(f"step '{self.step}' left no value '{name}'")
        ref = self.refs[name]
        read = _READ.get()
        key = (str(self.location), ref.path)
        if read is None or key not in read:
            try:
                loaded = self._store().load_ref(ref, _reader())
            except Tampered as problem:  # never retried: the file stays what it is
                raise Tampered(f"step '{self.step}': its value '{name}' cannot be read: "
                               f"{problem}") from None
            if read is None:
                return loaded[ref.member] if ref.member else loaded
            read[key] = loaded
        return read[key][ref.member] if ref.member else read[key]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*(self.memory or {}), *self.refs}))

    def __len__(self) -> int:
        return len({*(self.memory or {}), *self.refs})

    def __repr__(self) -> str:
        return f"<values of step '{self.step}': {', '.join(self)}>"

    def hashes(self, names: list[str]) -> dict[str, str] | None:
        """The content hashes of these values, or None when one was not kept for later runs
        (not saved, or only handed on within this run)."""
        found = {n: self.refs[n].sha256 for n in names if n in self.refs and self.refs[n].kept}
        return found if len(found) == len(names) else None

    def save(self, store: Store, for_later: bool, *, background: Collection[str] = ()
             ) -> None:
        """Write what is only in memory: for later runs (hashed) or for this run only. The
        files of values kept for later runs and named in `background` may still be being
        written when this returns (store.py)."""
        self.location = store.location
        pending = {n: v for n, v in (self.memory or {}).items()
                   if n not in self.refs and n not in self.unsaved}
        if pending:
            refs, unsaved = store.save(pending, None if for_later else self.run or "run",
                                       background=background)
            self.refs.update(refs)
            self.unsaved.update(unsaved)

    def __reduce__(self) -> tuple[Any, ...]:
        # Crossing to another process: the values go as files, the handle as a few names;
        # files still being written in this process are written first.
        if self.memory and self.location:
            self.save(Store(self.location), for_later=False)
        if self.location:
            writes.wait_for(self.location, [ref.path for ref in self.refs.values()])
        return (_restore, (self.step, self.refs, self.location, self.run, self.unsaved,
                           self.notebook, self.record, self.seconds))

    def _store(self) -> Store:
        if self.location is None:
            raise RuntimeError(f"step '{self.step}': its values were not saved")
        return Store(self.location)


def _reader() -> str | None:
    """The step whose task is reading a value, if any."""
    try:
        from prefect.context import TaskRunContext
    except ImportError:  # the runtime without Prefect: generated tests, recorded values
        return None
    context = TaskRunContext.get()
    return context.task.name if context is not None else None


def _restore(step: str, refs: dict[str, Ref], location: str | None, run: str | None,
             unsaved: dict[str, str], notebook: str | None,
             record: str | None = None, seconds: float | None = None) -> Values:
    restored = Values(step, None, {n: Ref(*r) for n, r in refs.items()}, location, run, unsaved)
    restored.notebook = notebook
    restored.record = record
    restored.seconds = seconds
    return restored


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """While a task runs: each file it reads is read once, and only for this task."""
    token = _READ.set({})
    try:
        yield
    finally:
        _READ.reset(token)
