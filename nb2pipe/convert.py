"""`nb2pipe convert`: notebook -> a Prefect project folder. The one function the CLI and the
JupyterLab server both call."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nb2pipe.diagnostics import has_errors
from nb2pipe.escape import UnsafeText
from nb2pipe.exceptions import Nb2pipeError
from nb2pipe.generate.project_files import Options
from nb2pipe.model import Diagnostic, Notebook
from nb2pipe.notebook.reader import ReadError
from nb2pipe.notebook.split import SPLIT_MODES


class ConvertError(Nb2pipeError):
    """Conversion stopped before writing anything; the message is one line saying why."""


@dataclass
class ConvertResult:
    output: Path
    diagnostics: tuple[Diagnostic, ...]
    ok: bool  # False: the notebook has errors and nothing was written
    written: list[str] = field(default_factory=list)  # paths relative to output
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # --check: one reason per stale file
    notebook: Notebook | None = None  # as read, to place the diagnostics in the file
    files: dict[str, bytes] = field(default_factory=dict)  # --check: what would be written


def default_output(notebook: Path) -> Path:
    return notebook.parent / f"{notebook.stem}_pipeline"


def convert(
    notebook: str | Path,
    output: str | Path | None = None,
    *,
    split: str | None = None,
    force: bool = False,
    record: bool | None = None,
    docker: bool | None = None,
    check: bool = False,
) -> ConvertResult:
    """Write (or with `check`, compare) the project for `notebook`.

    `split` and `docker` left as None are taken from the project's pipeline.json when it exists,
    so `nb2pipe convert NB -o DIR --check` in CI checks what was generated, the way it was.

    Nothing here runs the notebook unless `record` is True: pipeline.json is a file in a folder,
    and a file never decides to execute code. With `record` None, fixtures recorded earlier are
    kept as they are on disk (not recorded again); with False, the recorded tests are dropped.
    """
    from nb2pipe.generate import generate
    from nb2pipe.pipeline import analyze_notebook
    from nb2pipe.writer import WriteError, finish, previous, stale_files, write

    notebook = Path(notebook)
    target = Path(output) if output is not None else default_output(notebook)
    try:
        before = previous(target)
    except WriteError as exc:
        raise ConvertError(str(exc)) from None
    split = split or _known(before.split, SPLIT_MODES) or "tags"
    docker = before.docker if docker is None else docker
    try:
        graph = analyze_notebook(notebook, split)
    except ReadError as exc:
        raise ConvertError(str(exc)) from None
    if has_errors(graph.diagnostics):
        return ConvertResult(target, graph.diagnostics, ok=False, notebook=graph.notebook)
    if not graph.steps:
        raise ConvertError(f"{notebook}: no step runs any code, so there is no pipeline to write")
    fixtures = None
    if record:
        if not check:
            from nb2pipe.execute.record import RecordError, record_fixtures

            try:
                fixtures = record_fixtures(graph)
            except RecordError as exc:
                raise ConvertError(f"{exc}; nothing was written") from None
        else:  # --check never runs the notebook: the fixtures are compared as they are
            fixtures = _recorded(target)
    elif record is None and before.record:
        fixtures = _recorded(target) or None  # kept as recorded; --record records them again
    options = _options(notebook, target, split, fixtures is not None, docker)
    try:
        project = generate(graph, options, fixtures)
    except UnsafeText as exc:
        raise ConvertError(f"{target}: {exc}") from None
    files = finish(project.files, project.manifest, notebook.name)
    result = ConvertResult(target, graph.diagnostics, ok=True, notebook=graph.notebook)
    if check:
        result.stale = stale_files(target, files)
        result.files = files
        return result
    try:
        changes = write(target, files, force=force)
    except WriteError as exc:
        raise ConvertError(str(exc)) from None
    except OSError as exc:
        raise ConvertError(f"{target}: cannot write the project: {exc.strerror}") from None
    result.written, result.unchanged, result.removed = (changes.written, changes.unchanged,
                                                        changes.removed)
    return result


def _options(notebook: Path, target: Path, split: str, record: bool, docker: bool) -> Options:
    notebook_dir = notebook.resolve().parent
    project = target.resolve()
    context = Path(os.path.commonpath([notebook_dir, project]))
    return Options(
        split=split,
        record=record,
        docker=docker,
        workdir=Path(os.path.relpath(notebook_dir, project)).as_posix(),
        notebook=Path(os.path.relpath(notebook.resolve(), project)).as_posix(),
        docker_context=Path(os.path.relpath(context, project)).as_posix(),
        project_in_context=Path(os.path.relpath(project, context)).as_posix(),
    )


def _recorded(target: Path) -> dict[str, bytes]:
    """The fixtures already in the project, read, never recorded again. Only regular files
    inside the project count: a link to a file elsewhere, or a pipe, is not a fixture."""
    from nb2pipe.folder import read_file

    folder = target / "tests" / "fixtures"
    if folder.is_symlink() or not folder.is_dir():
        return {}
    root = target.resolve()
    found = {}
    for path in sorted(folder.rglob("*")):
        if not path.resolve().is_relative_to(root):
            continue
        content = read_file(path)
        if content is not None:
            found[path.relative_to(target).as_posix()] = content
    return found


def _known(value: object, choices: tuple[str, ...]) -> str | None:
    return value if isinstance(value, str) and value in choices else None
