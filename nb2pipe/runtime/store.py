"""The artifact store: step values as files, in a local folder or a Prefect filesystem block.

    values/AB/ABCDEF....value  a value kept for later runs: its manifest, named by its sha256
                               (chunks.py; values that share objects, such as a list of frames
                               and the frames, are kept together)
    chunks/AB/ABCDEF....       the memory of its arrays, in chunks named by their sha256: a
                               chunk several values hold is stored once
    runs/RUN/STEP-ID/NAME.EXT  a value handed to the next step of one run only (pickle 5 with
                               the arrays' memory as it is); removed a day later. In an object
                               store's block, a manifest and its chunks as for a kept value
                               (NAME.value, chunks/SHA256), written and read side by side
                               (objects.py)

Every file is hashed (SHA-256) before or as it is written, and read back only through its
`Ref`, which holds that hash: the bytes are hashed as they are read and decoded only when they
match (a kept value's chunks, when the manifest that names them did), so nothing planted in
the storage is ever unpickled. A ref is trusted because of where it comes from: a step's
record, signed with the storage key (records.py, auth.py), or the run's own hand-over between
its processes (handoff.py). When a step is looked up in the cache (cache.py), its entry's
manifests are read and checked (the steps of this process that read them take those bytes,
verified.py), and in a folder its chunks only found to be there at their size: each chunk is
read once, by the step that loads it, and checked as it is read. A chunk that fails then is
removed, so the next run finds it missing and runs its step again. An object store's chunks
are read and checked at the lookup too (its blocks have no common way to ask for a size).
A kept value's files may be written while the next steps run (writes.py).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from . import chunks, objects, values, verified, writes
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

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path  # the damaged file, relative to the store's root


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
        location = f"{BLOCK}{storage.get_block_type_slug()}/{name}"
        # The block Prefect gave the task: a step's values may be saved after the task has
        # ended (pickled by Dask to cross to another worker), where no Prefect API is known to
        # load it again by name.
        _GIVEN.setdefault(location, storage)
        return cls(location)

    @classmethod
    def configured(cls) -> Store:
        """The store of the configured result storage (configured_storage)."""
        storage = configured_storage()
        return cls(str(storage) if isinstance(storage, Path) else f"{BLOCK}{storage}")

    @property
    def folder(self) -> Path | None:
        return None if self.location.startswith(BLOCK) else Path(self.location)

    def save(self, outputs: dict[str, Any], run: str | None = None, *,
             background: Collection[str] = ()) -> tuple[dict[str, Ref], dict[str, str]]:
        """Save values: for later runs (content-addressed, hashed) or, given `run`, for the
        next step of that run only. Returns refs by name, and why values could not be saved.
        The files of values kept for later runs and named in `background` may still be
        being written when this returns (writes.py); their memory must not change meanwhile,
        or the files will not match their hashes (and are never read)."""
        refs: dict[str, Ref] = {}
        unsaved: dict[str, str] = {}
        together = shared_groups(outputs)
        alone = [(name,) for name in sorted(set(outputs).difference(*together))]
        groups = [(members, len(members) > 1) for members in alone + together]
        target = f"runs/{run}/{uuid.uuid4().hex[:12]}" if run else ""
        if not run or self.folder is None:
            # Kept for later runs; or handed on through an object store, in the same form
            # (from memory, chunks side by side), under the run's folder.
            for members, shared in groups:  # values sharing objects: pickled together
                name = f"{members[0]}.shared" if shared else members[0]
                value = {m: outputs[m] for m in members} if shared else outputs[members[0]]
                try:
                    ref = self._keep(value, not run and any(m in background for m in members),
                                     f"{target}/{name}" if run else "")
                except Exception as error:  # neither pickle nor cloudpickle can save it
                    unsaved.update(_unsaved(outputs, members, f"{type(error).__name__}: "
                                            f"{error}"))
                    continue
                refs.update({m: ref._replace(member=m if shared else "") for m in members})
            return refs, unsaved
        with tempfile.TemporaryDirectory(prefix=".staging-", dir=self._staging()) as staging:
            for members, shared in groups:
                name = f"{members[0]}.shared" if shared else members[0]
                value = {m: outputs[m] for m in members} if shared else outputs[members[0]]
                written, digest = values.dump_hashed(staging, name, value, passing=True)
                local = Path(staging) / written
                if local.suffix == values.UNRECORDED:
                    unsaved.update(_unsaved(outputs, members,
                                            local.read_text(encoding="utf-8")))
                    continue
                path = f"{target}/{written}"
                self._put(local, path)
                for member in members:
                    refs[member] = Ref(path, digest or file_hash(local),
                                       member if shared else "")
        if self.folder is not None:
            _prune_runs(str(self.folder))
        return refs, unsaved

    def _keep(self, value: Any, background: bool, handed: str = "") -> Ref:
        """Keep a value for later runs: its chunks (those not stored already) and its
        manifest, written now or, in the background, while the caller goes on. `handed`:
        the value is only handed to the next step of a run, as `handed`.value."""
        packed = chunks.pack(value)
        path = f"{handed}{chunks.EXTENSION}" if handed else chunks.manifest_path(packed.sha256)
        files = [(chunks.chunk_path(p.sha256, path), (p.data,), p.data.nbytes, p.sha256)
                 for p in packed.chunks]
        jobs, others = [], []
        for part, pieces, size, sha256 in [*files, (path, packed.manifest, None,
                                                    packed.sha256)]:
            claimed = writes.claim(self.location, part)
            if claimed is None:  # written, or being written for another value
                others.append(part)
            elif self._holds(part, size):
                claimed.set_result(None)
            else:
                jobs.append((claimed, functools.partial(self._write, part, pieces,
                                                        sha256=sha256)))
        writes.names(self.location, path, [part for part, _, _, _ in files])
        if background:
            # Written from memory that may change meanwhile (through a name the analysis of
            # the notebook did not see): each file is checked against its hash as it is
            # written, and kept only if it matches.
            for claimed, job in jobs:
                writes.start(claimed, functools.partial(job, checked=True))
        else:
            for future in [self._pool().submit(writes.run, *job) for job in jobs]:
                future.result()
            writes.wait_for(self.location, others)
        return Ref(path, packed.sha256)

    def load(self, refs: dict[str, Ref], reader: str | None = None) -> dict[str, Any]:
        """Values by name; values saved together are read once, so they share objects again."""
        files: dict[str, Any] = {}
        found = {}
        for name, ref in refs.items():
            if ref.path not in files:
                files[ref.path] = self.load_ref(ref, reader)
            loaded = files[ref.path]
            found[name] = loaded[ref.member] if ref.member else loaded
        return found

    def load_ref(self, ref: Ref, reader: str | None = None) -> Any:
        """The value(s) in the file `ref` names, once its bytes are those `ref` holds the hash
        of (else `Tampered`, naming the file: nothing of it is decoded). A kept value's chunks
        are read (each checked against the hash its manifest holds) before anything of it is
        decoded. `reader`: the step reading it, which may take bytes its cache lookup checked
        (verified.py). A file that fails its check is removed from a folder (`Tampered` says
        so): the next cache lookup finds it missing, and its step runs again."""
        try:
            return self._load_checked(ref, reader)
        except Tampered as damaged:
            if self.folder is None or not (self.folder / damaged.path).is_file():
                raise  # a block's file is written again when its step's values are
            (self.folder / damaged.path).unlink(missing_ok=True)
            writes.forget(self.location, damaged.path)
            raise Tampered(f"{damaged}; removed, so that the step that stored it runs again "
                           "next time", damaged.path) from None

    def _load_checked(self, ref: Ref, reader: str | None) -> Any:
        extension = os.path.splitext(ref.path)[1]
        data = verified.take(("file", self.location, ref.path, ref.sha256), reader)
        if data is None:
            data = self.read_checked(ref.path, ref.sha256)
        if extension != chunks.EXTENSION:
            return values.load_bytes(data, extension)
        manifest = self._manifest(ref.path, data)
        filled = {}
        for index, buffer in enumerate(manifest.buffers):
            if isinstance(buffer, chunks.Chunked):
                taken = verified.take(self._buffer_key(buffer), reader)
                filled[index] = taken if taken is not None else self._read_buffer(buffer,
                                                                                  ref.path)
        return chunks.unpack(manifest, filled)

    def read_checked(self, path: str, sha256: str) -> bytearray:
        """The bytes of a file of the store, read once and hashed as they arrive; `Tampered`
        unless they are those of `sha256`."""
        if not sha256:
            raise Tampered(f"{self.where(path)} has no recorded hash to check it against")
        writes.wait_for(self.location, [path])  # a file this process is writing: written
        folder = self.folder
        try:
            if folder is None:
                data, digest = objects.download(_block(self.location), self._kind(), path)
            else:
                data, digest = _read_hashing(folder / path)
        except FileNotFoundError:
            raise Tampered(f"{self.where(path)} is missing", path) from None
        if digest != sha256:
            raise Tampered(f"{self.where(path)} does not hold what was stored there (its "
                           "hash differs): changed since it was written", path)
        return data

    def _manifest(self, path: str, data: bytearray) -> chunks.Manifest:
        try:
            return chunks.parse(data)
        except ValueError as problem:  # checked, so written by nb2pipe: another version's
            raise Tampered(f"{self.where(path)}: {problem}") from None

    def _buffer_key(self, buffer: chunks.Chunked) -> tuple[str, str, tuple[str, ...]]:
        return ("buffer", self.location, tuple(sha for sha, _ in buffer.chunks))

    def _read_buffer(self, buffer: chunks.Chunked, manifest: str) -> bytearray:
        """A large buffer of a value: its chunks read into one piece of memory, side by side,
        each hashed as it arrives; `Tampered` unless each is what the manifest (at
        `manifest`) says."""
        data = bytearray(buffer.size)
        view = memoryview(data)
        parts, offset = [], 0
        for sha, size in buffer.chunks:
            parts.append((sha, view[offset:offset + size]))
            offset += size
        writes.wait_for(self.location, [chunks.chunk_path(sha, manifest)
                                         for sha, _ in buffer.chunks])
        for problem in self._pool().map(
                lambda part: self._read_chunk(part[0], part[1], manifest), parts):
            if problem is not None:
                raise problem
        del parts, view
        return data

    def _read_chunk(self, sha256: str, into: memoryview, manifest: str) -> Tampered | None:
        """Read a chunk into `into`, hashing it; what is wrong with it, or None."""
        path = chunks.chunk_path(sha256, manifest)
        try:
            digest = self._read_into(path, into)
        except FileNotFoundError:
            return Tampered(f"{self.where(path)} is missing", path)
        if digest != sha256:
            return Tampered(f"{self.where(path)} does not hold what was stored there (its "
                            "hash differs): changed since it was written", path)
        return None

    def _holds(self, path: str, size: int | None) -> bool:
        """Whether a folder has this file already (of this size): named by the hash of its
        content, it holds these bytes, or fails its check when read and is written again.
        A block's files are written again."""
        folder = self.folder
        if folder is None:
            return False
        try:
            found = (folder / path).stat().st_size
        except OSError:
            return False
        return size is None or found == size

    def _write(self, path: str, pieces: Sequence[bytes | memoryview], *, sha256: str = "",
               checked: bool = False) -> None:
        """Write a file whole or not at all: under a temporary name beside it, then renamed.
        `checked`: the pieces are memory that may change while they are written (in the
        background): they are copied a piece at a time, and the copy hashed and written, so
        that the file is kept only when it holds the bytes of `sha256` (else
        `writes.Changed`, and no file)."""
        folder = self.folder
        if folder is None:
            if checked:  # one file (a chunk, at most 64 MiB) copied whole, then checked
                copied = b"".join(pieces)
                _check_copy(hashlib.sha256(copied).hexdigest(), sha256)
                pieces = (copied,)
            objects.upload(_block(self.location), self._kind(), path, pieces)
            return
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        try:
            with open(temporary, "wb") as handle:
                if checked:
                    _check_copy(_write_copied(handle, pieces), sha256)
                else:
                    for piece in pieces:
                        handle.write(piece)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def _read_into(self, path: str, into: memoryview) -> str | None:
        """A file's bytes into `into`, hashed as they arrive: their sha256, or None when the
        file is not exactly that long."""
        folder = self.folder
        if folder is None:
            return objects.download_into(_block(self.location), self._kind(), path, into)
        digest = hashlib.sha256()
        with open(folder / path, "rb") as handle:
            offset = 0
            while offset < into.nbytes:
                count = handle.readinto(into[offset:offset + CHUNK])
                if not count:
                    return None
                digest.update(into[offset:offset + count])
                offset += count
            if handle.read(1):
                return None
        return digest.hexdigest()

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

    def discard_damaged(self, refs: dict[str, Ref], readers: Collection[str] = ()
                        ) -> str | None:
        """Check every file against its hash, a kept value's chunks against what its checked
        manifest holds (in a folder, that each is there at its size: its hash is checked when
        it is loaded; a block's are read and hashed): None when all hold what they held when
        stored; else what is wrong, the damaged files removed (from a folder; a block's are
        overwritten when the values are saved again). `readers`: the steps of this process
        that will read these values: the checked bytes are kept for them (verified.py), not
        read again."""
        problems = []
        for path, digest in sorted({(r.path, r.sha256) for r in refs.values()}):
            try:
                self._check(path, digest, readers)
            except Tampered as damaged:
                problems.append(str(damaged))
                if self.folder is not None and damaged.path:
                    (self.folder / damaged.path).unlink(missing_ok=True)
                    writes.forget(self.location, damaged.path)
            except Exception as exc:  # a block's own error: unreachable bucket, no such key
                problems.append(f"{self.where(path)} cannot be read ({type(exc).__name__}: "
                                f"{exc})")
        return "; ".join(problems) or None

    def _check(self, path: str, digest: str, readers: Collection[str]) -> None:
        """One file of an entry (and a kept value's chunks): `Tampered` unless it holds what
        its hash says (a folder's chunks: unless each is there at its size); read whole and
        kept for `readers` when there are any."""
        key = ("file", self.location, path, digest)
        data = verified.kept(key, readers)
        if data is None and (readers or path.endswith(chunks.EXTENSION)):
            data = self.read_checked(path, digest)
            verified.keep(key, data, readers)
        elif data is None:
            self._check_hash(path, digest)
            return
        if not path.endswith(chunks.EXTENSION):
            return
        large = [b for b in self._manifest(path, data).buffers if isinstance(b, chunks.Chunked)]
        folder = self.folder
        if folder is not None:
            # Read once, when loaded: reading every chunk here too would read a large value
            # twice (and one that a cached run never loads, once for nothing).
            for sha, size in sorted({part for buffer in large for part in buffer.chunks}):
                self._check_size(folder, chunks.chunk_path(sha), size)
            return
        if readers:
            for buffer in large:
                if verified.kept(self._buffer_key(buffer), readers) is None:
                    verified.keep(self._buffer_key(buffer), self._read_buffer(buffer, path),
                                  readers)
            return
        parts = [sha for buffer in large for sha, _ in buffer.chunks]
        for failed in self._pool().map(
                lambda sha: _failure(self._check_hash, chunks.chunk_path(sha), sha), parts):
            if failed is not None:
                raise failed

    def _check_size(self, folder: Path, path: str, size: int) -> None:
        """`Tampered` unless the folder's file is there, `size` bytes long."""
        writes.wait_for(self.location, [path])
        try:
            found = (folder / path).stat().st_size
        except FileNotFoundError:
            raise Tampered(f"{self.where(path)} is missing", path) from None
        if found != size:
            raise Tampered(f"{self.where(path)} changed since it was stored (it holds "
                           f"{found} bytes, not {size})", path)

    def _check_hash(self, path: str, digest: str) -> None:
        """`Tampered` unless the file's sha256 is `digest` (read in pieces, never whole)."""
        writes.wait_for(self.location, [path])
        try:
            found = self._hash(path)
        except FileNotFoundError:
            raise Tampered(f"{self.where(path)} is missing", path) from None
        if found != digest:
            raise Tampered(f"{self.where(path)} changed since it was stored", path)

    def _kind(self) -> str:
        """The type of the block the store is in (s3-bucket, ...); "" for a folder."""
        return self.location[len(BLOCK):].partition("/")[0] if self.folder is None else ""

    def _pool(self) -> Any:
        """Threads for a value's files: a folder's, one per core; an object store's, more
        (they wait on the network)."""
        return chunks.workers() if self.folder is not None else objects.transfers()

    def _staging(self) -> str:
        folder = self.folder
        assert folder is not None  # an object store's values are written from memory
        (folder / "values").mkdir(parents=True, exist_ok=True)
        return str(folder / "values")

    def _put(self, local: Path, path: str) -> None:
        folder = self.folder
        assert folder is not None  # an object store's values are written from memory
        target = folder / path
        if target.exists() and not path.startswith("runs/"):
            return  # the same content, saved before
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, target)

    def _hash(self, path: str) -> str:
        folder = self.folder
        if folder is not None:
            return file_hash(folder / path)
        return objects.hash_of(_block(self.location), self._kind(), path)


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


_GIVEN: dict[str, Any] = {}  # blocks Prefect handed to this process's tasks, by location


def _block(location: str) -> Any:
    given = _GIVEN.get(location)
    return given if given is not None else _load_block(location)


@functools.cache
def _load_block(location: str) -> Any:
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


def _unsaved(outputs: dict[str, Any], members: tuple[str, ...], reason: str
             ) -> dict[str, str]:
    return {m: f"it is a {_type_name(outputs[m])}, which neither pickle nor cloudpickle can "
            f"save ({reason}); make it in the step that uses it (tag both cells into one "
            "step)" for m in members}


def _failure(check: Any, *arguments: Any) -> Tampered | None:
    try:
        check(*arguments)
    except Tampered as damaged:
        return damaged
    return None


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


COPIED = 4 << 20  # bytes copied, hashed and written at a time by a checked write


def _write_copied(handle: Any, pieces: Sequence[bytes | memoryview]) -> str:
    """Write pieces of memory that may be changing, through a copy of a few MiB at a time:
    what is hashed is what is written. Their sha256."""
    digest = hashlib.sha256()
    copy = memoryview(bytearray(COPIED))
    for piece in pieces:
        view = memoryview(piece)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        for start in range(0, view.nbytes, COPIED):
            count = min(COPIED, view.nbytes - start)
            copy[:count] = view[start:start + count]
            digest.update(copy[:count])
            handle.write(copy[:count])
    return digest.hexdigest()


def _check_copy(found: str, sha256: str) -> None:
    if found != sha256:
        raise writes.Changed("it changed in memory before it was written: a later step "
                             "changes it in place through another name")


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
