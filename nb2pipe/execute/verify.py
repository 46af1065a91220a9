"""`nb2pipe verify`: the oracle. Does the pipeline compute what the notebook computes?

The notebook runs twice with papermill and the pipeline once; every value that crosses a step
boundary (each step's inputs before it runs, its outputs after) is fingerprinted in all three,
and so is every value the notebook leaves behind when its run ends, against the value the last
step that binds or changes it leaves in its function. Values that differ between the two
notebook runs (unseeded randomness, clocks) are left out and named, and so are values that
cannot be fingerprinted; the first value where the pipeline differs from the notebook is
reported with its step, variable and cell. Nothing compared proves nothing.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb2pipe.exceptions import PipelineFailed
from nb2pipe.execute import hash_seed as hash_seeds
from nb2pipe.execute.differences import (
    AttributeDifference,
    attribute_differences,
    only_memos,
    only_method_state,
)
from nb2pipe.model import Bind, Mutate, StepGraph
from nb2pipe.runtime.fingerprint import same_fingerprint

Key = tuple[str, str, str]  # (step, "inputs" | "outputs" | "final", variable)


@dataclass
class Divergence:
    step: str
    kind: str  # "inputs" | "outputs"
    name: str
    cell: int | None
    notebook: dict[str, Any]
    pipeline: dict[str, Any]
    # when the two differ only in attributes of the object: which, and how
    attributes: list[AttributeDifference] | None = None

    def describe(self, notebook_name: str) -> str:
        where = f", cell {self.cell}" if self.cell else ""
        role = {"inputs": "reads", "outputs": "leaves"}.get(self.kind, "leaves behind")
        theirs = "the notebook's as its run ends" if self.kind == "final" else "the notebook's"
        text = (f"{notebook_name}: step '{self.step}'{where}: the value of '{self.name}' it "
                f"{role} differs from {theirs} ({_show(self.notebook)} in the notebook, "
                f"{_show(self.pipeline)} in the pipeline)")
        if self.attributes:
            text += "; it differs only in the attributes " + ", ".join(
                d.describe(self.name) for d in self.attributes[:8]) + (
                ", ..." if len(self.attributes) > 8 else "")
        return text


@dataclass
class Verdict:
    compared: int = 0  # at the step boundaries
    compared_final: int = 0  # values the notebook leaves behind
    divergence: Divergence | None = None
    nondeterministic: list[Key] = field(default_factory=list)
    # values made from one that differs between two notebook runs, with the first such
    # value: two runs side by side can agree on `now.strftime("%H:%M")`, a later one not
    unstable_inputs: list[tuple[Key, str]] = field(default_factory=list)
    skipped: list[tuple[Key, str]] = field(default_factory=list)  # not fingerprintable
    missing: list[str] = field(default_factory=list)  # values no step of the pipeline leaves
    # compared, and the same but for memos: attributes its class's methods derive from the
    # rest of the object, which one of the two has computed and kept and the other not
    memos: list[tuple[Key, list[AttributeDifference]]] = field(default_factory=list)
    # compared, and different only in attributes methods of the object's class store, not
    # as memos (from a call's arguments, say): verify cannot tell them from a lost change
    method_state: list[tuple[Key, list[AttributeDifference]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.divergence is None and not self.method_state and self.total > 0

    @property
    def total(self) -> int:
        return self.compared + self.compared_final


# The byte each notebook run leaves in memory numpy allocates uninitialised (see
# runtime/fingerprint.py: `uninitialised_memory`): two runs, two bytes.
MEMORY_MARKS = (0x5A, 0xA5)


def notebook_fingerprints(graph: StepGraph, parameters: dict[str, Any],
                          run: int = 0, hash_seed: int | None = None) -> dict[Key, Any]:
    """Run the notebook with papermill, fingerprinting each step boundary. `run`: which of
    verify's runs it is, which says what uninitialised memory holds in it; `hash_seed`: the
    kernel's PYTHONHASHSEED (None: random, as in any kernel)."""
    from nb2pipe.execute.record import execute, instrumented, random_states

    with tempfile.TemporaryDirectory(prefix="nb2pipe-verify-") as folder:
        output = Path(folder) / "fingerprints.jsonl"
        inserts: dict[int, list[str]] = {-1: [
            f"_nb2pipe_fingerprint.uninitialised_memory({MEMORY_MARKS[run]})"]}
        states = random_states(graph)
        for node in graph.steps:
            inserts.setdefault(-node.cells[0], []).append(
                states + _capture(output, node.name, "inputs", list(node.reads)))
            inserts.setdefault(node.cells[-1], []).append(
                states + _capture(output, node.name, "outputs", list(node.returns)))
        carried = [name for name, _ in graph.random_states]
        inserts.setdefault(len(graph.notebook.cells), []).append(  # as the run ends
            f"_nb2pipe_fingerprint.write_final({str(output)!r}, globals(), {carried!r})")
        with instrumented(graph, inserts) as path:
            execute(graph, path, parameters, None if hash_seed is None else {
                hash_seeds.VARIABLE: str(hash_seed)})
        found: dict[Key, Any] = {}
        if output.exists():
            for line in output.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                found[(entry["step"], entry["kind"], entry["name"])] = entry["fingerprint"]
        return found


def _capture(output: Path, step: str, kind: str, names: list[str]) -> str:
    return (f"_nb2pipe_fingerprint.write_fingerprints({str(output)!r}, {step!r}, {kind!r}, "
            f"{names!r}, globals())")


def compare(graph: StepGraph, first: dict[Key, Any], second: dict[Key, Any],
            pipeline: dict[Key, Any]) -> Verdict:
    verdict = Verdict()
    left = _left_behind(graph, first, verdict)
    made_from = _made_from_unstable(graph, first, second, pipeline)
    for node in graph.steps:  # notebook order: the first divergence is usually the cause
        for kind in ("inputs", "outputs"):
            names = sorted({k[2] for k in (*first, *pipeline) if k[:2] == (node.name, kind)})
            for name in names:
                key = (node.name, kind, name)
                _compare_one(graph, verdict, key, key, first, second, pipeline, made_from)
    for node in graph.steps:  # then as the run ends
        for name in left.get(node.name, []):
            _compare_one(graph, verdict, ("", "final", name), (node.name, "final", name),
                         first, second, pipeline, made_from)
    return verdict


def _made_from_unstable(graph: StepGraph, first: dict[Key, Any], second: dict[Key, Any],
                        pipeline: dict[Key, Any]) -> dict[tuple[str, str], str]:
    """(step, "inputs" | "outputs") -> a value that differs between the two notebook runs
    and from which what the step reads or leaves may be made: the step makes such a value,
    or reads one, or reads a value the pipeline had other than the notebook from a step
    like that. Two runs side by side agree on `now.strftime("%H:%M")`; the pipeline's, later,
    may not, and a difference there is no divergence. Steps whose inputs were the notebook's
    are compared in full: a difference in them is the pipeline's."""
    def unstable(key: Key) -> bool:
        a, b = first.get(key), second.get(key)
        return a is not None and b is not None and not same_fingerprint(a, b)

    def changed(key: Key) -> bool:
        a, b = first.get(key), pipeline.get(key)
        return a is not None and b is not None and not same_fingerprint(a, b)

    found: dict[tuple[str, str], str] = {}
    for node in graph.steps:
        sources = [name for name in sorted(node.reads) if unstable((node.name, "inputs", name))]
        sources += [found[(producer, "outputs")] for name in sorted(node.reads)
                    if (producer := node.producer(name)) and (producer, "outputs") in found
                    and changed((node.name, "inputs", name))]
        if sources:
            found[(node.name, "inputs")] = sources[0]
        sources += [name for name in sorted(node.returns)
                    if unstable((node.name, "outputs", name))]
        sources += [name for name in sorted(node.defines) if unstable(("", "final", name))]
        if sources:
            found[(node.name, "outputs")] = sources[0]
    return found


def _left_behind(graph: StepGraph, notebook: dict[Key, Any],
                 verdict: Verdict) -> dict[str, list[str]]:
    """The values the notebook holds as its run ends, by the step that last binds or changes
    each (in notebook order); code no step makes a value of is emitted where it is used."""
    last: dict[str, str] = {}
    for node in graph.steps:
        for name in node.defines:
            last[name] = node.name
    # the generators' states are compared at the boundaries; parameters are the flow's
    carried = {name for name, _ in graph.random_states} | {p.name for p in graph.parameters}
    found: dict[str, list[str]] = {}
    for step, kind, name in sorted(notebook):
        if (step, kind) != ("", "final"):
            continue
        if name in last and _code_after(graph, name, last[name]):
            continue  # `number = len`, then `def number(...)`: code as the run ends
        if name in last:
            found.setdefault(last[name], []).append(name)
        elif name in graph.data_names and name not in carried:
            verdict.missing.append(name)
    return found


def _code_after(graph: StepGraph, name: str, step: str) -> bool:
    """Whether the notebook binds `name` to code (a def, a class, an import) after the step
    that last binds or changes it as a value: what the notebook holds as its run ends is that
    code, which the steps emit where it is used, not a value any step leaves."""
    code = [(e.cell, e.line) for symbols in graph.symbols.values() for e in symbols.events
            if isinstance(e, Bind) and e.name == name and e.code is not None]
    if not code:
        return False
    cells = graph.step(step).cells
    data = [(e.cell, e.line) for index in cells for e in graph.symbols[index].events
            if isinstance(e, Bind | Mutate) and e.name == name
            and not (isinstance(e, Bind) and e.code is not None)]
    return max(code) > max(data, default=(max(cells), 0))


def _compare_one(graph: StepGraph, verdict: Verdict, notebook_key: Key, key: Key,
                 first: dict[Key, Any], second: dict[Key, Any],
                 pipeline: dict[Key, Any], made_from: dict[tuple[str, str], str]) -> None:
    step, kind, name = key
    mine, theirs, again = pipeline.get(key), first.get(notebook_key), second.get(notebook_key)
    if theirs is None:
        return
    if mine is None:
        if kind == "final":
            verdict.missing.append(name)
        return
    if "skip" in (mine["kind"], theirs["kind"]):
        verdict.skipped.append((key, (theirs if theirs["kind"] == "skip"
                                      else mine).get("reason", "")))
        return
    if again is not None and not same_fingerprint(theirs, again):
        verdict.nondeterministic.append(key)
        return
    source = made_from.get((step, "inputs" if kind == "inputs" else "outputs"))
    if source is not None and not same_fingerprint(mine, theirs):
        verdict.unstable_inputs.append((key, source))
        return
    if kind == "final":
        verdict.compared_final += 1
    else:
        verdict.compared += 1
    if same_fingerprint(mine, theirs):
        return
    differences = attribute_differences(theirs, mine)
    if only_memos(differences):  # see execute/differences.py for why this is no change
        verdict.memos.append((key, differences or []))
    elif only_method_state(differences):
        verdict.method_state.append((key, differences or []))
    elif verdict.divergence is None:
        verdict.divergence = Divergence(step, kind, name, _cell_of(graph, step, kind, name),
                                        theirs, mine, differences)


def _cell_of(graph: StepGraph, step: str, kind: str, name: str) -> int | None:
    """The cell that last sets `name`: in the step for an output, in its producer for an input."""
    node = graph.step(step)
    if kind == "inputs":
        producer = node.producer(name)
        if producer is None:
            return graph.parameters[0].cell if graph.parameters else None
        node = graph.step(producer)
    last = None
    for index in node.cells:
        for event in graph.symbols[index].events:
            if isinstance(event, Bind | Mutate) and event.name == name:
                last = index
    return last


def _show(fingerprint: dict[str, Any]) -> str:
    if fingerprint["kind"] == "float":
        return repr(fingerprint["value"])
    if fingerprint["kind"] == "exact":
        return str(fingerprint["value"])
    shape = f" shape {tuple(fingerprint['shape'])}" if "shape" in fingerprint else ""
    return f"hash {fingerprint['hash'][:12]}{shape}"


def verify(notebook: Path, split: str, parameters: dict[str, Any], graph: StepGraph,
           project: Path, report_phase: Callable[[str], None] | None = None,
           connect: Callable[[], AbstractContextManager[object]] | None = None) -> Verdict:
    """Two papermill runs (side by side) and one run of the project's flow.py, compared.
    `connect`: the Prefect API for the pipeline's run, entered just before it (a local server
    can start meanwhile).

    The flow hands every value over through the store, as between processes: a step that
    changes a value in place cannot reach another step's copy of it, whatever the scheduling.
    """
    from nb2pipe.execute.engine import RunOptions, run_project

    # The pipeline runs in this process, so under its string hash seed; the first notebook run
    # gets the same seed, so that a value following the order of a set of strings is that
    # run's in the pipeline too, and the second another, so that such a value usually differs
    # between the notebook's runs and is left out (see hash_seed.py). Unseeded, two runs that
    # agreed by chance were compared with a pipeline that differed by chance.
    seeds = hash_seeds.notebook_seeds(hash_seeds.this_process())
    # The notebook runs share a process, and so its working directory, which papermill sets to
    # the notebook's folder while kernels start; the pipeline's steps change it too, so it runs
    # after them.
    phase = report_phase or (lambda message: None)
    phase("running the notebook with papermill, twice side by side…")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(notebook_fingerprints, graph, parameters, index, seeds[index])
                for index in (0, 1)]
        for done, run in enumerate(as_completed(runs), start=1):
            run.result()
            phase(f"papermill run {done}/2 done ({time.perf_counter() - started:.1f} s)")
        first, second = (run.result() for run in runs)
    phase("running the pipeline…")
    with tempfile.TemporaryDirectory(prefix="nb2pipe-verify-") as folder:
        found = Path(folder) / "fingerprints.jsonl"
        result = run_project(project, RunOptions(
            parameters=parameters, cache=False, fingerprints=str(found), isolate=True,
            storage=str(Path(folder) / "store")), connect=connect)
        pipeline: dict[Key, Any] = {}
        if found.exists():
            for line in found.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                pipeline[(entry["step"], entry["kind"], entry["name"])] = entry["fingerprint"]
    from nb2pipe.execute.prefect_api import send_pending_events

    send_pending_events()
    if not result.ok:
        raise PipelineFailed(result.error or "the pipeline failed")
    phase(f"pipeline done ({result.seconds:.1f} s); comparing the values at the step "
          "boundaries…")
    return compare(graph, first, second, pipeline)
