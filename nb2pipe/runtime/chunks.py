"""A value kept for later runs, as files: a manifest and the chunks of its arrays' memory.

    values/AB/ABCD....value   the manifest, named by its own SHA-256: the value's pickle
                              (protocol 5, the arrays' memory out of band), the small buffers,
                              and for each large buffer the SHA-256 and size of its chunks
    chunks/AB/ABCD....        up to 64 MiB of one buffer's memory, as it is, named by its
                              SHA-256

A value one run hands to its next step through an object store has the same form, its
manifest and chunks under the run's folder (runs/RUN/ID/NAME.value, runs/RUN/ID/chunks/).

A chunk is stored once, whatever values hold it: a frame stored again with one more column
shares the chunks of the others, and only the new column's are written. The manifest's hash
(in the step's signed record) proves the chunks' hashes, which prove the chunks: the store
decodes nothing before every byte of it is checked (store.py).

Pickle protocol 5 rather than parquet or Arrow, by measurement: the memory of numbers is
written and read as it is (at disk speed both ways, no encoding, and read back with no copy
into memory the value owns), values come back with their exact types (dtypes, index,
categoricals, extension arrays, numpy views of one array), and no pyarrow is needed. A
pickle's meaning depends on the libraries that read it, so their versions are part of every
cache key (`versions`). This module only packs and unpacks bytes; store.py does the files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import struct
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .values import pickled_out_of_band

MAGIC = b"nb2pipe-value-1\n"
EXTENSION = ".value"
CHUNK = 64 << 20  # bytes of a chunk at most: hashed, written and read side by side
INLINE = 1 << 20  # buffers smaller than this stay in the manifest
ALIGN = 64  # where buffers start in a manifest, so arrays read from it are aligned
_HEAD = struct.Struct("<Q")


@dataclass(frozen=True)
class Piece:
    """A chunk of a buffer: its hash and its memory."""

    sha256: str
    data: memoryview


@dataclass(frozen=True)
class Packed:
    """A value as files: the manifest's pieces (written one after the other) and its hash,
    and the chunks it names."""

    manifest: tuple[bytes | memoryview, ...]
    sha256: str
    chunks: tuple[Piece, ...]


@dataclass(frozen=True)
class Chunked:
    """A large buffer of a manifest: its size and its chunks (hash, size), in order."""

    size: int
    chunks: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Manifest:
    pickle: memoryview
    buffers: tuple[memoryview | Chunked, ...]  # memory of the manifest, or chunks to read


def chunk_path(sha256: str, manifest: str = "") -> str:
    """Where a chunk is: among the chunks of the values kept for later runs (and shared by
    them), or, for a value one run hands to its next step (its manifest under runs/), beside
    its manifest, so that it goes with the run's files."""
    if not manifest or manifest.startswith("values/"):
        return f"chunks/{sha256[:2]}/{sha256}"
    return f"{manifest.rpartition('/')[0]}/chunks/{sha256}"


def manifest_path(sha256: str) -> str:
    return f"values/{sha256[:2]}/{sha256}{EXTENSION}"


def pack(value: Any) -> Packed:
    """The value as a manifest and chunks, every chunk hashed (side by side on the machine's
    cores). Nothing is copied: the chunks are views of the value's own memory, which must
    not change until they are written. Raises what pickle (then cloudpickle) raised."""
    head, buffers = pickled_out_of_band(value)
    pieces = [view[start:start + CHUNK] for view in buffers if view.nbytes >= INLINE
              for start in range(0, view.nbytes, CHUNK)]
    hashes = iter(hash_all(pieces))
    table: list[dict[str, Any]] = []
    data: list[bytes | memoryview] = []
    offset = 0

    def place(piece: bytes | memoryview) -> list[int]:
        nonlocal offset
        at, size = offset, memoryview(piece).nbytes
        data.extend((piece, bytes(-(at + size) % ALIGN)))
        offset = at + size + (-(at + size) % ALIGN)
        return [at, size]

    where = place(head)
    chunks: list[Piece] = []
    for view in buffers:
        if view.nbytes < INLINE:
            table.append({"at": place(view)})
            continue
        parts = []
        for start in range(0, view.nbytes, CHUNK):
            part = view[start:start + CHUNK]
            chunks.append(Piece(next(hashes), part))
            parts.append([chunks[-1].sha256, part.nbytes])
        table.append({"size": view.nbytes, "chunks": parts})
    described = json.dumps({"pickle": where, "buffers": table}, separators=(",", ":")).encode()
    start = len(MAGIC) + _HEAD.size + len(described)
    manifest = (MAGIC, _HEAD.pack(len(described)), described, bytes(-start % ALIGN), *data)
    digest = hashlib.sha256()
    for written in manifest:
        digest.update(written)
    return Packed(manifest, digest.hexdigest(), tuple(chunks))


def parse(data: bytearray) -> Manifest:
    """The manifest in `data` (bytes whose hash was checked); ValueError when it is not one.
    Its small buffers are views of `data`."""
    view = memoryview(data)
    if bytes(view[:len(MAGIC)]) != MAGIC or len(data) < len(MAGIC) + _HEAD.size:
        raise ValueError("not a manifest of values")
    (length,) = _HEAD.unpack_from(view, len(MAGIC))
    start = len(MAGIC) + _HEAD.size + length
    if start > len(data):
        raise ValueError("truncated manifest")
    try:
        table = json.loads(bytes(view[len(MAGIC) + _HEAD.size:start]))
    except ValueError:
        raise ValueError("not a manifest of values") from None
    start += -start % ALIGN

    def region(where: Any) -> memoryview:
        if not (isinstance(where, list) and len(where) == 2 and all(
                isinstance(n, int) and n >= 0 for n in where)) or (
                start + where[0] + where[1] > len(data)):
            raise ValueError("manifest names bytes it does not hold")
        return view[start + where[0]:start + where[0] + where[1]]

    buffers: list[memoryview | Chunked] = []
    for entry in table.get("buffers", []) if isinstance(table, dict) else [None]:
        if isinstance(entry, dict) and "at" in entry:
            buffers.append(region(entry["at"]))
            continue
        if not isinstance(entry, dict):
            raise ValueError("manifest lists chunks it cannot hold")
        parts = entry.get("chunks")
        if not (isinstance(parts, list) and all(
                isinstance(p, list) and len(p) == 2 and _is_hash(p[0]) and isinstance(p[1], int)
                and 0 < p[1] <= CHUNK for p in parts)
                and sum(p[1] for p in parts) == entry.get("size")):
            raise ValueError("manifest lists chunks it cannot hold")
        buffers.append(Chunked(entry["size"], tuple((p[0], p[1]) for p in parts)))
    return Manifest(region(table.get("pickle")), tuple(buffers))


def unpack(manifest: Manifest, filled: dict[int, bytearray]) -> Any:
    """The value, its large buffers (by their place in the manifest) read and checked: its
    arrays keep that memory, and the small buffers' memory of the manifest."""
    buffers = [filled[index] if isinstance(buffer, Chunked) else buffer
               for index, buffer in enumerate(manifest.buffers)]
    return pickle.loads(manifest.pickle, buffers=buffers)


def hash_all(pieces: Sequence[memoryview]) -> list[str]:
    """The SHA-256 of each piece, side by side (hashlib lets go of the GIL)."""
    if len(pieces) < 2:
        return [hashlib.sha256(piece).hexdigest() for piece in pieces]
    return list(workers().map(lambda piece: hashlib.sha256(piece).hexdigest(), pieces))


@functools.cache
def workers() -> ThreadPoolExecutor:
    """Threads for hashing and reading chunks, one per core."""
    return ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1),
                              thread_name_prefix="nb2pipe-chunks")


@functools.cache
def versions() -> str:
    """What a kept value's bytes mean depends on: Python's version and those of the
    libraries whose objects are pickled by reference to their code."""
    from importlib import metadata

    found = [f"python {sys.version_info[0]}.{sys.version_info[1]}"]
    for name in ("numpy", "pandas", "pyarrow", "cloudpickle"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _is_hash(text: object) -> bool:
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef"
                                                              for c in text)
