"""Every diagnostic code fires where it should, with a cell, a line where one applies, a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import NOTEBOOKS, write_notebook

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
    "NB111": ("error_nothing_runs", 1),
    "NB112": ("error_python2", 2),
    "NB113": ("error_parameters", 1),
    "NB201": ("error_undefined", 2),
    "NB202": ("error_cycle", 1),
    "NB203": ("error_import_star", 2),
    "NB204": ("error_output_history", 3),
    "NB301": ("del_name", 3),
    "NB302": ("warn_global_exec", 1),
    "NB303": ("warn_global_exec", 2),
    "NB304": ("warn_unserializable", 1),
    "NB305": ("warn_file_handoff", 3),
    "NB306": ("warn_display_seed", 3),
    "NB307": ("warn_hidden_seed", 2),
    "NB308": ("warn_value_reads_later", 2),
    "NB309": ("warn_name_defined_nowhere", 3),
    "NB310": ("warn_query_built_at_run_time", 2),
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


def test_python2_notebook_is_one_error_not_a_cascade() -> None:
    graph = analyze_notebook(NOTEBOOKS / "error_python2.ipynb")
    assert [d.code for d in graph.diagnostics] == ["NB112"]
    message = graph.diagnostics[0].message
    assert message.startswith("Python 2 notebook: 2 cells (2, 3)") and "xrange" in message


def test_python2_kernel_whose_code_parses_is_named_by_its_builtins() -> None:
    # A Python 2 notebook without print statements: its builtins are one NB112, not NB201s;
    # names it binds itself (`file`, an imported `reduce`) are not Python 2's.
    graph = analyze_notebook(NOTEBOOKS / "error_python2_builtins.ipynb")
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB112", 2, 1)]
    assert graph.diagnostics[0].message == (
        "Python 2 notebook: it uses Python 2 builtins (unicode, xrange), which Python 3 does "
        "not have")


def test_prose_pasted_into_a_python3_cell_is_a_syntax_error_not_python2(tmp_path: Path) -> None:
    """`%load README.txt` pastes prose into the cell; its "January 09" is the leading-zeros
    error Python 2 octals also make, but nothing else says Python 2: the cell fails to
    parse (NB108), in Jupyter too."""
    notebook = write_notebook(
        tmp_path / "pasted.ipynb",
        "# %load README.txt\nSummary\n=======\nThe ratings were made on January 09, 1995.",
        "x = 1")
    graph = analyze_notebook(notebook)
    errors = [d for d in graph.diagnostics if d.severity == "error"]
    assert [(d.code, d.cell, d.line) for d in errors] == [("NB108", 1, 4)]
    assert "leading zeros" in errors[0].message and "Python 2" not in errors[0].message


def test_magics_and_shell_aliases_called_without_percent_run_as_ipython_runs_them(
        tmp_path: Path) -> None:
    """IPython's automagic: `rm old.csv`, `mkdir -p out`, `ls data/`, `pip install x` in a
    code cell run as the magic or alias. No syntax error; the shell ones run in the step."""
    from nb2pipe.convert import convert

    notebook = write_notebook(
        tmp_path / "automagic.ipynb",
        ("pip install tqdm\nls data/\nmkdir -p out\nrows = [1, 2]", "step:prepare"),
        ("rm -f out/old.csv\ntotal = sum(rows)", "step:total"))
    graph = analyze_notebook(notebook)
    assert not [d for d in graph.diagnostics if d.severity == "error"], graph.diagnostics
    assert convert(notebook, tmp_path / "project").ok
    steps = (tmp_path / "project" / "steps.py").read_text()
    assert "subprocess.run('mkdir -p out', shell=True)" in steps
    assert "subprocess.run('rm -f out/old.csv', shell=True)" in steps
    assert "# ls data/" in steps and "tqdm" in (tmp_path / "project" / "requirements.txt"
                                                  ).read_text()


def test_magic_written_with_a_space_is_named() -> None:
    graph = analyze_notebook(NOTEBOOKS / "warn_magic_space.ipynb")
    [found] = [d for d in graph.diagnostics if d.code == "NB109"]
    assert "`% matplotlib inline`" in found.message and "%matplotlib" in (found.hint or "")


def test_the_readme_table_lists_every_code_with_its_severity() -> None:
    """The README's table of codes is the CODES table as users read it; NB306 (a cell whose
    output goes to the run's report) is information, not a warning."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = dict(re.findall(r"^\| (NB\d{3}) \| (\w+) \|", readme, re.MULTILINE))
    assert listed == {code: c.severity.value for code, c in CODES.items()}
    assert listed["NB306"] == "info"
