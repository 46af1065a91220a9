"""The tag grammar: one table, read by the splitter and served as JSON to the JupyterLab UI."""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass
from typing import Any

from nb2pipe.diagnostics import close_match


@dataclass(frozen=True)
class TagKind:
    """One kind of tag: `prefix` alone is a flag; with a `value` it is written `prefix:VALUE`."""

    kind: str  # the meaning, shared by a tag and its aliases
    prefix: str
    value: str | None  # None (flag), "name", "int", "seconds", "off", "number", "size"
    description: str
    alias_of: str | None = None  # the preferred spelling; aliases are read, never written
    origin: str = "nb2pipe"
    empty_continues: bool = False  # `prefix:` with no value continues the step above (Kale)


GRAMMAR: tuple[TagKind, ...] = (
    TagKind("step", "step", "name", "This cell starts step NAME; untagged cells below it join it."),
    TagKind("after", "after", "name", "Run after step NAME even without a data dependency."),
    TagKind("parameters", "parameters", None, "papermill parameters: literal assignments."),
    TagKind("skip", "skip", None, "Not part of the pipeline (EDA, plots)."),
    TagKind("metrics", "metrics", None, "Values assigned or printed here become artifacts."),
    TagKind("retries", "retries", "int", "Retry the step up to N times on transient errors."),
    TagKind("timeout", "timeout", "seconds", "Fail the step after SECONDS."),
    TagKind("cache", "cache", "off", "Always re-run the step (cache:off)."),
    TagKind("cpu", "cpu", "number", "Run the step on a Dask worker with N CPU (resource CPU)."),
    TagKind("memory", "memory", "size",
            "Run the step on a Dask worker with SIZE of memory, e.g. 4GB (resource MEMORY)."),
    TagKind("gpu", "gpu", "number", "Run the step on a Dask worker with N GPU (resource GPU)."),
    TagKind("step", "block", "name", "Kale: starts a step.", alias_of="step", origin="kale",
            empty_continues=True),
    TagKind("after", "prev", "name", "Kale: ordering edge.", alias_of="after", origin="kale"),
    TagKind(
        "parameters", "pipeline-parameters", None, "Kale: parameters.",
        alias_of="parameters", origin="kale",
    ),
    TagKind(
        "metrics", "pipeline-metrics", None, "Kale: metrics.", alias_of="metrics", origin="kale"
    ),
    TagKind(
        "skip", "injected-parameters", None, "papermill: values a past run injected; ignored.",
        alias_of="skip", origin="papermill",
    ),
    TagKind("library", "imports", None, "Kale: imports, emitted where needed.", origin="kale"),
    TagKind(
        "library", "functions", None, "Kale: definitions, emitted where needed.", origin="kale"
    ),
)

# Kale tags that configure Kubeflow resources: recognised so they raise no warning, then ignored.
IGNORED_PREFIXES = ("limit", "annotation", "label", "volume", "image")

_BY_PREFIX = {k.prefix: k for k in GRAMMAR}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Tag:
    """A parsed tag. `kind` is None for a tag that is not ours; `problem` says what is wrong."""

    raw: str
    kind: str | None
    value: str | None = None
    problem: str | None = None
    suggestion: str | None = None


def parse_tag(raw: str) -> Tag:
    prefix, sep, value = raw.partition(":")
    spec = _BY_PREFIX.get(prefix)
    if spec is None:
        if prefix in IGNORED_PREFIXES:
            return Tag(raw, None)
        guess = close_match(prefix, _BY_PREFIX, cutoff=0.75)
        if guess is None:
            return Tag(raw, None)
        suggestion = f"{guess}:{value}" if sep and _BY_PREFIX[guess].value else guess
        return Tag(raw, None, problem="unknown", suggestion=suggestion)
    if spec.value is None:
        if sep:
            return Tag(raw, spec.kind, problem=f"tag '{prefix}' takes no value", suggestion=prefix)
        return Tag(raw, spec.kind)
    if sep and not value and spec.empty_continues:
        return Tag(raw, spec.kind)  # Kale's `block:` continues the block above
    if not sep or not value:
        shape = f"{prefix}:{_SHAPE[spec.value]}"
        return Tag(raw, spec.kind, problem=f"tag '{prefix}' needs a value: {shape}")
    problem = _VALUE_CHECKS[spec.value](value)
    return Tag(raw, spec.kind, value=value, problem=problem)


def step_name_problem(name: str) -> str | None:
    if not _IDENTIFIER.match(name):
        return "is not a Python identifier"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "is a Python keyword"
    return None


def suggest_identifier(name: str) -> str:
    """A valid step name close to `name`: `Load Data-2` -> `load_data_2`."""
    slug = re.sub(r"[^0-9A-Za-z_]+", "_", name.strip()).strip("_").lower()
    if not slug:
        slug = "step"
    if slug[0].isdigit():
        slug = f"step_{slug}"
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug):
        slug = f"{slug}_"
    return slug


def tag_usage(raw: str) -> str | None:
    """How a tag with this prefix is written: `retries:x` -> "write it as retries:N"."""
    spec = _BY_PREFIX.get(raw.partition(":")[0])
    if spec is None:
        return None
    shape = spec.prefix if spec.value is None else f"{spec.prefix}:{_SHAPE[spec.value]}"
    return f"write it as {shape} ({spec.description[0].lower()}{spec.description[1:]})"


_WHOLE = re.compile(r"^[0-9]{1,6}$")
_NUMBER = re.compile(r"^[+-]?[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?$", re.IGNORECASE)


def _check_int(value: str) -> str | None:
    if _WHOLE.match(value):
        return None
    if value.isascii() and value.isdigit():
        return f"'{value}' is too large"
    return f"'{value}' is not a whole number >= 0"


def _check_seconds(value: str) -> str | None:
    if not _NUMBER.match(value):
        return f"'{value}' is not a number of seconds"
    if not math.isfinite(seconds := float(value)):
        return f"'{value}' is too large a number of seconds"
    return None if seconds > 0 else f"'{value}' must be more than 0 seconds"


def _check_off(value: str) -> str | None:
    return None if value in ("off", "on") else f"'{value}' must be 'off' or 'on'"


def _check_number(value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return f"'{value}' is not a number"
    return None if 0 < number < float("inf") else f"'{value}' must be more than 0"


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?$", re.IGNORECASE)


def size_in_bytes(value: str) -> int | None:
    """`4GB` -> 4_000_000_000, `512MiB` -> 536_870_912, `1000` -> 1000; None if not a size."""
    found = _SIZE.match(value.strip())
    if found is None:
        return None
    unit = (found.group(2) or "B").upper().rstrip("B")
    base = 1024 if unit.endswith("I") else 1000
    power = "KMGT".index(unit[0]) + 1 if unit else 0
    return int(float(found.group(1)) * base**power)


def _check_size(value: str) -> str | None:
    size = size_in_bytes(value)
    if size is None:
        return f"'{value}' is not a size (e.g. 512MB, 4GB, 2GiB)"
    return None if size > 0 else f"'{value}' must be more than 0"


_VALUE_CHECKS = {
    "name": lambda v: None,  # step names are checked where they are declared
    "int": _check_int,
    "seconds": _check_seconds,
    "off": _check_off,
    "number": _check_number,
    "size": _check_size,
}
_SHAPE = {"name": "NAME", "int": "N", "seconds": "SECONDS", "off": "off", "number": "N",
          "size": "SIZE"}


def grammar_json() -> dict[str, Any]:
    """The grammar for the frontend, which never re-implements it."""
    return {
        "tags": [
            {
                "kind": k.kind,
                "prefix": k.prefix,
                "value": k.value,
                "description": k.description,
                "alias_of": k.alias_of,
                "origin": k.origin,
                "example": k.prefix if k.value is None else f"{k.prefix}:{_SHAPE[k.value]}",
            }
            for k in GRAMMAR
        ],
        "ignored_prefixes": list(IGNORED_PREFIXES),
        "identifier_pattern": _IDENTIFIER.pattern,
    }
