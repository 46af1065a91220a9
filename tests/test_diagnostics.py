"""Every diagnostic code fires where it should, with a cell, a line where one applies, a hint."""

from __future__ import annotations

import pytest
from support import NOTEBOOKS

from nb2pipe.diagnostics import CODES
from nb2pipe.pipeline import analyze_notebook

EXPECTED = {  # code -> (test notebook, cell)
    "NB101": ("error_step_names", 1),
    "NB102": ("error_step_names", 4),
    "NB103": ("error_tags", 1),
    "NB104": ("error_tags", 2),
    "NB105": ("error_parameters", 1),
    "NB107": ("error_tags", 3),
    "NB108": ("error_syntax", 2),
    "NB109": ("warn_magic_empty_step", 2),
    "NB110": ("warn_magic_empty_step", 3),
    "NB111": ("error_parameters", 1),
    "NB201": ("error_undefined", 2),
    "NB202": ("error_cycle", 1),
    "NB203": ("error_import_star", 2),
    "NB301": ("del_name", 3),
    "NB302": ("warn_global_exec", 1),
    "NB303": ("warn_global_exec", 2),
    "NB304": ("warn_unserializable", 1),
    "NB305": ("warn_file_handoff", 3),
    "NB306": ("warn_display_seed", 3),
    "NB307": ("warn_display_seed", 1),
}


def test_every_code_is_covered() -> None:
    assert set(EXPECTED) | {"NB106"} == set(CODES)  # NB106 is covered in test_parameters


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_code_fires_with_location_and_hint(code: str) -> None:
    name, cell = EXPECTED[code]
    graph = analyze_notebook(NOTEBOOKS / f"{name}.ipynb")
    found = [d for d in graph.diagnostics if d.code == code]
    assert found, f"{code} not reported for {name}"
    assert found[0].cell == cell
    assert found[0].severity == CODES[code].severity
    assert found[0].hint
    assert found[0].cell_id == f"c{cell:02d}"
