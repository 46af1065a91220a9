"""Reading a file from a folder that someone else filled: never blocking, regular files only.

A project folder, a notebook's folder or a staging folder can hold, under any name nb2pipe
reads, a named pipe (reading it waits forever for a writer), a device (/dev/zero never ends), a
socket, or a symbolic link to any of them; git delivers links, an archive delivers pipes. Every
such file is read here: its type is looked at before it is opened (a device is never opened),
it is opened without blocking, and its type is checked again on the open file, which catches
one swapped in between.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
          (stat.S_ISLNK, "a symbolic link"))


class NotAFile(OSError):
    """The path is there, but is not a regular file (or, where links are refused, is a link).
    `str()` is one line naming the path and what it is."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        super().__init__(errno.EINVAL, f"is {what}, not a regular file", os.fspath(path))
        self.what = what

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def kind(mode: int) -> str:
    """What a file of this st_mode is, for a message: 'a named pipe (FIFO)', 'a folder', ..."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_bytes(path: str | os.PathLike[str], *, follow_links: bool = True) -> bytes:
    """The content of the regular file `path`. Raises FileNotFoundError when it is missing,
    NotAFile when it is something else (with `follow_links=False`, a link too), and any
    other OSError the system gives."""
    status = os.stat(path) if follow_links else os.lstat(path)
    if not stat.S_ISREG(status.st_mode):
        raise NotAFile(path, kind(status.st_mode))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        handle = os.open(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # became a link, or a socket, meanwhile
            raise NotAFile(path, kind(os.lstat(path).st_mode)) from None
        raise
    with open(handle, "rb") as file:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            raise NotAFile(path, kind(mode))
        return file.read()


def read_text(path: str | os.PathLike[str], *, follow_links: bool = True) -> str:
    """`read_bytes` decoded as UTF-8 (UnicodeDecodeError, a ValueError, when it is not)."""
    return read_bytes(path, follow_links=follow_links).decode("utf-8")


def is_regular(path: Path) -> bool:
    """Whether `path` itself (not a link's target) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
