"""The artifact store and fingerprints: what crosses a process boundary comes back the same."""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from nb2pipe.runtime import values
from nb2pipe.runtime.fingerprint import fingerprint
from nb2pipe.runtime.handoff import copied
from nb2pipe.runtime.store import Store, shared_groups


def test_values_that_share_objects_share_them_again_when_read_back(tmp_path: Path) -> None:
    train, test = pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [3]})
    outputs = {"frames": [train, test], "train": train, "test": test, "n": 3, "sizes": [2, 1]}
    assert shared_groups(outputs) == [("frames", "test", "train")]
    store = Store(str(tmp_path))
    refs, unsaved = store.save(outputs)
    assert unsaved == {}
    found = store.load(refs)
    assert found["frames"][0] is found["train"] and found["frames"][1] is found["test"]
    found["frames"][1]["x2"] = 9  # a change through the list reaches `test`, as in memory
    assert list(found["test"].columns) == ["x", "x2"]
    assert store.load({"n": refs["n"]}) == {"n": 3}
    assert store.load({"sizes": refs["sizes"]}) == {"sizes": [2, 1]}
    assert refs["sizes"].member == "" and refs["train"].member == "train"


def test_small_values_the_interpreter_shares_do_not_group_outputs() -> None:
    assert shared_groups({"a": [1, "x", None], "b": (1, "x"), "c": "x"}) == []


def test_a_library_object_holding_an_output_is_grouped_with_it() -> None:
    """A Pipeline holds its estimators, a SimpleNamespace its items: saved apart, a step would
    get two objects where the notebook had one. Classes and a library's functions two objects
    hold (`dtype=np.float64`, `score_func=f_classif`) are pickled by name: no sharing."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    scaler, box = StandardScaler(), [1]
    outputs = {"pipe": make_pipeline(scaler, LinearRegression()), "scaler": scaler,
               "ns": types.SimpleNamespace(items=box), "box": box,
               "a": OneHotEncoder(dtype=np.float64), "b": OneHotEncoder(dtype=np.float64),
               "f": types.SimpleNamespace(score=shared_groups),
               "g": types.SimpleNamespace(score=shared_groups)}
    assert shared_groups(outputs) == [("box", "ns"), ("pipe", "scaler")]


def test_fingerprint_of_an_object_survives_a_round_trip_through_pickle() -> None:
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
    copy = pickle.loads(pickle.dumps(model))
    # pickle's own bytes differ here: the copy no longer shares one dtype object
    assert pickle.dumps(model) != pickle.dumps(copy)
    assert fingerprint(model) == fingerprint(copy)
    other = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.5])
    assert fingerprint(model) != fingerprint(other)


def test_fingerprint_of_containers_ignores_set_order_but_not_list_order() -> None:
    assert fingerprint({3, 1, 2}) == fingerprint({1, 2, 3})
    assert fingerprint([1, 2]) != fingerprint([2, 1])
    assert fingerprint({"a": 1.0}) == fingerprint({"a": 1.0 + 1e-12})
    cyclic: list[object] = [1]
    cyclic.append(cyclic)
    assert fingerprint(cyclic)["kind"] == "hash"


@pytest.mark.parametrize("run", [None, "run-1"])  # for later runs (pickle 4), for the next step
def test_a_view_saved_with_its_array_is_read_back_as_a_view_of_it(tmp_path: Path,
                                                                   run: str | None) -> None:
    x2 = np.arange(12).reshape(3, 4)  # itself a view of the arange
    store = Store(str(tmp_path))
    refs, _ = store.save({"x2": x2, "x2_sub": x2[:2, :2], "column": x2[:, 1]}, run=run)
    assert len({ref.path for ref in refs.values()}) == 1  # saved together
    found = store.load(refs)
    found["x2_sub"][0, 0] = 99
    found["column"][2] = -1
    assert found["x2"].tolist() == [[99, 1, 2, 3], [4, 5, 6, 7], [8, -1, 10, 11]]
    # Alone, or beside a much larger array it shows little of, a view is saved as a copy.
    big = np.zeros(100_000)
    refs, _ = store.save({"head": big[:10], "tail": big[-10:]}, run=run)
    assert sum((tmp_path / r.path).stat().st_size for r in refs.values()) < 10_000


def test_recorded_values_that_share_objects_are_read_back_sharing_them(tmp_path: Path) -> None:
    frames = [pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2]})]
    x = np.zeros((2, 2))
    written = values.dump_all(str(tmp_path), {"frames": frames, "train": frames[0], "x": x,
                                              "row": x[0], "alone": 3})
    assert sorted(written) == ["alone.pkl", "frames.shared.pkl", "row.shared.pkl"]
    found = values.load(str(tmp_path))
    assert sorted(found) == ["alone", "frames", "row", "train", "x"]
    assert found["train"] is found["frames"][0]
    found["row"][1] = 5.0
    assert found["x"][0, 1] == 5.0


def test_copies_for_a_step_keep_views_of_one_array_views_of_its_copy() -> None:
    x2 = np.arange(12).reshape(3, 4)
    x2_copy, sub_copy, rows = copied((x2, x2[:2, :2], [x2[0]]))
    sub_copy[0, 0] = 99
    rows[0][1] = 42
    assert x2_copy[0].tolist() == [99, 42, 2, 3]
    assert x2[0].tolist() == [0, 1, 2, 3]  # the original is untouched


def test_copies_for_a_step_behave_as_the_notebook_values_do() -> None:
    # After `insert`, a frame holds two blocks: `.values` is a copy of its own, writable; a
    # deep copy merges them into one, whose `.values` is a read-only view (copy-on-write).
    frame = pd.DataFrame({"x1": [1.0, 2.0], "x2": [3.0, 4.0]})
    frame.insert(0, "const", 1.0)
    frozen = np.arange(4.0)
    frozen.flags.writeable = False
    frame_copy, frozen_copy, plain_copy = copied((frame, frozen, np.arange(3.0)))
    assert frame_copy.values.flags.writeable == frame.values.flags.writeable
    norm = frame_copy.values
    norm[:, 1] = 0.0  # the notebook's `norm_x = X.values; norm_x[:, i] = ...`
    assert frame_copy["x1"].tolist() == frame["x1"].tolist() == [1.0, 2.0]
    assert not frozen_copy.flags.writeable  # a write fails as it did in the notebook
    assert plain_copy.flags.writeable
    frame_copy.loc[0, "x1"] = 7.0
    assert frame.loc[0, "x1"] == 1.0  # a copy still: the original is untouched


@pytest.mark.parametrize("run", [None, "run-1"])  # kept for later runs, for the next step
@pytest.mark.parametrize("size", [5, 300_000])  # in the manifest, in chunks of their own
def test_arrays_read_back_are_aligned_and_as_writable_as_they_were(tmp_path: Path,
                                                                   run: str | None,
                                                                   size: int) -> None:
    # Unaligned memory takes numpy's other loops: slower, and sums come out in another order
    frozen = np.arange(float(size))
    frozen.flags.writeable = False
    outputs = {"frozen": frozen, "plain": np.arange(float(size)),
               "odd": np.arange(3, dtype=np.int8),  # the buffers after it start unaligned
               "frame": pd.DataFrame({"a": np.arange(float(size)), "b": np.arange(float(size))})}
    store = Store(str(tmp_path))
    refs, _ = store.save(outputs, run=run)
    found = store.load(refs)
    arrays = [found["frozen"], found["plain"],
              *(block.values for block in found["frame"]._mgr.blocks)]
    assert all(a.flags.aligned and a.ctypes.data % 16 == 0 for a in arrays)
    assert not found["frozen"].flags.writeable
    assert found["plain"].flags.writeable
    found["frame"].iloc[0, 0] = 5.0  # a frame stays one a step may change in place
    assert found["odd"].tolist() == [0, 1, 2]


def test_a_drawing_is_not_fingerprinted_and_says_so() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    # Its state holds ids and callbacks of this process (two equal figures would differ) and
    # walking it once took seconds per value; inside a container it skips the container.
    for value in (figure, axes, {"lines": axes.lines}):
        found = fingerprint(value)
        assert found["kind"] == "skip" and "drawings are not compared" in found["reason"]
    plt.close(figure)


def test_a_failed_write_of_a_frame_is_raised_not_lost() -> None:
    from nb2pipe.runtime.values import _HashingWriter

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

    writer = _HashingWriter(Full())
    for _ in range(10):  # more pieces than the queue holds: the writer must not hang
        writer.write(b"x" * 1000)
    with pytest.raises(OSError, match="No space left"):
        writer.finish()


def test_a_block_that_lost_its_name_on_the_way_to_a_worker_is_the_configured_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.filesystems import RemoteFileSystem

    from nb2pipe.runtime.store import Store

    unnamed = RemoteFileSystem(basepath="memory://bucket")
    with pytest.raises(ValueError, match="saved Prefect block"):
        Store.for_storage(unnamed)
    monkeypatch.setenv("NB2PIPE_RESULT_STORAGE", "remote-file-system/results")
    assert Store.for_storage(unnamed).location == "block:remote-file-system/results"
    monkeypatch.setenv("NB2PIPE_RESULT_STORAGE", "s3-bucket/results")  # another type: no
    with pytest.raises(ValueError, match="saved Prefect block"):
        Store.for_storage(unnamed)


def test_a_storage_that_cannot_be_reached_fails_the_step_naming_the_storage() -> None:
    from nb2pipe.runtime.errors import StorageError, storing

    def unreachable() -> None:
        raise ConnectionError("Read timeout on endpoint URL")

    with pytest.raises(StorageError) as raised:
        storing("train", "save its values", unreachable, location="block:s3-bucket/results")
    assert str(raised.value) == (
        "step 'train' could not save its values in the result storage block:s3-bucket/results:"
        " ConnectionError: Read timeout on endpoint URL; when the storage answers again, run "
        "the flow again (steps already saved are not computed again)")


def test_a_report_write_to_a_storage_block_that_times_out_names_the_storage(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore's timeouts are OSErrors: on a block they are the storage's failure, not a
    folder's error that names its own file."""
    from nb2pipe.runtime.errors import StorageError, storing

    def timed_out(*_: object) -> None:
        raise TimeoutError("Read timeout on endpoint URL")

    monkeypatch.setenv("NB2PIPE_RESULT_STORAGE", "s3-bucket/results")
    with pytest.raises(StorageError, match=(
            r"^step 'train' could not save its outputs for the run's report in the result "
            r"storage block:s3-bucket/results: TimeoutError: Read timeout")):
        storing("train", "save its outputs for the run's report", timed_out)
    monkeypatch.setenv("NB2PIPE_RESULT_STORAGE", str(tmp_path))  # a folder's error names its file
    with pytest.raises(TimeoutError):
        storing("train", "save its outputs for the run's report", timed_out)


def test_the_block_given_to_a_task_saves_its_values_after_the_task_ended(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a Dask worker a step's values may be pickled (and saved) after its task ended, out of
    Prefect's context: the block the task was given is used, never loaded again by name (which
    would need a Prefect API the worker does not know)."""
    from prefect.blocks.core import Block
    from prefect.filesystems import RemoteFileSystem

    from nb2pipe.runtime import store as module

    def no_api(*_: object, **__: object) -> None:
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API")

    monkeypatch.setattr(Block, "load", no_api)
    monkeypatch.setenv("NB2PIPE_RESULT_STORAGE", "remote-file-system/given")
    monkeypatch.setattr(module, "_GIVEN", {})
    given = RemoteFileSystem(basepath="memory://given-values")
    location = module.Store.for_storage(given).location
    later = module.Store(location)  # as Values rebuilds it when pickled
    refs, unsaved = later.save({"frame": pd.DataFrame({"a": [1.0, 2.0]})}, "run")
    assert unsaved == {}
    assert later.load(refs)["frame"]["a"].tolist() == [1.0, 2.0]


class ObjectStore:
    """An object store's block, as Prefect's S3, GCS and Azure blocks are: files stream in and
    out through file objects; reading or writing a whole file as bytes is refused."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.options: list[dict[str, Any]] = []  # what each upload and download was told
        self.seekable: list[bool] = []  # whether each upload's file object could seek

    def upload_from_file_object(self, handle: Any, path: str, **options: Any) -> None:
        self.options.append(options)
        self.seekable.append(handle.seekable())
        self.objects[path] = handle.read()

    def download_object_to_file_object(self, path: str, handle: Any, **options: Any) -> None:
        self.options.append(options)
        handle.write(self.objects[path])

    def read_path(self, path: str) -> bytes:
        raise AssertionError("read whole into memory")

    def write_path(self, path: str, content: bytes) -> None:
        raise AssertionError("written whole from memory")


def test_values_stream_to_and_from_an_object_stores_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from nb2pipe.runtime import store as module

    bucket = ObjectStore()
    monkeypatch.setattr(module, "_block", lambda location: bucket)
    store = module.Store("block:s3-bucket/results")
    frame = pd.DataFrame({"a": np.arange(1000.0)})
    refs, unsaved = store.save({"frame": frame, "array": np.ones(10)})
    assert unsaved == {} and len(bucket.objects) == 2
    loaded = store.load(refs)
    pd.testing.assert_frame_equal(loaded["frame"], frame)
    assert store.discard_damaged(refs) is None
    path = refs["frame"].path
    bucket.objects[path] = bucket.objects[path][:-1]
    assert "changed since it was" in str(store.discard_damaged(refs))


def test_a_large_values_chunks_stream_to_and_from_an_object_stores_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from nb2pipe.runtime import store as module

    bucket = ObjectStore()
    monkeypatch.setattr(module, "_block", lambda location: bucket)
    store = module.Store("block:s3-bucket/results")
    big = np.arange(600_000.0)  # over a chunk's threshold: its memory is a chunk of its own
    refs, _ = store.save({"big": big})
    assert any(path.startswith("chunks/") for path in bucket.objects)
    np.testing.assert_array_equal(store.load(refs)["big"], big)
    assert store.discard_damaged(refs) is None
    chunk = next(path for path in bucket.objects if path.startswith("chunks/"))
    bucket.objects[chunk] = bucket.objects[chunk][:-8] + b"\0" * 8
    assert "changed since it was stored" in str(store.discard_damaged(refs))


def test_a_value_handed_on_through_an_object_store_goes_from_memory_as_chunks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """To a step in another process: a manifest and chunks under the run's folder, written
    from the value's memory and read into the new value's (nothing through local files),
    each chunk an object of its own, which object stores write and read side by side."""
    import tempfile

    from nb2pipe.runtime import chunks
    from nb2pipe.runtime import store as module

    def no_local_files(*_: object, **__: object) -> None:
        raise AssertionError("a local file in between")

    bucket = ObjectStore()
    monkeypatch.setattr(module, "_block", lambda location: bucket)
    monkeypatch.setattr(chunks, "CHUNK", 1 << 20)
    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_local_files)
    store = module.Store("block:s3-bucket/results")
    frame = pd.DataFrame({"a": np.arange(400_000.0), "b": -np.arange(400_000.0)})  # 6.4 MB
    refs, unsaved = store.save({"frame": frame, "n": 3}, run="run-1")
    assert unsaved == {}
    folder = refs["frame"].path.rpartition("/")[0]
    assert folder.startswith("runs/run-1/") and refs["frame"].path.endswith("/frame.value")
    parts = [path for path in bucket.objects if path.startswith(f"{folder}/chunks/")]
    assert len(parts) == 7 and all(len(bucket.objects[p]) <= 1 << 20 for p in parts)
    assert not any(path.startswith(("values/", "chunks/")) for path in bucket.objects)
    loaded = store.load(refs)
    pd.testing.assert_frame_equal(loaded["frame"], frame)
    assert loaded["n"] == 3
    bucket.objects[parts[0]] = bucket.objects[parts[0]][:-8] + b"\0" * 8
    with pytest.raises(module.Tampered, match="does not hold what was stored there"):
        store.load({"frame": refs["frame"]})


def test_an_s3_buckets_objects_go_each_in_one_request_streamed_from_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 by itself splits an object over 8 MB into 8 MB ranges and parts, and copies what
    it cannot seek into memory part by part: a chunk is sent as it is, in one request."""
    from nb2pipe.runtime import chunks
    from nb2pipe.runtime import store as module

    bucket = ObjectStore()
    monkeypatch.setattr(module, "_block", lambda location: bucket)
    store = module.Store("block:s3-bucket/results")
    big = np.arange(2_000_000.0)
    np.testing.assert_array_equal(store.load(store.save({"big": big}, run="r")[0])["big"], big)
    assert bucket.options and all(
        o["Config"].multipart_threshold >= chunks.CHUNK for o in bucket.options)
    assert bucket.seekable and all(bucket.seekable)


def test_pieces_of_memory_read_as_one_file_from_anywhere_in_it() -> None:
    from nb2pipe.runtime.objects import PiecesReader

    reader = PiecesReader([b"abc", memoryview(b"defgh"), b"", b"ij"])
    assert reader.read(4) == b"abcd"
    assert reader.tell() == 4 and reader.seekable()
    assert reader.read() == b"efghij"
    assert reader.seek(0, 2) == 10 and reader.read(3) == b""
    reader.seek(2)
    assert reader.read(5) == b"cdefg"
    reader.seek(-3, 1)
    assert reader.read() == b"efghij"


def test_with_caching_off_a_step_saves_the_values_that_go_to_other_processes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a Dask cluster the step's task writes them, not the task runner when it pickles the
    values to pass them on (Dask's event loop, which stops answering while they upload); steps
    on threads of one process take them from memory."""
    import dataclasses

    from prefect.filesystems import LocalFileSystem

    from nb2pipe.runtime import runners, switches, tasks
    from nb2pipe.runtime.handoff import Values

    storage = LocalFileSystem(basepath=str(tmp_path))
    off = dataclasses.replace(switches.read(), cache=False, handoff_through_store=False)
    for shared, saved in ((True, False), (False, True)):
        monkeypatch.setattr(runners, "shares_memory", lambda shared=shared: shared)
        values = Values("make", {"x": np.arange(3.0)}, run="run-1")
        tasks._save(values, storage, off)
        assert values.location == str(tmp_path.resolve())
        assert sorted(values.refs) == (["x"] if saved else [])


def test_numpys_global_generator_held_by_a_value_is_the_readers_global_one() -> None:
    """A frozen scipy distribution keeps numpy's global RandomState to draw from; read back
    (pickle, cloudpickle or a deep copy) it draws from the reading process's global stream,
    whose state the steps carry, not from a private copy. Other generators stay copies."""
    import copy

    import cloudpickle
    from scipy.stats import bernoulli

    global_state = np.random.mtrand._rand
    own = np.random.RandomState(3)
    value = {"rv": bernoulli(0.6), "own": own, "x": np.arange(4.0)}
    for module in (pickle, cloudpickle):
        back = pickle.loads(values.dumps(module, value, 5))
        assert back["rv"].random_state is global_state
        assert back["own"] is not own
        assert np.array_equal(back["own"].get_state()[1], own.get_state()[1])
    head, buffers = values.pickled_out_of_band(value)
    assert pickle.loads(head, buffers=buffers)["rv"].random_state is global_state
    copied = copy.deepcopy(value, values.view_copies(value))
    assert copied["rv"].random_state is global_state and copied["own"] is not own
