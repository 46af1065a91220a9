"""Values on disk, and whether two values are the same.

Self-contained on purpose (standard library, plus pandas/numpy when the values need them): nb2pipe
runs this file inside the notebook's kernel to record values, and copies it into generated projects
as tests/values.py, so neither needs nb2pipe installed.

Serializers, by type: parquet for DataFrames (when they survive the round trip), .npy for numeric
arrays, pickle for the rest (cloudpickle if pickle cannot, e.g. lambdas).
"""

import math
import os
import pickle
from typing import Any

UNRECORDED = ".unrecorded"


class Unrecorded:
    """A value that could not be saved; comparisons skip it and say why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<not recorded: {self.reason}>"


def dump(folder: str, name: str, value: Any) -> str:
    """Save `value` as folder/name.<ext>; returns the file name written."""
    return dump_hashed(folder, name, value)[0]


def dump_hashed(folder: str, name: str, value: Any) -> tuple[str, str | None]:
    """Like dump(); also the sha256 of the file when it was computed on the way (else None)."""
    os.makedirs(folder, exist_ok=True)
    base = os.path.join(folder, name)
    for saver in (_save_parquet, _save_npy, _save_pickle):
        written = saver(base, value)
        if written:
            path, digest = written
            return os.path.basename(path), digest
    return os.path.basename(base + UNRECORDED), None


def _write(path: str, data: Any) -> str:
    """Write bytes to a new file and hash them at the same time (both release the GIL on
    large buffers); returns their sha256."""
    import hashlib
    import threading

    digest = hashlib.sha256()
    view = memoryview(data)
    hasher = threading.Thread(target=digest.update, args=(view,))
    hasher.start()
    try:
        with open(path, "wb") as handle:
            handle.write(view)
    finally:
        hasher.join()
    return digest.hexdigest()


class _HashingWriter:
    """A file-like sink for pyarrow that hashes and writes on a thread of its own, so the
    encoder goes on with the next piece meanwhile; finish() waits for the last one."""

    def __init__(self, handle: Any) -> None:
        import hashlib
        import queue
        import threading

        self.handle = handle
        self.digest = hashlib.sha256()
        self.closed = False
        self.error: BaseException | None = None
        self.pieces: Any = queue.Queue(maxsize=4)
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while (piece := self.pieces.get()) is not None:
            if self.error is None:  # after an error, only empty the queue
                try:
                    self.digest.update(piece)
                    self.handle.write(piece)
                except BaseException as error:  # re-raised by finish()
                    self.error = error

    def write(self, data: Any) -> int:
        piece = bytes(data)  # the encoder reuses its buffer once write() returns
        self.pieces.put(piece)
        return len(piece)

    def finish(self) -> str:
        self.pieces.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.digest.hexdigest()

    def flush(self) -> None:
        pass

    def close(self) -> None:  # the caller closes the file, after finish()
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


# Column types that always come back from parquet as they went in.
_PARQUET_SAFE = frozenset("biufM")


def _save_parquet(base: str, value: Any) -> tuple[str, str | None] | None:
    pandas = _module("pandas")
    if pandas is None or not isinstance(value, pandas.DataFrame):
        return None
    if not all(isinstance(c, str) for c in value.columns) or not value.columns.is_unique:
        return None
    path = base + ".parquet"
    try:
        import pyarrow
        import pyarrow.parquet

        # Fast over small: no compression or statistics (a handoff is read once, soon);
        # dictionaries only where they pay (not numbers, which rarely repeat). Written straight
        # to the file in 8 MB pieces, hashed and written while the next one is encoded:
        # building the file in memory first costs a fresh worker process as much again in
        # page faults.
        wordy = [c for c, t in value.dtypes.items() if getattr(t, "kind", "O") not in "fciub"]
        with open(path, "wb") as handle:
            writer = _HashingWriter(handle)
            try:
                sink = pyarrow.BufferedOutputStream(pyarrow.PythonFile(writer, mode="w"),
                                                    buffer_size=8 << 20)
                pyarrow.parquet.write_table(pyarrow.Table.from_pandas(value), sink,
                                            compression="none", use_dictionary=wordy,
                                            write_statistics=False)
                sink.close()
            finally:
                digest = writer.finish()
        if not _survives_parquet(pandas, value):  # check the round trip where it may not hold
            pandas.testing.assert_frame_equal(_read_parquet(path), value, check_exact=True)
    except Exception:  # not every frame survives parquet (object columns, odd dtypes)
        if os.path.exists(path):
            os.remove(path)
        return None
    return path, digest


def _read_parquet(path: str) -> Any:
    """A frame back from parquet, a block per column: no copy into one 2-D block (which
    costs a fresh process twice the frame's memory), Arrow's buffers freed as they convert.
    The file is memory-mapped rather than read into buffers first: the columns are decoded
    into memory of their own either way, and a file written a moment ago reads twice as
    fast this way."""
    import pyarrow.parquet

    table = pyarrow.parquet.read_table(path, memory_map=True)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _survives_parquet(pandas: Any, frame: Any) -> bool:
    """Numbers, booleans, datetimes and strings under a plain index: known to round-trip."""
    def safe(dtype: Any) -> bool:
        return getattr(dtype, "kind", "O") in _PARQUET_SAFE or str(dtype) in ("str", "string")

    index = frame.index
    plain_index = isinstance(index, pandas.RangeIndex) or (
        index.nlevels == 1 and index.name is None and safe(index.dtype))
    return plain_index and all(safe(t) for t in frame.dtypes)


def _save_npy(base: str, value: Any) -> tuple[str, str | None] | None:
    numpy = _module("numpy")
    if numpy is None or type(value) is not numpy.ndarray or value.dtype.hasobject:
        return None
    path = base + ".npy"
    numpy.save(path, value, allow_pickle=False)
    return path, None


def _save_pickle(base: str, value: Any) -> tuple[str, str | None] | None:
    path = base + ".pkl"
    errors: list[str] = []
    for module in (pickle, _module("cloudpickle")):
        if module is None:
            continue
        try:
            data = module.dumps(value, protocol=4)
        except Exception as exc:  # pickling can fail in many ways
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        return path, _write(path, data)
    with open(base + UNRECORDED, "w", encoding="utf-8") as handle:
        handle.write(errors[-1] if errors else "cannot be pickled")
    return None


def load(folder: Any) -> dict[str, Any]:
    """Every value saved in `folder`, by name."""
    values: dict[str, Any] = {}
    if not os.path.isdir(folder):
        return values
    for entry in sorted(os.listdir(folder)):
        name, extension = os.path.splitext(entry)
        if extension in (".parquet", ".npy", ".pkl", UNRECORDED):
            values[name] = load_file(os.path.join(folder, entry))
    return values


def load_file(path: str) -> Any:
    """One value saved by dump()."""
    extension = os.path.splitext(path)[1]
    if extension == ".parquet":
        return _read_parquet(path)
    if extension == ".npy":
        return _module("numpy").load(path, allow_pickle=False)
    if extension == ".pkl":
        with open(path, "rb") as handle:
            return pickle.load(handle)
    with open(path, encoding="utf-8") as handle:
        return Unrecorded(handle.read())


def assert_same(actual: Any, expected: Any, where: str = "value", rtol: float = 1e-6,
                atol: float = 1e-9) -> None:
    """Raise AssertionError, naming the path to the difference, unless the values match."""
    _compare(actual, expected, where, rtol, atol, set())


def _compare(actual: Any, expected: Any, where: str, rtol: float, atol: float,
             seen: set[int]) -> None:
    if isinstance(expected, Unrecorded):
        return
    if id(expected) in seen:
        return
    seen.add(id(expected))
    pandas, numpy = _module("pandas"), _module("numpy")
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected a dict, got {type(actual).__name__}"
        missing = sorted(set(expected) - set(actual), key=str)
        assert not missing, f"{where}: missing {missing}"
        for key in expected:
            _compare(actual[key], expected[key], f"{where}[{key!r}]", rtol, atol, seen)
        return
    if pandas is not None and isinstance(expected, pandas.DataFrame | pandas.Series | pandas.Index):
        checker = {pandas.DataFrame: pandas.testing.assert_frame_equal,
                   pandas.Series: pandas.testing.assert_series_equal}.get(type(expected))
        try:
            if checker is None:
                pandas.testing.assert_index_equal(actual, expected, exact=False)
            else:
                checker(actual, expected, check_exact=False, rtol=rtol, atol=atol)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None
        return
    if numpy is not None and isinstance(expected, numpy.ndarray):
        assert isinstance(actual, numpy.ndarray), f"{where}: expected an array"
        assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
        if expected.dtype.kind in "fc" and actual.dtype.kind in "fcib":
            numpy.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True,
                                          err_msg=where)
        elif expected.dtype.hasobject:
            for index, item in enumerate(expected.ravel()):
                _compare(actual.ravel()[index], item, f"{where}[{index}]", rtol, atol, seen)
        else:
            assert numpy.array_equal(actual, expected), f"{where}: arrays differ"
        return
    if isinstance(expected, float) or (numpy is not None and isinstance(expected, numpy.floating)):
        assert isinstance(actual, int | float) or (
            numpy is not None and isinstance(actual, numpy.number)), f"{where}: not a number"
        if math.isnan(expected):
            assert math.isnan(actual), f"{where}: {actual} is not NaN"
        else:
            assert math.isclose(actual, expected, rel_tol=rtol, abs_tol=atol), (
                f"{where}: {actual!r} != {expected!r}")
        return
    if isinstance(expected, list | tuple):
        assert type(actual) is type(expected), f"{where}: {type(actual).__name__}"
        assert len(actual) == len(expected), f"{where}: length {len(actual)} != {len(expected)}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _compare(a, e, f"{where}[{index}]", rtol, atol, seen)
        return
    if isinstance(expected, str | bytes | int | bool | type(None) | set | frozenset):
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
        return
    assert type(actual) is type(expected), (
        f"{where}: {type(actual).__name__} != {type(expected).__name__}")
    state = _state(expected)
    if state is not None:
        _compare(_state(actual), state, f"{where}<{type(expected).__name__}>", rtol, atol, seen)
        return
    equal = actual == expected
    assert equal is True or (equal is not False and bool(equal)), f"{where}: values differ"


def _state(value: Any) -> Any:
    """What an object holds (a fitted model's attributes), to compare it field by field."""
    getter = getattr(value, "__getstate__", None)
    try:
        state = getter() if getter is not None else None
    except TypeError:
        state = None
    if isinstance(state, dict | tuple | list):
        return state
    if getattr(value, "__dict__", None):
        return dict(vars(value))
    if type(value).__eq__ is not object.__eq__:  # type: ignore[comparison-overlap]
        return None  # the type says how to compare itself
    try:  # an opaque object (a compiled extension type): compare what it pickles to
        reduced = value.__reduce_ex__(4)
    except Exception:  # not picklable either: nothing more to compare than its type
        return []
    return list(reduced[1:]) if isinstance(reduced, tuple) else []


def _module(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None


def fingerprint(value: Any) -> dict[str, Any]:
    """A small, comparable summary of a value: a content hash (frames and arrays rounded to
    9 decimals, so float noise does not count), the number itself for floats, or why not."""
    import hashlib

    pandas, numpy = _module("pandas"), _module("numpy")
    try:
        if isinstance(value, bool | int | str | type(None)):
            return {"kind": "exact", "value": repr(value)[:200],
                    "hash": hashlib.sha256(repr(value).encode()).hexdigest()}
        if isinstance(value, float) or (numpy is not None and isinstance(value, numpy.floating)):
            return {"kind": "float", "value": float(value)}
        if pandas is not None and isinstance(value, pandas.DataFrame | pandas.Series):
            rounded = value.round(9) if _numeric(value) else value
            labels = list(value.columns) if isinstance(value, pandas.DataFrame) else [value.name]
            digest = hashlib.sha256(repr((labels, [str(t) for t in _dtypes(value)])).encode())
            digest.update(pandas.util.hash_pandas_object(rounded, index=True).values.tobytes())
            return {"kind": "hash", "hash": digest.hexdigest(), "shape": list(value.shape)}
        if numpy is not None and isinstance(value, numpy.ndarray) and not value.dtype.hasobject:
            data = numpy.round(value, 9) if value.dtype.kind in "fc" else value
            digest = hashlib.sha256(f"{value.dtype}{value.shape}".encode())
            digest.update(numpy.ascontiguousarray(data).tobytes())
            return {"kind": "hash", "hash": digest.hexdigest(), "shape": list(value.shape)}
        digest = hashlib.sha256()
        _Walk(digest, pandas, numpy).add(value)
    except Exception as exc:  # an object that cannot be walked or pickled
        return {"kind": "skip", "reason": f"{type(exc).__name__}: {exc}"[:200]}
    return {"kind": "hash", "hash": digest.hexdigest()}


class _Walk:
    """Hashes what an object holds, walked structurally: pickle's bytes depend on which parts
    happen to be shared in memory, so an object and its copy read back from disk differ."""

    MAX_NODES = 1_000_000

    def __init__(self, digest: Any, pandas: Any, numpy: Any) -> None:
        self.digest, self.pandas, self.numpy = digest, pandas, numpy
        self.active: set[int] = set()  # the containers being walked: a cycle stops here
        self.nodes = 0

    def add(self, value: Any) -> None:
        pandas, numpy, digest = self.pandas, self.numpy, self.digest
        self.nodes += 1
        if self.nodes > self.MAX_NODES:
            raise ValueError("too large to fingerprint")
        if value is None or isinstance(value, bool | int | str | bytes):
            digest.update(f"{type(value).__name__}:{value!r};".encode())
            return
        if isinstance(value, float) or (numpy is not None and isinstance(value, numpy.floating)):
            digest.update(f"float:{round(float(value), 9)!r};".encode())
            return
        if numpy is not None and isinstance(value, numpy.generic):
            self.add(value.item())
            return
        if numpy is not None and isinstance(value, numpy.dtype):
            digest.update(f"dtype:{value.descr if value.fields else value.str};".encode())
            return
        if isinstance(value, type | type(len) | type(_module) | type(os)):
            name = getattr(value, "__qualname__", getattr(value, "__name__", ""))
            digest.update(f"code:{getattr(value, '__module__', '')}.{name};".encode())
            return
        if pandas is not None and isinstance(value, pandas.DataFrame | pandas.Series) or (
                numpy is not None and isinstance(value, numpy.ndarray)
                and not value.dtype.hasobject):
            digest.update(f"{fingerprint(value)['hash']};".encode())
            return
        if id(value) in self.active:
            digest.update(b"cycle;")
            return
        self.active.add(id(value))
        try:
            for item in self._items(value):
                self.add(item)
        finally:
            self.active.discard(id(value))

    def _items(self, value: Any) -> Any:
        """What a container or an object holds, in a stable order (its header hashed)."""
        if self.numpy is not None and isinstance(value, self.numpy.ndarray):  # of objects
            self.digest.update(f"objects{value.shape};".encode())
            return value.ravel().tolist()
        if isinstance(value, list | tuple):
            self.digest.update(f"{type(value).__name__}{len(value)};".encode())
            return value
        if isinstance(value, dict):
            self.digest.update(f"dict{len(value)};".encode())
            return sorted(value.items(), key=lambda item: repr(item[0]))
        if isinstance(value, set | frozenset):
            self.digest.update(f"set{len(value)};".encode())
            return sorted(fingerprint(item).get("hash", "") for item in value)
        kind = type(value)
        self.digest.update(f"{kind.__module__}.{kind.__qualname__}:".encode())
        state = _state(value)
        if state is None:  # the type compares itself: its pickle is its identity
            self.digest.update(pickle.dumps(value, protocol=4))
            return []
        return [state]


def _numeric(value: Any) -> bool:
    """Whether rounding applies: a Series of numbers, or a frame with any number column."""
    dtypes = _dtypes(value)
    return any(getattr(t, "kind", "") in "fc" for t in dtypes)


def _dtypes(value: Any) -> list[Any]:
    dtypes = getattr(value, "dtypes", None)
    return list(dtypes) if dtypes is not None and hasattr(dtypes, "__iter__") else [value.dtype]


def same_fingerprint(a: dict[str, Any], b: dict[str, Any], rtol: float = 1e-6,
                     atol: float = 1e-9) -> bool:
    if a["kind"] != b["kind"]:
        return False
    if a["kind"] == "float":
        return (math.isnan(a["value"]) and math.isnan(b["value"])) or math.isclose(
            a["value"], b["value"], rel_tol=rtol, abs_tol=atol)
    return bool(a.get("hash") == b.get("hash"))


def write_fingerprints(path: str, step: str, kind: str, names: list[str],
                       namespace: dict[str, Any]) -> None:
    """Append one JSON line per name present in `namespace` (used inside the kernel)."""
    import json

    with open(path, "a", encoding="utf-8") as handle:
        for name in names:
            if name in namespace:
                handle.write(json.dumps({"step": step, "kind": kind, "name": name,
                                         "fingerprint": fingerprint(namespace[name])}) + "\n")
