"""One step of one run: gather its inputs, reuse a cached result or run the step, keep outputs.

`execute` runs inside a Prefect task, in this process (threads) or in another one (process pool,
Dask), so a Job carries everything as plain data and values cross processes as store files.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from nb2pipe.execute.store import Ref, Store, cache_key, load, load_all
from nb2pipe.runtime import errors as cells
from nb2pipe.runtime.values import fingerprint


@dataclass(frozen=True)
class Job:
    step: str
    function: str
    project: str  # absolute path of the generated project
    workdir: str  # the notebook's folder: steps run there
    inputs: tuple[tuple[str, str], ...]  # (variable, producing step)
    parameters: dict[str, Any]  # the values of the parameters the step reads
    returns: tuple[str, ...]
    copied: tuple[str, ...]  # inputs to copy before the step changes them in place
    code: str  # hash of the step's code
    store: str  # artifact store root
    cache: bool = True  # reuse a result saved for the same code, parameters and inputs
    persist: bool = True  # save outputs (for the cache, or to cross processes)
    in_memory: bool = True  # hand values to the next step in memory (same process)
    mode: str = "module"  # "module" | "notebook"
    run_dir: str = ""  # notebook mode keeps each executed step notebook here
    notebook: str = ""  # notebook mode: the source notebook
    split: str = "tags"
    fingerprints: bool = False  # nb2pipe verify: summarise every value crossing the boundary
    run_id: str = ""  # names the store objects of this run that are not cache entries


@dataclass
class Handoff:
    """What a step leaves for the next: values in memory, and/or files in the store."""

    step: str
    values: dict[str, Any] | None
    refs: dict[str, Ref] | None
    cached: bool
    duration: float
    key: str | None = None
    notebook: str | None = None  # notebook mode: the executed notebook
    fingerprints: dict[str, dict[str, Any]] = field(default_factory=dict)  # verify

    def value(self, name: str) -> Any:
        """A value the step left: in memory, else read from the store (KeyError if neither)."""
        if self.values is not None and name in self.values:
            return self.values[name]
        if self.refs and name in self.refs:
            return load(self.refs[name])
        raise KeyError(name)


def execute(job: Job, upstream: dict[str, Handoff]) -> Handoff:
    start = time.perf_counter()
    store = Store(job.store)
    key = None
    if job.persist:
        refs_in = {v: _ref(upstream, v, p) for v, p in job.inputs}
        hashes = {v: ref.sha256 for v, ref in refs_in.items() if ref is not None}
        if len(hashes) == len(job.inputs):
            key = cache_key(job.code, job.parameters, hashes)
        if key and job.cache:
            refs = store.lookup(key)
            if refs is not None and set(job.returns) <= set(refs):
                return Handoff(job.step, None, refs, True, time.perf_counter() - start, key)
    arguments = _inputs(job, upstream)
    arguments.update(job.parameters)
    seen = {"inputs": {n: fingerprint(v) for n, v in arguments.items()}} if job.fingerprints else {}
    executed = None
    if job.mode == "notebook":
        from nb2pipe.execute.notebook_mode import run_step_notebook

        outputs, executed = run_step_notebook(job, arguments)
    else:
        outputs = _call(job, arguments)
    if job.fingerprints:
        seen["outputs"] = {n: fingerprint(v) for n, v in outputs.items()}
    # Only a cacheable result is stored under its cache key: a run that does not cache (or a
    # cache:off step) must not find, or leave, another run's values under that key.
    refs = store.save(key if key and job.cache else _fresh_key(job), outputs) if (
        job.persist) else None
    kept = outputs if job.in_memory else None
    return Handoff(job.step, kept, refs, False, time.perf_counter() - start, key, executed, seen)


def _ref(upstream: dict[str, Handoff], variable: str, producer: str) -> Ref | None:
    refs = upstream[producer].refs
    return refs.get(variable) if refs else None


def _inputs(job: Job, upstream: dict[str, Handoff]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    stored: dict[str, Ref] = {}
    for variable, producer in job.inputs:
        handoff = upstream[producer]
        if handoff.values is not None and variable in handoff.values:
            found[variable] = handoff.values[variable]
        else:
            ref = _ref(upstream, variable, producer)
            if ref is None:
                raise RuntimeError(f"step '{producer}' left no value for '{variable}'")
            stored[variable] = ref
    found.update(load_all(stored))
    if job.copied:
        # The step changes these in place while other steps read them; one deepcopy keeps
        # objects shared between them shared in the copies.
        copies = copy.deepcopy(tuple(found[v] for v in job.copied))
        found.update(zip(job.copied, copies, strict=True))
    return found


def _call(job: Job, arguments: dict[str, Any]) -> dict[str, Any]:
    module = steps_module(job.project)
    os.chdir(job.workdir)
    try:
        result: dict[str, Any] = getattr(module, job.function)(**arguments)
    except Exception as error:
        manifest = cells.load_manifest(job.project)
        raise cells.step_error(manifest, str(module.__file__), job.step, error) from error
    return result


_MODULES: dict[tuple[str, int], ModuleType] = {}


def steps_module(project: str) -> ModuleType:
    """The project's steps.py, imported once per version of the file (and per process)."""
    path = os.path.join(project, "steps.py")
    version = (path, os.stat(path).st_mtime_ns)
    if version not in _MODULES:
        name = f"nb2pipe_steps_{abs(hash(version)):x}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        if project not in sys.path:
            sys.path.insert(0, project)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _MODULES[version] = module
    return _MODULES[version]


def warm_up(project: str) -> None:
    """A new worker process: import the project's steps and the serializers' libraries now."""
    steps_module(project)
    for name in ("pandas", "pyarrow.parquet"):
        with contextlib.suppress(ImportError):  # a project without pandas has no frames
            __import__(name)


def _fresh_key(job: Job) -> str:
    """A store key for a result that must cross processes but is not a cache entry."""
    return f"{RUN_PREFIX}{job.run_id}-{job.step}-{os.getpid()}-{time.time_ns()}"


RUN_PREFIX = "run-"  # store objects of one run only; pruned by later runs


def project_dir(path: str | Path) -> str:
    return str(Path(path).resolve())
