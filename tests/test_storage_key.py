"""The storage key, the signed records and the checked value files, without a Prefect run:
nothing read from a result storage is decoded before it proves to be nb2pipe's."""

from __future__ import annotations

import base64
import json
import os
import pickle
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nb2pipe.runtime import auth, records, values
from nb2pipe.runtime.handoff import Values
from nb2pipe.runtime.store import Store, Tampered


class Boom:
    """Unpickled, it leaves the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration folder of the test's own, no key in the environment."""
    folder = tmp_path / "config"
    monkeypatch.setenv("NB2PIPE_CONFIG_DIR", str(folder))
    monkeypatch.delenv(auth.KEY_VARIABLE, raising=False)
    monkeypatch.delenv(auth.KEY_BLOCK_VARIABLE, raising=False)
    return folder


def test_a_local_key_is_made_once_readable_by_its_owner_only(config: Path) -> None:
    key = auth.storage_key()
    path = config / "storage.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    assert len(key) == 64 and path.read_bytes().strip() == key
    auth._key.cache_clear()
    assert auth.storage_key() == key


def test_processes_starting_at_once_agree_on_one_key(config: Path) -> None:
    script = "from nb2pipe.runtime import auth; print(auth.storage_key().decode())"
    started = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                text=True, env={**os.environ, "NB2PIPE_CONFIG_DIR": str(config)})
               for _ in range(6)]
    keys = {process.communicate(timeout=60)[0].strip() for process in started}
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert [p.name for p in config.iterdir()] == ["storage.key"]  # no draft left behind


def test_the_key_from_the_environment_comes_first_and_must_be_long(
        config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(auth.KEY_VARIABLE, "x" * 40)
    assert auth.storage_key() == b"x" * 40
    assert not config.exists()
    monkeypatch.setenv(auth.KEY_VARIABLE, "short")
    with pytest.raises(auth.StorageKeyError, match="NB2PIPE_STORAGE_KEY is too short"):
        auth.storage_key()


def test_a_key_others_can_read_or_one_inside_the_storage_is_refused(
        config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth.storage_key()
    path = config / "storage.key"
    path.chmod(0o644)
    auth._key.cache_clear()
    with pytest.raises(auth.StorageKeyError, match="can be read by other users: chmod 600"):
        auth.storage_key()
    path.chmod(0o600)
    auth.check_outside(tmp_path / "results")
    with pytest.raises(auth.StorageKeyError, match="lies inside the result storage"):
        auth.check_outside(tmp_path)  # the configuration folder is inside this folder
    monkeypatch.setenv(auth.KEY_VARIABLE, "x" * 40)
    auth.check_outside(tmp_path)  # the key is not the file: nothing to refuse


def signed(tmp_path: Path, key: str = "K1") -> tuple[Values, bytes]:
    kept = Values("load", {"rows": [1, 2], "weights": np.arange(3.0)}, run="run-1")
    kept.save(Store(str(tmp_path / "results")), for_later=True)
    kept.key = key
    return kept, records.SERIALIZER.dumps(kept)


def test_a_record_is_json_signed_and_read_back_only_under_its_key(tmp_path: Path) -> None:
    kept, data = signed(tmp_path)
    document = json.loads(data)
    assert document["nb2pipe-record"] == 1 and document["key"] == "K1"
    assert set(document["refs"]) == {"rows", "weights"} and len(document["mac"]) == 64
    found = records.read(data, "K1")
    assert (found.step, found.refs, found.location, found.run) == (
        "load", kept.refs, kept.location, "run-1")
    assert found["rows"] == [1, 2]
    with pytest.raises(records.Untrusted, match="another step or input"):
        records.read(data, "K2")  # a record copied under another cache key


@pytest.mark.parametrize("change", ["step", "refs", "location", "unsaved", "mac", "key",
                                    "version", "other-key"])
def test_a_changed_record_is_not_trusted(change: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _, data = signed(tmp_path)
    document = json.loads(data)
    if change == "refs":
        document["refs"]["rows"][1] = "0" * 64
    elif change == "location":
        document["location"] = str(tmp_path / "elsewhere")
    elif change == "unsaved":
        document["unsaved"] = {"rows": "planted"}
    elif change == "mac":
        document["mac"] = "0" * 64
    elif change == "version":
        document["nb2pipe-record"] = 2
    elif change == "other-key":  # signed on a machine with another key
        monkeypatch.setenv(auth.KEY_VARIABLE, "o" * 40)
    else:
        document[change] = "K2" if change == "key" else "other"
    with pytest.raises(records.Untrusted):
        records.read(json.dumps(document).encode(), document["key"])


@pytest.mark.parametrize("planted", ["pickle-result", "pickle-serializer", "not-json",
                                     "nested", "list", "huge"])
def test_a_planted_record_is_never_decoded(planted: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = base64.encodebytes(pickle.dumps(Boom(marker))).decode()
    _, data = signed(tmp_path)
    document = json.loads(data)
    content = {
        "pickle-result": lambda: json.dumps({**document, "result": evil}),
        "pickle-serializer": lambda: json.dumps({"metadata": {"serializer": {
            "type": "pickle", "picklelib": "pickle"}}, "result": evil}),
        "not-json": lambda: "{not json",
        "nested": lambda: "[" * 100_000 + "]" * 100_000,
        "list": lambda: json.dumps([document]),
        "huge": lambda: json.dumps({**document, "pad": "x" * (17 << 20)}),
    }[planted]().encode()
    with pytest.raises(records.Untrusted):
        records.read(content, "K1")
    with pytest.raises(ValueError):  # what Prefect's read would decode with
        records.SERIALIZER.loads(content)
    assert not marker.exists()


def test_a_failed_steps_error_is_kept_as_text_and_never_read_back_as_values() -> None:
    kept = records.SERIALIZER.dumps(ValueError("bad <input>"))
    assert json.loads(kept) == {"nb2pipe-error": "ValueError: bad <input>"}
    with pytest.raises(records.Untrusted, match="not a record"):
        records.read(kept, None)
    with pytest.raises(TypeError, match="returns its Values"):
        records.SERIALIZER.dumps({"df": 1})


def result_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Prefect's result store of a step: its result storage a folder, its key storage the
    guard, records written with nb2pipe's serializer."""
    from prefect.filesystems import LocalFileSystem
    from prefect.results import ResultStore

    storage = LocalFileSystem(basepath=str(tmp_path / "results"))
    monkeypatch.setattr(records, "_result_storage", lambda: storage)
    return ResultStore(result_storage=storage, metadata_storage=records.RecordGuard(),
                       serializer=records.SERIALIZER, cache_result_in_memory=False)


def test_prefect_reads_a_signed_record_through_the_guard(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = result_store(tmp_path, monkeypatch)
    kept, _ = signed(tmp_path, key="KEY1")
    store.write(kept, key="KEY1")
    assert json.loads((tmp_path / "results" / "KEY1").read_bytes())["key"] == "KEY1"
    assert store.exists("KEY1")
    found = store.read("KEY1").result
    assert isinstance(found, Values) and found.refs == kept.refs
    assert not store.exists("KEY2")
    (tmp_path / "results" / "KEY2").write_bytes((tmp_path / "results" / "KEY1").read_bytes())
    assert not store.exists("KEY2")  # a record moved under another key


@pytest.mark.parametrize("serializer", [{"type": "pickle", "picklelib": "pickle"},
                                        {"type": "pickle"}, {"type": "compressed/pickle"}])
def test_prefect_never_honours_the_serializer_a_planted_record_names(
        serializer: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record of Prefect's own shape naming a pickle serializer: for Prefect's lookup of
    the key it is no entry, and reading it anyway decodes nothing."""
    import lzma

    import prefect

    marker = tmp_path / "pwned"
    store = result_store(tmp_path, monkeypatch)
    blob = pickle.dumps(Boom(marker))
    if serializer["type"] == "compressed/pickle":
        blob = lzma.compress(base64.encodebytes(blob))
    planted = tmp_path / "results" / "KEY1"
    planted.parent.mkdir(parents=True)
    planted.write_text(json.dumps({"metadata": {
        "storage_key": str(planted), "expiration": None, "serializer": serializer,
        "prefect_version": prefect.__version__, "storage_block_id": None},
        "result": base64.encodebytes(blob).decode()}))
    assert not store.exists("KEY1")
    with pytest.raises(records.Untrusted):
        store.read("KEY1")
    assert not marker.exists()


def test_a_tampered_value_file_is_never_decoded_and_named(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    store = Store(str(tmp_path / "results"))
    for run in (None, "run-1"):  # kept for later runs, and handed on within one
        handle = Values("make", {"rows": [1, 2], "weights": np.arange(3.0)}, run="run-1")
        handle.save(store, for_later=run is None)
        sent = pickle.loads(pickle.dumps(handle))  # as to another process: refs only
        assert sent["rows"] == [1, 2]
        target = tmp_path / "results" / handle.refs["rows"].path
        target.write_bytes(pickle.dumps(Boom(marker)))
        with pytest.raises(Tampered, match=f"{target} does not hold what was stored"):
            store.load_ref(handle.refs["rows"])
        assert not target.exists()  # removed: the next cache lookup finds it missing
        target.write_bytes(pickle.dumps(Boom(marker)))
        sent = pickle.loads(pickle.dumps(handle))
        with pytest.raises(Tampered, match=f"step 'make': its value 'rows' cannot be read: "
                                           f"{target}"):
            sent["rows"]
        with pytest.raises(Tampered, match=f"{target} is missing"):
            store.load_ref(handle.refs["rows"])
    assert not marker.exists()


@pytest.mark.parametrize("array", [
    np.arange(12.0).reshape(3, 4), np.asfortranarray(np.arange(12).reshape(3, 4)),
    np.arange(20)[::3], np.array(2.5, dtype=np.float32), np.zeros((0, 3)),
    np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", ">f8")]),
    np.array(["2024-01-01"], dtype="datetime64[D]"), np.arange(6, dtype=">i2")])
def test_arrays_come_back_from_their_checked_bytes_as_they_were(
        array: Any, tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    ref = store.save({"a": array})[0]["a"]
    assert ref.path.endswith(".value")
    loaded = store.load_ref(ref)
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.writeable


def test_frames_and_handed_over_values_come_back_from_their_checked_bytes(
        tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(5.0), "name": list("abcde")})
    store = Store(str(tmp_path))
    for run in (None, "run-1"):
        refs = store.save({"frame": frame, "rows": [1, 2]}, run)[0]
        back = store.load(refs)
        pd.testing.assert_frame_equal(back["frame"], frame)
        back["frame"].loc[0, "x"] = -1.0  # writable
        assert back["rows"] == [1, 2]
    with pytest.raises(ValueError, match="truncated"):
        values.load_bytes(bytearray(b"nb2pipe-pickle5\n" + (3).to_bytes(8, "little")),
                          values.BUFFERS)
