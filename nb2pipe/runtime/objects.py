"""Files of the store in an object store's block (Prefect's s3-bucket, gcs-bucket, Azure
containers): written from memory and read into memory as streams, no copy of them on disk.

A large value is not one large object but its chunks, each an object of at most 64 MiB
(chunks.py), written and read side by side, TRANSFERS at a time, each in one request. Object
stores serve many requests at once and give each connection a share of their bandwidth;
simple stand-ins for them (moto's server) read a whole object again for every ranged request
and join a multipart upload's parts in memory, so many small ranges or parts of one large
object cost them the object's size each time (measured: a 500 MB object read in 8 MB ranges
took 43 s where one request took 1.5 s).
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TRANSFERS = 8  # objects written or read at once
ONE_REQUEST = 256 << 20  # objects up to this size go in one request


def _s3_options() -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig

    # boto3 by itself splits an object over 8 MB into 8 MB parts (ranged GETs, multipart
    # uploads): a chunk goes whole; a larger object (a manifest holding a big pickle) in
    # parts of 64 MiB.
    return {"Config": TransferConfig(multipart_threshold=ONE_REQUEST,
                                     multipart_chunksize=64 << 20, max_concurrency=4)}


# What each kind of block is told when it uploads or downloads a file object, by block type.
OPTIONS: dict[str, Callable[[], dict[str, Any]]] = {"s3-bucket": _s3_options}


@functools.cache
def _options(kind: str) -> dict[str, Any]:
    make = OPTIONS.get(kind)
    return make() if make is not None else {}


def streams(block: Any) -> bool:
    """Whether the block moves files through file objects (an object store's block), rather
    than whole in memory as bytes."""
    return hasattr(block, "upload_from_file_object") and hasattr(
        block, "download_object_to_file_object")


def upload(block: Any, kind: str, path: str, pieces: Sequence[bytes | memoryview]) -> None:
    """Write pieces of memory as one object, streamed from them (no copy joined)."""
    if not streams(block):
        block.write_path(path, b"".join(pieces))
        return
    block.upload_from_file_object(PiecesReader(pieces), path, **_options(kind))


def download_into(block: Any, kind: str, path: str, into: memoryview) -> str | None:
    """An object's bytes into `into`, hashed as they arrive: their sha256, or None when the
    object is not exactly that long."""
    digest = hashlib.sha256()
    if not streams(block):
        data = block.read_path(path)
        if len(data) != into.nbytes:
            return None
        into[:] = data
        digest.update(into)
        return digest.hexdigest()
    writer = IntoWriter(into, digest)
    block.download_object_to_file_object(path, writer, **_options(kind))
    return digest.hexdigest() if writer.offset == into.nbytes else None


def download(block: Any, kind: str, path: str) -> tuple[bytearray, str]:
    """An object's bytes, read once into memory and hashed as they arrive, with their sha256."""
    if not streams(block):
        data = bytearray(block.read_path(path))
        return data, hashlib.sha256(data).hexdigest()
    writer = GrowingWriter()
    block.download_object_to_file_object(path, writer, **_options(kind))
    return writer.data, writer.digest.hexdigest()


def hash_of(block: Any, kind: str, path: str) -> str:
    """An object's sha256, its bytes hashed as they arrive and not kept."""
    if not streams(block):
        return hashlib.sha256(block.read_path(path)).hexdigest()
    writer = HashingWriter()
    block.download_object_to_file_object(path, writer, **_options(kind))
    return writer.digest.hexdigest()


@functools.cache
def transfers() -> ThreadPoolExecutor:
    """Threads for objects written or read side by side (waiting on the network, mostly)."""
    return ThreadPoolExecutor(max_workers=TRANSFERS, thread_name_prefix="nb2pipe-objects")


class PiecesReader(io.RawIOBase):
    """Pieces of memory read as one file, with no copy of them joined. Seekable, so that a
    client sends it as it is (boto3 copies what it cannot seek into parts in memory) and can
    send it again when a request is retried."""

    def __init__(self, pieces: Sequence[bytes | memoryview]) -> None:
        self._pieces = [memoryview(p).cast("B") for p in pieces]
        self._starts = []
        total = 0
        for piece in self._pieces:
            self._starts.append(total)
            total += piece.nbytes
        self._size = total
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, into: Any) -> int:
        target = memoryview(into).cast("B")
        count = 0
        index = self._index()
        while count < target.nbytes and index < len(self._pieces):
            piece, start = self._pieces[index], self._starts[index]
            offset = self._position - start
            take = min(target.nbytes - count, piece.nbytes - offset)
            target[count:count + take] = piece[offset:offset + take]
            count += take
            self._position += take
            index += 1
        return count

    def _index(self) -> int:
        """The piece holding the current position (len(pieces) at the end)."""
        for index in range(len(self._pieces)):
            if self._starts[index] + self._pieces[index].nbytes > self._position:
                return index
        return len(self._pieces)


class IntoWriter(io.RawIOBase):
    """A file a block downloads into: the bytes go into `into` and are hashed as they arrive;
    `offset` counts them (more than `into` holds: not the file expected)."""

    def __init__(self, into: memoryview, digest: Any) -> None:
        self._into, self._digest, self.offset = into, digest, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = memoryview(data).cast("B")
        end = self.offset + piece.nbytes
        if end <= self._into.nbytes:
            self._into[self.offset:end] = piece
            self._digest.update(piece)
        self.offset = end
        return piece.nbytes


class GrowingWriter(io.RawIOBase):
    """A file a block downloads into when its size is not known: memory that grows, hashed as
    it arrives."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = memoryview(data).cast("B")
        self.data += piece
        self.digest.update(piece)
        return piece.nbytes


class HashingWriter(io.RawIOBase):
    """A file a block downloads into that only hashes what arrives."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = memoryview(data).cast("B")
        self.digest.update(piece)
        return piece.nbytes
