"""Run a notebook two ways and compare every value it leaves behind.

1. As a kernel runs it: its code cells, top to bottom, in one namespace (plain `exec`, in this
   process, with IPython's shell running the magics when there are any; pyplot's figures
   closed after each cell, as Jupyter's inline backend does). Twice:
   a value that differs between the two runs (unseeded randomness) is not compared.
2. As the generated pipeline runs it between processes: the steps.py that `convert` writes,
   each step's function called in pipeline order from a fresh copy of the module (module state
   does not carry from one step to the next, as it does not between processes), its arguments
   taken from the store as flow.py takes them (`Values` handles pickled and read back, the
   values a step changes in place and another step reads given to it through `copied`).

Compared: every name the notebook holds when its run ends (modules, functions and classes are
code, not values), against the value the last step that binds or changes it leaves in its
function's locals. The outcome is "ok", "diagnosed" (check reports an error or a warning that
is about the pipeline's semantics: an acceptable answer), or a failure: "crash" (check or
convert raised), "failed" (a step raised), "differs" (a value differs), "missing".
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import sys
import tempfile
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2pipe.generate.plan import make_plan
from nb2pipe.generate.steps_py import render_steps
from nb2pipe.model import Cell, Notebook, Severity, StepGraph
from nb2pipe.pipeline import notebook_graph
from nb2pipe.runtime.final import call_keeping_locals
from nb2pipe.runtime.fingerprint import fingerprint, same_fingerprint
from nb2pipe.runtime.handoff import Values, copied, reading
from nb2pipe.runtime.store import Store

# Diagnostics that say nothing about whether the steps compute the notebook's values: they do
# not excuse a difference.
# (NB302 says a function rebinds globals with `global`, which the steps do as the notebook
# does: a style warning. NB309 says a function reads a name defined nowhere, which fails or
# not in the steps exactly as in the notebook.)
NOT_ABOUT_VALUES = frozenset({"NB306", "NB110", "NB103", "NB302", "NB309"})

Spec = tuple[str, tuple[str, ...]]  # a code cell: source, tags
Files = tuple[tuple[str, str], ...]  # modules beside the notebook: file name, text


@dataclass
class Outcome:
    kind: str  # ok | diagnosed | notebook-failed | crash | failed | differs | missing
    detail: str = ""
    names: tuple[str, ...] = ()  # the values that differ or are missing
    compared: int = 0
    diagnostics: tuple[str, ...] = ()

    @property
    def failure(self) -> bool:
        return self.kind in ("crash", "failed", "differs", "missing")


@dataclass
class NotebookRun:
    namespace: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def notebook(specs: Sequence[Spec]) -> Notebook:
    cells = tuple(Cell(i, f"c{i}", "code", source, tags)
                  for i, (source, tags) in enumerate(specs, start=1))
    return Notebook(path=Path("generated.ipynb"), cells=cells)


@contextlib.contextmanager
def _in_folder() -> Iterator[Path]:
    before = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="nb2pipe-differential-") as folder:
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(before)


@contextlib.contextmanager
def _beside(folder: Path, files: Files) -> Iterator[None]:
    """The notebook's own modules written into `folder`, which is on sys.path first (as the
    kernel's working folder is, and as steps.py puts the notebook's folder); imported afresh
    by each run and each step, as in a new process."""
    for name, text in files:
        (folder / name).write_text(text, encoding="utf-8")
    modules = [Path(name).stem for name, _ in files]
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        _forget(modules)


def _forget(modules: Sequence[str]) -> None:
    for module in modules:
        sys.modules.pop(module, None)


def _close_figures() -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


_DEFAULTS: dict[str, Any] = {}


def fresh_process_state() -> None:
    """What a new process starts with: the global generators seeded from the system, and the
    libraries' settings (numpy's print options, pandas' options, matplotlib's rcParams) as
    they are on import. One process runs everything here; a notebook or a step must not see
    what an earlier one left."""
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
        printing = _DEFAULTS.setdefault("numpy", numpy.get_printoptions())
        if numpy.get_printoptions() != printing:
            numpy.set_printoptions(**printing)
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        options = _DEFAULTS.setdefault("pandas", repr(pandas.options.display))
        if repr(pandas.options.display) != options:
            with warnings.catch_warnings(), contextlib.suppress(Exception):
                warnings.simplefilter("ignore")
                pandas.reset_option("all")
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        _close_figures()
        settings = _DEFAULTS.setdefault("matplotlib", dict(matplotlib.rcParams))
        if dict(matplotlib.rcParams) != settings:
            matplotlib.rcParams.update(settings)


@contextlib.contextmanager
def _shell(namespace: dict[str, Any]) -> Iterator[Callable[[str], str]]:
    """IPython's own shell over `namespace`, for cells with magics: what it makes of a cell's
    source (`%%timeit` becomes a call of its magic, which runs in the shell's namespace)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    before = shell.user_ns
    shell.user_ns = namespace
    namespace["get_ipython"] = lambda: shell
    try:
        yield shell.transform_cell
    finally:
        shell.user_ns = before


def run_notebook(specs: Sequence[Spec], files: Files = ()) -> NotebookRun:
    """The cells in one namespace, as a kernel runs them (IPython's shell runs the magics)."""
    run = NotebookRun({"__name__": "__main__"})
    fresh_process_state()
    magics = any(line.lstrip().startswith(("%", "!")) for source, _ in specs
                 for line in source.split("\n"))
    with _in_folder() as folder, _beside(folder, files), (
            _shell(run.namespace) if magics
            else contextlib.nullcontext(lambda source: source)) as python:
        for index, (source, _) in enumerate(specs, start=1):
            try:
                exec(compile(python(source), f"<cell {index}>", "exec"), run.namespace)
            except BaseException as error:  # the notebook's own failure
                run.error = f"cell {index}: {type(error).__name__}: {error}"
                break
            finally:
                _close_figures()
    return run


def is_code(value: Any) -> bool:
    """Modules, classes and functions (a library's callables too: `sum` after `from numpy
    import *` is numpy's), not values."""
    return isinstance(value, type | types.ModuleType | types.FunctionType
                      | types.BuiltinFunctionType | types.MethodType) or (
        callable(value) and getattr(value, "__module__", None) not in (None, "__main__"))


def final_values(namespace: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in namespace.items()
            if not (name.startswith("__") and name.endswith("__")) and not is_code(value)}


@dataclass
class PipelineRun:
    locals: dict[str, dict[str, dict[str, Any]]]  # step -> name -> fingerprint
    error: str | None = None


def run_pipeline(graph: StepGraph, files: Files = ()) -> PipelineRun:
    """The generated steps, in pipeline order, values handed over through the store."""
    plan = make_plan(graph)
    code = compile(render_steps(plan).text, "steps.py", "exec")
    defaults = {p.name: p.default for p in graph.parameters}
    found: dict[str, dict[str, dict[str, Any]]] = {}
    handles: dict[str, Values] = {}
    _runtime_as_generated()
    with _in_folder() as folder, _beside(folder, files):
        store = Store(str(folder / ".store"))
        for name in plan.order:
            step = plan.step(name)
            module = types.ModuleType("steps")
            module.__file__ = str(folder / "steps.py")
            fresh_process_state()
            _forget([Path(f).stem for f, _ in files])
            try:
                exec(code, module.__dict__)  # a fresh module: as in a new process
                with reading():
                    passed: dict[str, Any] = {v: handles[p][v] for v, p in step.inputs}
                    # flow.py: `a, b = copied((x["a"], y["b"]), step=..., names=[...])`
                    if step.copied:
                        copies = copied(tuple(passed[v] for v in step.copied), step=name,
                                        names=step.copied)
                        passed.update(zip(step.copied, copies, strict=True))
                    passed.update({p: defaults[p] for p in step.parameters})
                    function = getattr(module, step.function)
                    result, kept = call_keeping_locals(
                        function, {a: passed[a] for a in step.arguments})
            except BaseException as error:  # the pipeline's failure
                return PipelineRun(found, f"step '{name}': {type(error).__name__}: {error}")
            finally:
                _close_figures()
            found[name] = {n: fingerprint(v) for n, v in kept.items()}
            values = Values(name, result, run="differential")
            values.save(store, for_later=False)
            if values.unsaved:
                missing = sorted(n for n in values.unsaved
                                 if any(n == v for s in plan.steps for v, p in s.inputs
                                        if p == name))
                if missing:
                    return PipelineRun(found, f"step '{name}': cannot hand over {missing}: "
                                       f"{values.unsaved[missing[0]]}")
            handles[name] = pickle.loads(pickle.dumps(values))  # only its files' names
    return PipelineRun(found)


def _runtime_as_generated() -> None:
    """steps.py imports `nb2pipe_runtime` (the runtime copied into each project)."""
    import nb2pipe.runtime
    import nb2pipe.runtime.capture

    if sys.modules.get("nb2pipe_runtime") is not nb2pipe.runtime:
        # a real flow run (`run_flow`) left a project's copy, whose folder is gone since
        for name in [n for n in sys.modules if n.partition(".")[0] == "nb2pipe_runtime"]:
            del sys.modules[name]
    sys.modules.setdefault("nb2pipe_runtime", nb2pipe.runtime)
    sys.modules.setdefault("nb2pipe_runtime.capture", nb2pipe.runtime.capture)


def semantic_diagnostics(graph: StepGraph) -> tuple[str, ...]:
    return tuple(f"{d.code} {d.message}" for d in graph.diagnostics
                 if d.severity == Severity.ERROR or d.code not in NOT_ABOUT_VALUES)


def last_definers(graph: StepGraph) -> dict[str, str]:
    """name -> the last step, in notebook order, that binds or changes it."""
    found: dict[str, str] = {}
    for node in graph.steps:
        for name in node.defines:
            found[name] = node.name
    return found


PipelineRunner = Callable[[StepGraph, Sequence[Spec], Files], PipelineRun]
_RUNS_AGAIN = 10  # runs of the notebook that may show that a differing value is random


def compare(specs: Sequence[Spec], split: str = "tags",
            pipeline: PipelineRunner | None = None, files: Files = ()) -> Outcome:
    """`pipeline`: how the generated steps run; by default the shortcut above (in this
    process), else for example the project's real flow.py (`run_flow`). `files`: modules
    beside the notebook."""
    with contextlib.redirect_stdout(io.StringIO()):  # what the cells print
        return _compare(specs, split, pipeline or (
            lambda graph, _, files: run_pipeline(graph, files)), files)


def _compare(specs: Sequence[Spec], split: str, runner: PipelineRunner,
             files: Files) -> Outcome:
    first = run_notebook(specs, files)
    if first.error is not None:
        return Outcome("notebook-failed", first.error)
    try:
        graph = notebook_graph(notebook(specs), split)
    except Exception as error:
        return Outcome("crash", f"check: {type(error).__name__}: {error}")
    diagnosed = semantic_diagnostics(graph)
    if diagnosed:
        return Outcome("diagnosed", diagnosed[0], diagnostics=diagnosed)
    try:
        pipeline = runner(graph, specs, files)
    except Exception as error:  # convert itself failed
        return Outcome("crash", f"convert: {type(error).__name__}: {error}")
    if pipeline.error is not None:
        return Outcome("failed", pipeline.error)
    definers = last_definers(graph)
    expected = {n: fingerprint(v) for n, v in final_values(first.namespace).items()}
    differs: list[str] = []
    missing: list[str] = []
    compared = 0
    for name, mine in sorted(expected.items()):
        if mine["kind"] == "skip":
            continue  # not comparable
        step = definers.get(name)
        theirs = pipeline.locals.get(step, {}).get(name) if step else None
        if theirs is None:
            if name in graph.data_names:  # not an import's (`from numpy import *`: pi)
                missing.append(name)
            continue
        compared += 1
        if not same_fingerprint(mine, theirs):
            differs.append(name)
    if differs or missing:  # not the same from one run of the notebook to the next?
        stable = set(expected)
        for _ in range(_RUNS_AGAIN):  # a shuffle of two items repeats one time in two
            again = final_values(run_notebook(specs, files).namespace)
            stable &= {n for n, m in expected.items()
                       if n in again and same_fingerprint(m, fingerprint(again[n]))}
            if not stable & {*differs, *missing}:
                break
        compared -= len(set(differs) - stable)
        differs = [n for n in differs if n in stable]
        missing = [n for n in missing if n in stable]
    if differs:
        return Outcome("differs", f"{differs[0]}: differs from the notebook's value",
                       tuple(differs), compared)
    if missing:
        return Outcome("missing", f"{missing[0]}: no step leaves it", tuple(missing), compared)
    return Outcome("ok", compared=compared)


def run_flow(graph: StepGraph, specs: Sequence[Spec], files: Files = ()) -> PipelineRun:
    """The generated project's own flow.py, run by Prefect as `nb2pipe verify` runs it (every
    value handed over through the store), each step's locals fingerprinted as it returns."""
    import json
    import shutil

    from support import write_notebook

    from nb2pipe.convert import convert
    from nb2pipe.execute import RunOptions, run_project

    with _in_folder() as folder:
        path = write_notebook(folder / "generated.ipynb", *((s, *t) for s, t in specs))
        for name, text in files:
            (folder / name).write_text(text, encoding="utf-8")
        converted = convert(path, folder / "project")
        if not converted.ok:
            return PipelineRun({}, f"convert: {converted.diagnostics}")
        found = folder / "fingerprints.jsonl"
        result = run_project(folder / "project", RunOptions(
            cache=False, fingerprints=str(found), isolate=True, storage=str(folder / "store")))
        locals_: dict[str, dict[str, dict[str, Any]]] = {}
        for line in found.read_text(encoding="utf-8").splitlines() if found.exists() else []:
            entry = json.loads(line)
            if entry["kind"] == "final":
                locals_.setdefault(entry["step"], {})[entry["name"]] = entry["fingerprint"]
        shutil.rmtree(folder / "store", ignore_errors=True)
    return PipelineRun(locals_, None if result.ok else (result.error or "the flow failed"))
