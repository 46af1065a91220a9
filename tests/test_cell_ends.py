"""Figures of a plotting step are shown and closed where each of its cells ends, as in Jupyter."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import matplotlib
import pytest

from nb2pipe.runtime.cell_ends import with_cell_ends
from nb2pipe.runtime.manifest import LineRun

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend

STEPS = '''import matplotlib.pyplot as plt


def draw(n):
    """Cells 2, 3."""
    # from cell 1
    made = plt.figure()
    # cell 2
    plt.plot([1, n])
    first = plt.gcf()
    # cell 3
    second = plt.gcf()
    if n < 0:
        raise ValueError(n)
    return {"made": made, "first": first, "second": second}
'''
# steps.py lines 7 (code the step needs from cell 1), 9-10 (cell 2) and 12-14 (cell 3)
LINES = (LineRun(7, 1, 4, 1), LineRun(9, 2, 1, 2), LineRun(12, 3, 1, 3))
CELLS = (2, 3)


@pytest.fixture
def steps(tmp_path: Path) -> Iterator[ModuleType]:
    path = tmp_path / "steps.py"
    path.write_text(STEPS, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("steps_with_cells", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plt.close("all")
    yield module
    plt.close("all")
    sys.modules.pop("steps_with_cells", None)


def test_the_next_cell_draws_on_a_new_figure_and_none_is_left_open(steps: ModuleType) -> None:
    as_written = steps.draw(2)
    assert as_written["first"] is as_written["second"]  # one figure across the cells
    plt.close("all")
    result = with_cell_ends(steps.draw, LINES, CELLS)(2)
    assert result["first"] is not result["second"]
    # The first cell drew on the figure made above it (that code is not a cell of the step).
    assert result["first"] is result["made"]
    assert plt.get_fignums() == []


def test_errors_keep_their_file_and_line(steps: ModuleType) -> None:
    with pytest.raises(ValueError) as raised:
        with_cell_ends(steps.draw, LINES, CELLS)(-1)
    last = traceback.extract_tb(raised.value.__traceback__)[-1]
    assert (last.filename, last.lineno, last.line) == (steps.__file__, 14,
                                                       "raise ValueError(n)")


def test_a_step_moved_since_it_was_loaded_runs_as_loaded(steps: ModuleType) -> None:
    Path(steps.__file__).write_text("\n\n" + STEPS, encoding="utf-8")
    assert with_cell_ends(steps.draw, LINES, CELLS) is steps.draw


def test_a_step_edited_since_it_was_loaded_runs_as_loaded(steps: ModuleType) -> None:
    edited = STEPS.replace("second = plt.gcf()", "second = None     ")  # same lines
    Path(steps.__file__).write_text(edited, encoding="utf-8")
    assert with_cell_ends(steps.draw, LINES, CELLS) is steps.draw
