"""Values kept for later runs: a manifest and content-addressed chunks, hashed in one pass
over memory, written in the background, read back exactly as they were."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nb2pipe.runtime import chunks, verified, writes
from nb2pipe.runtime import store as store_module
from nb2pipe.runtime.store import Store, Tampered


def big_frame(rows: int = 200_000) -> pd.DataFrame:
    """Large enough that every column is chunked (over chunks.INLINE bytes)."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.standard_normal((rows, 4)), columns=list("abcd"))


def chunk_files(folder: Path) -> set[Path]:
    return set((folder / "chunks").rglob("*")) - {p for p in (folder / "chunks").rglob("*")
                                                  if p.is_dir()}


def odd_frame() -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays([pd.date_range("2024-01-01", periods=6, tz="UTC"),
                                       list("aabbcc")], names=["when", "who"])
    return pd.DataFrame({
        "i8": np.arange(6, dtype="int8"),
        "f32": np.linspace(0, 1, 6, dtype="float32"),
        "nullable": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
        "cat": pd.Categorical(list("xyxyzz"), categories=["z", "y", "x"], ordered=True),
        "text": ["a", "bb", None, "d", "e", "f"],
        "big": np.arange(6, dtype="uint64") * (1 << 60),
    }, index=index)


@pytest.mark.parametrize("value", [odd_frame(), big_frame(), big_frame()["a"],
                                   np.asfortranarray(np.arange(600_000.0).reshape(1000, 600))],
                         ids=["dtypes-index-categoricals", "large-frame", "series", "fortran"])
def test_a_kept_value_is_read_back_with_its_exact_types(tmp_path: Path, value: Any) -> None:
    store = Store(str(tmp_path))
    ref = store.save({"value": value})[0]["value"]
    loaded = store.load_ref(ref)
    assert type(loaded) is type(value)
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(loaded, value, check_exact=True)
        assert loaded.index.names == value.index.names
    elif isinstance(value, pd.Series):
        pd.testing.assert_series_equal(loaded, value, check_exact=True)
    else:
        assert loaded.dtype == value.dtype and loaded.flags.f_contiguous
        np.testing.assert_array_equal(loaded, value)


def test_views_of_one_array_kept_together_are_views_of_one_array_again(tmp_path: Path) -> None:
    whole = np.arange(400_000.0).reshape(2000, 200)
    store = Store(str(tmp_path))
    refs = store.save({"whole": whole, "corner": whole[:10, :10]})[0]
    loaded = store.load(refs)
    loaded["whole"][0, 0] = -1.0
    assert loaded["corner"][0, 0] == -1.0  # a window onto the array read back, as before
    np.testing.assert_array_equal(loaded["whole"][1:], whole[1:])


def test_a_frame_is_a_manifest_named_by_its_hash_and_chunks_named_by_theirs(
        tmp_path: Path) -> None:
    frame = big_frame()
    store = Store(str(tmp_path))
    ref = store.save({"frame": frame})[0]["frame"]
    assert ref.path == f"values/{ref.sha256[:2]}/{ref.sha256}.value"
    assert ref.sha256 == hashlib.sha256((tmp_path / ref.path).read_bytes()).hexdigest()
    files = chunk_files(tmp_path)
    assert files and all(p.name == hashlib.sha256(p.read_bytes()).hexdigest() for p in files)
    loaded = store.load_ref(ref)
    loaded.loc[0, "a"] = 5.0  # its memory is its own, writable: a step may change it
    assert frame.loc[0, "a"] != 5.0


def test_a_frame_with_one_column_more_writes_only_that_column(tmp_path: Path) -> None:
    frame = big_frame()
    store = Store(str(tmp_path))
    store.save({"df": frame})
    before = chunk_files(tmp_path)
    grown = frame.copy()
    grown["e"] = grown["a"] * 2
    ref = store.save({"df": grown})[0]["df"]
    written = chunk_files(tmp_path) - before
    assert 0 < sum(p.stat().st_size for p in written) <= grown["e"].nbytes
    pd.testing.assert_frame_equal(store.load_ref(ref), grown)


def test_saving_hashes_memory_and_never_reads_a_written_file_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a written file was read back to hash it")

    monkeypatch.setattr(store_module, "file_hash", refused)
    monkeypatch.setattr(store_module, "_read_hashing", refused)
    ref = Store(str(tmp_path)).save({"df": big_frame()})[0]["df"]
    assert ref.sha256 == hashlib.sha256((tmp_path / ref.path).read_bytes()).hexdigest()


def test_pickling_a_frame_to_keep_it_makes_no_copy_of_its_columns() -> None:
    import tracemalloc

    frame = big_frame(rows=1_000_000)  # 32 MB
    tracemalloc.start()
    packed = chunks.pack(frame)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sum(piece.data.nbytes for piece in packed.chunks) >= frame.memory_usage().sum() - 1000
    assert peak < frame.memory_usage().sum() / 4, peak


def test_a_chunk_swapped_for_as_many_bytes_is_never_decoded_and_is_removed_when_read(
        tmp_path: Path) -> None:
    """The cache lookup finds a folder's chunks there at their size; the load hashes each:
    one that does not match is never decoded, and is removed, so the next lookup misses."""
    store = Store(str(tmp_path))
    refs = store.save({"df": big_frame()})[0]
    damaged = sorted(chunk_files(tmp_path))[0]
    data = bytearray(damaged.read_bytes())
    data[0] ^= 1
    damaged.write_bytes(bytes(data))
    assert store.discard_damaged(refs) is None  # there, at its size
    with pytest.raises(Tampered, match="changed since it was written; removed") as raised:
        store.load(refs)
    assert str(damaged) in str(raised.value)
    assert not damaged.exists()
    assert "is missing" in str(store.discard_damaged(refs))
    store.save({"df": big_frame()})  # the step ran again: its chunk is written again
    assert damaged.exists()
    pd.testing.assert_frame_equal(store.load(refs)["df"], big_frame())


def test_a_chunk_of_another_size_is_a_miss_at_the_cache_lookup(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    refs = store.save({"df": big_frame()})[0]
    damaged = sorted(chunk_files(tmp_path))[0]
    damaged.write_bytes(damaged.read_bytes()[:-8])
    assert "changed since it was stored" in str(store.discard_damaged(refs))
    assert not damaged.exists()  # written again when the step's values are saved again
    store.save({"df": big_frame()})
    assert damaged.exists()


class Held:
    """Background writes held until released: what a step does meanwhile is seen."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> None:
        self.release = threading.Event()
        write = Store._write

        def held(store: Store, path: str, pieces: Any, **how: Any) -> None:
            assert self.release.wait(30)
            if fail and path.startswith("chunks/"):
                raise OSError(28, "No space left on device")
            write(store, path, pieces, **how)

        monkeypatch.setattr(Store, "_write", held)


CHANGED = ("it changed in memory before it was written: a later step changes it in place "
           "through another name")


def test_a_value_changed_while_its_write_was_under_way_is_a_miss_not_a_wrong_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What is written is what was hashed, or nothing: no file is left under a name that is
    not its hash (which would fail the step that reads it, in a later run)."""
    held = Held(monkeypatch)
    array = np.arange(400_000.0)
    store = Store(str(tmp_path))
    refs = store.save({"df": array}, background={"df"})[0]  # returns before anything is written
    assert not chunk_files(tmp_path)
    array *= 2  # in place: the memory being written changes
    held.release.set()
    assert writes.settle() == {(str(tmp_path), refs["df"].path): CHANGED}
    assert not chunk_files(tmp_path)
    assert "is missing" in str(store.discard_damaged(refs))  # a cache miss
    refs = store.save({"df": array})[0]  # the step, run again, stores what it makes now
    assert (Store(str(tmp_path)).load(refs)["df"] == np.arange(400_000.0) * 2).all()


def test_a_frame_given_a_column_while_its_write_is_under_way_is_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a column changes the frame, not the memory of its columns: the checked write
    keeps the frame as it was, and the frame with the column shares its chunks."""
    held = Held(monkeypatch)
    frame = big_frame()
    store = Store(str(tmp_path))
    made = store.save({"df": frame}, background={"df"})[0]
    frame["e"] = frame["a"] * 2
    added = store.save({"df": frame}, background={"df"})[0]
    held.release.set()
    assert writes.settle() == {}
    assert store.discard_damaged(made) is None and store.discard_damaged(added) is None
    before = Store(str(tmp_path)).load(made)["df"]
    pd.testing.assert_frame_equal(before, big_frame(), check_exact=True)
    pd.testing.assert_frame_equal(Store(str(tmp_path)).load(added)["df"], frame,
                                  check_exact=True)
    assert len(chunk_files(tmp_path)) == 2  # the frame's block, and the new column


def test_reading_a_value_still_being_written_waits_for_its_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    held = Held(monkeypatch)
    frame = big_frame()
    store = Store(str(tmp_path))
    refs = store.save({"df": frame}, background={"df"})[0]
    reader = threading.Thread(target=lambda: found.append(store.load(refs)["df"]))
    found: list[pd.DataFrame] = []
    reader.start()
    reader.join(0.5)
    assert reader.is_alive()  # waiting for the write
    held.release.set()
    reader.join(30)
    pd.testing.assert_frame_equal(found[0], frame)
    writes.settle()


def test_a_failed_background_write_is_a_warning_and_the_step_runs_again_next_time(
            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nb2pipe.runtime import cache, tasks
    from nb2pipe.runtime.handoff import Values

    held = Held(monkeypatch, fail=True)
    dropped: list[str] = []
    monkeypatch.setattr(cache, "drop", lambda storage, key: dropped.append(key))
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(cache.progress, "emit", events.append)
    store = Store(str(tmp_path))
    values = Values("make", {"df": big_frame()}, run="run-1")
    values.save(store, for_later=True, background={"df"})
    values.key = "the-cache-key"
    monkeypatch.setattr(tasks, "_WRITING", [(values, object())])
    held.release.set()
    tasks.finish_writes()  # does not raise: the run's values were computed
    assert dropped == ["the-cache-key"]
    assert events == [{"event": "warning", "step": "make", "message": (
        "step 'make': 'df' could not be stored in the result storage (OSError: [Errno 28] No "
        "space left on device): the step runs again next time")}]
    assert not chunk_files(tmp_path)  # nothing half-written


def test_a_value_changed_before_its_write_ended_is_a_warning_saying_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its step's cached entry is dropped: it runs again next time."""
    from nb2pipe.runtime import cache, tasks
    from nb2pipe.runtime.handoff import Values

    held = Held(monkeypatch)
    dropped: list[str] = []
    monkeypatch.setattr(cache, "drop", lambda storage, key: dropped.append(key))
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(cache.progress, "emit", events.append)
    frame = big_frame()
    values = Values("make", {"df": frame}, run="run-1")
    values.save(Store(str(tmp_path)), for_later=True, background={"df"})
    values.key = "make-key"
    monkeypatch.setattr(tasks, "_WRITING", [(values, object())])
    frame.loc[0, "a"] = 100.0  # a later step, through a name the analysis did not see
    held.release.set()
    tasks.finish_writes()
    assert dropped == ["make-key"]
    assert events == [{"event": "warning", "step": "make", "message": (
        f"step 'make': 'df' could not be stored in the result storage ({CHANGED}): the step "
        "runs again next time")}]
    assert not chunk_files(tmp_path)


def test_a_cached_lookup_and_load_read_each_chunk_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup reads the manifest (kept for the step that reads it) and no chunk; the
    load reads each chunk once, and the manifest not again."""
    store = Store(str(tmp_path))
    frame = big_frame()
    refs = store.save({"df": frame})[0]
    reads: list[str] = []
    read_into, read_checked = Store._read_into, Store.read_checked

    def counted_into(self: Store, path: str, into: memoryview) -> str | None:
        reads.append(path)
        return read_into(self, path, into)

    def counted_checked(self: Store, path: str, sha256: str) -> bytearray:
        reads.append(path)
        return read_checked(self, path, sha256)

    monkeypatch.setattr(Store, "_read_into", counted_into)
    monkeypatch.setattr(Store, "read_checked", counted_checked)
    monkeypatch.setattr(store_module, "file_hash", lambda path: reads.append(str(path)))
    assert store.discard_damaged(refs, readers=["add"]) is None
    assert reads == [refs["df"].path]
    del reads[:]
    pd.testing.assert_frame_equal(store.load(refs, reader="add")["df"], frame)
    files = sorted(str(p.relative_to(tmp_path)) for p in chunk_files(tmp_path))
    assert files and sorted(reads) == files
    verified.forget()


def test_values_are_kept_and_read_back_when_pyarrow_cannot_be_imported(tmp_path: Path) -> None:
    script = f"""
import sys
sys.modules["pyarrow"] = None  # as when pyarrow refuses the installed numpy
import numpy as np, pandas as pd
from nb2pipe.runtime.store import Store
frame = pd.DataFrame({{"a": np.arange(300_000.0), "c": pd.Categorical(["x", "y"] * 150_000)}})
store = Store({str(tmp_path)!r})
refs = store.save({{"df": frame}})[0]
pd.testing.assert_frame_equal(Store({str(tmp_path)!r}).load(refs)["df"], frame)
assert refs["df"].path.endswith(".value")
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_the_versions_of_the_libraries_reading_values_back_are_part_of_the_cache_key() -> None:
    assert "numpy " in chunks.versions() and "pandas " in chunks.versions()
