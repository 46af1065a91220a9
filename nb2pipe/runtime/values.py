"""Values on disk: one file per value, its type choosing the format.

What the cache keeps: parquet for DataFrames that survive the round trip, .npy for numeric
arrays, pickle for the rest (cloudpickle when pickle cannot, e.g. lambdas). What one run hands to
its next step only: pickle protocol 5 with the arrays' memory written as it is (.pkl5), at disk
speed. Every file is hashed (SHA-256) while it is written; `load_bytes` decodes bytes the store
has read and checked against that hash (store.py). Standard library only, plus pandas, numpy and
pyarrow when a value needs them.
"""

import collections.abc
import copyreg
import gc
import io
import os
import pickle
import struct
import sys
import types
from typing import Any

UNRECORDED = ".unrecorded"
SHARED = ".shared"  # a file holding several values that share objects, by name (dump_all)
BUFFERS = ".pkl5"
_MAGIC = b"nb2pipe-pickle5\n"


class Unrecorded:
    """A value that could not be saved; comparisons skip it and say why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<not recorded: {self.reason}>"


def dump(folder: str, name: str, value: Any) -> str:
    """Save `value` as folder/name.<ext>; returns the file name written."""
    return dump_hashed(folder, name, value)[0]


def dump_all(folder: str, found: dict[str, Any]) -> list[str]:
    """Save values by name; values that share objects (a list of frames and the frames, an
    array and a view of it) go together into one file, FIRST.shared.pkl, so that they share
    them again when `load` reads the folder. Returns the file names written."""
    together = shared_groups(found)
    grouped = {name for members in together for name in members}
    written = [dump(folder, name, value) for name, value in found.items()
               if name not in grouped]
    written += [dump(folder, members[0] + SHARED, {m: found[m] for m in members})
                for members in together]
    return written


def dump_hashed(folder: str, name: str, value: Any, *,
                passing: bool = False) -> tuple[str, str | None]:
    """Like dump(); also the sha256 of the file when it was computed on the way (else None).
    `passing`: the file only hands the value to the next step of the same run."""
    os.makedirs(folder, exist_ok=True)
    base = os.path.join(folder, name)
    savers = (_save_buffers, _save_pickle) if passing else (_save_parquet, _save_npy,
                                                            _save_pickle)
    for saver in savers:
        written = saver(base, value)
        if written:
            path, digest = written
            return os.path.basename(path), digest
    return os.path.basename(base + UNRECORDED), None


def _write(path: str, *pieces: Any) -> str:
    """Write bytes to a new file and hash them at the same time (both release the GIL on
    large buffers); returns their sha256."""
    import hashlib
    import threading

    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for piece in pieces:
            view = memoryview(piece)
            hasher = threading.Thread(target=digest.update, args=(view,))
            hasher.start()
            try:
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
    pandas = _frame_module(value)
    if pandas is None:
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
    return _writable(table.to_pandas(split_blocks=True, self_destruct=True))


def _writable(frame: Any) -> Any:
    """Columns pandas made from Arrow's memory without a copy are read-only; a step may change
    them in place (`df.loc[rows, "x"] = 0`), so such a frame is copied into memory of its own.
    (pandas shows every column read-only through `.values` under copy-on-write: the blocks
    it holds say what is really so; without them, copy.)"""
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)
    if blocks is None or any(getattr(getattr(b.values, "flags", None), "writeable", True) is False
                             for b in blocks):
        return frame.copy(deep=True)
    return frame


def shared_groups(outputs: dict[str, Any]) -> list[tuple[str, ...]]:
    """Names whose values share an object (one holds another, or an element of it), grouped."""
    owners: dict[int, str] = {}
    parent = {name: name for name in outputs}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for name in sorted(outputs):
        for identity in _identities(outputs[name]):
            other = owners.setdefault(identity, name)
            if root(other) != root(name):
                parent[root(name)] = root(other)
    groups: dict[str, list[str]] = {}
    for name in sorted(outputs):
        groups.setdefault(root(name), []).append(name)
    return [tuple(members) for members in groups.values() if len(members) > 1]


_ATOMS = (type(None), bool, int, float, complex, str, bytes)


def _identities(value: Any, depth: int = 3) -> set[int]:
    """The ids of a value and of what its containers hold (a few levels down): small
    immutable values, which the interpreter shares freely, do not count."""
    if isinstance(value, _ATOMS) or _by_reference(value):
        return set()
    found = {id(value)}
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):  # a view: its array's too
        found.add(id(_root(numpy, value)))
    if depth and isinstance(value, list | tuple | set | frozenset | dict):
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            found |= _identities(item, depth - 1)
    elif depth and isinstance(value, _LAZY):
        # `iter(xs)`, `d.values()`, `zip(a, b)`: they hold what they iterate, unconsumed
        for held in gc.get_referents(value):
            if not isinstance(held, type):
                found |= _identities(held, depth - 1)
    elif depth and isinstance(value, types.FunctionType):
        # a closure keeps its cells, a function its defaults: `lambda: xs` holds xs
        cells = [c.cell_contents for c in value.__closure__ or () if _filled(c)]
        for held in (*cells, *(value.__defaults__ or ()), *(value.__kwdefaults__ or {}).values()):
            found |= _identities(held, depth - 1)
    elif depth and isinstance(getattr(value, "__dict__", None), dict):
        # an object of the notebook's own class, or one a library made that holds what it
        # was given (a Pipeline its estimators, a SimpleNamespace its items)
        for held in vars(value).values():
            found |= _identities(held, depth - 1)
    return found


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


# Where the notebook's own classes live: steps.py in a pipeline, `__main__` in a kernel.
_NOTEBOOK_MODULES = frozenset(("steps", "__main__"))


def _by_reference(value: Any) -> bool:
    """Classes, modules and a library's functions: pickled by name, so two values holding one
    are not sharing anything a step could change (`dtype=np.float64` in two estimators)."""
    if isinstance(value, type | types.ModuleType | types.BuiltinFunctionType):
        return True
    return (isinstance(value, types.FunctionType)
            and getattr(value, "__module__", None) not in _NOTEBOOK_MODULES
            and "<" not in value.__qualname__)


# Iterators and views that hold the containers they go through.
_LAZY = (collections.abc.Iterator, collections.abc.KeysView, collections.abc.ValuesView,
         collections.abc.ItemsView)


def _save_buffers(base: str, value: Any) -> tuple[str, str | None] | None:
    """Pickle protocol 5 with the arrays' memory out of band: the buffers of frames and
    arrays written as they are (disk speed, no encoding), read back into memory the values
    own (a step may change them in place). For values one run hands to its next step."""
    path = base + BUFFERS
    try:
        head, views = pickled_out_of_band(value)
    except Exception:  # not picklable: the caller says why (plain pickle's error)
        return None
    sizes = [len(head), *(view.nbytes for view in views)]
    header = _MAGIC + struct.pack(f"<Q{len(sizes)}Q", len(sizes), *sizes)
    pieces: list[Any] = [header, head]
    at = len(header) + len(head)
    for view in views:  # each buffer where an array can start (see _read_buffers)
        pieces += [bytes(_padding(at)), view]
        at += _padding(at) + view.nbytes
    return path, _write(path, *pieces)


# Where each buffer of a .pkl5 file starts: a multiple of this from the file's start. The
# arrays read back keep the file's memory; unaligned, numpy takes other loops (slower, and
# sums come out in another order: an iterative fit then stops elsewhere than the notebook's).
_ALIGN = 64


def _padding(at: int) -> int:
    return -at % _ALIGN


def pickled_out_of_band(value: Any, *, by_value: bool = True) -> tuple[bytes, list[memoryview]]:
    """Pickle protocol 5 (pickle's, else cloudpickle's) with the contiguous buffers of frames
    and arrays out of band: the pickle, and those buffers as views of the value's own memory
    (nothing copied). Raises what the last pickler tried raised. `by_value=False`: pickle's
    only (cloudpickle makes new functions of the ones a step defines, with globals apart)."""
    buffers: list[memoryview] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            buffers.append(buffer.raw())
        except BufferError:  # not contiguous: in the pickle itself
            return True
        return False

    error: Exception | None = None
    for module in (pickle, optional("cloudpickle") if by_value else None):
        if module is None:
            continue
        try:
            buffers.clear()
            return dumps(module, value, 5, out_of_band), buffers
        except Exception as failed:  # not picklable this way: the next, or the caller says why
            error = failed
    raise error or pickle.PicklingError("cannot be pickled")


def dumps(module: Any, value: Any, protocol: int, buffer_callback: Any = None) -> bytes:
    """`module.dumps(value)` (pickle or cloudpickle), except that a numpy array that is a view
    of another array in the value stays a view of it: `x[:2, :2]` saved with `x` is read back
    as a window onto the copy of `x`, so changing one changes the other, as in the notebook.
    (pickle alone copies every view into an array of its own.) And numpy's global generator,
    held by what a library made (`rv = stats.norm()` keeps it to draw from), is read back as
    the global generator of the process that reads it, whose state the steps carry: pickle
    alone makes a private copy, which draws numbers the notebook's stream never gives."""
    numpy: Any = sys.modules.get("numpy")
    if numpy is None:
        return bytes(module.dumps(value, protocol=protocol, buffer_callback=buffer_callback))
    roots = _owning_arrays(value, numpy)

    class ViewPickler(module.Pickler):  # type: ignore[misc]
        def reducer_override(self, obj: Any) -> Any:
            if type(obj) is numpy.ndarray and isinstance(obj.base, numpy.ndarray):
                view = _as_view(numpy, obj, roots)
                if view is not None:
                    return view
            parent = getattr(super(), "reducer_override", None)
            return parent(obj) if parent is not None else NotImplemented

    # reducer_override is a call per object: only when there are views to keep
    base: Any = ViewPickler if roots else module.Pickler

    class ValuePickler(base):  # type: ignore[misc]
        # read when a pickler is made (the C pickler keeps it): a class attribute
        dispatch_table = _global_generator_by_reference(module, numpy)

    file = io.BytesIO()
    ValuePickler(file, protocol=protocol, buffer_callback=buffer_callback).dump(value)
    return file.getvalue()


def _global_generator_by_reference(module: Any, numpy: Any) -> dict[Any, Any]:
    """The pickler's reducers by type (its own and copyreg's, in one dict), with numpy's
    RandomState reduced to a reference when it is the global one."""
    own = getattr(module.Pickler, "dispatch_table", None)  # cloudpickle's, over copyreg's
    table = dict(own if isinstance(own, collections.abc.Mapping) else copyreg.dispatch_table)
    random_state = numpy.random.RandomState

    def reduce(state: Any) -> Any:
        if state is getattr(numpy.random.mtrand, "_rand", None):
            return (numpy_global_generator, ())
        return state.__reduce__()

    table[random_state] = reduce
    return table


def numpy_global_generator() -> Any:
    """numpy's legacy global RandomState (`np.random.rand` draws from it) of this process."""
    import numpy

    return numpy.random.mtrand._rand


def _owning_arrays(value: Any, numpy: Any) -> set[int]:
    """The ids of the arrays owning the memory of two or more arrays the value holds (a few
    levels down): those are saved once, the others as views of them. Not when the owner is
    much larger than what the value shows of it (a few rows of a big array stay a copy)."""
    by_root: dict[int, list[Any]] = {}
    for array in _arrays(value, numpy):
        by_root.setdefault(id(_root(numpy, array)), []).append(array)
    return {key for key, arrays in by_root.items() if len(arrays) > 1 and _root(
        numpy, arrays[0]).nbytes <= 2 * max(array.nbytes for array in arrays)}


def _arrays(value: Any, numpy: Any, depth: int = 3) -> list[Any]:
    """The numpy arrays a value is or holds (in lists, tuples and dicts, a few levels down)."""
    found: dict[int, Any] = {}

    def collect(item: Any, depth: int) -> None:
        if type(item) is numpy.ndarray:
            found[id(item)] = item
        elif depth and isinstance(item, list | tuple | dict):
            for inner in item.values() if isinstance(item, dict) else item:
                collect(inner, depth - 1)

    collect(value, depth)
    return list(found.values())


def view_copies(value: Any) -> dict[int, Any]:
    """For `copy.deepcopy(value, memo)`: copies of the arrays in the value that are views of
    one array, made as views of one copy of it (deepcopy alone copies each view apart);
    numpy's global generator stays itself, as in `dumps`."""
    numpy: Any = sys.modules.get("numpy")
    roots = _owning_arrays(value, numpy) if numpy is not None else set()
    memo: dict[int, Any] = {}
    generator = getattr(getattr(numpy, "random", None), "mtrand", None)
    if getattr(generator, "_rand", None) is not None:
        memo[id(generator._rand)] = generator._rand  # type: ignore[union-attr]
    for array in _arrays(value, numpy) if roots else []:
        root = _root(numpy, array)
        view = _as_view(numpy, array, roots) if array is not root else None
        if id(root) not in roots or (array is not root and view is None):
            continue
        if id(root) not in memo:
            memo[id(root)] = root.copy()
        if view is not None:
            shape, dtype, _, offset, strides = view[1]
            memo[id(array)] = numpy.ndarray(shape, dtype, buffer=memo[id(root)], offset=offset,
                                            strides=strides)
    return memo


def _root(numpy: Any, array: Any) -> Any:
    while isinstance(array.base, numpy.ndarray):
        array = array.base
    return array


def _as_view(numpy: Any, view: Any, roots: set[int]) -> tuple[Any, ...] | None:
    """How to rebuild `view` onto its array (pickled once, shared), or None: the array is
    not in the value, or the view cannot be rebuilt from its memory alone."""
    root = _root(numpy, view)
    if (id(root) not in roots or type(root) is not numpy.ndarray
            or not root.flags.c_contiguous or root.dtype.hasobject or view.dtype.hasobject
            or not view.flags.writeable):
        return None
    start = root.__array_interface__["data"][0]
    offset = view.__array_interface__["data"][0] - start
    return numpy.ndarray, (view.shape, view.dtype, root, offset, view.strides)


def _read_buffers(data: bytearray) -> Any:
    """A value from a .pkl5 file's bytes: its arrays keep (writable) memory of `data`,
    aligned as numpy allocates its own when `data` is (memory of its own, from malloc)."""
    view = memoryview(data)
    start = len(_MAGIC) + 8
    if bytes(view[:len(_MAGIC)]) != _MAGIC or len(data) < start:
        raise ValueError("not a file of values")
    count = struct.unpack_from("<Q", view, len(_MAGIC))[0]
    if len(data) < start + 8 * count:
        raise ValueError("truncated")
    sizes = struct.unpack_from(f"<{count}Q", view, start)
    offset = start + 8 * count
    pieces = [view[offset:offset + sizes[0]]]
    offset += sizes[0]
    for size in sizes[1:]:
        offset += _padding(offset)
        pieces.append(view[offset:offset + size])
        offset += size
    if offset != len(data):
        raise ValueError("truncated")
    return pickle.loads(pieces[0], buffers=pieces[1:])


def _frame_module(value: Any) -> Any:
    """pandas, when `value` is a DataFrame whose columns Arrow can name; else None."""
    pandas = optional("pandas")
    if pandas is None or not isinstance(value, pandas.DataFrame):
        return None
    if not all(isinstance(c, str) for c in value.columns) or not value.columns.is_unique:
        return None
    return pandas


def _survives_parquet(pandas: Any, frame: Any) -> bool:
    """Numbers, booleans, datetimes and strings under a plain index: known to round-trip."""
    def safe(dtype: Any) -> bool:
        return getattr(dtype, "kind", "O") in _PARQUET_SAFE or str(dtype) in ("str", "string")

    index = frame.index
    plain_index = isinstance(index, pandas.RangeIndex) or (
        index.nlevels == 1 and index.name is None and safe(index.dtype))
    return plain_index and all(safe(t) for t in frame.dtypes)


def _save_npy(base: str, value: Any) -> tuple[str, str | None] | None:
    numpy = optional("numpy")
    if numpy is None or type(value) is not numpy.ndarray or value.dtype.hasobject:
        return None
    path = base + ".npy"
    header = io.BytesIO()
    layout = numpy.lib.format.header_data_from_array_1_0(value)
    try:
        numpy.lib.format.write_array_header_1_0(header, layout)
    except ValueError:  # a header too long for format 1.0 (a record of many fields)
        header = io.BytesIO()
        numpy.lib.format.write_array_header_2_0(header, layout)
    # Written as numpy.save writes it (Fortran-ordered arrays as they are), hashed meanwhile.
    ordered = value.T if layout["fortran_order"] else value
    try:
        flat = numpy.ascontiguousarray(ordered).reshape(-1).view(numpy.uint8)
    except (TypeError, ValueError):  # items of no size: pickled instead
        return None
    return path, _write(path, header.getvalue(), flat)


def _read_npy(numpy: Any, data: bytearray) -> Any:
    """An array from a .npy file's bytes, in (writable) memory of `data`: no copy."""
    fmt = numpy.lib.format
    stream = io.BytesIO(memoryview(data)[:1 << 16])
    version = fmt.read_magic(stream)
    reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
    if reader is None:
        raise ValueError(f"unknown .npy version {version}")
    shape, fortran, dtype = reader(stream)
    if dtype.hasobject:
        raise ValueError("an array of objects is not read from a .npy file")
    count = 1
    for extent in shape:
        count *= extent
    if len(data) - stream.tell() != count * dtype.itemsize:
        raise ValueError("truncated")
    array = numpy.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _save_pickle(base: str, value: Any) -> tuple[str, str | None] | None:
    path = base + ".pkl"
    errors: list[str] = []
    for module in (pickle, optional("cloudpickle")):
        if module is None:
            continue
        try:
            data = dumps(module, value, 4)
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
        if extension not in (".parquet", BUFFERS, ".npy", ".pkl", UNRECORDED):
            continue
        loaded = load_file(os.path.join(folder, entry))
        if name.endswith(SHARED) and isinstance(loaded, dict):
            values.update(loaded)
        else:
            values[name] = loaded
    return values


def load_file(path: str) -> Any:
    """One value saved by dump(), from a file that is trusted (the store reads its files with
    `load_bytes`, once their hash is checked)."""
    extension = os.path.splitext(path)[1]
    if extension == ".parquet":
        return _read_parquet(path)
    if extension == UNRECORDED:
        with open(path, encoding="utf-8") as handle:
            return Unrecorded(handle.read())
    with open(path, "rb") as handle:
        return load_bytes(bytearray(handle.read()), extension)


def load_bytes(data: bytearray, extension: str) -> Any:
    """One value from the bytes of a file saved by dump() (`extension`: its suffix). Arrays
    and frames may keep memory of `data`, which must be the caller's to give."""
    if extension == ".parquet":
        import pyarrow
        import pyarrow.parquet

        table = pyarrow.parquet.read_table(pyarrow.BufferReader(pyarrow.py_buffer(data)))
        return _writable(table.to_pandas(split_blocks=True, self_destruct=True))
    if extension == BUFFERS:
        return _read_buffers(data)
    if extension == ".npy":
        return _read_npy(optional("numpy"), data)
    if extension == ".pkl":
        return pickle.loads(data)
    if extension == UNRECORDED:
        return Unrecorded(bytes(data).decode("utf-8"))
    raise ValueError(f"not a file of values ({extension or 'no extension'})")


def optional(name: str) -> Any:
    """The module, or None when it is not installed."""
    try:
        return __import__(name)
    except ImportError:
        return None
