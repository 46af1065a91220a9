"""The runtime package on its own: the copy each project gets, the store, the handoff between
processes, the step errors and the progress events (no kernel, no Prefect run)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import manifest_of, write_notebook

from nb2pipe.convert import convert
from nb2pipe.runtime import errors, progress, store, tasks
from nb2pipe.runtime.handoff import Values, reading
from nb2pipe.runtime.manifest import load
from nb2pipe.runtime.store import Store

RUNTIME = Path(__file__).parent.parent / "nb2pipe" / "runtime"


def project(tmp_path: Path) -> Path:
    notebook = write_notebook(tmp_path / "nb.ipynb", ("n = 3", "parameters"),
                              ("rows = list(range(n))", "step:make"),
                              ("total = sum(rows)\nimport sys\nsys.exit(3)", "step:use"))
    assert convert(notebook, tmp_path / "project").ok
    return tmp_path / "project"


def test_each_project_gets_the_runtime_byte_for_byte(tmp_path: Path) -> None:
    copied = project(tmp_path) / "nb2pipe_runtime"
    source = {p.name: p.read_bytes() for p in RUNTIME.glob("*.py")}
    assert {p.name: p.read_bytes() for p in copied.glob("*.py")} == source
    assert "getsource" not in "".join(t.decode() for t in source.values())


def test_the_runtime_imports_only_relatively_and_heavy_libraries_lazily() -> None:
    for path in RUNTIME.glob("*.py"):
        lines = path.read_text().splitlines()
        imports = [line for line in lines if line.startswith(("import ", "from "))]
        assert not [line for line in imports if "nb2pipe" in line], path.name
    checked = subprocess.run([sys.executable, "-c", (
        "import sys\n"
        "for name in ('prefect', 'pandas', 'numpy', 'pyarrow'):\n"
        "    sys.modules[name] = None  # importing it fails\n"
        "import nb2pipe.runtime.project, nb2pipe.runtime.values, nb2pipe.runtime.compare\n"
        "import nb2pipe.runtime.store, nb2pipe.runtime.handoff, nb2pipe.runtime.errors\n"
        "print('ok')")], capture_output=True, text=True)
    assert checked.stdout.strip() == "ok", checked.stderr


def test_the_generated_step_tests_run_without_prefect(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "steps.py").write_text((folder / "steps.py").read_text().replace(
        "sys.exit(3)", "pass"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTEST_"))}
    done = subprocess.run([sys.executable, "-c", (
        "import sys\nsys.modules['prefect'] = None  # importing Prefect fails\n"
        "import pytest\nsys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
        "'tests/test_steps.py']))")], cwd=folder, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 passed" in done.stdout


def test_values_that_share_objects_share_them_again_within_one_task(tmp_path: Path) -> None:
    train, test = pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [3]})
    values = Values("split", {"frames": [train, test], "train": train, "n": 3}, run="r1")
    values.location = str(tmp_path)
    sent = pickle.loads(pickle.dumps(values))  # to another process: files, not objects
    assert sent.memory is None and set(sent) == {"frames", "n", "train"}
    with reading():
        assert sent["frames"][0] is sent["train"]
    with reading():
        first = sent["train"]
    with reading():
        assert sent["train"] is not first  # another task reads its own copy
    assert sent["n"] == 3 and sent.hashes(["n"]) is None  # handed over: not hashed


def test_values_for_later_runs_are_content_addressed(tmp_path: Path) -> None:
    values = Values("make", {"a": np.arange(5), "frame": pd.DataFrame({"x": [1.5]})})
    values.save(Store(str(tmp_path)), for_later=True)
    hashes = values.hashes(["a", "frame"])
    assert hashes is not None and values.refs["frame"].path.endswith(".value")
    assert values.refs["a"].path == f"values/{hashes['a'][:2]}/{hashes['a']}.value"
    again = Values("make", {"a": np.arange(5)})
    again.save(Store(str(tmp_path)), for_later=True)
    assert again.refs["a"] == values.refs["a"]


@pytest.mark.parametrize("run", ["r1", None], ids=["handed-on", "cached"])
def test_frames_read_back_can_be_changed_in_place(tmp_path: Path, run: str | None) -> None:
    frame = pd.DataFrame({"x": np.arange(1000.0), "k": np.arange(1000),
                          "name": ["a", "b"] * 500})
    refs, unsaved = Store(str(tmp_path)).save({"frame": frame, "array": np.ones(3)}, run=run)
    assert not unsaved
    assert refs["frame"].path.endswith(".pkl5" if run else ".value")
    loaded = Store(str(tmp_path)).load(refs)
    pd.testing.assert_frame_equal(loaded["frame"], frame)
    loaded["frame"].loc[0, "x"] = -1.0  # a step may change them in place
    loaded["frame"].loc[1, "k"] = -1
    loaded["array"][0] = 5
    assert loaded["frame"]["x"].iloc[0] == -1.0 and loaded["frame"]["k"].iloc[1] == -1


def test_a_value_that_cannot_be_saved_says_why_when_it_must_cross(tmp_path: Path) -> None:
    values = Values("open", {"handle": (x for x in [1]), "n": 1}, run="r1")
    values.location = str(tmp_path)
    sent = pickle.loads(pickle.dumps(values))
    assert sent["n"] == 1
    with pytest.raises(RuntimeError, match="'handle' cannot be passed to another process"):
        sent["handle"]


@pytest.mark.parametrize("damage", ["change", "truncate", "delete"])
def test_damaged_files_are_found_and_removed(tmp_path: Path, damage: str) -> None:
    values = Values("make", {"a": np.arange(100.0), "b": [1, 2]})
    values.save(Store(str(tmp_path)), for_later=True)
    assert Store(str(tmp_path)).discard_damaged(values.refs) is None
    target = tmp_path / values.refs["a"].path
    data = bytearray(target.read_bytes())
    if damage == "change":
        data[-8:] = np.float64(1e6).tobytes()
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(bytes(data[:40]))
    else:
        target.unlink()
    problem = Store(str(tmp_path)).discard_damaged(values.refs)
    expected = "is missing" if damage == "delete" else (
        "does not hold what was stored there (its hash differs): changed since it was written")
    assert problem == f"{tmp_path / values.refs['a'].path} {expected}"
    assert not target.exists()
    values.refs.pop("a")
    values.save(Store(str(tmp_path)), for_later=True)  # saved again: whole
    assert Store(str(tmp_path)).discard_damaged(values.refs) is None


def test_result_storage_is_a_folder_or_a_block_name(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB2PIPE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("NB2PIPE_RESULT_STORAGE", raising=False)
    assert tasks.result_storage() == tmp_path / "results"
    monkeypatch.setenv("NB2PIPE_RESULT_STORAGE", "s3-bucket/pipeline-results")
    assert tasks.result_storage() == "s3-bucket/pipeline-results"
    monkeypatch.setenv("NB2PIPE_RESULT_STORAGE", str(tmp_path / "elsewhere"))
    assert tasks.result_storage() == tmp_path / "elsewhere"
    monkeypatch.setenv("NB2PIPE_RESULT_STORAGE", "./results")
    assert tasks.result_storage() == (Path.cwd() / "results").resolve()


def test_a_step_error_names_cell_and_line_and_sys_exit_is_one(tmp_path: Path) -> None:
    folder = project(tmp_path)
    manifest = load(folder)
    steps_line = manifest.step("use").lines[-1].start  # the line of `sys.exit(3)` in steps.py
    code = compile("\n" * (steps_line - 1) + "raise SystemExit(3)", str(folder / "steps.py"),
                   "exec")
    try:
        exec(code, {})
    except SystemExit as exc:
        error = errors.step_error(manifest, str(folder / "steps.py"), "use", exc)
    assert (error.cell, error.line, error.deterministic) == (3, 3, True)
    assert str(error).startswith("nb.ipynb: cell 3, line 3 (step 'use'): sys.exit(3) ended")


def test_progress_events_are_one_signed_line_each_and_cut_to_fit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import select

    channel = tmp_path / "events"
    channel.touch()
    monkeypatch.setenv("NB2PIPE_PROGRESS", str(channel))
    monkeypatch.setattr(progress, "_key", None)
    progress.emit({"event": "step", "step": "a", "state": "running"})
    assert channel.read_text() == ""  # a process given no key writes nothing
    key = "ab" * 32
    progress.authorize(key)
    progress.emit({"event": "step", "step": "a", "state": "running"})
    progress.emit({"event": "step", "step": "a", "state": "failed", "error": "x" * 10_000})
    lines = channel.read_text().splitlines()
    found = [progress.verified(line, bytes.fromhex(key)) for line in lines]
    assert found[0] is not None and found[1] is not None
    assert found[0][1] == {"event": "step", "step": "a", "state": "running"}
    assert found[1][1]["error"].endswith("[...]")
    assert all(len(line) < select.PIPE_BUF for line in lines)  # written at once
    assert found[0][0] != found[1][0]  # each line its own nonce
    assert progress.verified(lines[0], bytes.fromhex("cd" * 32)) is None  # another run's key
    monkeypatch.setenv("NB2PIPE_PROGRESS", str(tmp_path / "gone"))
    progress.emit({"event": "step"})  # a reader that went away is not an error
    assert not (tmp_path / "gone").exists()  # nor is its channel made again


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.delenv("NB2PIPE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert store.cache_folder() == tmp_path / "nb2pipe"


def test_where_sees_through_a_function_from_another_cell(tmp_path: Path) -> None:
    folder = project(tmp_path)
    manifest = load(folder)
    steps_file = str(folder / "steps.py")
    frames = [traceback.FrameSummary(steps_file, manifest.step("make").lines[0].start, "make",
                                     line="rows"),
              traceback.FrameSummary(steps_file, 1, "helper", line="helper")]
    assert errors.where(manifest, steps_file, "make", frames) == (2, 1, "rows")


def test_a_step_task_is_named_after_its_function_unless_told_otherwise() -> None:
    @tasks.step_task
    def load() -> Values:
        raise AssertionError("not run")

    @tasks.step_task(name="open", retries=2)
    def open_step() -> Values:
        raise AssertionError("not run")

    assert (load.name, load.task_run_name) == ("load", "load")
    assert (open_step.name, open_step.task_run_name, open_step.retries) == ("open", "open", 2)


def test_run_step_finds_its_step_by_the_function_of_steps_py() -> None:
    manifest = manifest_of({"open": [1], "read": [2]})
    manifest = replace(manifest, steps=(replace(manifest.steps[0], function="open_step"),
                                        manifest.steps[1]))
    assert manifest.step_of("open_step").name == "open"
    assert manifest.step_of("read").name == "read"
    with pytest.raises(KeyError, match="no step whose function is 'open'"):
        manifest.step_of("open")
