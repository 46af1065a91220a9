"""pipeline.json as a type: the loader reads back exactly what convert writes, and any file it
cannot use (mangled, of another format, not a regular file) is one clear error naming it."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import write_notebook
from test_hostile_input import converted, fifo, nb2pipe, one_error_line

from nb2pipe.convert import convert
from nb2pipe.runtime.manifest import (
    FORMAT,
    Manifest,
    ManifestError,
    NoManifest,
    NotNb2pipe,
    NotRegular,
    from_document,
    load,
)

# Every kind of JSON value, to put where another kind belongs.
KINDS: tuple[Any, ...] = (None, True, 0, 2.5, "text", [], {}, [1], {"x": 1})
# Fields whose value is any JSON (a parameter's default), or a mapping whose keys are data
# (the files' hashes, a step's resources): dropping one of their entries changes no schema.
FREE = {"default"}
MAPPINGS = {"files", "resources"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project of a notebook with a parameter, a plotting step, an edge and code shared
    between cells: every field of pipeline.json holds something."""
    folder = tmp_path_factory.mktemp("manifest")
    notebook = write_notebook(
        folder / "nb.ipynb",
        ("rate = 0.5  # how much\nlimit: int | None = None", "parameters"),
        "import math\n\ndef half(x):\n    return x * rate",
        ("rows = [half(n) for n in range(4)]", "step:load", "retries:2", "cpu:2"),
        ("total = math.fsum(rows)\nlabel = f'{total}'", "step:report", "metrics"),
    )
    assert convert(notebook, folder / "nb_pipeline").ok
    return folder / "nb_pipeline"


@pytest.fixture(scope="module")
def document(project: Path) -> dict[str, Any]:
    return dict(json.loads((project / "pipeline.json").read_text()))


def test_the_loader_reads_back_exactly_what_convert_writes(project: Path,
                                                           document: dict[str, Any]) -> None:
    manifest = load(project)
    assert manifest.to_document() == document  # every field, in the order it is written
    assert list(manifest.to_document()) == list(document)
    assert from_document(manifest.to_document()) == manifest
    assert manifest.format == FORMAT == document["format"]
    load_step = manifest.step("load")
    assert load_step.options.retries == 2 and dict(load_step.options.resources) == {"CPU": 2}
    assert "total" in manifest.step("report").metrics
    assert [i.source for i in manifest.step("report").inputs] == ["load"]
    assert manifest.step("report").notebook_code  # `import math` from the cell before
    assert {p.name: p.default for p in manifest.parameters} == {"rate": 0.5, "limit": None}


def paths(value: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document: keys of objects and indexes of lists."""
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        yield (*where, key)
        if not (isinstance(key, str) and key in FREE):
            yield from paths(item, (*where, key))


def changed(document: dict[str, Any], where: tuple[Any, ...], value: Any = ...) -> dict[str, Any]:
    """A copy of `document` with the place `where` set to `value` (dropped when `...`)."""
    mangled = copy.deepcopy(document)
    parent: Any = mangled
    for key in where[:-1]:
        parent = parent[key]
    if value is ...:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    return mangled


def outcome(project: Path, document: dict[str, Any]) -> Manifest | ManifestError:
    """What loading `document` as the project's pipeline.json gives: a Manifest or the error
    (anything else raised fails the test)."""
    (project / "pipeline.json").write_text(json.dumps(document))
    try:
        return load(project)
    except ManifestError as exc:
        return exc


def clear(error: ManifestError, project: Path) -> None:
    text = str(error)
    assert text.startswith(f"{project / 'pipeline.json'}: "), text
    assert "\n" not in text and len(text) < 400, text


def test_dropping_any_field_is_a_clear_error(project: Path, document: dict[str, Any],
                                            tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    places = [p for p in paths(document) if isinstance(p[-1], str)]
    assert len(places) > 60  # the whole document, not a corner of it
    for where in places:
        found = outcome(folder, changed(document, where))
        optional = where == ("format",) or (len(where) > 1 and where[-2] in MAPPINGS)
        if optional:
            assert isinstance(found, Manifest), where
            continue
        assert isinstance(found, ManifestError), where
        clear(found, folder)
        assert repr(where[-1])[1:-1] in str(found), (where, str(found))


def acceptable(where: tuple[Any, ...], value: Any, original: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return (type(value) is type(original) or where[-1] in FREE
            or (where[-1] == "help" and (value is None or isinstance(value, str)))
            or (where[-1] == "timeout" and (value is None or number))
            or (len(where) > 1 and where[-2] == "resources" and number))


def test_a_field_of_the_wrong_kind_is_a_clear_error_wherever_it_is(
        project: Path, document: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    refused = 0
    for where in paths(document):
        for value in KINDS:
            found = outcome(folder, changed(document, where, value))
            if isinstance(found, ManifestError):
                clear(found, folder)
                refused += 1
                continue
            # Accepted: only a value of the kind the field has, null or a string where the
            # field allows either, or anything where the field is free.
            original: Any = document
            for key in where:
                original = original[key]
            assert acceptable(where, value, original), (where, value)
    assert refused > 500


@pytest.mark.parametrize(("field", "value", "message"), [
    (("order",), ["load"], "'order' does not list each step once"),
    (("order",), ["load", "report", "load"], "'order' does not list each step once"),
    (("edges", 0, "source"), "nowhere", "'edges[0]' names the step 'nowhere'"),
    (("steps", 1, "inputs", 0, "from"), "nowhere", "'steps[1].inputs' names the step"),
    (("steps", 1, "name"), "load", "'steps' names 'load' twice"),
    (("steps", 0, "lines", 0), [1, 2, 3], "'steps[0].lines[0]' should hold 4 integers"),
    (("steps", 0, "cells", 0), True, "'steps[0].cells[0]' should be an integer, not true"),
    (("format",), FORMAT + 1, f"written by a newer nb2pipe (format {FORMAT + 1}"),
    (("format",), 0, "'format' 0 is no format nb2pipe wrote"),
])
def test_fields_that_name_each_other_agree(field: tuple[Any, ...], value: Any, message: str,
                                           document: dict[str, Any], tmp_path: Path) -> None:
    found = outcome(tmp_path, changed(document, field, value))
    assert isinstance(found, ManifestError) and message in str(found), found
    clear(found, tmp_path)


def test_a_manifest_of_the_format_before_the_field_still_loads(document: dict[str, Any],
                                                               tmp_path: Path) -> None:
    found = outcome(tmp_path, changed(document, ("format",)))
    assert isinstance(found, Manifest) and found.format == 1


CONTENTS = {
    "not JSON": b"{not json",
    "not UTF-8": b'{"nb2pipe": "\xff"}',
    "nested too deeply": b"[" * 200_000 + b"]" * 200_000,
    "a huge number": b'{"nb2pipe": 1' + b"0" * 10_000 + b"}",
}


@pytest.mark.parametrize("name", sorted(CONTENTS))
def test_a_file_that_is_not_a_manifest_is_a_clear_error(name: str, tmp_path: Path) -> None:
    (tmp_path / "pipeline.json").write_bytes(CONTENTS[name])
    with pytest.raises(ManifestError) as raised:
        load(tmp_path)
    clear(raised.value, tmp_path)


@pytest.mark.parametrize("content", [b"[]", b'"text"', b"{}", b'{"name": "another tool"}'])
def test_json_of_another_tool_is_not_taken_for_a_project(content: bytes,
                                                         tmp_path: Path) -> None:
    (tmp_path / "pipeline.json").write_bytes(content)
    with pytest.raises(NotNb2pipe, match="not written by nb2pipe"):
        load(tmp_path)


def test_a_pipe_a_folder_a_link_or_nothing_is_never_read(project: Path,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    with pytest.raises(NoManifest, match="pipeline.json: missing"):
        load(folder)
    fifo(folder / "pipeline.json")  # reading it would wait forever
    with pytest.raises(NotRegular, match=r"pipeline\.json: is a named pipe \(FIFO\)"):
        load(folder)
    os.unlink(folder / "pipeline.json")
    (folder / "pipeline.json").mkdir()
    with pytest.raises(NotRegular, match=r"pipeline\.json: is a folder"):
        load(folder)
    (folder / "pipeline.json").rmdir()
    (folder / "pipeline.json").symlink_to(project / "pipeline.json")  # a valid one, outside
    with pytest.raises(NotRegular, match=r"pipeline\.json: is a symbolic link") as raised:
        load(folder)
    clear(raised.value, folder)


@pytest.mark.parametrize(("field", "value", "shown"), [
    (("steps", 0, "cells"), "1", "'steps[0].cells' should be a list, not a string"),
    (("order",), None, "'order' should be a list, not null"),
    (("flow",), [], "'flow' should be an object, not a list"),
    (("parameters", 0, "argument"), 3, "'parameters[0].argument' should be a string"),
    (("steps",), [{}], "'steps[0].name' is missing"),
    (("format",), 99, "written by a newer nb2pipe (format 99")])
def test_the_commands_say_what_is_wrong_with_a_mangled_manifest(
        field: tuple[Any, ...], value: Any, shown: str, tmp_path: Path) -> None:
    notebook, project = converted(tmp_path)
    document = json.loads((project / "pipeline.json").read_text())
    (project / "pipeline.json").write_text(json.dumps(changed(document, field, value)))
    one_error_line(nb2pipe("run", str(project)), 2, "pipeline.json", shown)
    one_error_line(nb2pipe("deploy", str(project)), 2, "pipeline.json", shown)
    one_error_line(nb2pipe("convert", "--check", cwd=tmp_path), 2, "pipeline.json", shown)
    # converting again replaces it (it was changed by hand: with --force)
    assert nb2pipe("convert", str(notebook), "--force").returncode == 0
    assert isinstance(load(project), Manifest)
