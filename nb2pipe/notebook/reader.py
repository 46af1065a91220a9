"""Stage 1, read: a .ipynb file -> Notebook.

nbformat v4 files are parsed with the standard json module (importing nbformat costs most of a
second, which `nb2pipe check` cannot afford); older versions are upgraded through nbformat.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nb2pipe.exceptions import Nb2pipeError
from nb2pipe.model import Cell, Notebook
from nb2pipe.runtime.files import NotAFile, read_bytes


class ReadError(Nb2pipeError):
    """The file cannot be read as a Python notebook. The message is one line, naming the file."""


_SOURCE_KEY = re.compile(r'^\s*"source":\s*(\[)?')
_CELL_TYPE_KEY = re.compile(r'^\s*"cell_type":')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _holds_lone_surrogate(data: Any) -> bool:
    """JSON may escape half of a UTF-16 pair alone; such a string cannot be written as UTF-8,
    compiled, or printed."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_notebook(path: str | Path) -> Notebook:
    path = Path(path)
    return parse_notebook(_read_text(path), path)


def parse_notebook(text: str, path: str | Path) -> Notebook:
    """A notebook from its JSON text; `path` names it in messages (it need not exist)."""
    path = Path(path)
    try:
        data = json.loads(text)
    except RecursionError:
        raise ReadError(f"{path}: not a notebook: its JSON is nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = " (the file looks truncated)" if truncated else ""
        raise ReadError(
            f"{path}: not valid notebook JSON: {exc.msg} (line {exc.lineno}, "
            f"column {exc.colno}){hint}"
        ) from None
    if not isinstance(data, dict):
        raise ReadError(f"{path}: not a notebook: the JSON top level is not an object")
    if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(data):
        raise ReadError(f"{path}: not a notebook: it holds an unpaired surrogate escape "
                        "(such as \\udcff), which is not text")
    data = _as_v4(path, data, text)
    metadata = _object(path, data, "metadata", "the notebook's 'metadata'")
    kernelspec = _object(path, metadata, "kernelspec", "metadata 'kernelspec'")
    language_info = _object(path, metadata, "language_info", "metadata 'language_info'")
    _check_language(path, kernelspec, language_info)
    cells = _cells(path, data, _source_lines(text))
    if not any(c.is_code for c in cells):
        raise ReadError(f"{path}: the notebook has no code cells, so there is no pipeline in it")
    minor = data.get("nbformat_minor", 0)
    return Notebook(
        path=path,
        cells=tuple(cells),
        kernel_name=str(kernelspec.get("name") or "python3"),
        language="python",
        nbformat=(int(data["nbformat"]), minor if isinstance(minor, int) else 0),
        python_major=_python_major(kernelspec, language_info),
    )


def _from_v3(data: dict[str, Any]) -> dict[str, Any]:
    """nbformat 3 -> 4 as nbformat upgrades it, for the parts nb2pipe reads (importing
    nbformat costs most of a second): worksheets flattened, `input` -> `source`, `prompt_number`
    -> `execution_count`, heading cells -> markdown headings."""
    cells: list[Any] = []
    for worksheet in data["worksheets"]:
        found = worksheet.get("cells") if isinstance(worksheet, dict) else None
        for cell in found if isinstance(found, list) else [None]:
            if not isinstance(cell, dict):
                cells.append(cell)  # reported as malformed with its position
                continue
            kind = cell.get("cell_type")
            upgraded: dict[str, Any] = {"cell_type": kind, "metadata": cell.get("metadata") or {}}
            if kind == "code":
                upgraded["source"] = cell.get("input", "")
                upgraded["execution_count"] = cell.get("prompt_number")
            elif kind == "heading":
                source = cell.get("source", "")
                text = "".join(source) if isinstance(source, list) else str(source)
                level = cell.get("level", 1)
                hashes = "#" * (level if isinstance(level, int) and 0 < level < 7 else 1)
                upgraded.update(cell_type="markdown",
                                source=f"{hashes} {' '.join(text.splitlines())}")
            else:
                upgraded["source"] = cell.get("source", "")
                if kind == "html":
                    upgraded["cell_type"] = "markdown"
            cells.append(upgraded)
    return {**data, "cells": cells, "nbformat": 4, "nbformat_minor": 0}


def _object(path: Path, parent: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    """`parent[key]` when it is a JSON object, {} when absent; anything else is malformed."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReadError(f"{path}: not a valid notebook: {what} is not an object")
    return value


def _python_major(kernelspec: dict[str, Any], language_info: dict[str, Any]) -> int | None:
    """2 or 3 when the metadata says which Python the notebook was written for."""
    version = str(language_info.get("version") or "")
    if re.match(r"^[23]\.", version):
        return int(version[0])
    mode = language_info.get("codemirror_mode")
    if isinstance(mode, dict) and mode.get("version") in (2, 3):
        return int(mode["version"])
    name = f"{kernelspec.get('name') or ''} {kernelspec.get('display_name') or ''}".lower()
    if re.search(r"python ?2\b", name):
        return 2
    if re.search(r"python ?3\b", name):
        return 3
    return None


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise ReadError(f"{path}: is a directory, not a notebook file")
    try:
        raw = read_bytes(path)  # a FIFO or a device named *.ipynb is refused, never waited on
    except FileNotFoundError:
        raise ReadError(f"{path}: no such file") from None
    except NotAFile as exc:
        raise ReadError(f"{path}: is not a regular file ({exc.what}), so it is not a "
                        "notebook") from None
    except OSError as exc:
        raise ReadError(f"{path}: cannot read: {exc.strerror}") from None
    if b"\x00" in raw[:8192]:
        raise ReadError(f"{path}: is a binary file, not a notebook")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReadError(f"{path}: is not UTF-8 text, so it is not a notebook") from None


def _as_v4(path: Path, data: dict[str, Any], text: str) -> dict[str, Any]:
    version = data.get("nbformat")
    if not isinstance(version, int):
        raise ReadError(f"{path}: not a notebook: no 'nbformat' version field")
    if version > 4:
        raise ReadError(f"{path}: nbformat {version} is newer than this nb2pipe reads (4)")
    if version == 4:
        if not isinstance(data.get("cells"), list):
            raise ReadError(f"{path}: not a notebook: no 'cells' list")
        return data
    if version == 3 and isinstance(data.get("worksheets"), list):
        return _from_v3(data)
    import nbformat  # only notebooks older than version 3 pay for this import

    try:
        upgraded = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many types for malformed old files
        raise ReadError(f"{path}: cannot upgrade nbformat {version} notebook: {exc}") from None
    result: dict[str, Any] = json.loads(nbformat.writes(upgraded))
    return result


def _check_language(path: Path, kernelspec: dict[str, Any],
                    language_info: dict[str, Any]) -> None:
    language = kernelspec.get("language") or language_info.get("name")
    if language and str(language).lower() not in ("python", "python3"):
        name = kernelspec.get("display_name") or kernelspec.get("name") or language
        raise ReadError(
            f"{path}: the notebook's kernel is {name} ({language}); "
            "nb2pipe converts Python notebooks"
        )


def _cells(path: Path, data: dict[str, Any], source_lines: list[int | None]) -> list[Cell]:
    cells = []
    for position, raw in enumerate(data["cells"], start=1):
        if not isinstance(raw, dict) or raw.get("cell_type") not in ("code", "markdown", "raw"):
            raise ReadError(f"{path}: cell {position} is malformed (no valid 'cell_type')")
        source = raw.get("source") or ""  # null: an empty cell, as Jupyter shows it
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise ReadError(f"{path}: cell {position} is malformed ('source' is not text)")
        try:
            source.encode("utf-8")
        except UnicodeEncodeError:
            raise ReadError(f"{path}: cell {position} is malformed (its source holds a lone "
                            "UTF-16 surrogate, which is not a character)") from None
        metadata = raw.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ReadError(f"{path}: cell {position} is malformed ('metadata' is not an object)")
        tags = metadata.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ReadError(f"{path}: cell {position} is malformed (metadata 'tags' is not a list)")
        cells.append(
            Cell(
                index=position,
                id=str(raw.get("id") or f"cell-{position}"),
                cell_type=raw["cell_type"],
                source=source,
                tags=tuple(t.strip() for t in tags if t.strip()),
                json_line=source_lines[position - 1] if position <= len(source_lines) else None,
                execution_count=count if isinstance(count := raw.get("execution_count"), int)
                and not isinstance(count, bool) else None,
            )
        )
    return cells


def _source_lines(text: str) -> list[int | None]:
    """Best effort: the line in the .ipynb file where each cell's source starts.

    Used to point GitHub annotations at the right line of the notebook file; files written by
    Jupyter put one source line per JSON line.
    """
    found: list[int | None] = []
    waiting = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _CELL_TYPE_KEY.match(line):
            if waiting:
                found.append(None)
            waiting = True
        elif waiting and (match := _SOURCE_KEY.match(line)):
            opens_list = match.group(1) and not line.rstrip().endswith("]")
            found.append(number + 1 if opens_list else number)
            waiting = False
    if waiting:
        found.append(None)
    return found
