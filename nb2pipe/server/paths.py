"""Request paths -> files inside the server root; anything else is refused before any work."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class PathError(Exception):
    """A path the server will not touch: `status` is the HTTP code, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def confine(root: str | Path, api_path: object, *, what: str = "path") -> Path:
    """The absolute path of `api_path` (relative to the root, as the Contents API writes it).

    Refuses `..`, absolute paths outside the root and symlinks that lead out of it.
    """
    if not isinstance(api_path, str) or not api_path.strip():
        raise PathError(400, f"no {what} given")
    if "\x00" in api_path:
        raise PathError(400, f"the {what} contains a NUL character")
    posix = PurePosixPath(api_path.replace("\\", "/"))
    if ".." in posix.parts:
        raise PathError(403, f"{api_path}: '..' is not allowed in the {what}")
    base = Path(root).resolve()
    candidate = Path(posix) if posix.is_absolute() else base / posix
    full = candidate.resolve()
    if not full.is_relative_to(base):
        raise PathError(403, f"{api_path}: is outside the server root")
    return full


def notebook_file(root: str | Path, api_path: object) -> Path:
    """An existing regular .ipynb file inside the root (a FIFO or device would block the
    reader, so only regular files are notebooks)."""
    full = confine(root, api_path, what="notebook path")
    shown = relative(root, full)
    if not full.exists():
        raise PathError(404, f"{shown}: no such file")
    if full.is_dir():
        raise PathError(400, f"{shown}: is a directory, not a notebook")
    if full.suffix != ".ipynb":
        raise PathError(400, f"{shown}: is not a notebook (.ipynb) file")
    if not full.is_file():
        raise PathError(400, f"{shown}: is not a regular file")
    return full


def output_dir(root: str | Path, api_path: object) -> Path:
    """A folder inside the root to write a project into (it need not exist yet)."""
    full = confine(root, api_path, what="output folder")
    if full.exists() and not full.is_dir():
        raise PathError(400, f"{relative(root, full)}: exists and is not a folder")
    return full


def relative(root: str | Path, full: Path) -> str:
    """The Contents API path of a file inside the root ('' for the root itself)."""
    rel = full.relative_to(Path(root).resolve()).as_posix()
    return "" if rel == "." else rel
