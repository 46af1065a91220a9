"""run_step's core and its hooks: the switches in the environment are read in one place, the
table of hooks decides what a run adds to a step, and each hook is told at fixed points (no
kernel, no Prefect run)."""

from __future__ import annotations

import ast
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support import manifest_of

from nb2pipe.runtime import calls, errors, project, switches, tasks
from nb2pipe.runtime.calls import Hook, StepCall
from nb2pipe.runtime.cell_ends import CellEnds
from nb2pipe.runtime.fingerprint import Fingerprints
from nb2pipe.runtime.reporting import Reporting

RUNTIME = Path(tasks.__file__).parent
SWITCHES = {"NB2PIPE_MODE", "NB2PIPE_REPORT", "NB2PIPE_FINGERPRINTS", "NB2PIPE_CACHE",
            "NB2PIPE_HANDOFF"}  # the variables that change what a step does


@pytest.fixture
def one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project of one step, `make`, run outside a flow in tmp_path, its report off."""
    manifest = manifest_of({"make": [1]})
    monkeypatch.setattr(project, "manifest", lambda: manifest)
    monkeypatch.setattr(project, "step", manifest.step)
    monkeypatch.setenv("NB2PIPE_WORKDIR", str(tmp_path))
    monkeypatch.setenv("NB2PIPE_REPORT", "off")
    for name in ("NB2PIPE_MODE", "NB2PIPE_FINGERPRINTS", "NB2PIPE_CACHE", "NB2PIPE_HANDOFF"):
        monkeypatch.delenv(name, raising=False)


class Reads(dict[str, str]):
    """os.environ, noting which variable each read asks for and the file asking."""

    def __init__(self, environ: dict[str, str], reads: list[tuple[str, str]]) -> None:
        super().__init__(environ)
        self.reads = reads

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.reads.append((key, sys._getframe(1).f_code.co_filename))
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.reads.append((key, sys._getframe(1).f_code.co_filename))
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.reads.append((str(key), sys._getframe(1).f_code.co_filename))
        return super().__contains__(key)


@contextmanager
def reads_noted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    reads: list[tuple[str, str]] = []
    with monkeypatch.context() as patched:
        patched.setattr(os, "environ", Reads(dict(os.environ), reads))
        yield reads


def test_run_step_reads_the_switches_only_through_switches_py(
        one_step: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = tmp_path / "fingerprints.jsonl"
    monkeypatch.setenv("NB2PIPE_FINGERPRINTS", str(found))

    def make(rows: list[int]) -> dict[str, Any]:
        total = sum(rows)
        return {"total": total}

    with reads_noted(monkeypatch) as reads:
        values = tasks.run_step(make, rows=[1, 2])
    assert values["total"] == 3
    elsewhere = sorted({(key, Path(file).name) for key, file in reads
                        if key in SWITCHES and Path(file).name != "switches.py"})
    assert elsewhere == []
    assert {key for key, _ in reads} >= SWITCHES  # read, in switches.py
    written = [json.loads(line) for line in found.read_text(encoding="utf-8").splitlines()]
    assert [(w["kind"], w["name"]) for w in written] == [
        ("inputs", "rows"), ("outputs", "total"), ("final", "rows"), ("final", "total")]


def test_no_runtime_module_but_switches_py_names_a_switch_in_its_code() -> None:
    naming = set()
    for path in RUNTIME.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and node.value in SWITCHES
                    and id(node) not in docstrings):
                naming.add(path.name)
    assert naming == {"switches.py"}


@pytest.mark.parametrize(("environment", "hooks", "runner"), [
    ({"NB2PIPE_REPORT": "off"}, [CellEnds], "in_process"),
    ({}, [CellEnds, Reporting], "in_process"),
    ({"NB2PIPE_MODE": "notebook", "NB2PIPE_REPORT": "off"}, [], "in_notebook"),
    ({"NB2PIPE_FINGERPRINTS": "f.jsonl"}, [CellEnds, Reporting, Fingerprints], "in_process"),
])
def test_the_tables_choose_the_hooks_and_the_runner_from_the_switches(
        environment: dict[str, str], hooks: list[type], runner: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    on = switches.read()
    made = [hook for hook in (make(on) for make in tasks.HOOKS) if hook is not None]
    assert [type(hook) for hook in made] == hooks
    assert tasks.RUNNERS[on.notebook].__name__ == runner


class Told(Hook):
    """A hook noting when it is told what."""

    def __init__(self, name: str, told: list[str]) -> None:
        self.name, self.told = name, told

    def before(self, call: StepCall) -> None:
        self.told.append(f"before {self.name}")

    @contextmanager
    def watching(self, call: StepCall) -> Iterator[None]:
        self.told.append(f"watching {self.name}")
        yield
        self.told.append(f"watched {self.name}")

    def failed(self, call: StepCall, error: Exception) -> None:
        self.told.append(f"failed {self.name}: {type(error).__name__} cell {error.cell}"
                         if isinstance(error, errors.StepError) else f"failed {self.name}")

    def after(self, call: StepCall) -> None:
        self.told.append(f"after {self.name}: {call.outputs}")


def test_hooks_start_in_the_tables_order_and_end_in_the_opposite_one(
        one_step: None, monkeypatch: pytest.MonkeyPatch) -> None:
    told: list[str] = []
    monkeypatch.setattr(tasks, "HOOKS", (lambda on: Told("a", told), lambda on: None,
                                         lambda on: Told("b", told)))
    def make() -> dict[str, Any]:
        return {"x": 1}

    values = tasks.run_step(make)
    assert values["x"] == 1
    assert told == ["before a", "before b", "watching a", "watching b", "watched b",
                    "watched a", "after b: {'x': 1}", "after a: {'x': 1}"]

    told.clear()

    def broken() -> dict[str, Any]:
        raise KeyError("x")

    broken.__name__ = "make"  # the step's function in steps.py
    with pytest.raises(errors.StepError, match="step 'make' failed: KeyError"):
        tasks.run_step(broken)
    assert told == ["before a", "before b", "watching a", "watching b",
                    "failed b: StepError cell None", "failed a: StepError cell None"]


def test_a_step_duration_is_its_code_in_the_call_it_failed_in_too(
        one_step: None) -> None:
    """The runner keeps how long the code ran on the call, and on the error it raises."""
    call = StepCall("make", lambda: (_ for _ in ()).throw(ValueError("no")), {})
    with pytest.raises(errors.StepError) as raised:
        calls.in_process(call, [])
    assert call.seconds is not None and raised.value.seconds == call.seconds


def test_a_switch_is_read_when_the_step_runs_not_when_the_flow_is_imported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask worker sets a run's settings before each step of it (dask_worker.py)."""
    monkeypatch.setenv("NB2PIPE_CACHE", "off")
    assert not switches.read().cache
    monkeypatch.setenv("NB2PIPE_CACHE", "on")
    assert switches.read().cache
