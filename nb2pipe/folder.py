"""Stage 6, the disk side of writing a project: paths that stay in the folder, and the journaled
commit through the staging folder, with its recovery (writer.py decides what to write).

Nothing is written outside the folder: paths from an existing pipeline.json are untrusted
(absolute paths, `..` and links leading out of the folder are refused), and so is a symlinked
sub-folder. A write is journaled in the folder, so a process killed at any point leaves either
the old project or, once the next write has finished the journal, the new one; files that are
not nb2pipe's are never touched:

1. `.nb2pipe-staging/` is made, its mark first (below), then a `.gitignore` that keeps the folder
   out of git (`*`: git ignores it whatever the project's own .gitignore says);
2. the new files are written under `new/` and synced;
3. `journal.json` (the files to replace and to remove) is written and renamed into place: from
   here on the write is committed;
4. each file is replaced by a rename (the one it replaces kept under `old/` for a rollback if a
   rename fails), and each removed file moved to `old/`;
5. the journal is deleted, then the staging folder, its mark last.

The next write first finishes a committed journal (each rename is idempotent) or deletes
staging that never committed. A lock on the folder keeps two writers apart.

Trust. A staging folder is a list of files to move, and a folder can come from anyone: git
checks out folders and symbolic links, an archive unpacks anything. So nb2pipe follows only a
staging folder that it made, on this machine, in this very place:
- its mark is an empty file named `origin-DEVICE-INODE`, the device and inode numbers of the
  staging folder itself, and its journal records the mark's inode number and the time, to the
  nanosecond, the mark was made (its change time, which nothing but the system sets). A git
  checkout, an unpacked archive or a copy makes new folders and files, whose numbers and times
  nobody can know beforehand: a staging folder that came in a repository or was copied never
  matches;
- nothing in it is followed through a link: everything under it is looked at with lstat, and a
  link, or anything but a folder or a regular file, makes it untrusted.
An untrusted staging folder is left exactly as it is; the write stops with a message saying so
(delete the folder to go on), and `convert --check` reports it the same way. An empty staging
folder (a write killed before it made its mark) holds nothing to follow and is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nb2pipe.exceptions import Nb2pipeError
from nb2pipe.runtime.files import NotAFile, is_regular, kind, read_bytes

STAGING = ".nb2pipe-staging"  # inside the project folder, so nothing is written outside it
_JOURNAL = "journal.json"
_MARK = "origin-"
_IGNORE = b"# nb2pipe's staging folder, while it writes this project: never committed\n*\n"


class WriteError(Nb2pipeError):
    """The project cannot be written; the message says why and which files."""


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# --- paths: nothing outside the folder ----------------------------------------------------

def is_relative_name(path: object) -> bool:
    """A plain relative path inside a folder: no absolute path, `..`, `.`, empty part,
    backslash, NUL, or our own staging folder."""
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        return False
    parts = path.split("/")
    return (not PurePosixPath(path).is_absolute() and parts[0] != STAGING
            and all(part not in ("", ".", "..") for part in parts))


def stays_inside(directory: Path, target: Path) -> bool:
    """Whether `target`, its links followed, is inside `directory` (itself followed)."""
    return target.resolve().is_relative_to(directory.resolve())


def target_of(directory: Path, path: str) -> Path:
    """The file `path` names in the project. Raises WriteError when a link on the way (a
    symlinked sub-folder, or the file itself) leads out of the project folder."""
    target = directory / path
    if not stays_inside(directory, target):
        raise WriteError(
            f"{target}: leads outside {directory} through a symbolic link "
            f"(to {target.resolve()}); nb2pipe writes only inside the project folder: "
            "replace the link by a real folder, or choose another output folder")
    return target


def read_file(target: Path) -> bytes | None:
    """A file's content; None for what is not a regular file (missing, a folder, a link, a
    pipe): read without blocking, never through a link."""
    try:
        return read_bytes(target, follow_links=False)
    except (FileNotFoundError, NotADirectoryError, NotAFile):
        return None


def digest_of(target: Path) -> str | None:
    """The hash of a regular file's content; None when there is none (or not a regular one)."""
    content = read_file(target)
    return None if content is None else digest(content)


def prune(directory: Path, paths: list[str]) -> None:
    """Remove the folders that removed files leave empty (never the project folder itself)."""
    for path in paths:
        folder = (directory / path).parent
        while folder != directory and folder.is_relative_to(directory):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent


@contextlib.contextmanager
def lock(directory: Path) -> Iterator[None]:
    """One writer per folder at a time (the lock goes with the process, even when killed)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks here: writers must not overlap
        yield
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WriteError(f"{directory}: another nb2pipe is writing this folder; "
                             "try again when it has finished") from None
        yield
    finally:
        os.close(handle)


# --- the staging folder: whose it is, what it holds -----------------------------------------

Entries = tuple[tuple[str, str | None], ...]  # (path, hash of what the file held when planned)


@dataclass(frozen=True)
class Staging:
    folder: Path
    state: str  # none, empty, unfinished (ours, never committed), committed (ours), foreign
    reason: str = ""  # foreign: why it is not followed
    mark: str = ""
    write: Entries = ()
    remove: Entries = ()


def inspect(directory: Path) -> Staging:
    """The project's staging folder: absent, ours (committed or not), or foreign, and why."""
    folder = directory / STAGING
    try:
        found = os.lstat(folder)
        names = set(os.listdir(folder)) if stat.S_ISDIR(found.st_mode) else set()
    except FileNotFoundError:
        return Staging(folder, "none")
    if not stat.S_ISDIR(found.st_mode):
        return Staging(folder, "foreign", f"it is {kind(found.st_mode)}")
    if not names:
        return Staging(folder, "empty")
    mark = f"{_MARK}{found.st_dev}-{found.st_ino}"
    if mark not in names or not is_regular(folder / mark):
        return Staging(folder, "foreign", "it has no mark of this folder: it came from a "
                       "repository, an archive or a copy")
    odd = _not_plain(folder)
    if odd:
        return Staging(folder, "foreign", odd)
    if _JOURNAL not in names:
        return Staging(folder, "unfinished", mark=mark)
    try:
        document = json.loads(read_bytes(folder / _JOURNAL, follow_links=False))
    except NotAFile as exc:
        return Staging(folder, "foreign", f"its {_JOURNAL} is {exc.what}")
    except (OSError, ValueError, RecursionError):
        return Staging(folder, "foreign", f"its {_JOURNAL} cannot be read")
    marked = os.lstat(folder / mark)
    if not isinstance(document, dict) or document.get("origin") != [
            marked.st_ino, marked.st_ctime_ns]:
        return Staging(folder, "foreign", f"its {_JOURNAL} was not written beside its mark")
    write, remove = _entries(document.get("write")), _entries(document.get("remove"))
    if write is None or remove is None:
        return Staging(folder, "foreign", f"its {_JOURNAL} is not one nb2pipe writes")
    return Staging(folder, "committed", mark=mark, write=write, remove=remove)


def _entries(value: object) -> Entries | None:
    if not isinstance(value, list):
        return None
    entries = []
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 2 and is_relative_name(entry[0])
                and (entry[1] is None or isinstance(entry[1], str))):
            return None
        entries.append((entry[0], entry[1]))
    return tuple(entries)


def _not_plain(folder: Path) -> str | None:
    """What in `folder`, looked at with lstat, is neither a real folder nor a regular file (a
    link, a pipe); None when everything is."""
    pending = [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append(Path(entry.path))
                elif not stat.S_ISREG(mode):
                    name = Path(entry.path).relative_to(folder).as_posix()
                    return f"{name} in it is {kind(mode)}"
    return None


def refusal(staging: Staging) -> str:
    """Why a foreign staging folder stops every write, and what to do (after its name)."""
    return (f"not made by nb2pipe on this machine ({staging.reason}); nb2pipe follows nothing "
            "in it and writes nothing while it is there: delete that folder (from the "
            "repository too, if it came in one) and convert again")


# --- committing a write, and finishing one a killed process left ---------------------------

def commit(directory: Path, files: dict[str, bytes], removed: list[str]) -> None:
    """Replace `files` and remove `removed` in `directory`, through the journal."""
    if not files and not removed:
        return
    folder = directory / STAGING
    folder.mkdir(mode=0o700)
    mark = _make_mark(folder)
    try:
        _write_synced(folder / ".gitignore", _IGNORE)
        for path, content in files.items():
            _write_synced(folder / "new" / path, content)
        # What each file holds now: recovery replaces only what is still that, so an edit made
        # after a killed write is not lost when the write is finished.
        found = {path: digest_of(directory / path) for path in [*files, *removed]}
        marked = os.lstat(folder / mark)
        journal = {"origin": [marked.st_ino, marked.st_ctime_ns],
                   "write": [[p, found[p]] for p in sorted(files)],
                   "remove": [[p, found[p]] for p in sorted(removed)]}
        _write_synced(folder / (_JOURNAL + ".part"), json.dumps(journal).encode())
        os.replace(folder / (_JOURNAL + ".part"), folder / _JOURNAL)  # committed
        _sync_folder(folder)
    except BaseException:
        _discard(folder, mark)
        raise
    done: list[tuple[Path, bool]] = []  # (target, whether a file was there before)
    try:
        for path in sorted(files):
            target = directory / path
            existed = target.exists() or target.is_symlink()
            if existed:
                _keep(target, folder / "old" / path)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder / "new" / path, target)
            done.append((target, existed))
        for path in sorted(removed):
            target = directory / path
            _move(target, folder / "old" / path)
            done.append((target, True))
    except OSError:
        _roll_back(directory, folder, mark, done)
        raise
    _finish(directory, folder, mark, removed)


def recover(directory: Path) -> None:
    """Finish a write a killed process left: roll its journal forward, or discard staging that
    never committed. A file changed since the write was planned is left as it is. Raises
    WriteError, touching nothing, for a staging folder that is not ours."""
    staging = inspect(directory)
    if staging.state == "foreign":
        raise WriteError(f"{staging.folder}: {refusal(staging)}")
    if staging.state == "empty":
        with contextlib.suppress(OSError):
            staging.folder.rmdir()
    elif staging.state == "unfinished":
        _discard(staging.folder, staging.mark)
    elif staging.state == "committed":
        # Every target checked before anything moves: a refusal leaves the folder as it was.
        targets = {path: target_of(directory, path)
                   for path, _ in (*staging.write, *staging.remove)}
        for path, expected in staging.write:
            source = staging.folder / "new" / path
            if is_regular(source) and digest_of(targets[path]) == expected:
                targets[path].parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, targets[path])
        for path, expected in staging.remove:
            if expected is not None and digest_of(targets[path]) == expected:
                _move(targets[path], staging.folder / "old" / path)
        _finish(directory, staging.folder, staging.mark, [path for path, _ in staging.remove])


def _make_mark(folder: Path) -> str:
    """The staging folder's mark: an empty file named after the folder's own identity."""
    found = os.lstat(folder)
    mark = f"{_MARK}{found.st_dev}-{found.st_ino}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    os.close(os.open(folder / mark, flags, 0o600))
    return mark


def _keep(target: Path, backup: Path) -> None:
    """A copy of the file about to be replaced, for a rollback: a hard link when possible."""
    backup.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError:
        shutil.copy2(target, backup, follow_symlinks=False)


def _move(target: Path, backup: Path) -> None:
    backup.parent.mkdir(parents=True, exist_ok=True)
    os.replace(target, backup)


def _roll_back(directory: Path, folder: Path, mark: str, done: list[tuple[Path, bool]]) -> None:
    """A rename failed (full disk, a read-only file): put back what was replaced or removed."""
    for target, existed in reversed(done):
        backup = folder / "old" / target.relative_to(directory)
        with contextlib.suppress(OSError):
            if existed:
                os.replace(backup, target)
            else:
                target.unlink()
    (folder / _JOURNAL).unlink(missing_ok=True)
    _discard(folder, mark)
    prune(directory, [t.relative_to(directory).as_posix() for t, existed in done if not existed])


def _finish(directory: Path, folder: Path, mark: str, removed: list[str]) -> None:
    (folder / _JOURNAL).unlink()  # the write is complete: what is left is rubbish
    _discard(folder, mark)
    prune(directory, removed)


def _discard(folder: Path, mark: str) -> None:
    """Delete a staging folder of ours, its mark last: a process killed meanwhile leaves a
    folder that is still recognised as ours (or an empty one). Links in it are removed, never
    followed (shutil.rmtree does not follow them)."""
    for name in os.listdir(folder):
        if name == mark:
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(folder / name).st_mode):
                shutil.rmtree(folder / name)
            else:
                (folder / name).unlink()
    left = os.listdir(folder)
    if left == [mark]:
        (folder / mark).unlink()
        left = []
    if not left:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _write_synced(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
