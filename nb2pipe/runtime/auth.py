"""The storage key: what proves that a step's record in the result storage was written here.

A result storage may be shared (a bucket several workers use): whatever is read back from it
is data until it is proven to be ours, and never unpickled before. Each step's record is signed
with an HMAC (SHA-256) under a key that does not live in the storage; the record lists the
SHA-256 of every file of values, so a file is proven by the record that names it and by its
own bytes, hashed as they are read.

The key, the first of:

    NB2PIPE_STORAGE_KEY         the secret itself (at least 32 characters), e.g. set in a
                                deployment's environment
    NB2PIPE_STORAGE_KEY_BLOCK   the name of a Prefect Secret block holding it
    storage.key                 in the user's configuration folder for nb2pipe
                                (NB2PIPE_CONFIG_DIR, else $XDG_CONFIG_HOME/nb2pipe, else
                                ~/.config/nb2pipe): made on first use, readable by its owner
                                only (0600); it must not lie inside the result storage

Machines that share a storage need the same key (the variable or the Secret block): a record
signed under another key is not trusted, and its step runs again.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import stat
import uuid
from pathlib import Path
from typing import Any

KEY_VARIABLE = "NB2PIPE_STORAGE_KEY"
KEY_BLOCK_VARIABLE = "NB2PIPE_STORAGE_KEY_BLOCK"
KEY_FILE = "storage.key"
MIN_LENGTH = 32  # characters of a key given by hand: 128 bits and more in hexadecimal


class StorageKeyError(RuntimeError):
    """No usable storage key: says where the key was looked for and what to do."""


def sign(kind: str, payload: bytes, key: bytes | None = None) -> str:
    """The HMAC-SHA256 of `payload`, as hex; `kind` keeps a signature of one kind of thing
    from being taken for another's."""
    return hmac.new(key or storage_key(), kind.encode() + b"\0" + payload,
                    hashlib.sha256).hexdigest()


def verify(kind: str, payload: bytes, signature: object, key: bytes | None = None) -> bool:
    """Whether `signature` is `payload`'s (compared in constant time)."""
    return isinstance(signature, str) and hmac.compare_digest(
        sign(kind, payload, key), signature)


def storage_key() -> bytes:
    """The key, found where the module's docstring says (looked up once per setting)."""
    return _key(os.environ.get(KEY_VARIABLE), os.environ.get(KEY_BLOCK_VARIABLE),
                str(key_file()))


def key_file() -> Path:
    """Where a local run's key is kept."""
    configured = os.environ.get("NB2PIPE_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser() / KEY_FILE
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "nb2pipe" / KEY_FILE


def check_outside(folder: Path | None) -> None:
    """Refuse a key file kept inside the result storage folder: whoever can write the
    storage could read it there, and sign what they planted."""
    if folder is None or os.environ.get(KEY_VARIABLE) or os.environ.get(KEY_BLOCK_VARIABLE):
        return
    path = key_file().expanduser().absolute()
    storage = folder.expanduser().absolute()
    if path.is_relative_to(storage) or Path(os.path.realpath(path)).is_relative_to(
            os.path.realpath(storage)):
        raise StorageKeyError(
            f"the storage key {path} lies inside the result storage {storage}: keep it "
            f"elsewhere (NB2PIPE_CONFIG_DIR) or set {KEY_VARIABLE}")


@functools.cache
def _key(given: str | None, block: str | None, path: str) -> bytes:
    if given:
        return _checked(given.strip(), KEY_VARIABLE)
    if block:
        return _checked(_secret(block), f"the Secret block '{block}' ({KEY_BLOCK_VARIABLE})")
    return _checked(_local_key(Path(path)), path)


def _checked(text: str, where: str) -> bytes:
    if len(text) < MIN_LENGTH:
        raise StorageKeyError(
            f"the storage key in {where} is too short ({len(text)} characters, at least "
            f"{MIN_LENGTH}): make one with python -c 'import secrets; "
            f"print(secrets.token_hex(32))'")
    return text.encode()


def _secret(name: str) -> str:
    try:
        from prefect.blocks.system import Secret

        block: Any = Secret.load(name, _sync=True)  # type: ignore[call-arg]
        value = block.get()
    except Exception as exc:  # no such block, no API: say which
        raise StorageKeyError(f"cannot read the storage key from the Prefect Secret block "
                              f"'{name}' ({KEY_BLOCK_VARIABLE}): {exc}") from exc
    if not isinstance(value, str):
        raise StorageKeyError(f"the Prefect Secret block '{name}' ({KEY_BLOCK_VARIABLE}) "
                              "must hold text")
    return value.strip()


def _local_key(path: Path) -> str:
    """The key in `path`, made there (0600) when there is none: written whole to a file of
    its own, then linked into place, so two processes starting at once agree on one key."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    draft = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(draft, path)  # fails if another process was first: its key is the key
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageKeyError(f"cannot make the storage key {path} ({exc}): set "
                              f"{KEY_VARIABLE}, or NB2PIPE_CONFIG_DIR to a folder of "
                              "your own") from exc
    finally:
        draft.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> str:
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "r", encoding="ascii") as handle:
        found = os.fstat(handle.fileno())
        if not stat.S_ISREG(found.st_mode):
            raise StorageKeyError(f"the storage key {path} is not a regular file")
        if os.name == "posix" and found.st_mode & 0o077:
            raise StorageKeyError(f"the storage key {path} can be read by other users: "
                                  f"chmod 600 {path}")
        return handle.read().strip()
