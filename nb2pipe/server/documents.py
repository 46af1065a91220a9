"""The JSON documents the server sends to JupyterLab, built from the library's own results.

The TypeScript types in labextension/src/types.ts mirror these; the frontend fixtures in
labextension/test/fixtures are produced from them (tests/test_server.py keeps them current).
The functions here run in worker processes (nb2pipe.server.work): they take and return plain
data, and name files the way the Contents API does, never by their path on the server's disk.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from pathlib import Path
from typing import Any

from nb2pipe.diagnostics import has_errors
from nb2pipe.graph_text import check_json
from nb2pipe.model import Notebook, StepGraph
from nb2pipe.notebook.reader import ReadError, parse_notebook, read_notebook
from nb2pipe.pipeline import notebook_graph
from nb2pipe.runtime.project import memory_text
from nb2pipe.server import bodies
from nb2pipe.server.paths import relative

SPLITS = ("tags", "headings", "cells")
DIFF_BYTES = 200_000  # a file larger than this is compared by its size only


def analyze(root: str | Path, notebook: Path, split: str = "tags",
            content: dict[str, Any] | None = None) -> dict[str, Any]:
    """The analysis of a notebook file, or of `content` (the notebook JSON as the editor
    holds it, not yet saved) under that file's name. Raises ReadError."""
    parsed = load(root, notebook, content)
    graph = notebook_graph(parsed, split)
    return analysis_document(root, notebook, graph, split, onramp(parsed, graph, split))


def analyze_json(root: str | Path, notebook: Path, split: str = "tags",
                 posted: bytes | None = None) -> bytes:
    """`analyze` as the JSON the server sends: the file, or `posted` (the notebook JSON as
    the request carried it). Parsing and writing JSON happen here, in a worker process, so
    the server's event loop only moves bytes. Raises ReadError, or BadRequest for a body that
    is not JSON."""
    content = None
    if posted is not None:
        content = bodies.parse(posted, f"{relative(root, notebook)}: the request body")
        if not isinstance(content, dict):
            raise ReadError(f"{relative(root, notebook)}: the request body must be the "
                            "notebook's JSON object")
    return json.dumps(analyze(root, notebook, split, content)).encode()


def load(root: str | Path, notebook: Path, content: dict[str, Any] | None = None) -> Notebook:
    """The notebook named as the Contents API names it. Raises ReadError."""
    api_path = relative(root, notebook)
    if content is None:
        try:
            parsed = read_notebook(notebook)
        except ReadError as exc:  # name the file as the user sees it, not the server's path
            raise ReadError(str(exc).replace(str(notebook), api_path, 1)) from None
    else:  # the editor's unsaved notebook, named as the file it will be saved to
        parsed = parse_notebook(json.dumps(content), api_path)
    return dataclasses.replace(parsed, path=Path(api_path))


def analysis_document(root: str | Path, notebook: Path, graph: StepGraph, split: str = "tags",
                      onramp: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {
        "path": relative(root, notebook),
        "ok": not has_errors(graph.diagnostics),
        "split": split,
        "check": check_json(graph),
        "steps": [
            {
                "name": step.name,
                "first_cell": step.first_cell,
                "options": _options(step.options),
            }
            for step in graph.steps
        ],
        "cycle_edges": [list(edge) for edge in graph.cycle_edges()],
        "onramp": onramp,
        "default_output": relative(root, default_output(notebook)),
    }


def _options(options: object) -> dict[str, Any]:
    """A step's options (retries, timeout, cache, what it needs to run) as JSON values."""
    assert dataclasses.is_dataclass(options) and not isinstance(options, type)
    document = dataclasses.asdict(options)
    # One entry per resource tag (cpu, memory, gpu), as the options form edits them; null: none.
    needs = dict(document.pop("resources", ()))
    for name in ("CPU", "MEMORY", "GPU"):
        amount = needs.get(name)
        document[name.lower()] = (
            None if amount is None else memory_text(amount) if name == "MEMORY"
            else int(amount) if float(amount).is_integer() else amount)
    return dict(sorted(document.items()))


# --- the on-ramp for notebooks without step tags ----------------------------------------

def onramp(notebook: Notebook, graph: StepGraph, split: str) -> dict[str, list[str]] | None:
    """For a notebook that no `step:` tag splits: the steps each automatic split would make."""
    if split != "tags" or _has_step_tags(notebook):
        return None
    from nb2pipe.notebook.magics import transform_notebook
    from nb2pipe.notebook.split import split as split_cells

    transformed, _ = transform_notebook(notebook)
    return {mode: [s.name for s in split_cells(transformed, mode).steps]
            for mode in ("headings", "cells")}


def _has_step_tags(notebook: Notebook) -> bool:
    from nb2pipe.notebook.tags import parse_tag

    return any(parse_tag(tag).kind == "step" for cell in notebook.code_cells for tag in cell.tags)


def split_tags(root: str | Path, notebook: Path, split: str,
               content: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tags that make `split`'s steps explicit: a `step:NAME` on the first code cell of
    each step. Only the cells whose tags change are listed, with their whole new tag list."""
    from nb2pipe.notebook.magics import transform_notebook
    from nb2pipe.notebook.split import split as split_cells
    from nb2pipe.notebook.tags import parse_tag

    parsed = load(root, notebook, content)
    transformed, _ = transform_notebook(parsed)
    cells = []
    for step in split_cells(transformed, split).steps:
        if not step.cells:
            continue
        first = step.cells[0]
        tags = list(parsed.cells[first.index - 1].tags)
        kept = [t for t in tags if parse_tag(t).kind != "step"]
        at = next((i for i, t in enumerate(tags) if parse_tag(t).kind == "step"), 0)
        new = [*kept[:at], f"step:{step.name}", *kept[at:]]
        if new != tags:
            cells.append({"cell": first.index, "id": first.id, "tags": new})
    return {"path": relative(root, notebook), "split": split, "cells": cells}


# --- export ---------------------------------------------------------------------------

def default_output(notebook: Path) -> Path:
    """Where `nb2pipe convert` writes when no folder is given: next to the notebook."""
    from nb2pipe.convert import default_output as convert_default

    return convert_default(notebook)


def export(root: str | Path, notebook: Path, output: Path, force: bool = False,
           record: bool | None = None) -> tuple[int, dict[str, Any]]:
    """Write the project: (HTTP status, document). 409 when nothing was written: the notebook
    has errors, or files in the folder were edited by hand (`edited` names them; `force`
    overwrites them)."""
    from nb2pipe.convert import ConvertError, convert

    try:
        result = convert(notebook, output, force=force, record=record)
    except ConvertError as exc:
        document = _refused(root, output, _shown(root, exc))
        document["edited"] = [relative(root, output / p) for p in _edited(notebook, output)]
        return 409, document
    document = export_document(root, result)
    if not document["ok"]:
        errors = sum(d["severity"] == "error" for d in document["diagnostics"])
        document["message"] = (
            f"{relative(root, notebook)} has {errors} "
            f"error{'s' if errors != 1 else ''}; nothing was written")
        return 409, document
    return 200, document


def _refused(root: str | Path, output: Path, message: str) -> dict[str, Any]:
    return {"ok": False, "output": relative(root, output.resolve()), "written": [],
            "unchanged": [], "flow": None, "diagnostics": [], "message": message, "edited": []}


def _shown(root: str | Path, exc: Exception) -> str:
    """A library message with server disk paths written as the Contents API names them."""
    return str(exc).replace(str(Path(root).resolve()) + "/", "")


_EDITED = re.compile(r"^(?P<path>.+): edited by hand since it was generated$")


def _edited(notebook: Path, output: Path) -> list[str]:
    """Files of the project (relative to it) changed by hand since nb2pipe wrote them."""
    from nb2pipe.convert import ConvertError, convert

    try:
        result = convert(notebook, output, check=True)
    except ConvertError:
        return []
    return sorted(m.group("path") for m in map(_EDITED.match, result.stale) if m)


def export_diff(root: str | Path, notebook: Path, output: Path) -> dict[str, Any]:
    """For every file of the project that differs from what Export would write now: a
    unified diff from the file on disk to the new one."""
    from nb2pipe.convert import ConvertError, convert

    try:
        result = convert(notebook, output, check=True)
    except ConvertError as exc:
        return {"output": relative(root, output.resolve()), "files": [],
                "message": _shown(root, exc)}
    files = []
    for path, new in sorted(result.files.items()):
        target = output / path
        old, what = _on_disk(output, target)
        if old == new:
            continue
        folder = relative(root, output.resolve())
        shown = (relative(root, target.resolve()) if what is None
                 else f"{folder}/{path}" if folder else path)
        if what is not None:
            text = f"{shown}: {what} now; Export writes {len(new)} bytes there\n"
        elif len(old) > DIFF_BYTES or len(new) > DIFF_BYTES or b"\0" in old + new:
            text = f"{shown}: {len(old)} bytes now, {len(new)} bytes after Export\n"
        else:
            text = "".join(difflib.unified_diff(
                old.decode("utf-8", "replace").splitlines(keepends=True),
                new.decode("utf-8", "replace").splitlines(keepends=True),
                fromfile=f"{shown} (on disk)", tofile=f"{shown} (Export)"))
        files.append({"path": shown, "diff": text})
    return {"output": relative(root, output.resolve()), "files": files, "message": None}


def _on_disk(output: Path, target: Path) -> tuple[bytes, str | None]:
    """What a project file holds now, or (b"", what it is) when it is no regular file inside
    the project: read without blocking, never through a link that leads out of it."""
    from nb2pipe.folder import stays_inside
    from nb2pipe.runtime.files import NotAFile, read_bytes

    if not stays_inside(output, target):
        return b"", "a link leading outside the project folder"
    try:
        return read_bytes(target), None
    except NotAFile as exc:
        return b"", f"is {exc.what}"
    except OSError:
        return b"", None


def export_document(root: str | Path, result: Any) -> dict[str, Any]:
    """A `nb2pipe.convert.ConvertResult` for the frontend: paths as the Contents API names them."""
    output = Path(result.output).resolve()
    written = sorted(str(p) for p in result.written)
    unchanged = sorted(str(p) for p in getattr(result, "unchanged", ()))
    return {
        "ok": bool(result.ok),
        "output": relative(root, output),
        "written": [relative(root, output / p) for p in written],
        "unchanged": [relative(root, output / p) for p in unchanged],
        "flow": relative(root, output / "flow.py") if "flow.py" in written + unchanged else None,
        "diagnostics": [d.to_json() for d in result.diagnostics],
        "edited": [],
    }


# --- runs -----------------------------------------------------------------------------

_COLLECTIONS = ("list", "dict", "tuple", "set", "List", "Dict", "Tuple", "Sequence", "Mapping")


def run_plan(root: str | Path, notebook: Path, given: dict[str, str]) -> dict[str, Any]:
    """What a run needs before it starts: its steps, and the `nb2pipe run` flags for the
    parameters the user typed, checked the way `-p` is. `error` says what is wrong
    ({message, parameter}) when it cannot start."""
    from nb2pipe.execute.param_flags import ParameterArgs, ParameterError, check, collect

    graph = notebook_graph(load(root, notebook))
    if has_errors(graph.diagnostics):
        errors = sum(d.severity.value == "error" for d in graph.diagnostics)
        return {"steps": [], "flags": [], "error": {
            "message": f"{relative(root, notebook)} has {errors} error{'s' if errors != 1 else ''}"
                       "; fix them before running", "parameter": None}}
    types = {p["name"]: str(p["type"]) for p in check_json(graph)["parameters"]}
    args = ParameterArgs()
    flags: list[str] = []
    for name, text in given.items():
        kind = _flag(types.get(name, "str"), text)
        if kind == "-y":
            if "\n" in text:
                return _plan_error(f"parameter '{name}': write the value on one line", name)
            args.yaml.append(f"{name}: {text}")
            flags += ["-y", f"{name}: {text}"]
        elif kind == "-r":
            args.raw.append((name, text))
            flags += ["-r", name, text]
        else:
            args.typed.append((name, text))
            flags += ["-p", name, text]
    try:
        check(collect(args), types, args)
    except ParameterError as exc:
        found = re.search(r"parameter '([^']+)'", str(exc))
        return _plan_error(str(exc), found.group(1) if found else None)
    return {"steps": [s.name for s in graph.steps], "flags": flags, "error": None}


def _plan_error(message: str, parameter: str | None) -> dict[str, Any]:
    return {"steps": [], "flags": [], "error": {"message": message, "parameter": parameter}}


def _flag(type_name: str, text: str) -> str:
    """How text typed for a parameter of `type_name` reaches `nb2pipe run`: collections as
    YAML (-y), text as text (-r), anything else typed like papermill's -p."""
    options = {o.strip().rpartition(".")[2].partition("[")[0]
               for o in type_name.replace("Optional[", "").split("|")}
    if options & set(_COLLECTIONS):
        return "-y"
    if "str" in options and not (text == "None" and options & {"None", "NoneType"}):
        return "-r"
    return "-p"
