"""The command line: formats, exit codes, and one clear line for every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import EXAMPLES, NOTEBOOKS

from nb2pipe.cli import main

CHURN = EXAMPLES / "churn" / "churn.ipynb"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nb2pipe", *args], capture_output=True,
                          text=True, timeout=60)


def nb(cells: list[dict[str, object]], **metadata: object) -> str:
    return json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})


CODE = {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [],
        "execution_count": None}


BAD_INPUTS = {
    "invalid_json": ("{not json", "not valid notebook JSON"),
    "truncated": (nb([CODE])[:40], "looks truncated"),
    "r_kernel": (nb([CODE], kernelspec={"name": "ir", "language": "R", "display_name": "R"}),
                 "kernel is R"),
    "no_code_cells": (nb([{"cell_type": "markdown", "source": "# hi", "metadata": {}}]),
                      "no code cells"),
    "not_a_notebook": ('{"hello": 1}', "no 'nbformat' version"),
    "newer_format": ('{"nbformat": 5, "cells": []}', "newer than this nb2pipe reads"),
    "bad_cell": (nb([{"source": "x"}]), "cell 1 is malformed"),
    "list_top_level": ("[1, 2]", "top level is not an object"),
    # Hostile metadata: each must be one line naming the file, never a traceback.
    "unpaired_surrogate": (nb([{**CODE, "source": "x = 1  # \udcff"}]),
                           "unpaired surrogate escape"),
    "kernel_name_with_breaks": (
        nb([CODE], kernelspec={"name": "r\nimport os", "language": "r\u2028x",
                               "display_name": "R\rkernel"}), "kernel is R kernel (r x)"),
    "deeply_nested_json": ('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}",
                           "nested too deeply"),
    "kernelspec_string": (nb([CODE], kernelspec="python3"), "'kernelspec' is not an object"),
    "metadata_string": (json.dumps({"cells": [CODE], "metadata": "x", "nbformat": 4,
                                    "nbformat_minor": 5}), "'metadata' is not an object"),
    "language_info_string": (nb([CODE], language_info="python"),
                             "'language_info' is not an object"),
    "cell_metadata_string": (nb([{**CODE, "metadata": "x"}]), "cell 1 is malformed"),
    "minor_version_string": (json.dumps({"cells": [CODE], "metadata": {}, "nbformat": 4,
                                         "nbformat_minor": "x"}), None),
    "lone_surrogate": (nb([{**CODE, "source": "x = '\\ud83d'"}]).replace("\\\\", "\\"),
                       "unpaired surrogate escape"),
}
# Inputs Python or a tag would misread: a diagnostic naming the cell (exit 1), never a traceback.
BAD_CELLS = {
    "huge_int_literal": ({**CODE, "source": "x = 1" + "0" * 5000}, "NB108"),
    "retries_superscript": ({**CODE, "metadata": {"tags": ["step:a", "retries:\u00b2"]}},
                            "NB107"),
    "timeout_infinite": ({**CODE, "metadata": {"tags": ["step:a", "timeout:inf"]}}, "NB107"),
    "deep_expression": ({**CODE, "source": "x = [0]" + "+[1]" * 100_000}, "NB108"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_exit_2(case: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    content, expected = BAD_INPUTS[case]
    path = tmp_path / f"{case}.ipynb"
    path.write_text(content)
    if expected is None:  # readable after all: checked, not refused
        assert main(["check", str(path)]) == 0
        return
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and str(path) in err


@pytest.mark.parametrize("case", sorted(BAD_CELLS))
def test_bad_cell_is_a_diagnostic_not_a_traceback(case: str, tmp_path: Path) -> None:
    cell, code = BAD_CELLS[case]
    path = tmp_path / f"{case}.ipynb"
    path.write_text(nb([cell, {**CODE, "source": "y = 2"}]))
    result = run("check", str(path))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stderr == ""
    assert "cell 1" in result.stdout and code in result.stdout
    assert sum(1 for line in result.stdout.splitlines() if code in line) == 1


def test_binary_file_directory_and_missing_file(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "image.ipynb"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    fifo = tmp_path / "pipe.ipynb"
    os.mkfifo(fifo)  # nobody writes to it: reading it would wait forever
    for path, expected in ((binary, "binary file"), (tmp_path, "is a directory"),
                           (tmp_path / "gone.ipynb", "no such file"),
                           (fifo, "not a regular file")):
        assert main(["check", str(path)]) == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1


def test_no_traceback_from_the_real_command(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [')
    result = run("check", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "truncated" in result.stderr


def test_old_notebook_is_upgraded(tmp_path: Path) -> None:
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "code", "input": "a = 1", "language": "python", "metadata": {},
         "outputs": []}]}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(v3))
    result = run("check", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["steps"][0]["defines"] == ["a"]


def test_syntax_error_is_a_diagnostic_with_cell_and_line(capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    path = NOTEBOOKS / "error_syntax.ipynb"
    assert main(["check", str(path)]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"{path}:28:6: NB108 error: syntax error")
    assert first.endswith("(cell 2, line 1)")


def test_json_format_is_one_object_with_the_documented_keys(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(CHURN), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"notebook", "steps", "edges", "parameters", "diagnostics"}
    assert all(set(s) == {"name", "cells", "uses", "defines", "after"} for s in data["steps"])
    assert all(set(e) == {"source", "target", "variables"} for e in data["edges"])
    assert all(set(p) == {"name", "type", "default", "source"} for p in data["parameters"])
    assert all(set(d) == {"code", "severity", "message", "cell", "line", "hint"}
               for d in data["diagnostics"])
    assert data["edges"] == sorted(data["edges"], key=lambda e: (e["source"], e["target"]))
    assert [s["name"] for s in data["steps"]][:2] == ["load", "clean"]


def test_text_format_is_compiler_style(capsys: pytest.CaptureFixture[str]) -> None:
    """`path:line:col: CODE severity: message (cell N, line L)`, the line and column being the
    .ipynb file's: where the cell's line starts inside its JSON string."""
    path = NOTEBOOKS / "error_undefined.ipynb"
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    first = out[0]
    position, _, message = first.partition(": NB201 error: ")
    assert message.startswith("name 'missing'") and message.endswith("(cell 2, line 1)")
    file, line, column = position.rsplit(":", 2)
    assert file == str(path)
    text = path.read_text().splitlines()[int(line) - 1]
    assert text[int(column) - 1:].startswith("y = x + missing")
    assert out[1].startswith("    hint: ")


def test_columns_follow_the_json_escapes_of_the_line(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "indented.ipynb"
    path.write_text(json.dumps({"cells": [
        {"cell_type": "code", "id": "a", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["if True:\n", "\t value = undefined_name\n"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1))
    assert main(["check", str(path)]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    _, line, column = first.split(": ")[0].rsplit(":", 2)
    text = path.read_text().splitlines()[int(line) - 1]
    assert text[int(column) - 1:].startswith("value = undefined_name"), (text, column)


def test_counts_are_singular_for_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support import write_notebook

    one = write_notebook(tmp_path / "one.ipynb", ("k = 1", "parameters"),
                         ("a = k", "step:first"), ("b = a", "step:second"))
    assert main(["check", str(one)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{one}: 2 steps (first, second), 1 edge, 1 parameter; 0 errors, 0 warnings")


def test_untagged_notebook_gets_the_split_hint(capsys: pytest.CaptureFixture[str]) -> None:
    path = NOTEBOOKS / "split_headings.ipynb"
    assert main(["check", str(path)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == ("hint: 1 step (untagged): try --split headings (3 steps) or --split cells "
                    "(4 steps), or tag the cells that start steps step:NAME")
    assert main(["check", str(path), "--split", "headings"]) == 0
    assert "hint: 1 step" not in capsys.readouterr().out  # a split was chosen
    assert main(["check", str(CHURN)]) == 0
    assert "(untagged)" not in capsys.readouterr().out  # tagged notebooks get no hint


def test_each_command_has_its_own_examples() -> None:
    expected = {"check": "nb2pipe check a.ipynb b.ipynb --strict",
                "graph": "--format dot | dot -Tsvg",
                "convert": "nb2pipe convert churn.ipynb --record",
                "run": "nb2pipe run churn.ipynb --progress jsonl",
                "deploy": "nb2pipe deploy churn_pipeline --serve",
                "verify": "nb2pipe verify churn.ipynb -p test_size 0.3"}
    for command, example in expected.items():
        text = run(command, "--help").stdout
        assert example in text and "exit codes: 0" in text, command
        others = [e for c, e in expected.items() if c != command]
        assert not any(e in text for e in others), command


def test_a_notebook_with_errors_exits_1_in_every_command(tmp_path: Path) -> None:
    path = str(NOTEBOOKS / "error_undefined.ipynb")
    for args in (["check", path], ["graph", path], ["convert", path, "-o", str(tmp_path / "p")],
                 ["convert", path, "-o", str(tmp_path / "p"), "--check"], ["run", path],
                 ["verify", path]):
        result = run(*args)
        assert result.returncode == 1, (args, result.stderr[-1000:])
        assert "NB201" in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "p").exists()


def test_check_takes_several_notebooks(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert main(["check", str(CHURN), str(NOTEBOOKS / "error_undefined.ipynb")]) == 1
    out = capsys.readouterr().out
    assert "churn.ipynb: 7 steps" in out and "error_undefined.ipynb: 4 steps" in out
    assert main(["check", str(CHURN), str(broken)]) == 2  # the readable one is still checked
    captured = capsys.readouterr()
    assert "churn.ipynb: 7 steps" in captured.out and "not valid notebook JSON" in captured.err
    assert main(["check", str(CHURN), str(CHURN), "--format", "json"]) == 2


def test_convert_check_alone_finds_every_project_under_the_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    shutil.copytree(EXAMPLES / "kale_wine", tmp_path / "wine",
                    ignore=shutil.ignore_patterns("*_pipeline"))
    shutil.copytree(NOTEBOOKS, tmp_path / "nbs", ignore=shutil.ignore_patterns("*.graph.json"))
    monkeypatch.chdir(tmp_path)
    assert main(["convert", "wine/kale_wine.ipynb"]) == 0
    assert main(["convert", "nbs/diamond.ipynb", "-o", "pipelines/diamond"]) == 0
    capsys.readouterr()
    assert main(["convert", "--check"]) == 0
    out = capsys.readouterr().out
    assert "pipelines/diamond: up to date with nbs/diamond.ipynb" in out
    assert "wine/kale_wine_pipeline: up to date with wine/kale_wine.ipynb" in out
    raw = json.loads(Path("nbs/diamond.ipynb").read_text())
    raw["cells"][-1]["source"] = "total = 0"
    Path("nbs/diamond.ipynb").write_text(json.dumps(raw))
    assert main(["convert", "--check"]) == 1
    assert "pipelines/diamond/steps.py: out of date with the notebook" in capsys.readouterr().out
    Path("nbs/diamond.ipynb").unlink()
    assert main(["convert", "--check"]) == 1
    assert "its notebook ../../nbs/diamond.ipynb is missing" in capsys.readouterr().out


def test_github_format_points_at_the_notebook_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = NOTEBOOKS / "error_undefined.ipynb"
    assert main(["check", str(path), "--format", "github"]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"::error file={path},line=")
    line = int(first.split("line=")[1].split(",")[0])
    assert "missing" in path.read_text().splitlines()[line - 1]


def test_strict_makes_warnings_fail() -> None:
    path = str(NOTEBOOKS / "warn_file_handoff.ipynb")
    assert main(["check", path]) == 0
    assert main(["check", path, "--strict"]) == 1


def test_graph_formats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(CHURN), "--format", "mermaid"]) == 0
    assert 'load -->|"df"| clean' in capsys.readouterr().out
    assert main(["graph", str(CHURN), "--format", "dot"]) == 0
    assert '"load" -> "clean" [label="df"];' in capsys.readouterr().out
    assert main(["graph", str(CHURN)]) == 0
    assert "clean           <- load [df]" in capsys.readouterr().out


def test_graph_of_a_notebook_with_errors_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(NOTEBOOKS / "error_cycle.ipynb")]) == 1
    assert "NB202" in capsys.readouterr().err


def test_split_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(NOTEBOOKS / "split_headings.ipynb"), "--split", "headings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "load" and lines[1].split() == ["sort_data", "<-", "load", "[data]"]


def test_version_help_and_usage_errors() -> None:
    assert run("--version").stdout.startswith("nb2pipe ")
    help_text = run("--help").stdout
    assert "examples:" in help_text and "nb2pipe check" in help_text
    assert run("check").returncode == 2
    assert run("check", str(CHURN), "--format", "xml").returncode == 2
    assert run().returncode == 2


# Exceptions that steer control or live where nb2pipe cannot be imported; every other one
# reaches the command line as an Nb2pipeError.
NOT_REPORTED = {"nb2pipe.runtime.errors.StepError", "nb2pipe.execute.supervise.Interrupted",
                "nb2pipe.server.work.Superseded", "nb2pipe.server.work.WorkerLost",
                "nb2pipe.server.paths.PathError", "nb2pipe.runtime.store.Tampered",
                "nb2pipe.runtime.auth.StorageKeyError", "nb2pipe.runtime.records.Untrusted",
                "nb2pipe.runtime.files.NotAFile",  # an OSError of the copied runtime
                # pipeline.json unusable, in the copied runtime; nb2pipe reports them as its own
                "nb2pipe.runtime.manifest.ManifestError", "nb2pipe.runtime.manifest.NoManifest",
                "nb2pipe.runtime.manifest.NotNb2pipe", "nb2pipe.runtime.manifest.NotRegular",
                "nb2pipe.server.bodies.BadRequest",  # answered with an HTTP status
                "nb2pipe.execute.local_server._Cancelled",  # a command stopped waiting
                "nb2pipe.runtime.errors.StorageError", "nb2pipe.runtime.dask_cluster.ShippingError",
                "nb2pipe.runtime.dask_cluster.MissingResources",
                "nb2pipe.runtime.writes.Changed"}  # a write not kept: a warning at the run's end


def test_every_error_nb2pipe_reports_has_the_one_base() -> None:
    import importlib
    import inspect
    import pkgutil

    import nb2pipe
    from nb2pipe.exceptions import Nb2pipeError

    found = set()
    for module in pkgutil.walk_packages(nb2pipe.__path__, "nb2pipe."):
        if module.name == "nb2pipe.__main__":  # importing it runs the command
            continue
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == module.name):
                found.add((f"{module.name}.{name}", issubclass(value, Nb2pipeError)))
    assert {name for name, _ in found} >= NOT_REPORTED
    assert {name for name, based in found if not based} == NOT_REPORTED
    assert len(found) > 12


def test_main_prints_an_error_once_with_its_exit_code(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from nb2pipe import cli
    from nb2pipe.execute.local_server import ServerError
    from nb2pipe.prepare import NotebookErrors

    for error, code, shown in (
            (ServerError("did not start:\nsee log"), 1, "nb2pipe: error: did not start:\nsee log"),
            (NotebookErrors("a.ipynb:3:1: NB201\na.ipynb: has errors"), 1,
             "a.ipynb:3:1: NB201\na.ipynb: has errors"),
            (cli._UsageError("bad\nname.ipynb: no such file"), 2,
             "nb2pipe: error: bad name.ipynb: no such file")):
        def fail(args: object, error: Exception = error) -> int:
            raise error

        monkeypatch.setattr(cli, "_graph", fail)
        assert main(["graph", "x.ipynb"]) == code
        assert capsys.readouterr().err == shown + "\n"


def test_notes_are_left_out_of_check_unless_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    """NB306 (a cell only displays values: its output goes to the report) is information, not
    a warning: `check` counts it in its summary, lists it with --show-info only, and --strict
    does not fail on it."""
    assert main(["check", str(CHURN)]) == 0
    plain = capsys.readouterr().out.splitlines()
    assert not [line for line in plain if "NB306" in line]
    assert plain[-1].endswith("; 0 errors, 0 warnings, 4 notes (--show-info)")
    assert main(["check", str(CHURN), "--strict"]) == 0
    capsys.readouterr()
    assert main(["check", str(CHURN), "--show-info"]) == 0
    shown = capsys.readouterr().out.splitlines()
    notes = [line for line in shown if ": NB306 info: " in line]
    assert len(notes) == 4 and "(cell " in notes[0]
    assert shown[-1].endswith("; 0 errors, 0 warnings, 4 notes")
    assert main(["check", str(CHURN), "--format", "github"]) == 0
    assert "NB306" not in capsys.readouterr().out
    assert main(["check", str(CHURN), "--format", "github", "--show-info"]) == 0
    github = [line for line in capsys.readouterr().out.splitlines() if "NB306" in line]
    assert len(github) == 4 and all(line.startswith("::notice ") for line in github)
    assert main(["check", str(CHURN), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["severity"] for d in data["diagnostics"] if d["code"] == "NB306"} == {"info"}


def test_json_parameters_keep_the_cell_order_and_the_literal_text(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support import write_notebook

    path = write_notebook(tmp_path / "params.ipynb",
                          ("n_estimators = 100\nC = 1.0\nalpha = 1e-3\ndata_path = 'a.csv'",
                           "parameters"),
                          ("x = n_estimators * C * alpha\nprint(data_path)", "step:first"))
    assert main(["check", str(path), "--format", "json"]) == 0
    parameters = json.loads(capsys.readouterr().out)["parameters"]
    assert [(p["name"], p["source"], p["default"]) for p in parameters] == [
        ("n_estimators", "100", 100), ("C", "1.0", 1.0), ("alpha", "1e-3", 0.001),
        ("data_path", "'a.csv'", "a.csv")]


def test_verify_reports_a_failed_pipeline_through_the_one_error_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import contextlib

    from support import write_notebook

    from nb2pipe import cli
    from nb2pipe.exceptions import PipelineFailed
    from nb2pipe.execute import engine, prefect_api, startup, verify

    for name in ("PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_LEVEL",
                 "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"):
        monkeypatch.setenv(name, os.environ.get(name, "x"))  # restored after the test
    monkeypatch.setenv("NB2PIPE_CACHE_DIR", str(tmp_path / "cache"))
    failed = engine.RunResult(ok=False, steps={}, outputs={}, seconds=0.0, startup=0.0,
                              error="step 'b' failed (cell 2, line 1): ZeroDivisionError")
    monkeypatch.setattr(verify, "notebook_fingerprints", lambda graph, parameters, run, seed: {})
    monkeypatch.setattr(engine, "run_project", lambda project, options, connect=None: failed)
    monkeypatch.setattr(prefect_api, "connecting", lambda report: contextlib.nullcontext(
        prefect_api.Connection(None, "http://127.0.0.1:1/api")))
    monkeypatch.setattr(prefect_api, "flow_run_links", lambda found: contextlib.nullcontext())
    monkeypatch.setattr(startup, "import_prefect", lambda: None)
    shown: list[Exception] = []
    error_text = cli._error_text
    monkeypatch.setattr(cli, "_error_text", lambda exc: shown.append(exc) or error_text(exc))
    notebook = write_notebook(tmp_path / "n.ipynb", ("a = 1", "step:a"), ("b = a / 0", "step:b"))
    assert main(["verify", str(notebook)]) == 1
    assert [type(exc) for exc in shown] == [PipelineFailed]
    assert capsys.readouterr().err == (
        "nb2pipe: step 'b' failed (cell 2, line 1): ZeroDivisionError\n")
