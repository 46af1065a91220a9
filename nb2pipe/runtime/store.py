"""The artifact store: step values as files, in a local folder or a Prefect filesystem block.

    values/AB/ABCDEF....EXT    a value kept for later runs, named by the sha256 of its file
                               (parquet, .npy or pickle; values that share objects, such as a
                               list of frames and the frames, are pickled together)
    runs/RUN/STEP-ID/NAME.EXT  a value handed to the next step of one run only (Arrow IPC for
                               frames); removed a day later

Every file is hashed (SHA-256) as it is written, and read back only through its `Ref`, which
holds that hash: the bytes are hashed as they are read and decoded only when they match, so
nothing planted in the storage is ever unpickled. A ref is trusted because of where it comes
from: a step's record, signed with the storage key (records.py, auth.py), or the run's own
hand-over between its processes (handoff.py). A cached entry's files are also checked before
the step is reported cached (cache.py).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from . import values
from .values import shared_groups

BLOCK = "block:"  # a location naming a Prefect block: block:TYPE/NAME
RUNS_KEPT_SECONDS = 24 * 3600


class Ref(NamedTuple):
    path: str  # relative to the store's root, "/"-separated
    sha256: str  # of the file's bytes
    member: str = ""  # a value in a file of values that share objects

    @property
    def kept(self) -> bool:
        """Kept for later runs (content-addressed), not only handed on within one run."""
        return self.path.startswith("values/")


class Tampered(ValueError):
    """A file of the store is not what its ref says it holds (changed, truncated, missing)."""


class Store:
    """Values saved to and loaded from one location: an absolute folder, or block:TYPE/NAME."""

    def __init__(self, location: str) -> None:
        self.location = location

    @classmethod
    def for_storage(cls, storage: Any) -> Store:
        """The store beside Prefect's result storage (a LocalFileSystem or a saved block)."""
        basepath = getattr(storage, "basepath", None)
        if type(storage).__name__ == "LocalFileSystem":
            return cls(str(Path(basepath or ".").expanduser().resolve()))
        name = getattr(storage, "_block_document_name", None)
        configured = configured_storage()
        if storage is not None and not name and isinstance(configured, str) and (
                configured.partition("/")[0] == storage.get_block_type_slug()):
            # The block as it reached another process (a Dask worker) lost its name.
            name = configured.partition("/")[2]
        if storage is None or not name:
            raise ValueError("result storage must be a folder or a saved Prefect block")
        return cls(f"{BLOCK}{storage.get_block_type_slug()}/{name}")

    @property
    def folder(self) -> Path | None:
        return None if self.location.startswith(BLOCK) else Path(self.location)

    def save(self, outputs: dict[str, Any], run: str | None = None
             ) -> tuple[dict[str, Ref], dict[str, str]]:
        """Save values: for later runs (content-addressed, hashed) or, given `run`, for the
        next step of that run only. Returns refs by name, and why values could not be saved."""
        with tempfile.TemporaryDirectory(prefix=".staging-", dir=self._staging()) as staging:
            refs: dict[str, Ref] = {}
            unsaved: dict[str, str] = {}
            target = f"runs/{run}/{uuid.uuid4().hex[:12]}" if run else ""
            together = shared_groups(outputs)
            alone = [(name,) for name in sorted(set(outputs).difference(*together))]
            for members in alone + together:
                shared = len(members) > 1  # values sharing objects: pickled together
                name = f"{members[0]}.shared" if shared else members[0]
                value = {m: outputs[m] for m in members} if shared else outputs[members[0]]
                written, digest = values.dump_hashed(staging, name, value, passing=bool(run))
                local = Path(staging) / written
                if local.suffix == values.UNRECORDED:
                    reason = local.read_text(encoding="utf-8")
                    unsaved.update({m: f"it is a {_type_name(outputs[m])}, which neither pickle "
                                    f"nor cloudpickle can save ({reason}); make it in the step "
                                    "that uses it (tag both cells into one step)"
                                    for m in members})
                    continue
                digest = digest or file_hash(local)
                if run:
                    path = f"{target}/{written}"
                else:
                    path = f"values/{digest[:2]}/{digest}{local.suffix}"
                self._put(local, path)
                for member in members:
                    refs[member] = Ref(path, digest, member if shared else "")
        if run and self.folder is not None:
            _prune_runs(str(self.folder))
        return refs, unsaved

    def load(self, refs: dict[str, Ref]) -> dict[str, Any]:
        """Values by name; values saved together are read once, so they share objects again."""
        files: dict[str, Any] = {}
        found = {}
        for name, ref in refs.items():
            if ref.path not in files:
                files[ref.path] = self.load_ref(ref)
            loaded = files[ref.path]
            found[name] = loaded[ref.member] if ref.member else loaded
        return found

    def load_ref(self, ref: Ref) -> Any:
        """The value(s) in the file `ref` names, once its bytes are those `ref` holds the hash
        of (else `Tampered`, naming the file: nothing of it is decoded)."""
        return values.load_bytes(self.read_checked(ref.path, ref.sha256),
                                 os.path.splitext(ref.path)[1])

    def read_checked(self, path: str, sha256: str) -> bytearray:
        """The bytes of a file of the store, read once and hashed as they arrive; `Tampered`
        unless they are those of `sha256`."""
        if not sha256:
            raise Tampered(f"{self.where(path)} has no recorded hash to check it against")
        folder = self.folder
        try:
            if folder is None:
                with tempfile.TemporaryDirectory(prefix="nb2pipe-") as scratch:
                    local = Path(scratch) / "file"
                    self._download(path, local)
                    data, digest = _read_hashing(local)
            else:
                data, digest = _read_hashing(folder / path)
        except FileNotFoundError:
            raise Tampered(f"{self.where(path)} is missing") from None
        if digest != sha256:
            raise Tampered(f"{self.where(path)} does not hold what was stored there (its "
                           "hash differs): changed since it was written")
        return data

    def where(self, path: str) -> str:
        """A file of the store, named for a message: its full path, or block:TYPE/NAME/PATH."""
        folder = self.folder
        return str(folder / path) if folder is not None else f"{self.location}/{path}"

    def write_bytes(self, path: str, data: bytes) -> None:
        """A file of the run's report (a step's outputs, a figure), written as it is."""
        folder = self.folder
        if folder is None:
            _block(self.location).write_path(path, data)
            return
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        temporary.write_bytes(data)
        os.replace(temporary, target)

    def read_bytes(self, path: str) -> bytes:
        folder = self.folder
        if folder is not None:
            return (folder / path).read_bytes()
        return bytes(_block(self.location).read_path(path))

    def url(self, path: str) -> str:
        """Where a file of the store can be fetched from: a file:// URL for a folder, the
        block's own address (s3://..., gs://...) when it has one."""
        folder = self.folder
        if folder is not None:
            return (folder / path).as_uri()
        basepath = str(getattr(_block(self.location), "basepath", "") or
                       getattr(_block(self.location), "bucket_folder", "") or "")
        return f"{basepath.rstrip('/')}/{path}" if basepath else path

    def discard_damaged(self, refs: dict[str, Ref]) -> str | None:
        """Check every file against its hash: None when all hold what they held when stored;
        else what is wrong, the damaged files removed (from a folder; a block's are
        overwritten when the values are saved again)."""
        problems = []
        for path, digest in sorted({(r.path, r.sha256) for r in refs.values()}):
            try:
                found = self._hash(path)
            except OSError:
                problems.append(f"{self.where(path)} is missing")
                continue
            except Exception as exc:  # a block's own error: unreachable bucket, no such key
                problems.append(f"{self.where(path)} cannot be read ({type(exc).__name__}: "
                                f"{exc})")
                continue
            if found != digest:
                problems.append(f"{self.where(path)} changed since it was stored")
                if self.folder is not None:
                    (self.folder / path).unlink(missing_ok=True)
        return "; ".join(problems) or None

    def _staging(self) -> str | None:
        folder = self.folder
        if folder is None:
            return None  # the system's temporary folder
        (folder / "values").mkdir(parents=True, exist_ok=True)
        return str(folder / "values")

    def _put(self, local: Path, path: str) -> None:
        folder = self.folder
        if folder is None:
            block = _block(self.location)
            if hasattr(block, "upload_from_file_object"):  # an object store's block
                # Streamed from the file, in parts (multipart) when it is large.
                with open(local, "rb") as handle:
                    block.upload_from_file_object(handle, path)
            else:
                block.write_path(path, local.read_bytes())
            return
        target = folder / path
        if target.exists() and not path.startswith("runs/"):
            return  # the same content, saved before
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, target)

    def _hash(self, path: str) -> str:
        folder = self.folder
        if folder is not None:
            return file_hash(folder / path)
        with tempfile.TemporaryDirectory(prefix="nb2pipe-") as scratch:
            local = Path(scratch) / "file"
            self._download(path, local)
            return file_hash(local)

    def _download(self, path: str, local: Path) -> None:
        """A block's file into a local one: an object store's block streams it (in parts,
        side by side, when it is large), never holding it whole in memory."""
        block = _block(self.location)
        if hasattr(block, "download_object_to_file_object"):
            with open(local, "wb") as handle:
                block.download_object_to_file_object(path, handle)
        else:
            local.write_bytes(block.read_path(path))


def configured_storage() -> Path | str:
    """Where results and cached values go: NB2PIPE_RESULT_STORAGE, a folder or a Prefect
    filesystem block as TYPE/NAME (e.g. s3-bucket/pipeline-results); by default the folder
    `results` in the user's cache (NB2PIPE_CACHE_DIR, else ~/.cache/nb2pipe)."""
    configured = os.environ.get("NB2PIPE_RESULT_STORAGE", "").strip()
    if configured and configured.count("/") == 1 and not configured.startswith(
            (".", "/", "~")) and not os.path.isdir(configured):
        return configured  # a block; Prefect loads it by name
    if configured:
        return Path(configured).expanduser().resolve()
    return cache_folder() / "results"


def cache_folder() -> Path:
    """The user's cache folder for nb2pipe: NB2PIPE_CACHE_DIR, else ~/.cache/nb2pipe."""
    configured = os.environ.get("NB2PIPE_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nb2pipe"


@functools.cache
def _block(location: str) -> Any:
    from prefect.blocks.core import Block

    # `_sync`: the block, not a coroutine, even when this thread has an event loop running.
    return Block.load(location[len(BLOCK):], _sync=True)  # type: ignore[call-arg]


@functools.cache
def _prune_runs(folder: str) -> None:
    """Remove the values of runs that ended more than a day ago (once per process)."""
    cutoff = time.time() - RUNS_KEPT_SECONDS
    for run in Path(folder, "runs").glob("*"):
        try:
            if run.stat().st_mtime < cutoff:
                shutil.rmtree(run, ignore_errors=True)
        except OSError:
            continue


def _type_name(value: object) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}")


CHUNK = 8 << 20


def _read_hashing(path: Path) -> tuple[bytearray, str]:
    """A file's bytes and their sha256, in one pass: each piece is hashed on a thread while
    the next one is read (both release the GIL)."""
    import threading

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        data = bytearray(os.fstat(handle.fileno()).st_size)
        view = memoryview(data)
        offset = 0
        hasher: threading.Thread | None = None
        try:
            while offset < len(data):
                count = handle.readinto(view[offset:offset + CHUNK])
                if not count:
                    break
                if hasher is not None:
                    hasher.join()
                hasher = threading.Thread(target=digest.update,
                                          args=(view[offset:offset + count],))
                hasher.start()
                offset += count
        finally:
            if hasher is not None:
                hasher.join()
        if offset < len(data) or handle.read(1):  # changed size while being read
            digest.update(b"\0")
    del view
    return data, digest.hexdigest()


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
