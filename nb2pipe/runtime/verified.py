"""Bytes of the result storage checked at a step's cache lookup, kept for the steps that read
them, so that no file is read twice.

A cached step's manifests (and an object store's chunks) are read whole and checked against
their hashes when the step is looked up (cache.py): a damaged entry is then a cache miss, and
the step runs again, before anything of it is used. When the steps that read its values run
in this process (threads), they take those checked bytes from here instead of reading the
files again: the last step to read a buffer gets it, any other a copy. The bytes are let go
when every step that reads them was found cached or has started, and at the end of the run.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

_LOCK = threading.Lock()


@dataclass
class _Kept:
    data: bytearray
    waiting: set[str] = field(default_factory=set)  # the steps that may still read it


_KEPT: dict[Hashable, _Kept] = {}


def keep(key: Hashable, data: bytearray, readers: Iterable[str]) -> None:
    """Keep checked bytes for the steps that may read them (none: nothing is kept)."""
    waiting = set(readers)
    if not waiting:
        return
    with _LOCK:
        kept = _KEPT.setdefault(key, _Kept(data))
        kept.waiting |= waiting


def kept(key: Hashable, readers: Iterable[str]) -> bytearray | None:
    """These bytes, when they are here already (checked), kept for `readers` too; else None.
    (To look at: a step takes them with `take`.)"""
    with _LOCK:
        found = _KEPT.get(key)
        if found is None:
            return None
        found.waiting |= set(readers)
        return found.data


def take(key: Hashable, reader: str | None) -> bytearray | None:
    """The checked bytes for `reader` (a step), None when they are not here: the bytes
    themselves when no other step waits for them, else a copy."""
    with _LOCK:
        found = _KEPT.get(key)
        if found is None:
            return None
        found.waiting.discard(reader or "")
        if found.waiting:
            return bytearray(found.data)
        del _KEPT[key]
        return found.data


def passed(reader: str) -> None:
    """The step `reader` was found cached, or has read its inputs: it takes nothing more."""
    with _LOCK:
        for key in [k for k, found in _KEPT.items() if reader in found.waiting]:
            _KEPT[key].waiting.discard(reader)
            if not _KEPT[key].waiting:
                del _KEPT[key]


def forget() -> None:
    """The run ended: whatever no step took is let go."""
    with _LOCK:
        _KEPT.clear()
