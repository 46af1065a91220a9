"""A step's record in the result storage: JSON signed with the storage key, never a pickle.

Prefect keeps what a task returns in the result storage, under the task's cache key. A step
returns its `Values` handle (handoff.py), which Prefect writes with `SERIALIZER`, Prefect's
JSON serializer with this module as its JSON library, as one JSON object:

    {"nb2pipe-record": 1, "key": CACHE_KEY, "step": "load",
     "refs": {"df": ["values/ab/ab12....parquet", SHA256, MEMBER]},
     "location": STORE, "run": FLOW_RUN, "unsaved": {NAME: WHY},
     "notebook": EXECUTED_NOTEBOOK, "record": REPORT_RECORD, "mac": HMAC}

`mac` is the HMAC-SHA256 (auth.py) of the rest, the cache key included: without the storage
key a record can be neither changed, made up, nor moved under another key; its files are
proven by their hashes (store.py). Prefect reads a record's serializer from the record itself
(a record saying "pickle" would be unpickled), so the metadata Prefect reads is never taken
from the storage: the steps' cache policy (cache.py) gives Prefect `RecordGuard` as its key
storage, which reads the record, checks it, and hands Prefect metadata of its own naming
`SERIALIZER`. A record that fails the check is no entry at all: the step runs again.
"""

from __future__ import annotations

import abc
import json
from typing import Any

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem
from prefect.serializers import JSONSerializer

from . import auth
from .handoff import Values
from .store import Ref

FORMAT = "nb2pipe-record"  # not a Python name: never one of a step's values
VERSION = 1
LARGEST = 16 << 20  # bytes: a record names files, it does not hold values


class Untrusted(ValueError):
    """A record that is not one nb2pipe wrote with this storage key: says why."""


def dumps(value: Any, **_: Any) -> str:
    """A step's Values as its signed record (Prefect's JSON serializer calls this module as
    its JSON library). Prefect keeps a failed step's error too: as text, never read back."""
    if isinstance(value, BaseException):
        return json.dumps({"nb2pipe-error": f"{type(value).__name__}: {value}"})
    if not isinstance(value, Values):
        raise TypeError(f"a step's task returns its Values (run_step), not a "
                        f"{type(value).__name__}")
    body: dict[str, Any] = {
        FORMAT: VERSION, "key": value.key, "step": value.step,
        "refs": {name: list(ref) for name, ref in sorted(value.refs.items())},
        "location": value.location, "run": value.run, "unsaved": dict(value.unsaved),
        "notebook": value.notebook, "record": value.record}
    # A record under no cache key (caching off) is never read back: it needs no key.
    body["mac"] = sign(body) if value.key else None
    return json.dumps(body)


def loads(text: str, **_: Any) -> Values:
    """The Values of a signed record, as Prefect reads it (once `RecordGuard` checked it)."""
    return read(text.encode(), None)


def read(data: bytes, key: str | None) -> Values:
    """The Values of a record read from the storage under `key`; `Untrusted` unless nb2pipe
    wrote it there under this storage key. Plain JSON: nothing in it is imported or run."""
    if len(data) > LARGEST:
        raise Untrusted(f"is not a record of nb2pipe ({len(data)} bytes)")
    try:
        found = json.loads(data)
    except (ValueError, RecursionError):
        raise Untrusted("is not a record of nb2pipe (not JSON)") from None
    if not isinstance(found, dict) or FORMAT not in found:
        raise Untrusted("is not a record of nb2pipe")
    body = {name: item for name, item in found.items() if name != "mac"}
    if body.get(FORMAT) != VERSION:
        raise Untrusted(f"is a record of another version of nb2pipe ({body.get(FORMAT)!r})")
    if not auth.verify(FORMAT, _canonical(body), found.get("mac")):
        raise Untrusted("fails its authentication check: changed since it was written, or "
                        f"signed with another storage key (see {auth.KEY_VARIABLE})")
    if key is not None and body.get("key") != key:
        raise Untrusted("is the record of another step or input (moved here)")
    refs, unsaved = body.get("refs"), body.get("unsaved")
    if not (isinstance(body.get("step"), str) and _texts(unsaved) and isinstance(refs, dict)
            and all(isinstance(r, list) and len(r) == 3 and _texts(dict(enumerate(r)))
                    for r in refs.values())
            and all(body.get(n) is None or isinstance(body.get(n), str)
                    for n in ("key", "location", "run", "notebook", "record"))):
        raise Untrusted("is not a record of nb2pipe (unexpected content)")
    values = Values(body["step"], None, {name: Ref(*ref) for name, ref in refs.items()},
                    body["location"], body["run"], unsaved)
    values.notebook, values.record, values.key = body["notebook"], body["record"], body["key"]
    return values


def sign(body: dict[str, Any]) -> str:
    return auth.sign(FORMAT, _canonical(body))


def _texts(mapping: object) -> bool:
    return isinstance(mapping, dict) and all(
        isinstance(k, str | int) and isinstance(v, str) for k, v in mapping.items())


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# Prefect's JSON serializer with this module (named by this copy's module name) as its JSON
# library: no pickle, and none of Prefect's default hooks, which import any class a record
# names.
SERIALIZER = JSONSerializer(jsonlib=__name__, object_encoder=None, object_decoder=None)


class RecordGuard(WritableFileSystem, abc.ABC):
    """Prefect's key storage for the steps: the metadata of the record under a key, made
    here once the record (in the task's result storage) proves to be nb2pipe's; it is never
    read from the storage. What Prefect writes to it is dropped: there is nothing to keep.
    (Not a block type of its own: `abc.ABC` keeps Prefect from registering it.)"""

    async def aread_path(self, path: str) -> bytes:
        return self._metadata(path)

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:  # type: ignore[override]  # as Prefect's blocks
        return self._metadata(path)

    async def awrite_path(self, path: str, content: bytes) -> None:
        return None

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> None:  # type: ignore[override]
        return None

    def _metadata(self, path: str) -> bytes:
        from prefect._internal.compatibility.blocks import call_explicitly_sync_block_method
        from prefect._internal.result_records import ResultRecordMetadata

        storage = _result_storage()
        read(bytes(call_explicitly_sync_block_method(storage, "read_path", (path,), {})), path)
        resolve = getattr(storage, "_resolve_path", None)
        saved = getattr(storage, "_block_document_id", None)
        # Where Prefect wrote the record: an unsaved folder's absolute path, else the key.
        where = str(resolve(path)) if saved is None and resolve is not None else path
        metadata = ResultRecordMetadata(storage_key=where, serializer=SERIALIZER,
                                        storage_block_id=saved)
        return metadata.dump_bytes()


def _result_storage() -> Any:
    """The result storage of the running task."""
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    storage = context.result_store.result_storage if context is not None else None
    if storage is None:
        raise Untrusted("no result storage to read the record from")
    return storage
