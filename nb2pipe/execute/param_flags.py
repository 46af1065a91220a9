"""papermill's parameter flags, with papermill's meaning, checked against the notebook's types.

Order, as in papermill: `-f FILE` (YAML files), then `-y YAML`, then `-p NAME VALUE` (True,
False, None, ints and floats are typed; anything else is text), then `-r NAME VALUE` (always
text). Later values win. Every value is checked against the type inferred from the parameters
cell before any step runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2pipe.diagnostics import close_match
from nb2pipe.exceptions import Nb2pipeError


class ParameterError(Nb2pipeError):
    """A parameter value is unknown or of the wrong type: one line, naming the fix."""


@dataclass
class ParameterArgs:
    files: list[str] = field(default_factory=list)  # -f
    yaml: list[str] = field(default_factory=list)  # -y
    typed: list[tuple[str, str]] = field(default_factory=list)  # -p
    raw: list[tuple[str, str]] = field(default_factory=list)  # -r


def resolve_type(value: str) -> Any:
    """papermill's `-p` typing."""
    if value == "True":
        return True
    if value == "False":
        return False
    if value == "None":
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def collect(args: ParameterArgs) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in args.files:
        values.update(_yaml(Path(path).read_text(encoding="utf-8"), f"-f {path}"))
    for text in args.yaml:
        values.update(_yaml(text, "-y"))
    for name, value in args.typed:
        values[name] = resolve_type(value)
    for name, value in args.raw:
        values[name] = value
    return values


def _yaml(text: str, where: str) -> dict[str, Any]:
    import yaml

    class NoDates(yaml.SafeLoader):  # papermill keeps dates as text
        pass

    NoDates.yaml_implicit_resolvers = {
        key: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    try:
        loaded = yaml.load(text, Loader=NoDates) or {}  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ParameterError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ParameterError(f"{where}: parameters must be a YAML mapping of name: value")
    return loaded


def check(values: dict[str, Any], types: Mapping[str, str],
          flags: ParameterArgs | None = None) -> dict[str, Any]:
    """Validate and convert `values` against the notebook's parameters (name -> type); returns
    the values to pass (ints given for floats become floats)."""
    checked: dict[str, Any] = {}
    raw_names = {name for name, _ in flags.raw} if flags else set()
    for name, value in values.items():
        if name not in types:
            guess = close_match(name, types)
            hint = f"; did you mean '{guess}'?" if guess else (
                f"; the notebook's parameters are: {', '.join(sorted(types)) or 'none'}")
            raise ParameterError(f"unknown parameter '{name}'{hint}")
        ok, converted = _conforms(value, types[name])
        if not ok:
            raise ParameterError(_mismatch(name, value, types[name], name in raw_names))
        checked[name] = converted
    return checked


def _mismatch(name: str, value: Any, type_name: str, raw: bool) -> str:
    shown = f"{value!r} ({type(value).__name__})"
    message = f"parameter '{name}' is {type_name}, but got {shown}"
    if type_name == "str" and not raw:
        return f"{message}: pass text with -r {name} VALUE"
    if type_name.startswith(("list", "dict", "tuple")):
        return f"{message}: pass it as YAML, e.g. -y '{name}: ...'"
    return message


def _conforms(value: Any, type_name: str) -> tuple[bool, Any]:
    type_name = type_name.replace(" ", "")
    optional = re.fullmatch(r"(?:typing\.)?Optional\[(.+)\]", type_name)
    if optional:
        type_name = f"{optional.group(1)}|None"
    if "|" in type_name and not type_name.startswith("Literal["):
        for option in _split_union(type_name):
            if option in ("None", "NoneType"):  # in a union: the value None itself
                if value is None:
                    return True, value
                continue
            ok, converted = _conforms(value, option)
            if ok:
                return True, converted
        return False, value
    literal = re.fullmatch(r"(?:typing\.)?Literal\[(.+)\]", type_name)
    if literal:
        import ast

        try:
            allowed = ast.literal_eval(f"[{literal.group(1)}]")
        except (ValueError, SyntaxError):
            return True, value
        return value in allowed, value
    base, _, inner = type_name.partition("[")
    base = base.rpartition(".")[2]
    if base in ("None", "NoneType"):
        return True, value  # the notebook's default is None: any value
    if base == "bool":
        return isinstance(value, bool), value
    if base == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if base == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if base == "str":
        return isinstance(value, str), value
    if base in ("list", "List", "tuple", "Tuple", "Sequence"):
        if not isinstance(value, list | tuple):
            return False, value
        element = inner[:-1] if inner else ""
        if element and "," not in element:
            results = [_conforms(v, element) for v in value]
            return all(ok for ok, _ in results), [c for _, c in results]
        return True, list(value)
    if base in ("dict", "Dict", "Mapping"):
        return isinstance(value, dict), value
    return True, value  # a type nb2pipe cannot check: the flow's own validation decides


def _split_union(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "[") - (char == "]")
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]
