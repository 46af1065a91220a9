"""papermill's parameter flags, with papermill's meaning, checked against the notebook's types."""

from __future__ import annotations

from pathlib import Path

import pytest

from nb2pipe.execute.param_flags import ParameterArgs, ParameterError, check, collect, resolve_type

DECLARED = {"rate": "float", "n": "int", "name": "str", "flag": "bool", "layers": "list[int]",
            "limit": "None", "mode": "Literal['a', 'b']", "cap": "int | None"}


@pytest.mark.parametrize(("text", "value"), [
    ("True", True), ("False", False), ("None", None), ("3", 3), ("-2", -2), ("0.5", 0.5),
    ("1e3", 1000.0), ("abc", "abc"), ("true", "true"), ("", ""),
])
def test_p_values_are_typed_like_papermill(text: str, value: object) -> None:
    assert resolve_type(text) == value and type(resolve_type(text)) is type(value)


def test_later_flags_win_in_papermills_order(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("n: 1\nname: from-file\nrate: 0.1\nday: 2024-01-02\n")
    flags = ParameterArgs(files=[str(params)], yaml=["n: 2\nname: from-yaml"],
                          typed=[("n", "3")], raw=[("name", "42")])
    values = collect(flags)
    assert values == {"n": 3, "name": "42", "rate": 0.1, "day": "2024-01-02"}  # dates stay text


def test_values_are_checked_and_converted() -> None:
    checked = check({"rate": 1, "n": 4, "name": "x", "flag": False, "layers": [1, 2],
                     "limit": "anything", "mode": "b", "cap": None}, DECLARED)
    assert checked["rate"] == 1.0 and isinstance(checked["rate"], float)
    assert checked["layers"] == [1, 2]


@pytest.mark.parametrize(("name", "value", "message"), [
    ("n", "abc", "parameter 'n' is int, but got 'abc' (str)"),
    ("n", 1.5, "parameter 'n' is int"),
    ("flag", 1, "parameter 'flag' is bool"),
    ("name", 42, "pass text with -r name VALUE"),
    ("layers", "[1, 2]", "pass it as YAML"),
    ("layers", ["a"], "parameter 'layers' is list[int]"),
    ("mode", "c", "Literal"),
    ("cap", "x", "int | None"),
    ("rat", 1.0, "unknown parameter 'rat'; did you mean 'rate'?"),
])
def test_wrong_values_are_refused_with_the_fix(name: str, value: object, message: str) -> None:
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]").replace("|", r"\|")):
        check({name: value}, DECLARED)


def test_bad_yaml_is_a_clear_error() -> None:
    with pytest.raises(ParameterError, match="-y: not valid YAML"):
        collect(ParameterArgs(yaml=["n: [1"]))
    with pytest.raises(ParameterError, match="mapping"):
        collect(ParameterArgs(yaml=["- 1"]))
