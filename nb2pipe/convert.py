"""`nb2pipe convert`: notebook -> a Prefect project folder. The one function the CLI and the
JupyterLab server both call."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nb2pipe.diagnostics import has_errors
from nb2pipe.generate.project import Options
from nb2pipe.model import Diagnostic
from nb2pipe.notebook.reader import ReadError


class ConvertError(Exception):
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

    Options left as None are taken from the project's pipeline.json when it exists, so
    `nb2pipe convert NB -o DIR --check` in CI checks what was generated, the way it was.
    """
    from nb2pipe.generate import generate
    from nb2pipe.pipeline import analyze_notebook
    from nb2pipe.writer import WriteError, finish, read_manifest, stale_files, write

    notebook = Path(notebook)
    target = Path(output) if output is not None else default_output(notebook)
    previous = (read_manifest(target) or {}).get("options", {})
    split = split or previous.get("split") or "tags"
    record = bool(previous.get("record")) if record is None else record
    docker = bool(previous.get("docker")) if docker is None else docker
    try:
        graph = analyze_notebook(notebook, split)
    except ReadError as exc:
        raise ConvertError(str(exc)) from None
    if has_errors(graph.diagnostics):
        return ConvertResult(target, graph.diagnostics, ok=False)
    if not graph.steps:
        raise ConvertError(f"{notebook}: no step runs any code, so there is no pipeline to write")
    options = _options(notebook, target, split, record, docker)
    fixtures = None
    if record and not check:
        from nb2pipe.execute.record import record_fixtures

        fixtures = record_fixtures(graph)
    elif record:
        fixtures = _recorded(target)
    project = generate(graph, options, fixtures)
    files = finish(project.files, project.manifest, notebook.name)
    result = ConvertResult(target, graph.diagnostics, ok=True)
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
    """The fixtures already in the project (`--check` does not run the notebook again)."""
    folder = target / "tests" / "fixtures"
    if not folder.is_dir():
        return {}
    return {p.relative_to(target).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}
