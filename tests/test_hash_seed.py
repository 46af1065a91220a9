"""The string hash seeds of `nb2pipe verify`: the pipeline's process, the notebook's two runs
(tests/test_run.py::test_verify_compares_values_that_follow_string_hashing_with_the_run_of_the_same_seed
runs them for real)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import graph_of

from nb2pipe import cli
from nb2pipe.execute import hash_seed, verify
from nb2pipe.execute.engine import RunResult
from nb2pipe.runtime import notebook


@pytest.mark.parametrize(("value", "seed"), [
    (None, None), ("", None), ("random", None), ("-1", None), ("1.5", None), ("abc", None),
    ("4294967296", None), ("0", 0), ("1", 1), ("4294967295", 4294967295), ("007", 7)])
def test_a_fixed_seed_is_what_python_takes_as_one(value: str | None, seed: int | None) -> None:
    assert hash_seed.fixed_seed({} if value is None else {"PYTHONHASHSEED": value}) == seed


@pytest.mark.parametrize("seed", [None, 0, 1, 12345, 4294967295])
def test_the_first_notebook_run_has_the_pipelines_seed_and_the_second_another(
        seed: int | None) -> None:
    first, second = hash_seed.notebook_seeds(seed)
    assert first == (hash_seed.DEFAULT if seed is None else seed)
    assert second != first
    for chosen in (first, second):
        assert hash_seed.fixed_seed({"PYTHONHASHSEED": str(chosen)}) == chosen


def test_this_process_is_read_from_the_environment_it_started_with() -> None:
    """A child started with a seed knows it, and hashes strings as another child with it."""
    code = ("from nb2pipe.execute.hash_seed import this_process; "
            "print(this_process(), hash('Head'))")
    seen = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout.split()
            for seed in ("5", "5", "0")]
    assert seen[0] == seen[1] and seen[0][0] == "5" and seen[2][0] == "0"
    unset = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    random = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=unset, check=True).stdout.split()
    assert random[0] == "None"


class Restarted(Exception):
    pass


def _record_execve(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((path, list(argv), dict(env)))
        raise Restarted

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.setattr(cli, "_verify", lambda args: 0)  # what runs after: not this test's
    return calls


@pytest.mark.skipif(os.name != "posix", reason="a process replaces itself on POSIX only")
def test_verify_from_the_command_line_starts_again_under_a_fixed_seed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _record_execve(monkeypatch)
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.setattr(sys, "argv", ["nb2pipe", "verify", "churn.ipynb"])
    with pytest.raises(Restarted):
        cli.main()
    [(path, argv, env)] = calls
    assert path == sys.executable and argv == sys.orig_argv
    assert env["PYTHONHASHSEED"] == str(hash_seed.DEFAULT)
    assert env["PATH"] == os.environ["PATH"]  # the rest of the environment kept


@pytest.mark.parametrize(("seed", "argv", "arguments"), [
    ("7", ["nb2pipe", "verify", "churn.ipynb"], None),  # a seed given: it is kept
    (None, ["nb2pipe", "check", "churn.ipynb"], None),  # other commands: nothing to match
    (None, ["pytest"], ["verify", "churn.ipynb"]),  # a caller's own process: left alone
])
def test_nothing_starts_again_where_no_seed_must_be_fixed(
        monkeypatch: pytest.MonkeyPatch, seed: str | None, argv: list[str],
        arguments: list[str] | None) -> None:
    calls = _record_execve(monkeypatch)
    monkeypatch.setattr(cli, "_check", lambda args: 0)
    if seed is None:
        monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    else:
        monkeypatch.setenv("PYTHONHASHSEED", seed)
    monkeypatch.setattr(sys, "argv", argv)
    assert cli.main(arguments) == 0
    assert calls == []


def test_verify_runs_the_notebook_under_the_pipelines_seed_then_another(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seeds: list[tuple[int, int | None]] = []

    def fingerprints(graph: Any, parameters: Any, run: int = 0,
                     seed: int | None = None) -> dict[Any, Any]:
        seeds.append((run, seed))
        return {}

    monkeypatch.setattr(verify, "notebook_fingerprints", fingerprints)
    monkeypatch.setattr("nb2pipe.execute.engine.run_project", lambda project, options,
                        connect=None: RunResult(True, {}, {}, 0.0, 0.0))
    monkeypatch.setenv("PYTHONHASHSEED", "12345")  # as this process had started with it
    verify.verify(tmp_path / "n.ipynb", "tags", {}, graph_of(("x = 1", "step:one")), tmp_path)
    assert sorted(seeds) == [(0, 12345), (1, 12346)]


def test_the_kernel_gets_the_seed_through_papermills_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """papermill starts the kernel with its own environment (jupyter_client copies it)."""
    seen: list[dict[str, str]] = []

    def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        seen.append(options["env"])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(notebook.subprocess, "run", run)
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    assert notebook.run_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb", tmp_path) is None
    assert notebook.run_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb", tmp_path, None,
                                 {"PYTHONHASHSEED": "3"}) is None
    assert "PYTHONHASHSEED" not in seen[0] and seen[1]["PYTHONHASHSEED"] == "3"


def test_the_local_server_verify_starts_hashes_strings_as_python_does_by_default(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """It outlives the verify that started it, and hashes what its clients send."""
    from nb2pipe.execute import prefect_server

    monkeypatch.setenv("PYTHONHASHSEED", "1")
    env = prefect_server.server_environment(tmp_path, "http://127.0.0.1:1")
    assert "PYTHONHASHSEED" not in env and env["PATH"] == os.environ["PATH"]
