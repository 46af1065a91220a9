"""pipeline.json as a type: what a project is (its flow, parameters, steps, the line map back
to the notebook), written by `nb2pipe convert`, read by the project at run time and by nb2pipe.

The file sits in a folder anyone could have filled, so it is read in one place, here: never
through a link, never from a pipe or a device, never nested deeper than JSON needs, and every
field checked for its type. Anything else is a ManifestError: one line naming the file and
the field, saying to convert the notebook again. Fields added later keep the format; a change
that old readers would misread raises FORMAT, and a file of a newer format is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from . import files

NAME = "pipeline.json"
FORMAT = 1  # files written before the field existed are format 1
AGAIN = "convert the notebook again (nb2pipe convert)"

T = TypeVar("T")


class ManifestError(ValueError):
    """pipeline.json cannot be used; `str()` is one line naming the file and what is wrong."""


class NoManifest(ManifestError):
    """The folder has no pipeline.json."""


class NotNb2pipe(ManifestError):
    """The folder's pipeline.json is JSON nb2pipe did not write (not an object with the key
    `nb2pipe`)."""


class NotRegular(ManifestError):
    """The folder's pipeline.json is a pipe, a device, a folder or a link: never read."""


class LineRun(NamedTuple):
    """`length` consecutive lines of steps.py from `start` are lines `first`... of `cell`."""

    start: int
    cell: int
    first: int
    length: int


class CodeSpan(NamedTuple):
    """Lines `start` to `end` of `cell`: code of another cell a step needs (notebook mode)."""

    cell: int
    start: int
    end: int


@dataclass(frozen=True)
class ConvertOptions:
    split: str
    record: bool
    docker: bool


@dataclass(frozen=True)
class FlowEntry:
    name: str  # the Prefect flow's name
    function: str  # its function in flow.py
    entrypoint: str  # flow.py:function


@dataclass(frozen=True)
class ParameterEntry:
    name: str  # as the notebook spells it
    type: str  # a Python annotation: "int", "list[str]", ...
    default: Any  # a JSON value
    help: str | None
    cell: int
    line: int
    argument: str  # the flow function's argument (`_run` is `run_` there)


@dataclass(frozen=True)
class InputEntry:
    name: str
    source: str  # the step it comes from ("from" in the file)


@dataclass(frozen=True)
class StepSettings:
    retries: int
    timeout: float | None
    cache: bool
    resources: Mapping[str, float]  # Dask resource -> amount (tags cpu:, memory:, gpu:)


@dataclass(frozen=True)
class StepEntry:
    name: str
    function: str  # in steps.py
    task: str  # the Prefect task's name
    cells: tuple[int, ...]
    inputs: tuple[InputEntry, ...]
    parameters: tuple[str, ...]
    outputs: tuple[str, ...]
    metrics: tuple[str, ...]
    copied: tuple[str, ...]
    after: tuple[str, ...]
    consumed_in_place: tuple[str, ...]
    pyplot: bool
    blas: bool
    options: StepSettings
    code_sha256: str
    lines: tuple[LineRun, ...]  # steps.py -> notebook
    notebook_code: tuple[CodeSpan, ...]  # code it needs from other cells, for notebook mode


@dataclass(frozen=True)
class EdgeEntry:
    source: str
    target: str
    variables: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    nb2pipe: str  # the version that wrote it
    notebook: str  # relative to the project
    source_sha256: str  # of the notebook's cells, to tell it changed
    options: ConvertOptions
    workdir: str  # the notebook's folder, relative to the project: where steps run
    flow: FlowEntry
    parameters: tuple[ParameterEntry, ...]
    steps: tuple[StepEntry, ...]
    order: tuple[str, ...]  # the steps, each after the ones it needs
    edges: tuple[EdgeEntry, ...]
    kernel: str
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # path->sha256
    sha256: str = ""  # of the file itself, with this field empty
    format: int = FORMAT

    def step(self, name: str) -> StepEntry:
        for entry in self.steps:
            if entry.name == name:
                return entry
        raise KeyError(f"{NAME} has no step '{name}'")

    def step_of(self, function: str) -> StepEntry:
        """The step whose function in steps.py is called `function`."""
        for entry in self.steps:
            if entry.function == function:
                return entry
        raise KeyError(f"{NAME} has no step whose function is '{function}'")

    def flow_arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Parameter values by the names the flow function gives them."""
        names = {p.name: p.argument for p in self.parameters}
        return {names.get(name, name): value for name, value in values.items()}

    def to_document(self) -> dict[str, Any]:
        """The JSON object the file holds (the writer fills `files` and `sha256`)."""
        return {
            "nb2pipe": self.nb2pipe,
            "format": self.format,
            "notebook": self.notebook,
            "source_sha256": self.source_sha256,
            "options": {"split": self.options.split, "record": self.options.record,
                        "docker": self.options.docker},
            "workdir": self.workdir,
            "flow": {"name": self.flow.name, "function": self.flow.function,
                     "entrypoint": self.flow.entrypoint},
            "parameters": [
                {"name": p.name, "type": p.type, "default": p.default, "help": p.help,
                 "cell": p.cell, "line": p.line, "argument": p.argument}
                for p in self.parameters],
            "steps": [_step_document(s) for s in self.steps],
            "order": list(self.order),
            "edges": [{"source": e.source, "target": e.target, "variables": list(e.variables)}
                      for e in self.edges],
            "kernel": self.kernel,
            "files": dict(self.files),
            "sha256": self.sha256,
        }


def _step_document(step: StepEntry) -> dict[str, Any]:
    return {
        "name": step.name,
        "function": step.function,
        "task": step.task,
        "cells": list(step.cells),
        "inputs": [{"name": i.name, "from": i.source} for i in step.inputs],
        "parameters": list(step.parameters),
        "outputs": list(step.outputs),
        "metrics": list(step.metrics),
        "copied": list(step.copied),
        "after": list(step.after),
        "consumed_in_place": list(step.consumed_in_place),
        "pyplot": step.pyplot,
        "blas": step.blas,
        "options": {"retries": step.options.retries, "timeout": step.options.timeout,
                    "cache": step.options.cache, "resources": dict(step.options.resources)},
        "code_sha256": step.code_sha256,
        "lines": [list(run) for run in step.lines],
        "notebook": {"code": [list(span) for span in step.notebook_code]},
    }


# --- reading --------------------------------------------------------------------------------

def load(folder: str | os.PathLike[str]) -> Manifest:
    """The folder's pipeline.json, checked. Raises NoManifest when there is none, NotNb2pipe
    when nb2pipe did not write it, ManifestError for anything else wrong with it."""
    path = os.path.join(folder, NAME)
    return from_document(read_document(folder), path)


def read_document(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The folder's pipeline.json as a JSON object, its fields not yet checked: read without
    following a link or waiting on a pipe. Raises NoManifest or ManifestError."""
    path = os.path.join(folder, NAME)
    try:
        content = files.read_bytes(path, follow_links=False)
    except (FileNotFoundError, NotADirectoryError):
        raise NoManifest(f"{path}: missing; not a project written by nb2pipe") from None
    except files.NotAFile as exc:
        raise NotRegular(f"{exc}; nb2pipe reads only regular files in a project folder: "
                            f"remove it and {AGAIN}") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        document = json.loads(content.decode("utf-8"))
    except RecursionError:
        raise ManifestError(f"{path}: nested too deeply to read; {AGAIN}") from None
    except ValueError as exc:
        raise ManifestError(f"{path}: not valid JSON ({_first_line(exc)}); {AGAIN}") from None
    if not isinstance(document, dict):
        raise NotNb2pipe(f"{path}: not written by nb2pipe (not a JSON object)")
    return document


def _first_line(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:200]


def from_document(document: Mapping[str, Any], path: str = NAME) -> Manifest:
    """`document` (pipeline.json's object) checked field by field. Raises ManifestError."""
    if "nb2pipe" not in document:
        raise NotNb2pipe(f"{path}: not written by nb2pipe (it has no 'nb2pipe' field)")
    fields = _Fields(path)
    top = fields.object_at(document, "")
    version = top.optional("format", fields.integer, FORMAT)
    if version > FORMAT:
        raise ManifestError(f"{path}: written by a newer nb2pipe (format {version}; this one "
                            f"reads format {FORMAT}): {AGAIN} with this nb2pipe, or upgrade it")
    if version < 1:
        raise ManifestError(f"{path}: 'format' {version} is no format nb2pipe wrote; {AGAIN}")
    manifest = Manifest(
        nb2pipe=top.get("nb2pipe", fields.text),
        notebook=top.get("notebook", fields.text),
        source_sha256=top.get("source_sha256", fields.text),
        options=_options(top.object("options"), fields),
        workdir=top.get("workdir", fields.text),
        flow=_flow(top.object("flow"), fields),
        parameters=tuple(_parameter(entry, fields) for entry in top.objects("parameters")),
        steps=tuple(_step(entry, fields) for entry in top.objects("steps")),
        order=top.get("order", fields.texts),
        edges=tuple(EdgeEntry(e.get("source", fields.text), e.get("target", fields.text),
                              e.get("variables", fields.texts))
                    for e in top.objects("edges")),
        kernel=top.get("kernel", fields.text),
        files=MappingProxyType(top.get("files", fields.text_map)),
        sha256=top.get("sha256", fields.text),
        format=version,
    )
    _check_names(manifest, path)
    return manifest


def _options(options: _Object, fields: _Fields) -> ConvertOptions:
    return ConvertOptions(options.get("split", fields.text), options.get("record", fields.flag),
                          options.get("docker", fields.flag))


def _flow(flow: _Object, fields: _Fields) -> FlowEntry:
    return FlowEntry(flow.get("name", fields.text), flow.get("function", fields.text),
                     flow.get("entrypoint", fields.text))


def _parameter(entry: _Object, fields: _Fields) -> ParameterEntry:
    name = entry.get("name", fields.text)
    return ParameterEntry(name, entry.get("type", fields.text), entry.get("default", _any),
                          entry.get("help", fields.optional_text),
                          entry.get("cell", fields.integer), entry.get("line", fields.integer),
                          entry.get("argument", fields.text))


def _step(entry: _Object, fields: _Fields) -> StepEntry:
    """A step's entry, its fields checked in the order the file has them."""
    return StepEntry(
        name=entry.get("name", fields.text),
        function=entry.get("function", fields.text),
        task=entry.get("task", fields.text),
        cells=entry.get("cells", fields.integers),
        inputs=tuple(InputEntry(i.get("name", fields.text), i.get("from", fields.text))
                     for i in entry.objects("inputs")),
        parameters=entry.get("parameters", fields.texts),
        outputs=entry.get("outputs", fields.texts),
        metrics=entry.get("metrics", fields.texts),
        copied=entry.get("copied", fields.texts),
        after=entry.get("after", fields.texts),
        consumed_in_place=entry.get("consumed_in_place", fields.texts),
        pyplot=entry.get("pyplot", fields.flag),
        blas=entry.get("blas", fields.flag),
        options=_settings(entry.object("options"), fields),
        code_sha256=entry.get("code_sha256", fields.text),
        lines=tuple(LineRun(*run) for run in entry.get("lines", fields.integer_rows(4))),
        notebook_code=tuple(CodeSpan(*span) for span in
                            entry.object("notebook").get("code", fields.integer_rows(3))),
    )


def _settings(options: _Object, fields: _Fields) -> StepSettings:
    return StepSettings(options.get("retries", fields.integer),
                        options.get("timeout", fields.optional_number),
                        options.get("cache", fields.flag),
                        MappingProxyType(options.get("resources", fields.number_map)))


def _check_names(manifest: Manifest, path: str) -> None:
    """The steps each field names are steps of this file, each named once."""
    names = [s.name for s in manifest.steps]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ManifestError(f"{path}: 'steps' names '{twice[0]}' twice; {AGAIN}")
    if sorted(manifest.order) != sorted(names):
        raise ManifestError(f"{path}: 'order' does not list each step once; {AGAIN}")
    known = set(names)
    named = [(f"steps[{i}].inputs", read.source) for i, s in enumerate(manifest.steps)
             for read in s.inputs]
    named += [(f"steps[{i}].after", a) for i, s in enumerate(manifest.steps) for a in s.after]
    named += [(f"edges[{i}]", n) for i, e in enumerate(manifest.edges)
              for n in (e.source, e.target)]
    for where, name in named:
        if name not in known:
            raise ManifestError(f"{path}: '{where}' names the step '{name}', which is not in "
                                f"'steps'; {AGAIN}")


# --- checking fields ------------------------------------------------------------------------

_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "true or false"), (int, "an integer"), (float, "a number"), (str, "a string"),
    (list, "a list"), (dict, "an object"), (type(None), "null"))


def _kind(value: object) -> str:
    return next((name for kind, name in _KINDS if isinstance(value, kind)), "a value")


def _any(value: object, where: str) -> Any:
    return value


class _Fields:
    """Checks of a field's value: each returns it as the type says, or raises ManifestError
    naming the file and the field (`steps[2].options.cache`)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def wrong(self, where: str, expected: str, value: object) -> ManifestError:
        return ManifestError(f"{self.path}: '{where}' should be {expected}, not "
                             f"{_kind(value)}; {AGAIN}")

    def object_at(self, value: object, where: str) -> _Object:
        if not isinstance(value, dict):
            raise self.wrong(where, "an object", value)
        return _Object(value, where, self)

    def text(self, value: object, where: str) -> str:
        if not isinstance(value, str):
            raise self.wrong(where, "a string", value)
        return value

    def optional_text(self, value: object, where: str) -> str | None:
        return None if value is None else self.text(value, where)

    def integer(self, value: object, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong(where, "an integer", value)
        return value

    def number(self, value: object, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.wrong(where, "a number", value)
        return value

    def optional_number(self, value: object, where: str) -> float | None:
        return None if value is None else self.number(value, where)

    def flag(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.wrong(where, "true or false", value)
        return value

    def _list(self, value: object, where: str, item: Callable[[object, str], T]
              ) -> tuple[T, ...]:
        if not isinstance(value, list):
            raise self.wrong(where, "a list", value)
        return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))

    def texts(self, value: object, where: str) -> tuple[str, ...]:
        return self._list(value, where, self.text)

    def integers(self, value: object, where: str) -> tuple[int, ...]:
        return self._list(value, where, self.integer)

    def integer_rows(self, size: int) -> Callable[[object, str], tuple[tuple[int, ...], ...]]:
        def row(value: object, where: str) -> tuple[int, ...]:
            found = self.integers(value, where)
            if len(found) != size:
                raise ManifestError(f"{self.path}: '{where}' should hold {size} integers, not "
                                    f"{len(found)}; {AGAIN}")
            return found

        return lambda value, where: self._list(value, where, row)

    def _map(self, value: object, where: str, item: Callable[[object, str], T]
             ) -> dict[str, T]:
        if not isinstance(value, dict):
            raise self.wrong(where, "an object", value)
        return {key: item(v, f"{where}.{key}") for key, v in sorted(value.items())}

    def text_map(self, value: object, where: str) -> dict[str, str]:
        return self._map(value, where, self.text)

    def number_map(self, value: object, where: str) -> dict[str, float]:
        return self._map(value, where, self.number)


class _Object:
    """A JSON object of the file and where it is, for its fields' checks."""

    def __init__(self, value: Mapping[str, Any], where: str, fields: _Fields) -> None:
        self.value, self.where, self.fields = value, where, fields

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, check: Callable[[object, str], T]) -> T:
        if key not in self.value:
            raise ManifestError(f"{self.fields.path}: '{self._name(key)}' is missing; {AGAIN}")
        return check(self.value[key], self._name(key))

    def optional(self, key: str, check: Callable[[object, str], T], default: T) -> T:
        return check(self.value[key], self._name(key)) if key in self.value else default

    def object(self, key: str) -> _Object:
        return self.get(key, self.fields.object_at)

    def objects(self, key: str) -> Iterator[_Object]:
        items = self.get(key, lambda value, where: self.fields._list(value, where, _any))
        for index, item in enumerate(items):
            yield self.fields.object_at(item, f"{self._name(key)}[{index}]")
