"""The artifact store: each step run's outputs on disk, keyed by content.

objects/KEY/ holds one file per output value (type-dispatched: parquet, .npy, pickle) and an
index.json written last, so a folder with an index is complete. Values that share objects
(`frames` holding `train`) are pickled together into one file, so they still share them when
read back in another process. KEY is a hash of the step's
code, the parameters it reads and the content hashes of its inputs; each value's content hash is
the hash of its file, never of a pickled object in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from nb2pipe.runtime import values


class Ref(NamedTuple):
    path: str
    sha256: str  # of the file's bytes
    member: str = ""  # a value in a file of values that share objects


def default_root() -> Path:
    configured = os.environ.get("NB2PIPE_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nb2pipe"


class Store:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.objects = self.root / "objects"

    def lookup(self, key: str) -> dict[str, Ref] | None:
        index = self.objects / key / "index.json"
        try:
            entries = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return self._refs(key, entries)

    def _refs(self, key: str, entries: dict[str, dict[str, str]]) -> dict[str, Ref]:
        return {name: Ref(str(self.objects / key / e["file"]), e["sha256"], e.get("member", ""))
                for name, e in entries.items()}

    def save(self, key: str, outputs: dict[str, Any]) -> dict[str, Ref]:
        """Write outputs under `key` (atomically: a temp folder renamed into place)."""
        self.objects.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.objects))
        try:
            index: dict[str, dict[str, str]] = {}
            together = shared_groups(outputs)
            alone = [(name,) for name in sorted(set(outputs).difference(*together))]
            for members in alone + together:
                shared = len(members) > 1  # values sharing objects: pickled together
                name = f"{members[0]}.shared" if shared else members[0]
                value = {m: outputs[m] for m in members} if shared else outputs[members[0]]
                written, digest = values.dump_hashed(str(staging), name, value)
                digest = digest or file_hash(staging / written)
                for member in members:
                    index[member] = {"file": written, "sha256": digest,
                                     **({"member": member} if shared else {})}
            (staging / "index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
            target = self.objects / key
            if target.exists():  # saved meanwhile by another run: same key, same content
                shutil.rmtree(staging, ignore_errors=True)
                found = self.lookup(key)
                assert found is not None
                return found
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self._refs(key, index)

    def prune_runs(self, prefix: str, older_than: float = 24 * 3600) -> None:
        """Remove objects that only served one run (not cache entries), once they are old."""
        if not self.objects.is_dir():
            return
        cutoff = time.time() - older_than
        for folder in self.objects.glob(f"{prefix}*"):
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue


def load(ref: Ref) -> Any:
    return load_all({"value": ref})["value"]


def load_all(refs: dict[str, Ref]) -> dict[str, Any]:
    """Values by name; values saved together are read once, so they share objects again."""
    files: dict[str, Any] = {}
    found = {}
    for name, ref in refs.items():
        if ref.path not in files:
            files[ref.path] = values.load_file(ref.path)
        loaded = files[ref.path]
        found[name] = loaded[ref.member] if ref.member else loaded
    return found


def shared_groups(outputs: dict[str, Any]) -> list[tuple[str, ...]]:
    """Names whose values share an object (one holds another, or an element of it), grouped."""
    owners: dict[int, str] = {}
    parent = {name: name for name in outputs}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for name in sorted(outputs):
        for identity in _identities(outputs[name]):
            other = owners.setdefault(identity, name)
            if root(other) != root(name):
                parent[root(name)] = root(other)
    groups: dict[str, list[str]] = {}
    for name in sorted(outputs):
        groups.setdefault(root(name), []).append(name)
    return [tuple(members) for members in groups.values() if len(members) > 1]


_ATOMS = (type(None), bool, int, float, complex, str, bytes)


def _identities(value: Any, depth: int = 3) -> set[int]:
    """The ids of a value and of what its containers hold (a few levels down): small
    immutable values, which the interpreter shares freely, do not count."""
    if isinstance(value, _ATOMS):
        return set()
    found = {id(value)}
    if depth and isinstance(value, list | tuple | set | frozenset | dict):
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            found |= _identities(item, depth - 1)
    return found


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(code: str, parameters: dict[str, Any], inputs: dict[str, str]) -> str:
    """Hash of what a step's result depends on: its code, the parameters it reads, and the
    content hashes of its inputs."""
    digest = hashlib.sha256(b"nb2pipe-cache-1\0")
    digest.update(code.encode())
    digest.update(json.dumps(parameters, sort_keys=True, default=repr).encode())
    digest.update(json.dumps(inputs, sort_keys=True).encode())
    return digest.hexdigest()
