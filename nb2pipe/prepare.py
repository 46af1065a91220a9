"""A notebook or a project folder -> a project ready to run: `nb2pipe run`, `verify` and
`deploy` start here. A notebook is converted (into the user's cache unless told where); a
folder must be a project nb2pipe wrote."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb2pipe.exceptions import Nb2pipeError
from nb2pipe.execute.param_flags import ParameterArgs, ParameterError, check, collect
from nb2pipe.runtime import PACKAGE
from nb2pipe.runtime.manifest import Manifest, ManifestError, NoManifest, load


class RunError(Nb2pipeError):
    """The run could not start: the message is one line saying why."""


class NotebookErrors(RunError):
    """The notebook has errors (listed in the message, one per line): nothing ran. Exit code 1,
    as check and convert give for the same notebook."""

    exit_code = 1
    label = ""
    one_line = False


@dataclass(frozen=True)
class Prepared:
    project: Path
    notebook: Path | None
    manifest: Manifest
    converted: bool  # the project was written just now from the notebook


def prepare(target: str | Path, split: str = "tags", output: str | Path | None = None,
            cache: Path | None = None) -> Prepared:
    """A project folder to run: `target` itself, or the notebook converted into the cache
    folder (`cache`, default the user's) or into `output`."""
    from nb2pipe.convert import ConvertError, convert  # a project folder needs no converting

    target = Path(target)
    if target.is_dir():
        try:
            manifest = load(target)
        except NoManifest:
            raise RunError(f"{target}: not an nb2pipe project (no pipeline.json); "
                           "give a notebook or a folder written by nb2pipe convert") from None
        except ManifestError as exc:
            raise RunError(str(exc)) from None
        if not (target / PACKAGE).is_dir():
            raise RunError(f"{target}: written by an older nb2pipe (no {PACKAGE}/); "
                           f"convert the notebook again: nb2pipe convert NOTEBOOK -o {target}")
        _regular_files(target, manifest)
        notebook = (target / manifest.notebook).resolve()
        return Prepared(target, notebook if notebook.exists() else None, manifest, False)
    if target.suffix != ".ipynb" and not target.exists():
        raise RunError(f"{target}: no such notebook or project folder")
    project = Path(output) if output else _cached_project(target, cache)
    try:
        result = convert(target, project, split=split, force=output is None)
    except ConvertError as exc:
        raise RunError(str(exc)) from None
    if not result.ok:
        errors = [d for d in result.diagnostics if d.severity.value == "error"]
        from nb2pipe.graph_text import diagnostic_text

        raise NotebookErrors("\n".join([*(diagnostic_text(d) for d in errors),
                                        f"{target}: has errors; nothing was run"]))
    try:
        manifest = load(project)
    except ManifestError as exc:  # written just now: only a file swapped in meanwhile
        raise RunError(str(exc)) from None
    return Prepared(project, target.resolve(), manifest, True)


def _regular_files(project: Path, manifest: Manifest) -> None:
    """Refuse a project whose files (flow.py, steps.py, ... as pipeline.json lists them) are
    pipes or devices: importing or reading one would wait forever."""
    import os
    import stat

    from nb2pipe.folder import is_relative_name
    from nb2pipe.runtime.files import kind

    for path in sorted(manifest.files):
        try:
            mode = os.stat(project / path).st_mode if is_relative_name(path) else None
        except OSError:  # missing: Python says so when it imports it
            continue
        if mode is not None and not stat.S_ISREG(mode):
            raise RunError(f"{project / path}: is {kind(mode)}, not a regular file; "
                           "convert the notebook again (with --force) to replace it")


def _cached_project(notebook: Path, cache: Path | None) -> Path:
    from nb2pipe.runtime.store import cache_folder

    digest = hashlib.sha256(str(notebook.resolve()).encode()).hexdigest()[:12]
    return (cache or cache_folder()) / "projects" / f"{notebook.stem}-{digest}"


def parameters(prepared: Prepared, flags: ParameterArgs) -> dict[str, Any]:
    """The flags' values, checked against the notebook's parameter types. Raises ParameterError."""
    try:
        values = collect(flags)
    except OSError as exc:
        raise ParameterError(f"cannot read parameters file: {exc}") from None
    return check(values, {p.name: p.type for p in prepared.manifest.parameters}, flags)
