"""nb2pipe convert: the generated project, byte for byte, and the rules for writing it."""

from __future__ import annotations

import ast
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import EXAMPLES, NOTEBOOKS

from nb2pipe.cli import main
from nb2pipe.convert import ConvertError, convert
from nb2pipe.pipeline import analyze_notebook

GOLDEN = Path(__file__).parent / "golden"
EXAMPLE_NOTEBOOKS = sorted(EXAMPLES.glob("*/*.ipynb"))
CONVERTIBLE = sorted(
    p for p in NOTEBOOKS.glob("*.ipynb")
    if not p.stem.startswith("error_") and p.stem not in ("scoping",)
)
SPLIT = {"split_headings": "headings", "split_cells": "cells"}
# Differ between machines (versions installed where converting), so not golden.
MACHINE_SPECIFIC = {"requirements.txt", "pipeline.json"}


def convert_copy(notebook: Path, tmp_path: Path, **options: Any) -> Path:
    """Convert a copy of the notebook (and its data) so nothing is written into the repo."""
    folder = tmp_path / notebook.parent.name
    if not folder.exists():
        shutil.copytree(notebook.parent, folder, ignore=shutil.ignore_patterns("*_pipeline"))
    output = folder / f"{notebook.stem}_pipeline"
    result = convert(folder / notebook.name, output, **options)
    assert result.ok, [d.message for d in result.diagnostics]
    return output


def project_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*")) if p.is_file()
            and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts}


def compare_golden(actual: dict[str, str], golden: Path, update: bool) -> None:
    if update:
        shutil.rmtree(golden, ignore_errors=True)
        for path, text in actual.items():
            (golden / path).parent.mkdir(parents=True, exist_ok=True)
            (golden / path).write_text(text, encoding="utf-8")
    assert golden.is_dir(), f"{golden} is missing: run pytest --update-golden and review it"
    assert actual == project_files(golden)


@pytest.mark.parametrize("notebook", EXAMPLE_NOTEBOOKS, ids=lambda p: p.stem)
def test_example_project_matches_golden(notebook: Path, tmp_path: Path,
                                        update_golden: bool) -> None:
    files = project_files(convert_copy(notebook, tmp_path))
    kept = {p: t for p, t in files.items()
            if p not in MACHINE_SPECIFIC and not p.startswith("nb2pipe_runtime/")}  # a copy
    compare_golden(kept, GOLDEN / notebook.stem, update_golden)


@pytest.mark.parametrize("notebook", CONVERTIBLE, ids=lambda p: p.stem)
def test_semantic_notebook_code_matches_golden(notebook: Path, tmp_path: Path,
                                               update_golden: bool) -> None:
    output = convert_copy(notebook, tmp_path, split=SPLIT.get(notebook.stem, "tags"))
    files = project_files(output)
    kept = {p: files[p] for p in ("steps.py", "flow.py")}
    compare_golden(kept, GOLDEN / "notebooks" / notebook.stem, update_golden)


@pytest.mark.parametrize("notebook", [*EXAMPLE_NOTEBOOKS, *CONVERTIBLE], ids=lambda p: p.stem)
def test_generated_code_passes_ruff_and_compiles(notebook: Path, tmp_path: Path) -> None:
    output = convert_copy(notebook, tmp_path, split=SPLIT.get(notebook.stem, "tags"))
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=output,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    build = subprocess.run([sys.executable, "-m", "compileall", "-q", "."], cwd=output,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout


def test_conversion_is_deterministic(tmp_path: Path) -> None:
    notebook = EXAMPLES / "churn" / "churn.ipynb"
    first = project_files(convert_copy(notebook, tmp_path / "a"))
    second = project_files(convert_copy(notebook, tmp_path / "b"))
    assert first == second


def test_check_reports_each_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = convert_copy(EXAMPLES / "kale_wine" / "kale_wine.ipynb", tmp_path)
    notebook = output.parent / "kale_wine.ipynb"
    assert main(["convert", str(notebook), "-o", str(output), "--check"]) == 0
    raw = json.loads(notebook.read_text())
    raw["cells"][8]["source"] = ["svm = SVC(C=svm_c * 2, kernel=svm_kernel)\n",
                                 "svm.fit(X_train_scaled, y_train)"]
    notebook.write_text(json.dumps(raw))
    capsys.readouterr()
    assert main(["convert", str(notebook), "-o", str(output), "--check"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{output}/steps.py: out of date with the notebook" in out
    assert f"{output}/pipeline.json: out of date with the notebook" in out
    assert all(": " in line for line in out)


def test_outputs_of_a_run_do_not_make_the_project_stale(tmp_path: Path) -> None:
    output = convert_copy(EXAMPLES / "kale_wine" / "kale_wine.ipynb", tmp_path)
    notebook = output.parent / "kale_wine.ipynb"
    raw = json.loads(notebook.read_text())
    raw["cells"][4]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["x\n"]}]
    raw["cells"][4]["execution_count"] = 7
    notebook.write_text(json.dumps(raw))
    assert convert(notebook, output, check=True).stale == []


def test_hand_edits_are_kept_unless_forced(tmp_path: Path) -> None:
    output = convert_copy(EXAMPLES / "kale_wine" / "kale_wine.ipynb", tmp_path)
    notebook = output.parent / "kale_wine.ipynb"
    steps = output / "steps.py"
    steps.write_text(steps.read_text() + "\n# my change\n")
    raw = json.loads(notebook.read_text())
    raw["cells"][9]["source"].append("\nprint('tree trained')")
    notebook.write_text(json.dumps(raw))
    with pytest.raises(ConvertError, match=r"steps\.py.*--force"):
        convert(notebook, output)
    assert steps.read_text().endswith("# my change\n")  # nothing was written
    assert "steps.py: edited by hand since it was generated" in convert(
        notebook, output, check=True).stale
    convert(notebook, output, force=True)
    assert "# my change" not in steps.read_text() and "tree trained" in steps.read_text()


def test_unknown_file_in_the_way_is_not_overwritten(tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "flow.py").write_text("# mine\n")
    with pytest.raises(ConvertError, match="not written by nb2pipe"):
        convert(NOTEBOOKS / "linear_chain.ipynb", output)
    assert (output / "flow.py").read_text() == "# mine\n"


def test_notebook_with_errors_writes_nothing(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out"
    assert main(["convert", str(NOTEBOOKS / "error_undefined.ipynb"), "-o", str(output)]) == 1
    assert not output.exists()
    assert "NB201" in capsys.readouterr().err


def test_failed_write_leaves_the_project_as_it_was(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    output = convert_copy(EXAMPLES / "kale_wine" / "kale_wine.ipynb", tmp_path)
    before = project_files(output)
    notebook = output.parent / "kale_wine.ipynb"
    raw = json.loads(notebook.read_text())
    raw["cells"][4]["source"] = ["wine = load_wine(as_frame=True)\n", "df = wine.frame.copy()"]
    notebook.write_text(json.dumps(raw))
    calls = {"n": 0}
    real_replace = os.replace

    def flaky_replace(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(ConvertError, match="No space left"):
        convert(notebook, output)
    monkeypatch.setattr(os, "replace", real_replace)
    assert project_files(output) == before
    assert not [p for p in output.parent.iterdir() if ".nb2pipe-" in p.name]  # no staging left


def test_stale_generated_files_are_removed(tmp_path: Path) -> None:
    output = convert_copy(EXAMPLES / "kale_wine" / "kale_wine.ipynb", tmp_path, docker=True)
    assert (output / "Dockerfile").exists()
    result = convert(output.parent / "kale_wine.ipynb", output, docker=False)
    assert result.removed == ["Dockerfile"] and not (output / "Dockerfile").exists()


INJECTION: dict[str, Any] = {
    "cells": [
        {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "outputs": [],
         "execution_count": None, "source": [
             'title = "a\\"\\"\\" + __import__(\'os\').system(\'echo pwned\') + \\"\\"\\"b"\n',
             "note = 'line1\\nline2\\u2028'  # help with \"\"\" quotes \\ and | pipes\n",
             'weird: __import__("os").getcwd() = 3\n']},
        {"cell_type": "code", "id": "s", "outputs": [], "execution_count": None,
         "metadata": {"tags": ["step:use", "after:use\"); import os #", "retries:1"]},
         "source": ["text = title + note\n", "count = weird"]},
    ],
    "metadata": {"kernelspec": {"name": "python3\"); import os; (\"", "language": "python",
                                "display_name": "x\"\"\""}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_notebook_content_cannot_inject_code(tmp_path: Path) -> None:
    folder = tmp_path / "odd \"name\" '''"
    folder.mkdir()
    notebook = folder / 'bad"""\'name.ipynb'
    notebook.write_text(json.dumps(INJECTION))
    result = convert(notebook, tmp_path / "out")
    assert not result.ok  # after:NAME must name a step: rejected before anything is written
    assert [d.code for d in result.diagnostics if d.severity.value == "error"] == ["NB104"]
    tagged = copy.deepcopy(INJECTION)
    tagged["cells"][1]["metadata"]["tags"] = ["step:use", "retries:1"]
    notebook.write_text(json.dumps(tagged))
    output = tmp_path / "out"
    assert convert(notebook, output).ok
    for name in ("flow.py", "steps.py", "tests/test_steps.py", "tests/test_flow.py"):
        compile((output / name).read_text(), name, "exec")
    flow = ast.parse((output / "flow.py").read_text())
    calls = {ast.unparse(n.func) for n in ast.walk(flow) if isinstance(n, ast.Call)}
    assert not any("system" in c or "__import__" in c or "getcwd" in c for c in calls)
    signature = next(n for n in flow.body if isinstance(n, ast.FunctionDef)
                     and any(ast.unparse(d).startswith("flow(") for d in n.decorator_list))
    defaults = {a.arg: ast.literal_eval(d) for a, d in zip(signature.args.args,
                                                              signature.args.defaults, strict=True)}
    assert defaults["title"] == 'a""" + __import__(\'os\').system(\'echo pwned\') + """b'
    assert defaults["note"] == "line1\nline2\u2028"
    annotation = {a.arg: ast.unparse(a.annotation) for a in signature.args.args if a.annotation}
    assert annotation["weird"] == "int"
    for name in ("README.md", "prefect.yaml", "requirements.txt"):
        assert "import os;" not in (output / name).read_text()


def test_line_map_points_at_the_cells(tmp_path: Path) -> None:
    output = convert_copy(EXAMPLES / "churn" / "churn.ipynb", tmp_path)
    manifest = json.loads((output / "pipeline.json").read_text())
    generated = (output / "steps.py").read_text().splitlines()
    graph = analyze_notebook(output.parent / "churn.ipynb")
    checked = 0
    for step in manifest["steps"]:
        for start, cell, line, count in step["lines"]:
            code = graph.notebook.cells[cell - 1].source.splitlines()
            for offset in range(count):
                found = generated[start - 1 + offset].strip()
                if found.startswith("displayhook(") and found.endswith(")"):
                    found = found[len("displayhook("):-1]  # a cell's last value, shown
                assert found == code[line - 1 + offset].strip()
                checked += 1
    assert checked > 50


def test_multiline_strings_keep_their_value(tmp_path: Path) -> None:
    source = 'query = """\nSELECT *\n  FROM t\n"""\nshout = "a\\\nb"'
    nb = {"cells": [{"cell_type": "code", "id": "a", "metadata": {"tags": ["step:q"]},
                     "outputs": [], "execution_count": None, "source": source}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "strings.ipynb"
    path.write_text(json.dumps(nb))
    convert(path, tmp_path / "out")
    expected: dict[str, object] = {}
    exec(source, expected)  # the notebook cell itself, as the reference
    namespace: dict[str, object] = {}
    exec((tmp_path / "out" / "steps.py").read_text(), namespace)
    assert namespace["q"]() == {}  # nothing later needs the values
    body = (tmp_path / "out" / "steps.py").read_text()
    assert "\nSELECT *\n  FROM t\n" in body


def test_step_that_changes_a_shared_input_gets_a_copy(tmp_path: Path) -> None:
    nb = {"cells": [
        {"cell_type": "code", "id": "a", "metadata": {"tags": ["step:load"]}, "outputs": [],
         "execution_count": None, "source": "data = [1, 2]"},
        {"cell_type": "code", "id": "b", "metadata": {"tags": ["step:grow"]}, "outputs": [],
         "execution_count": None, "source": "data.append(3)"},
        {"cell_type": "code", "id": "c", "metadata": {"tags": ["step:size"]}, "outputs": [],
         "execution_count": None, "source": "n = len(data)"}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "shared.ipynb"
    path.write_text(json.dumps(nb))
    convert(path, tmp_path / "out")
    flow = (tmp_path / "out" / "flow.py").read_text()
    assert "copied(" not in flow  # grow is the only step reading load's data
    nb["cells"].append({"cell_type": "code", "id": "d", "metadata": {"tags": ["step:first"]},
                        "outputs": [], "execution_count": None, "source": "f = data[0]"})
    nb["cells"][1], nb["cells"][3] = nb["cells"][3], nb["cells"][1]
    path.write_text(json.dumps(nb))
    convert(path, tmp_path / "out", force=True)
    flow = (tmp_path / "out" / "flow.py").read_text()
    # size reads load's list while grow changes it; grow takes it (with f, which may share
    # it) from first, which passes on the object it was given.
    assert 'copied((first["data"], first["f"]), step="grow", names=["data", "f"])' in flow


def test_requirements_map_imports_to_distributions(tmp_path: Path) -> None:
    from nb2pipe.generate.requirements import render_requirements, requirements

    (tmp_path / "helpers.py").write_text("")
    found = requirements(["sklearn", "cv2", "yaml", "os", "json", "helpers", "numpy"],
                         ["tqdm==4.66.0"], tmp_path)
    lines = {r.line.split("=")[0].split(">")[0]: r for r in found}
    assert set(lines) == {"scikit-learn", "opencv-python", "pyyaml", "numpy", "tqdm", "prefect",
                          "pytest", "fastapi"}
    assert lines["scikit-learn"].line.startswith("scikit-learn==")  # pinned to what is installed
    assert lines["opencv-python"].line == "opencv-python"  # not installed here: unpinned
    assert lines["tqdm"].line == "tqdm==4.66.0"  # the notebook's own %pip install wins
    assert lines["prefect"].line == "prefect==3.8.8"
    text = render_requirements(found, "x.ipynb")
    assert "fastapi>=0.139,<0.151" in text and "helpers" not in text and "\njson" not in text
