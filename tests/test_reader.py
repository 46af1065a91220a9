"""Reading notebook files: what nbformat would give, without paying for importing it."""

from __future__ import annotations

import json
from pathlib import Path

from nb2pipe.notebook.reader import read_notebook

V3 = {
    "nbformat": 3, "nbformat_minor": 0,
    "metadata": {"name": "old", "signature": ""},
    "worksheets": [
        {"cells": [
            {"cell_type": "heading", "level": 2, "metadata": {}, "source": ["Load\n", "data"]},
            {"cell_type": "code", "collapsed": False, "input": ["a = 1\n", "b = a"],
             "language": "python", "metadata": {"tags": ["step:load"]}, "outputs": [],
             "prompt_number": 3},
            {"cell_type": "markdown", "metadata": {}, "source": "Some *text*"},
            {"cell_type": "raw", "metadata": {}, "source": "raw text"},
        ]},
        {"cells": [
            {"cell_type": "code", "input": "c = b", "language": "python", "metadata": {},
             "outputs": []},
        ]},
    ],
}


def test_nbformat_3_reads_as_nbformat_upgrades_it(tmp_path: Path) -> None:
    import nbformat

    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(V3))
    ours = read_notebook(path)
    theirs = nbformat.reads(json.dumps(V3), as_version=4)
    assert [(c.cell_type, c.source) for c in ours.cells] == [
        (c.cell_type, c.source) for c in theirs.cells]
    assert ours.cells[1].tags == ("step:load",) and ours.cells[1].execution_count == 3
    assert [c.id for c in ours.cells] == [f"cell-{i}" for i in range(1, 6)]  # deterministic
