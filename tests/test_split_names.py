"""Step names made from markdown headings (`--split headings`): short, unique identifiers,
with the whole heading kept in the step function's docstring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nb2pipe.convert import convert
from nb2pipe.notebook.split import NAME_CHARS, heading_step_name, heading_text
from nb2pipe.notebook.tags import step_name_problem

LONG = ("4.4 GridSearchCV evaluating using multiple scorers, RepeatedStratifiedKFold and "
        "pipeline for preprocessing simultaneously")


@pytest.mark.parametrize(("heading", "name"), [
    (LONG, "gridsearchcv_evaluating_multiple"),
    ("Load", "load"),
    ("Sort the data", "sort_data"),
    ("1. Import the libraries and load the data", "import_libraries_load_data"),
    ("II. Feature engineering", "feature_engineering"),
    ("Step 3: [Train](https://example.org) the *model*", "step_3_train_model"),
    ("3D plots of the results", "step_3d_plots_results"),
    ("The End", "end"),
    ("Class", "class_"),
    ("¿Qué pasa?", "que_pasa"),
    ("!!!", "step"),
    ("Supercalifragilisticexpialidocious_and_then_some_more", "supercalifragilisticexpialidocio"),
])
def test_a_heading_gives_a_short_identifier(heading: str, name: str) -> None:
    made = heading_step_name(heading_text(heading))
    assert made == name
    assert len(made) <= NAME_CHARS
    assert step_name_problem(made) is None


def _notebook(path: Path, headings: list[str]) -> Path:
    cells = []
    for number, heading in enumerate(headings):
        cells.append({"cell_type": "markdown", "id": f"m{number}", "metadata": {},
                      "source": f"## {heading}"})
        cells.append({"cell_type": "code", "id": f"c{number}", "metadata": {}, "outputs": [],
                      "execution_count": None, "source": f"value_{number} = {number}"})
    path.write_text(json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}}))
    return path


def test_heading_steps_are_unique_and_short_and_keep_the_heading_as_docstring(
        tmp_path: Path) -> None:
    headings = [LONG, LONG.replace("4.4", "4.5"), "Evaluate the model", "Evaluate the model",
                'A "quoted" heading with a back\\slash']
    result = convert(_notebook(tmp_path / "long.ipynb", headings), tmp_path / "out",
                     split="headings")
    assert result.ok, [d.message for d in result.diagnostics]
    manifest = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    names = [s["name"] for s in manifest["steps"]]
    assert names == ["gridsearchcv_evaluating_multiple", "gridsearchcv_evaluating_multip_2",
                     "evaluate_model", "evaluate_model_2", "quoted_heading_back_slash"]
    assert all(len(n) <= NAME_CHARS and step_name_problem(n) is None for n in names)
    steps = (tmp_path / "out" / "steps.py").read_text()
    namespace: dict[str, object] = {}
    exec(compile(steps, "steps.py", "exec"), namespace)  # our own generated code
    for step, heading in zip(manifest["steps"], headings, strict=True):
        doc = str(namespace[step["function"]].__doc__)
        assert " ".join(doc.split()).startswith(heading), (step["name"], doc)
