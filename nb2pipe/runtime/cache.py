"""The cache policy of every step: a step runs again only when what it depends on changed.

The key is a hash of the step's code (its hash in pipeline.json, or of the whole of steps.py
once that was edited by hand), its task's source in flow.py, the parameters it reads, and the
content hashes of the values it reads: never of pickled objects, whose bytes depend on how they
happen to be laid out in memory. Prefect does the rest: it looks the key up in the result
storage, and a step found there is reported Cached and not run.

Before a cached result is used, its record is checked (JSON signed with the storage key, see
records.py: nothing of it is unpickled) and its files against their hashes (a folder's chunks
of large arrays only for being there at their size: each is hashed as the step reading it
loads it, store.py): an entry that is not nb2pipe's or is damaged (a file changed, truncated
or deleted, the record changed, planted or unreadable) is dropped with a warning naming the
file, so the step runs again and its result replaces the entry. Prefect itself reads the
record only through `records.RecordGuard`, the policy's key storage, which does the same
check.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from prefect._internal.compatibility.blocks import call_explicitly_sync_block_method
from prefect.cache_policies import CachePolicy, TaskSource
from prefect.context import TaskRunContext

from . import auth, chunks, progress, project, records, runners, switches, verified
from .handoff import Values
from .store import Store

FORMAT = "nb2pipe-cache-4"  # changes when the key or the stored layout does


@dataclass
class StepCache(CachePolicy):
    """Prefect cache policy: code + parameters read + content of the inputs. Prefect reads
    the records under its keys through `RecordGuard`, never straight from the storage."""

    key_storage: Any = field(default_factory=records.RecordGuard)

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        if not switches.read().cache or task_ctx is None:
            return None
        if not key_ready(task_ctx.result_store.result_storage):
            return None  # the step says why when it runs (run_step)
        name = task_ctx.task.name
        reads: dict[str, list[str]] = {}
        for entry in project.step(name).inputs:
            reads.setdefault(entry.source, []).append(entry.name)
        parameters: dict[str, Any] = {}
        contents: dict[str, dict[str, str]] = {}
        for argument, value in sorted(inputs.items()):
            if isinstance(value, Values):
                hashes = value.hashes(sorted(reads.get(value.step, [])))
                if hashes is None:  # an input that was never saved: nothing to key on
                    return None
                contents[value.step] = hashes
            else:
                parameters[argument] = value
        # The versions of the libraries reading the stored values back are part of the key:
        # a value pickled by one pandas is not always one another reads the same.
        digest = hashlib.sha256(f"{FORMAT}\0{chunks.versions()}\0{project.code_hash(name)}\0"
                                .encode())
        digest.update(str(TaskSource().compute_key(task_ctx, inputs, flow_parameters)).encode())
        digest.update(json.dumps(parameters, sort_keys=True, default=repr).encode())
        digest.update(json.dumps(contents, sort_keys=True).encode())
        key = digest.hexdigest()
        _drop_if_damaged(task_ctx, key)
        return key


def _drop_if_damaged(task_ctx: TaskRunContext, key: str) -> None:
    """A cached entry that is not nb2pipe's, or whose files do not match their hashes, must
    not be used: overwrite it with an empty record, which Prefect reads as no entry at all,
    and remove the damaged files, so the step's new result is stored whole. The manifests
    are read whole to be checked; the steps of this process that read them take those bytes
    (verified.py), so that nothing is read twice."""
    storage: Any = task_ctx.result_store.result_storage
    if storage is None:
        return
    try:
        content = call_explicitly_sync_block_method(storage, "read_path", (key,), {})
    except Exception:  # no entry under this key: nothing to check
        return
    if not content:  # an entry dropped before
        return
    step = task_ctx.task.name
    problem: str | None = None
    try:
        found = records.read(bytes(content), key)
    except records.Untrusted as untrusted:
        problem = f"{_where(storage, key)} {untrusted}"
    if problem is None and found.refs:
        if found.location is None:
            problem = f"{_where(storage, key)} names no store"
        else:
            readers = project.readers(step) if runners.shares_memory() else []
            problem = Store(found.location).discard_damaged(found.refs, readers)
    if problem is None:
        verified.passed(step)  # cached: it reads none of its inputs
        return
    drop(storage, key)
    for cached in [k for k in task_ctx.result_store.cache if str(k).endswith(key)]:
        task_ctx.result_store.cache.pop(cached, None)  # Prefect's copy in memory, if read
    warn(step, f"step '{step}': cached result not used, it runs again: {problem}")


def drop(storage: Any, key: str) -> None:
    """Drop the cached entry under `key`: an empty record, which Prefect reads as none."""
    call_explicitly_sync_block_method(storage, "write_path", (key, b""), {})


def key_ready(storage: Any) -> bool:
    """Whether the storage key can be had (and is not kept inside this storage): a step that
    cannot sign or check its record is not cached, and says why when it runs."""
    try:
        folder = Store.for_storage(storage).folder
    except ValueError:  # an unsaved block that is not a folder: said when the step runs
        folder = None
    try:
        auth.check_outside(folder)
        auth.storage_key()
    except auth.StorageKeyError:
        return False
    return True


def _where(storage: Any, key: str) -> str:
    """The record under `key`, named for a message: its path, or the block and key."""
    try:
        return Store.for_storage(storage).where(key)
    except ValueError:  # an unsaved block that is not a folder
        return key


def warn(step: str, message: str) -> None:
    """A warning about a step: in the run's log, and to `nb2pipe run` as a step event."""
    try:
        from prefect.logging import get_run_logger

        get_run_logger().warning(message)
    except Exception:  # no run context: the plain logger
        logging.getLogger("nb2pipe").warning(message)
    progress.emit({"event": "warning", "step": step, "message": message})
