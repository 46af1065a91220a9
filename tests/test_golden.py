"""Golden files: each test notebook's check JSON, kept beside it. `pytest --update-golden` rewrites
them, so a change in behaviour shows up as a reviewable diff."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support import EXAMPLES, NOTEBOOKS, match_golden

from nb2pipe.graph_text import check_json
from nb2pipe.pipeline import analyze_notebook

sys.path.insert(0, str(NOTEBOOKS))
import make_notebooks

CASES = sorted(make_notebooks.CASES)
SPLIT = {"split_headings": "headings", "split_cells": "cells"}


def _check(path: Path, split: str) -> str:
    document = check_json(analyze_notebook(path, split))
    document["notebook"] = path.name
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


@pytest.mark.parametrize("name", CASES)
def test_notebook_matches_its_spec(name: str) -> None:
    written = (NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8")
    assert written == make_notebooks.render(name), "run tests/notebooks/make_notebooks.py"


@pytest.mark.parametrize("name", CASES)
def test_graph_matches_golden(name: str, update_golden: bool) -> None:
    actual = _check(NOTEBOOKS / f"{name}.ipynb", SPLIT.get(name, "tags"))
    match_golden(actual, NOTEBOOKS / f"{name}.graph.json", update_golden)


@pytest.mark.parametrize("notebook", sorted(EXAMPLES.glob("*/*.ipynb")), ids=lambda p: p.stem)
def test_example_matches_golden(notebook: Path, update_golden: bool) -> None:
    match_golden(_check(notebook, "tags"), notebook.with_suffix(".graph.json"), update_golden)


def test_a_missing_golden_file_fails_and_is_not_written(tmp_path: Path) -> None:
    golden = tmp_path / "new_case.graph.json"
    with pytest.raises(AssertionError, match="missing: run pytest --update-golden"):
        match_golden("{}\n", golden, update=False)
    assert not golden.exists()
    match_golden("{}\n", golden, update=True)
    assert golden.read_text(encoding="utf-8") == "{}\n"
    with pytest.raises(AssertionError):
        match_golden("[]\n", golden, update=False)
