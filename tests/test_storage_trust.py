"""What a shared result storage holds is data, never code: real Prefect runs against records
and value files planted by someone who can write the storage but has not the storage key."""

from __future__ import annotations

import base64
import json
import os
import pickle
import shlex
import stat
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import write_notebook

from nb2pipe.execute import RunOptions, run_project
from nb2pipe.execute.engine import RunResult
from nb2pipe.prepare import prepare

pytestmark = pytest.mark.integration

STORED = [("import numpy as np\nweights = np.arange(4.0)\nnames = ['a', 'b']", "step:make"),
          ("total = float(weights.sum()) + len(names)", "step:use", "metrics")]


class Boom:
    """Unpickled, it runs a shell command that leaves the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture(autouse=True)
def keep_cwd() -> Iterator[None]:
    before = os.getcwd()
    yield
    os.chdir(before)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def run(notebook: Path, store: Path, **options: Any) -> RunResult:
    prepared = prepare(notebook, cache=store)
    return run_project(prepared.project, RunOptions(storage=str(store / "results"), **options))


def states(result: RunResult) -> dict[str, str]:
    return {name: report.state for name, report in result.steps.items()}


def records(store: Path) -> list[Path]:
    """The steps' records: the files Prefect keeps under the cache keys."""
    found = [p for p in (store / "results").iterdir() if p.is_file()]
    assert found
    return found


def plant(record: Path, document: dict[str, Any]) -> None:
    record.write_text(json.dumps(document))


def prefect_record(result: bytes | str, serializer: dict[str, Any], key: Path) -> dict[str, Any]:
    """A record as Prefect writes it, naming its own serializer."""
    import prefect

    return {"metadata": {"storage_key": str(key), "expiration": None, "serializer": serializer,
                         "prefect_version": prefect.__version__, "storage_block_id": None},
            "result": result.decode() if isinstance(result, bytes) else result}


def evil(marker: Path) -> bytes:
    return base64.encodebytes(pickle.dumps(Boom(marker)))


def recomputed_with_warnings(again: RunResult, planted: list[Path],
                             use: str = "completed") -> None:
    assert again.ok, again.error
    assert states(again) == {"make": "completed", "use": use}
    assert again.outputs["use"]["total"] == 8.0
    for record in planted:  # each warning names the file it did not trust
        assert any("cached result not used, it runs again" in w and str(record) in w
                   for w in again.warnings), (record, again.warnings)


@pytest.mark.parametrize("attack", ["pickle-in-result", "pickle-serializer",
                                    "json-serializer-importing"])
def test_a_planted_record_runs_nothing_and_the_step_runs_again(
        attack: str, tmp_path: Path, store: Path, prefect_harness: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A record rewritten to hold a pickle (under nb2pipe's own fields, or as a record of
    Prefect's naming the pickle serializer), or naming Prefect's JSON serializer with a class
    to import: never unpickled, never imported; the step runs again, its record replaced."""
    marker = tmp_path / "pwned"
    notebook = write_notebook(tmp_path / "stored.ipynb", *STORED)
    first = run(notebook, store)
    assert first.ok, first.error
    planted = records(store)
    for record in planted:
        document = json.loads(record.read_text())
        if attack == "pickle-in-result":
            document["result"] = evil(marker).decode()
            plant(record, document)
        elif attack == "pickle-serializer":
            plant(record, prefect_record(evil(marker), {"type": "pickle", "picklelib": "pickle"},
                                         record))
        else:  # Prefect's JSON decoder imports the class a record names
            module = tmp_path / "modules" / "planted_marker.py"
            module.parent.mkdir(exist_ok=True)
            module.write_text(f"open({str(marker)!r}, 'w').close()\n\nclass Thing:\n    pass\n")
            monkeypatch.syspath_prepend(str(module.parent))
            plant(record, prefect_record(json.dumps({"__class__": "planted_marker.Thing",
                                                     "data": {}}), {"type": "json"}, record))
    again = run(notebook, store)
    assert not marker.exists()
    recomputed_with_warnings(again, planted)
    third = run(notebook, store)
    assert states(third) == {"make": "cached", "use": "cached"}  # replaced: trusted again
    assert not marker.exists()


def test_a_value_file_swapped_for_a_pickle_with_its_hash_runs_nothing(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    """The attacker writes a pickle as a value file and puts its name and SHA-256 in the
    record that lists it: the record no longer proves to be nb2pipe's, nothing is read."""
    import hashlib

    marker = tmp_path / "pwned"
    notebook = write_notebook(tmp_path / "stored.ipynb", *STORED)
    assert run(notebook, store).ok
    data = pickle.dumps(Boom(marker))
    digest = hashlib.sha256(data).hexdigest()
    path = f"values/{digest[:2]}/{digest}.pkl"
    (store / "results" / path).parent.mkdir(parents=True, exist_ok=True)
    (store / "results" / path).write_bytes(data)
    changed = []
    for record in records(store):
        document = json.loads(record.read_text())
        if "metadata" in document:  # a record of Prefect's own (the Values pickled in it)
            import cloudpickle

            values = cloudpickle.loads(base64.decodebytes(document["result"].encode()))
            if "names" in values.refs:
                values.refs["names"] = type(values.refs["names"])(path, digest, "")
                document["result"] = base64.encodebytes(cloudpickle.dumps(values)).decode()
                changed.append(record)
        elif "names" in document["refs"]:
            document["refs"]["names"] = [path, digest, ""]
            changed.append(record)
        plant(record, document)
    assert len(changed) == 1
    again = run(notebook, store)
    assert not marker.exists()
    # `use` reads the same values as before (the same hashes): its own record still holds
    recomputed_with_warnings(again, changed, use="cached")
    assert again.outputs["make"]["names"] == ["a", "b"]


def test_a_value_handed_over_in_a_run_is_checked_before_it_is_read(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    """Between two processes of one run, a value file replaced by a pickle (here by a step in
    between, as someone writing the storage could) fails the step that reads it, naming the
    file; nothing of it is unpickled."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Boom(marker), protocol=5)
    planted = b"nb2pipe-pickle5\n" + struct.pack("<QQ", 1, len(payload)) + payload
    notebook = write_notebook(
        tmp_path / "handed.ipynb",
        ("rows = [1, 2, 3]", "step:make"),
        ("import glob, os\nfound = glob.glob(os.environ['NB2PIPE_RESULT_STORAGE'] + "
         "'/runs/*/*/rows.*')\n"
         f"for path in found:\n    open(path, 'wb').write({planted!r})\ncount = len(found)",
         "step:tamper", "after:make", "metrics"),
        ("total = sum(rows)", "step:use", "after:tamper", "metrics"))
    result = run(notebook, store, cache=False, runner="process")
    assert not marker.exists()
    assert result.outputs == {} and not result.ok
    assert states(result)["use"] == "failed", states(result)
    assert result.steps["tamper"].metrics["count"] == 1
    error = result.steps["use"].error or ""
    assert "'rows' cannot be read" in error and "/runs/" in error and "rows.pkl5" in error, error
    assert "hash differs" in error


def test_a_cached_second_run_is_all_cached_with_one_key_made_once(
        tmp_path: Path, store: Path, prefect_harness: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    monkeypatch.setenv("NB2PIPE_CONFIG_DIR", str(config))
    monkeypatch.delenv("NB2PIPE_STORAGE_KEY", raising=False)
    notebook = write_notebook(tmp_path / "stored.ipynb", *STORED)
    assert not config.exists()
    first = run(notebook, store)
    assert first.ok, first.error
    key = config / "storage.key"
    made = key.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = run(notebook, store)
    assert states(again) == {"make": "cached", "use": "cached"}
    assert again.outputs["use"]["total"] == 8.0 and not again.warnings
    assert key.read_bytes() == made
    for record in records(store):  # what Prefect keeps: JSON only, signed
        document = json.loads(record.read_text())
        assert set(document) >= {"nb2pipe-record", "mac", "refs"} and "result" not in document


def test_a_chunk_swapped_after_its_record_was_written_never_becomes_a_value(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    """A chunk of a cached value replaced by as many other bytes: the cache lookup, which
    reads no chunk, takes the entry, but the bytes are hashed as they are loaded: reading
    the value back fails naming the chunk, which is removed, and the next run computes the
    step again; a step that loads the value fails the same way, never computing with it."""
    import numpy as np

    notebook = write_notebook(
        tmp_path / "chunked.ipynb", ("scale = 1", "parameters"),
        ("import numpy as np\nweights = np.arange(400_000.0)", "step:make"),
        ("total = float(weights.sum()) * scale", "step:use", "metrics"))
    right = float(np.arange(400_000.0).sum())
    assert run(notebook, store).ok
    [chunk] = [p for p in (store / "results" / "chunks").rglob("*") if p.is_file()]
    swapped = np.full(400_000, 7.0).tobytes()

    def swap() -> None:
        assert len(swapped) == chunk.stat().st_size
        chunk.write_bytes(swapped)

    swap()
    cached = run(notebook, store)
    assert states(cached) == {"make": "cached", "use": "cached"}
    assert cached.outputs["use"]["total"] == right  # computed before the swap
    with pytest.raises(ValueError, match="hash differs") as raised:
        cached.outputs["make"]["weights"]
    assert str(chunk) in str(raised.value) and "runs again next time" in str(raised.value)
    assert not chunk.exists()
    again = run(notebook, store)
    assert states(again) == {"make": "completed", "use": "cached"}
    assert any("is missing" in w and str(chunk) in w for w in again.warnings), again.warnings
    assert list(again.outputs["make"]["weights"][:3]) == [0.0, 1.0, 2.0]

    swap()
    loading = run(notebook, store, parameters={"scale": 2})
    assert states(loading) == {"make": "cached", "use": "failed"}
    error = loading.steps["use"].error or ""
    assert "'weights' cannot be read" in error and str(chunk) in error, error
    assert not chunk.exists()
    fixed = run(notebook, store, parameters={"scale": 2})
    assert states(fixed) == {"make": "completed", "use": "completed"}
    assert fixed.outputs["use"]["total"] == 2 * right


def flow_script(project: Path, store: Path, env: dict[str, str]) -> dict[str, str]:
    """Run the project's flow.py as a deployment's process does, with `env`; the final
    state of each step from Prefect's log lines."""
    done = subprocess.run([sys.executable, "flow.py"], cwd=project, capture_output=True,
                          text=True, timeout=600, env={
                              **os.environ, "NB2PIPE_RESULT_STORAGE": str(store / "results"),
                              "NB2PIPE_REPORT": "off", **env})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = {}
    for line in (done.stdout + done.stderr).splitlines():
        for step in ("make", "use"):
            if f"Task run '{step}'" in line and "Finished in state" in line:
                found[step] = line.split("Finished in state ")[1].split("(")[0]
    return found


def test_a_deployed_flow_signs_with_the_key_from_its_environment(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    """As on workers that share a bucket: the key comes from NB2PIPE_STORAGE_KEY, none is
    made in the configuration folder; a worker with another key trusts none of the records
    and computes the steps again."""
    notebook = write_notebook(tmp_path / "stored.ipynb", *STORED)
    project = prepare(notebook, cache=store).project
    config = tmp_path / "worker-config"
    env = {"NB2PIPE_STORAGE_KEY": "k" * 40, "NB2PIPE_CONFIG_DIR": str(config)}
    assert flow_script(project, store, env) == {"make": "Completed", "use": "Completed"}
    assert flow_script(project, store, env) == {"make": "Cached", "use": "Cached"}
    assert not config.exists()
    other = {**env, "NB2PIPE_STORAGE_KEY": "o" * 40}
    assert flow_script(project, store, other) == {"make": "Completed", "use": "Completed"}
    short = subprocess.run([sys.executable, "flow.py"], cwd=project, capture_output=True,
                           text=True, timeout=600, env={
                               **os.environ, **env, "NB2PIPE_STORAGE_KEY": "short",
                               "NB2PIPE_RESULT_STORAGE": str(store / "results"),
                               "NB2PIPE_REPORT": "off"})
    assert short.returncode != 0
    assert "NB2PIPE_STORAGE_KEY is too short" in short.stdout + short.stderr


def test_a_prefect_secret_block_holds_the_key(tmp_path: Path, store: Path,
                                              prefect_harness: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    Secret(value="s" * 40).save("nb2pipe-test-storage-key", overwrite=True,  # type: ignore
                                _sync=True)
    monkeypatch.delenv("NB2PIPE_STORAGE_KEY", raising=False)
    monkeypatch.setenv("NB2PIPE_STORAGE_KEY_BLOCK", "nb2pipe-test-storage-key")
    monkeypatch.setenv("NB2PIPE_CONFIG_DIR", str(tmp_path / "unused"))
    notebook = write_notebook(tmp_path / "stored.ipynb", *STORED)
    assert run(notebook, store).ok
    again = run(notebook, store)
    assert states(again) == {"make": "cached", "use": "cached"}
    assert not (tmp_path / "unused").exists()
    monkeypatch.setenv("NB2PIPE_STORAGE_KEY", "e" * 40)  # the variable comes first
    assert states(run(notebook, store)) == {"make": "completed", "use": "completed"}
