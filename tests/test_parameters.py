"""The parameters cell: literal assignments become typed flow parameters."""

from __future__ import annotations

from support import codes, graph_of


def test_types_defaults_and_help() -> None:
    g = graph_of(('rate: float = 1  # learning rate\nname = "a"\nn = -3\nflags = [True]\n'
                  'opts = {"k": (1, 2)}\nnothing = None', "parameters"), ("x = rate", "step:s"))
    params = {p.name: p for p in g.parameters}
    assert params["rate"].type == "float" and params["rate"].default == 1
    assert params["rate"].help == "learning rate"
    assert params["name"].type == "str" and params["n"].default == -3
    assert params["flags"].type == "list[bool]"
    assert params["opts"].default == {"k": [1, 2]}
    assert params["nothing"].type == "None"
    assert "NB105" not in codes(g)


def test_non_literal_values_are_errors_with_line() -> None:
    g = graph_of(("a = 1\nb = a + 1\nc = f()\nfor i in []: pass", "parameters"))
    lines = [d.line for d in g.diagnostics if d.code == "NB105"]
    assert lines == [2, 3, 4]


def test_imports_and_strings_are_allowed() -> None:
    g = graph_of(('"""Parameters."""\nimport os\npath = "x"', "parameters"),
                 ("p = os.path.join(path)", "step:s"))
    assert codes(g) == []


def test_second_parameters_cell_warns() -> None:
    g = graph_of(("a = 1", "parameters"), ("b = 2", "parameters"), ("c = a + b", "step:s"))
    assert codes(g) == ["NB106"]


def test_only_plain_type_annotations_reach_the_flow() -> None:
    g = graph_of(('a: int | None = 1\nb: Literal["x", "y"] = "x"\nc: list[str] = []\n'
                  'd: "os.system(1)" = 2\ne: __import__("os").X = 3\nf: list["evil()"] = []',
                  "parameters"), ("z = a", "step:s"))
    types = {p.name: p.type for p in g.parameters}
    assert types == {"a": "int | None", "b": "Literal['x', 'y']", "c": "list[str]",
                     "d": "int", "e": "int", "f": "list"}
