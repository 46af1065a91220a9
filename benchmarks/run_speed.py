"""Benchmark: how fast is `nb2pipe run`? Prints figures and ratios; asserts nothing.

Measurements, side by side in one run on notebooks generated in a temporary folder:

1. Overhead: a sequential notebook of 5 steps doing real pandas/numpy work, as a whole process
   under papermill and under `nb2pipe run --no-cache`. Prefect's fixed start-up (`import prefect`
   and the JSON "startup_seconds": ephemeral server and flow run creation) is reported apart.
   Goal: excluding that fixed start-up, nb2pipe within 1.15x of papermill.
2. Parallel speedup: a tiny first step, then k = 4 independent heavy steps (matrix products and
   `tanh`, which release the GIL). papermill runs them one after the other; nb2pipe with the
   thread runner (and the process runner) runs them side by side.
   Goal: papermill time / nb2pipe pipeline time >= 0.8 x min(k, cores).
3. Incremental: the overhead notebook, cache warm, re-run with a new value for a parameter that
   only the last step reads. Goal: re-run <= 1.2 x that step's duration + fixed overhead, where
   the fixed overhead is what a re-run where nothing changed (all steps cached) costs.
4. Handoff: a ~1 GB DataFrame crossing processes through nb2pipe's store, measured by calling
   the store directly (as the cache keeps it, pickle 5 in chunks; and as one run hands it to a
   step in another process, pickle 5 with raw buffers) and end to end in a 2-step notebook with
   `--runner process --no-cache` (the project's own flow.py, run by `nb2pipe run`).
   Goal: handoff throughput >= 50% of raw disk write (with fsync) + read of the same bytes.
5. Cold and warm: examples/churn as a whole process against papermill, as CI runs it (fresh
   caches, no server), with the local server stopped (caches kept), and warm (server running),
   phase by phase (benchmarks/cold_start.py; `--only cold` runs it alone).
   Goals: fresh cold <= 1.5x papermill, server stopped <= 1.2x, warm <= 1.3x.
6. Report: the overhead notebook (no figures) run with the HTML report (the default: outputs
   captured, the report rendered with nbconvert) and with `--no-report`, interleaved.
   Goal: the pipeline with the report <= 1.05 x without (`--only report` runs it alone).
7. Authentication: the frame of measurement 4 saved and loaded through the store as the cache
   keeps it and as a run hands it to its next step, with the checks (each file hashed as it is
   written and as it is read back, the bytes decoded only when they match; the step's record
   signed and checked) and without them (a cached frame memory-mapped and decoded as it is, as
   before the checks; the hand-over through the same store code with its hashing a no-op),
   interleaved in one run (`--only auth` runs it alone). Figures, no goal.

Every measurement is repeated (default 3) and the median is reported; runs of the tools being
compared are interleaved so that a noisy neighbour slows both. BLAS is kept single-threaded
(OMP_NUM_THREADS=1 etc.) in every process; Prefect and the nb2pipe cache live in the temporary
folder (PREFECT_HOME, NB2PIPE_CACHE_DIR), which is deleted at the end. Work sizes are calibrated
on the machine first, so each overhead step takes ~1.5 s and each parallel step ~2 s. To tell
nb2pipe's costs from the machine's, measurement 2 also runs the same work on plain Python threads
(no nb2pipe, no Prefect) and measurement 4 times each part of Store.save. Measurement 4 needs
~5 GB of free disk and ~5 GB of free memory for the 1 GB frame; with less it uses a smaller one.

    python benchmarks/run_speed.py [--repeat N] [--quick] [--only parallel|handoff|report|auth|cold]

A full run takes about 8 minutes on 2 cores. --quick is a smoke test (about 2 minutes): ~5x
smaller work, a 128 MB DataFrame and 1 run per measurement unless --repeat is given; its steps
are too short to amortize Prefect's per-run costs, so judge the goals on a full run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before numpy is imported, here and in every process started: BLAS on one thread.
THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                  "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}
os.environ.update(THREADS)

CORES = os.cpu_count() or 1
PARALLEL_STEPS = 4


@dataclass(frozen=True)
class Sizes:
    step_seconds: float  # target work of each overhead step
    parallel_seconds: float  # target work of each parallel step
    frame_rows: int  # rows of the 8-column float64 frame of the handoff (16.7 M: 1 GiB)


FULL = Sizes(step_seconds=1.5, parallel_seconds=2.0, frame_rows=16_777_216)
QUICK = Sizes(step_seconds=0.3, parallel_seconds=0.5, frame_rows=2_097_152)


@dataclass
class Goal:
    name: str
    target: str
    measured: str
    passed: bool


@dataclass
class Bench:
    """The temporary folder, the environment of every process started, and the results."""

    root: Path
    repeat: int
    sizes: Sizes
    env: dict[str, str] = field(default_factory=dict)
    goals: list[Goal] = field(default_factory=list)

    def path(self, name: str) -> Path:
        return self.root / name


# --------------------------------------------------------------------------------------------
# Notebooks


def write_notebook(path: Path, cells: list[tuple[str, ...]]) -> Path:
    """A real .ipynb: each cell is (source, tag, ...)."""
    documents = []
    for index, (source, *tags) in enumerate(cells, start=1):
        documents.append({"cell_type": "code", "id": f"c{index}", "execution_count": None,
                          "metadata": {"tags": tags} if tags else {}, "outputs": [],
                          "source": source})
    path.write_text(json.dumps({
        "cells": documents, "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                    "display_name": "Python 3"},
                     "language_info": {"name": "python"}}}, indent=1), encoding="utf-8")
    return path


# Five sequential steps, each working on what the previous one produced. `scale` is read only
# by the last step (measurement 3). Statements are assignments: nb2pipe moves a bare
# `module.function(...)` statement to module level as configuration.
SEQUENTIAL_STEPS = [
    ("load", """import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
cols = list("abcdefgh")
raw = pd.DataFrame(rng.standard_normal((rows, 8)), columns=cols)
raw[cols] = raw[cols].cumsum() / np.sqrt(np.arange(1, rows + 1))[:, None]
raw["key"] = rng.integers(0, 1000, rows)
raw["label"] = rng.integers(0, 3, rows).astype(str)"""),
    ("clean", """clean = raw.sort_values(["key", "a"]).reset_index(drop=True)
clean[cols] = clean[cols].clip(-3, 3).rolling(25, min_periods=1).mean()"""),
    ("features", """stats = clean.groupby("key")[cols].agg(["mean", "std", "median"])
stats.columns = [f"{c}_{s}" for c, s in stats.columns]
features = clean.join(stats[[f"{c}_mean" for c in cols]], on="key")
features["rank"] = features.groupby("key")["a"].rank(pct=True)"""),
    ("model", """X = features.drop(columns=["key", "label"]).to_numpy()
y = (features["label"] == "1").to_numpy(dtype=float)
coef = np.linalg.lstsq(X, y, rcond=None)[0]
scored = features[["key"]].assign(score=X @ coef)"""),
    ("report", """final = scored.assign(score=scored["score"] * scale)
report = final.groupby("key")["score"].describe(percentiles=[0.1, 0.25, 0.5, 0.75, 0.9])
final["pct"] = final.groupby("key")["score"].rank(pct=True)"""),
]
SEQUENTIAL_METRICS = 'top = float(report["mean"].max() + final["pct"].mean())'


def sequential_notebook(path: Path, rows: int) -> Path:
    cells: list[tuple[str, ...]] = [(f"rows = {rows}\nscale = 1.0", "parameters")]
    cells += [(source, f"step:{name}") for name, source in SEQUENTIAL_STEPS]
    cells.append((SEQUENTIAL_METRICS, "metrics"))  # belongs to the last step
    return write_notebook(path, cells)


def parallel_notebook(path: Path, size: int, rounds: int) -> Path:
    cells: list[tuple[str, ...]] = [
        (f"size = {size}\nrounds = {rounds}", "parameters"),
        ("import numpy as np\n\nbase = np.random.default_rng(0).standard_normal((size, size))"
         " / np.sqrt(size)", "step:setup"),
    ]
    # Every step reuses the loop variable `_`, as notebooks do: the steps stay independent.
    for i in range(1, PARALLEL_STEPS + 1):
        cells.append((f"m{i} = base * {i}\nfor _ in range(rounds):\n"
                      f"    m{i} = np.tanh(m{i} @ base)\nr{i} = float(np.abs(m{i}).sum())",
                      f"step:heavy{i}", "metrics"))
    return write_notebook(path, cells)


def handoff_notebook(path: Path, rows: int) -> Path:
    """Step `make` builds the frame (and says how long that took, and when it ended); step
    `use` notes when it started: the gap between them is the handoff."""
    return write_notebook(path, [
        (f"rows = {rows}", "parameters"),
        ("import time\n\nimport numpy as np\nimport pandas as pd\n\n"
         "started = time.perf_counter()\nrng = np.random.default_rng(0)\n"
         'frame = pd.DataFrame({c: rng.standard_normal(rows) for c in "abcdefgh"})\n'
         "make_seconds = time.perf_counter() - started\nmade_at = time.time()", "step:make"),
        ("use_at = time.time()\ntotal = float(frame[\"a\"].sum())\n"
         "gap = use_at - made_at\nmade_in = make_seconds", "step:use", "metrics"),
    ])


def tiny_notebook(path: Path) -> Path:
    return write_notebook(path, [("n = 3", "parameters"), ("x = list(range(n))", "step:one"),
                                 ("y = sum(x)", "step:two")])


# --------------------------------------------------------------------------------------------
# Calibration: size the work so steps take about the target time on this machine


def calibrate_sequential(target_step: float) -> int:
    """Rows for which the five steps take ~5 x target_step (timed in this process)."""
    import numpy  # noqa: F401  (imports are not part of the work)
    import pandas  # noqa: F401

    rows = 500_000
    namespace: dict[str, Any] = {"rows": rows, "scale": 1.0}
    start = time.perf_counter()
    for _, source in SEQUENTIAL_STEPS:
        exec(source, namespace)
    exec(SEQUENTIAL_METRICS, namespace)
    seconds = time.perf_counter() - start
    return max(100_000, int(rows * 5 * target_step / seconds))


def calibrate_parallel(target_step: float, size: int = 1000) -> int:
    """Rounds of one matrix product + tanh for ~target_step seconds."""
    import numpy as np

    base = np.random.default_rng(0).standard_normal((size, size)) / np.sqrt(size)
    m = base.copy()
    m = np.tanh(m @ base)  # warm-up
    start = time.perf_counter()
    for _ in range(5):
        m = np.tanh(m @ base)
    per_round = (time.perf_counter() - start) / 5
    return max(2, round(target_step / per_round))


# --------------------------------------------------------------------------------------------
# Running things


@dataclass
class Timed:
    whole: float  # start to exit
    output_at: float  # start to the first byte on stdout (`--json` prints once, at the end)
    stdout: str


def timed(command: list[str], env: dict[str, str]) -> Timed:
    """Run a command; a failure stops the benchmark with its output."""
    with tempfile.TemporaryFile("w+") as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors,
                                   text=True)
        assert process.stdout is not None
        first = process.stdout.read(1)
        output_at = time.perf_counter() - start
        out = first + process.stdout.read()
        code = process.wait()
        whole = time.perf_counter() - start
        if code != 0:
            errors.seek(0)
            sys.exit(f"failed ({code}): {' '.join(command)}\n{out}\n{errors.read()}")
    return Timed(whole, output_at if first else whole, out)


@dataclass
class NbRun:
    whole: float  # the whole process
    printed: float  # start of the process to the JSON result on stdout
    seconds: float  # the pipeline ("seconds")
    startup: float  # Prefect's fixed cost ("startup_seconds")
    steps: dict[str, dict[str, Any]]  # by step: state, duration
    metrics: dict[str, dict[str, Any]]


def nb2pipe(bench: Bench, notebook: Path, *flags: str, env: dict[str, str] | None = None
            ) -> NbRun:
    command = [sys.executable, "-m", "nb2pipe", "run", str(notebook), "--json", *flags]
    done = timed(command, env or bench.env)
    result = json.loads(done.stdout)
    if not result["ok"]:
        sys.exit(f"nb2pipe run failed: {result['error']}")
    return NbRun(done.whole, done.output_at, result["seconds"], result["startup_seconds"],
                 {s["name"]: s for s in result["steps"]}, result["metrics"])


@dataclass
class PmRun:
    whole: float  # the whole process: papermill, kernel start, cells
    cells: float  # first cell start to last cell end, from the executed notebook
    durations: list[float]  # of each code cell


def papermill(bench: Bench, notebook: Path) -> PmRun:
    executed = notebook.with_name(notebook.stem + ".out.ipynb")
    command = [sys.executable, "-m", "papermill", str(notebook), str(executed),
               "--kernel", "python3", "--cwd", str(notebook.parent),
               "--log-level", "ERROR", "--no-progress-bar"]
    whole = timed(command, bench.env).whole
    document = json.loads(executed.read_text(encoding="utf-8"))
    meta = [c["metadata"]["papermill"] for c in document["cells"] if c["cell_type"] == "code"]
    from datetime import datetime

    start = min(datetime.fromisoformat(m["start_time"].rstrip("Z")) for m in meta)
    end = max(datetime.fromisoformat(m["end_time"].rstrip("Z")) for m in meta)
    return PmRun(whole, (end - start).total_seconds(), [m["duration"] for m in meta])


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else ""


def row(label: str, values: list[float] | float, unit: str = "s") -> None:
    """One figure: the median of the repeats (and their range)."""
    if isinstance(values, list):
        text = f"{median(values):8.2f} {unit}"
        if len(values) > 1:
            text += f"   (range {spread(values)}, n={len(values)})"
    else:
        text = f"{values:8.2f} {unit}"
    print(f"  {label:<58}{text}")


def interleave(repeat: int, *actions: Callable[[], None]) -> None:
    """A B C, A B C, ...: a slow moment on a shared machine hits every side."""
    for _ in range(repeat):
        for action in actions:
            action()


def goal(bench: Bench, name: str, target: str, measured: str, passed: bool) -> None:
    bench.goals.append(Goal(name, target, measured, passed))
    print(f"  goal: {target}; measured {measured}  ->  {'PASS' if passed else 'MISS'}")


# --------------------------------------------------------------------------------------------
# Measurements


def section(title: str) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{title}\n  (load average before: {load:.2f} on {CORES} cores)")


def prefect_fixed_cost(bench: Bench) -> dict[str, float]:
    """`import prefect` in a fresh interpreter, over bare interpreter start-up; and the first
    Prefect run in an empty PREFECT_HOME (creates its database), which is not counted later."""
    section("[0] Prefect's fixed cost")
    tiny = tiny_notebook(bench.path("tiny.ipynb"))
    first = nb2pipe(bench, tiny, "--no-cache")
    print(f"  first run in an empty PREFECT_HOME: start-up {first.startup:.2f} s, whole "
          f"{first.whole:.2f} s (creates Prefect's database; a warm-up, not counted)")
    papermill(bench, tiny)  # warm-up: kernel spec lookup, file cache
    bare: list[float] = []
    imports: list[float] = []
    runs: list[NbRun] = []

    def python_bare() -> None:
        bare.append(timed([sys.executable, "-c", "pass"], bench.env).whole)

    def python_prefect() -> None:
        imports.append(timed([sys.executable, "-c", "import prefect"], bench.env).whole)

    def tiny_run() -> None:
        runs.append(nb2pipe(bench, tiny, "--no-cache"))

    interleave(bench.repeat, python_bare, python_prefect, tiny_run)
    import_prefect = median(imports) - median(bare)
    row("python -c pass", bare)
    row('python -c "import prefect"', imports)
    row("import prefect (difference)", import_prefect)
    row("start-up of a run (startup_seconds, 2 trivial steps)", [r.startup for r in runs])
    row("whole process, 2 trivial steps", [r.whole for r in runs])
    row("  after the result is printed (server shutdown, exit)",
        [r.whole - r.printed for r in runs])
    return {"import": import_prefect}


def measure_overhead(bench: Bench, rows: int, fixed: dict[str, float]) -> dict[str, Any]:
    """1. Whole process: papermill vs nb2pipe run --no-cache, on 5 sequential steps."""
    section(f"[1] Overhead: 5 sequential steps ({rows:,} rows), whole process")
    notebook = sequential_notebook(bench.path("sequential.ipynb"), rows)
    pm: list[PmRun] = []
    nb: list[NbRun] = []
    interleave(bench.repeat, lambda: pm.append(papermill(bench, notebook)),
               lambda: nb.append(nb2pipe(bench, notebook, "--no-cache")))
    steps = [name for name, _ in SEQUENTIAL_STEPS]
    print("  step (median s), papermill cell / nb2pipe step: " + ", ".join(
        f"{name} {median([r.durations[i + 1] for r in pm]):.2f}/"
        f"{median([r.steps[name]['duration'] for r in nb]):.2f}"
        for i, name in enumerate(steps)))
    papermill_s = median([r.whole for r in pm])
    nb2pipe_s = median([r.whole for r in nb])
    fixed_cost = median([r.startup for r in nb]) + fixed["import"]
    row("papermill (whole process)", [r.whole for r in pm])
    row("  executing the cells", [r.cells for r in pm])
    row("  papermill itself (import, kernel start, writing)", [r.whole - r.cells for r in pm])
    row("nb2pipe run --no-cache (whole process)", [r.whole for r in nb])
    row("  before the flow (Python, imports, conversion)",
        [r.printed - r.startup - r.seconds for r in nb])
    row("  Prefect start-up (startup_seconds)", [r.startup for r in nb])
    row("  the pipeline (seconds)", [r.seconds for r in nb])
    row("  sum of the step durations", [sum(s["duration"] for s in r.steps.values()) for r in nb])
    row("  after the result (Prefect server shutdown, exit)", [r.whole - r.printed for r in nb])
    row("Prefect fixed cost (startup_seconds + import prefect)", fixed_cost)
    row("nb2pipe minus Prefect fixed cost", nb2pipe_s - fixed_cost)
    ratio = (nb2pipe_s - fixed_cost) / papermill_s
    row("ratio (nb2pipe - fixed) / papermill", ratio, "x")
    row("ratio with the fixed cost (whole / whole)", nb2pipe_s / papermill_s, "x")
    row("ratio of the work: pipeline seconds / papermill cells",
        median([r.seconds for r in nb]) / median([r.cells for r in pm]), "x")
    goal(bench, "1 overhead", "(nb2pipe - Prefect fixed) <= 1.15 x papermill",
         f"{ratio:.2f}x", ratio <= 1.15)
    return {"notebook": notebook, "papermill_cells": pm}


def measure_report(bench: Bench, notebook: Path) -> None:
    """6. The run's report: the overhead notebook (no figures) with and without capturing
    outputs and writing the HTML report (`--no-report`), interleaved."""
    section("[6] Report: the overhead case with the report (default) and with --no-report")
    on: list[NbRun] = []
    off: list[NbRun] = []
    interleave(bench.repeat, lambda: off.append(nb2pipe(bench, notebook, "--no-cache",
                                                        "--no-report")),
               lambda: on.append(nb2pipe(bench, notebook, "--no-cache")))
    row("--no-report: the pipeline (seconds)", [r.seconds for r in off])
    row("report on:   the pipeline (seconds, report written)", [r.seconds for r in on])
    row("--no-report: sum of the step durations",
        [sum(s["duration"] for s in r.steps.values()) for r in off])
    row("report on:   sum of the step durations (capturing)",
        [sum(s["duration"] for s in r.steps.values()) for r in on])
    row("--no-report: whole process", [r.whole for r in off])
    row("report on:   whole process", [r.whole for r in on])
    pipeline = median([r.seconds for r in on]) / median([r.seconds for r in off])
    steps = (median([sum(s["duration"] for s in r.steps.values()) for r in on])
             / median([sum(s["duration"] for s in r.steps.values()) for r in off]))
    whole = median([r.whole for r in on]) / median([r.whole for r in off])
    row("ratio of the steps (capturing only)", steps, "x")
    row("ratio of the pipeline (capturing + writing the report)", pipeline, "x")
    row("ratio of the whole process", whole, "x")
    goal(bench, "6 report overhead", "pipeline with report <= 1.05 x --no-report",
         f"{pipeline:.3f}x (whole {whole:.3f}x)", pipeline <= 1.05)


# The parallel steps' work with plain Python threads and no nb2pipe: what the machine allows.
THREADS_ONLY = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np
size, rounds, k, workers = (int(a) for a in sys.argv[1:])
base = np.random.default_rng(0).standard_normal((size, size)) / np.sqrt(size)
def heavy(i):
    m = base * i
    for _ in range(rounds):
        m = np.tanh(m @ base)
    return float(np.abs(m).sum())
start = time.perf_counter()
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(heavy, range(1, k + 1)))
print(time.perf_counter() - start)
"""


def measure_parallel(bench: Bench, rounds: int) -> None:
    """2. k independent heavy steps: papermill one after the other, nb2pipe side by side."""
    k = PARALLEL_STEPS
    ideal = min(k, CORES)
    section(f"[2] Parallel: {k} independent steps of {rounds} x (1000x1000 matmul + tanh)")
    notebook = parallel_notebook(bench.path("parallel.ipynb"), 1000, rounds)
    pm: list[PmRun] = []
    threads: list[NbRun] = []
    processes: list[NbRun] = []
    plain: list[float] = []
    command = [sys.executable, "-c", THREADS_ONLY, "1000", str(rounds), str(k), str(ideal)]
    interleave(bench.repeat, lambda: pm.append(papermill(bench, notebook)),
               lambda: threads.append(nb2pipe(bench, notebook, "--no-cache")),
               lambda: plain.append(float(timed(command, bench.env).stdout)),
               lambda: processes.append(nb2pipe(bench, notebook, "--no-cache",
                                                "--runner", "process")))
    cells = median([r.cells for r in pm])
    row("papermill (whole process)", [r.whole for r in pm])
    row("  executing the cells (the work, one after the other)", [r.cells for r in pm])
    row(f"plain Python threads ({ideal}), same work, no nb2pipe", plain)
    row("nb2pipe --runner thread: pipeline (seconds)", [r.seconds for r in threads])
    row("  whole process", [r.whole for r in threads])
    row("  a heavy step's duration (median of the 4)",
        median([median([r.steps[f"heavy{i}"]["duration"] for i in range(1, k + 1)])
                for r in threads]))
    row("nb2pipe --runner process: pipeline (seconds)", [r.seconds for r in processes])
    row("  whole process", [r.whole for r in processes])
    row("  a heavy step's duration (median of the 4)",
        median([median([r.steps[f"heavy{i}"]["duration"] for i in range(1, k + 1)])
                for r in processes]))
    row("speedup plain threads: papermill cells / threads", cells / median(plain), "x")
    for label, runs in (("thread", threads), ("process", processes)):
        row(f"speedup {label}: papermill cells / pipeline",
            cells / median([r.seconds for r in runs]), "x")
        row(f"speedup {label}: papermill whole / nb2pipe whole",
            median([r.whole for r in pm]) / median([r.whole for r in runs]), "x")
    speedup = cells / median([r.seconds for r in threads])
    goal(bench, "2 parallel (threads)", f"speedup >= 0.8 x min({k}, {CORES}) = {0.8 * ideal:.2f}",
         f"{speedup:.2f}x", speedup >= 0.8 * ideal)


def measure_incremental(bench: Bench, notebook: Path, papermill_runs: list[PmRun]) -> None:
    """3. Cache warm, re-run with a new value for the parameter only the last step reads."""
    section("[3] Incremental: re-run after changing `scale` (read only by the last step)")
    env = {**bench.env, "NB2PIPE_CACHE_DIR": str(bench.path("cache-incremental"))}
    warm = nb2pipe(bench, notebook, env=env)
    changed: list[NbRun] = []
    unchanged: list[NbRun] = []
    for i in range(bench.repeat):  # a new value each time, so the last step really re-runs
        changed.append(nb2pipe(bench, notebook, "-p", "scale", str(2.0 + i), env=env))
        unchanged.append(nb2pipe(bench, notebook, "-p", "scale", str(2.0 + i), env=env))
    last = SEQUENTIAL_STEPS[-1][0]
    for run, rerun_last in [(r, True) for r in changed] + [(r, False) for r in unchanged]:
        states = {n: s["state"] for n, s in run.steps.items()}
        expected = {n: "completed" if rerun_last and n == last else "cached" for n in states}
        if states != expected:
            print(f"  ! unexpected step states: {states}")
    last_rerun = median([r.steps[last]["duration"] for r in changed])
    print(f"  first run, cache on: whole {warm.whole:.2f} s, pipeline {warm.seconds:.2f} s "
          "(it saves every step's outputs)")
    row(f"last step '{last}' in papermill (its cells)",
        median([r.durations[-2] + r.durations[-1] for r in papermill_runs]))
    row(f"last step '{last}' in the first run (step duration)", warm.steps[last]["duration"])
    row(f"last step '{last}' in the re-run (step duration)",
        [r.steps[last]["duration"] for r in changed])
    row("re-run, nothing changed: pipeline (seconds)", [r.seconds for r in unchanged])
    row("re-run, nothing changed: Prefect start-up", [r.startup for r in unchanged])
    row("re-run, nothing changed: whole process", [r.whole for r in unchanged])
    row("re-run, scale changed: pipeline (seconds)", [r.seconds for r in changed])
    row("re-run, scale changed: whole process", [r.whole for r in changed])
    per_run = median([r.seconds for r in unchanged])
    fixed_whole = median([r.whole for r in unchanged])
    pipeline_bound = 1.2 * last_rerun + per_run
    whole_bound = 1.2 * last_rerun + fixed_whole
    pipeline = median([r.seconds for r in changed])
    whole = median([r.whole for r in changed])
    print("  last step = its duration in the re-run's JSON (it includes loading its input from "
          "the cache); fixed overhead = a re-run where nothing changed: its pipeline seconds "
          f"({per_run:.2f} s, the per-run constant) against the pipeline, its whole process "
          f"({fixed_whole:.2f} s: Python, imports, conversion, Prefect start-up and shutdown, "
          "cache look-ups) against the whole process")
    row("bound, pipeline: 1.2 x last step + per-run constant", pipeline_bound)
    row("bound, whole: 1.2 x last step + nothing-changed run", whole_bound)
    goal(bench, "3 incremental (pipeline)", "re-run seconds <= 1.2 x last step + per-run const.",
         f"{pipeline:.2f} s vs {pipeline_bound:.2f} s", pipeline <= pipeline_bound)
    goal(bench, "3 incremental (whole)", "re-run whole <= 1.2 x last step + fixed overhead",
         f"{whole:.2f} s vs {whole_bound:.2f} s", whole <= whole_bound)


def raw_disk(folder: Path, columns: list[Any]) -> tuple[float, float]:
    """Write the columns' raw buffers to one file with fsync, read them back: seconds each."""
    import numpy as np

    path = folder / "raw.bin"
    start = time.perf_counter()
    with open(path, "wb") as handle:
        for column in columns:
            handle.write(memoryview(column).cast("B"))
        handle.flush()
        os.fsync(handle.fileno())
    written = time.perf_counter() - start
    start = time.perf_counter()
    back = [np.empty_like(c) for c in columns]
    with open(path, "rb") as handle:
        for buffer in back:
            handle.readinto(memoryview(buffer).cast("B"))
    read = time.perf_counter() - start
    path.unlink()
    return written, read


def measure_handoff(bench: Bench) -> None:
    """4. A ~1 GB DataFrame through the store, against raw disk; then end to end."""
    free = shutil.disk_usage(bench.root).free
    memory = available_memory()
    # A save writes one file of about the frame's size; saving and checking it holds ~4 copies.
    rows = frame_rows(bench)
    section(f"[4] Handoff: 8 float64 columns x {rows:,} rows across processes "
            f"({free / 2**30:.0f} GiB disk free in {bench.root}, "
            f"{memory / 2**30:.0f} GiB memory available)")
    size, raw_seconds = handoff_store(bench, rows)
    handoff_end_to_end(bench, rows, size, raw_seconds)


def available_memory() -> float:
    """Bytes of memory available (Linux: MemAvailable), or infinity when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def handoff_store(bench: Bench, rows: int) -> tuple[int, float]:
    """The store's save + load of the frame, against raw disk: as the cache keeps it
    (pickle 5 in hashed chunks) and as one run hands it to the next step in another process
    (pickle 5, buffers as they are); and where the cache's save goes. Returns the frame's size
    in bytes and raw write + read seconds."""
    import numpy as np
    import pandas as pd
    import pyarrow.feather as feather

    from nb2pipe.runtime.store import Store, file_hash

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.standard_normal(rows) for c in "abcdefgh"})
    size = int(frame.memory_usage(deep=True).sum())
    columns = [np.ascontiguousarray(frame[c].to_numpy()) for c in frame.columns]
    print(f"  DataFrame in memory: {size / 1e6:,.0f} MB")
    times: dict[str, list[float]] = {}
    folder = bench.path("store")

    def clock(name: str, action: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = action()
        times.setdefault(name, []).append(time.perf_counter() - start)
        return result

    def store_round_trip() -> None:
        store = Store(str(folder))
        refs = clock("save", lambda: store.save({"frame": frame})[0])
        clock("load", lambda: store.load(refs))
        shutil.rmtree(folder)
        refs = clock("run_save", lambda: store.save({"frame": frame}, run="bench")[0])
        clock("run_load", lambda: store.load(refs))
        shutil.rmtree(folder)

    def disk() -> None:
        written, read = raw_disk(bench.root, columns)
        times.setdefault("write", []).append(written)
        times.setdefault("read", []).append(read)

    def parts() -> None:  # what Store.save does (nb2pipe.runtime.values), one part at a time
        import pyarrow
        import pyarrow.parquet

        from nb2pipe.runtime.values import _write

        path = bench.path("part.parquet")

        def encode() -> Any:
            sink = pyarrow.BufferOutputStream()
            pyarrow.parquet.write_table(pyarrow.Table.from_pandas(frame), sink,
                                        compression="none", use_dictionary=[],
                                        write_statistics=False)
            return sink.getvalue()

        buffer = clock("encode", encode)
        clock("write_hash", lambda: _write(str(path), buffer))
        clock("sha256", lambda: file_hash(path))
        path.unlink()
        arrow = bench.path("part.arrow")
        clock("feather", lambda: feather.write_feather(frame, arrow, compression="uncompressed"))
        clock("feather_read", lambda: feather.read_feather(arrow))
        arrow.unlink()

    warm = bench.path("warm.parquet")  # first use imports pyarrow.parquet and pandas.testing
    pd.testing.assert_frame_equal(frame.head(), frame.head())
    frame.head().to_parquet(warm)
    pd.read_parquet(warm)
    interleave(bench.repeat, store_round_trip, disk, parts)
    mb = size / 1e6
    store_s = median(times["save"]) + median(times["load"])
    run_s = median(times["run_save"]) + median(times["run_load"])
    raw_s = median(times["write"]) + median(times["read"])
    row("store, for the cache: save (pickle 5 chunks, hashed)", times["save"])
    row("  for comparison: parquet encoding, in memory (no compression)", times["encode"])
    row("  for comparison: writing parquet while hashing it", times["write_hash"])
    row("  for comparison: hashing the file alone", times["sha256"])
    row("store, for the cache: load (chunks -> DataFrame)", times["load"])
    row("store, for the next step only: save (pickle 5, raw buffers)", times["run_save"])
    row("store, for the next step only: load", times["run_load"])
    row("raw disk: write + fsync", times["write"])
    row("raw disk: read back", times["read"])
    row("for comparison: Arrow IPC uncompressed, write", times["feather"])
    row("for comparison: Arrow IPC uncompressed, read", times["feather_read"])
    row("cache throughput (save + load)", mb / store_s, "MB/s")
    row("next-step handoff throughput (save + load)", mb / run_s, "MB/s")
    row("raw disk throughput (write + read)", mb / raw_s, "MB/s")
    share = raw_s / store_s
    row("cache / raw", share * 100, "%")
    goal(bench, "4 handoff (cache)", "cache save+load >= 50% of raw disk write+read",
         f"{share * 100:.0f}%", share >= 0.5)
    share = raw_s / run_s
    row("next-step handoff / raw", share * 100, "%")
    goal(bench, "4 handoff (store)", "handoff save+load >= 50% of raw disk write+read",
         f"{share * 100:.0f}%", share >= 0.5)
    return size, raw_s


def handoff_end_to_end(bench: Bench, rows: int, size: int, raw_seconds: float) -> None:
    """The 2-step notebook with --runner process: `make` builds the frame, `use` reads it."""
    notebook = handoff_notebook(bench.path("handoff.ipynb"), rows)
    runs: list[NbRun] = []
    for _ in range(bench.repeat):
        runs.append(nb2pipe(bench, notebook, "--no-cache", "--runner", "process"))
    made = [r.metrics["use"]["made_in"] for r in runs]
    gaps = [r.metrics["use"]["gap"] for r in runs]
    derived = [r.steps["make"]["duration"] - m + r.steps["use"]["duration"]
               for r, m in zip(runs, made, strict=True)]
    mb = size / 1e6
    row("end to end: pipeline (seconds)", [r.seconds for r in runs])
    row("end to end: whole process", [r.whole for r in runs])
    row("  step make (duration)", [r.steps["make"]["duration"] for r in runs])
    row("    of which building the frame", made)
    row("  step use (duration: loads the frame)", [r.steps["use"]["duration"] for r in runs])
    row("  handoff: step durations minus the work", derived)
    row("  handoff: wall clock, end of make's code to use's start", gaps)
    share = raw_seconds / median(gaps)
    row("end-to-end handoff throughput (wall clock)", mb / median(gaps), "MB/s")
    row("end-to-end / raw", share * 100, "%")
    goal(bench, "4 handoff (end to end)", "process handoff >= 50% of raw disk write+read",
         f"{share * 100:.0f}%", share >= 0.5)


# --------------------------------------------------------------------------------------------
# 7. What the checks of the result storage cost


def frame_rows(bench: Bench) -> int:
    """Rows of the 1 GB frame, fewer when the disk or memory would not hold ~5 copies."""
    free = shutil.disk_usage(bench.root).free
    scale = min(1.0, free / (5 * 2**30), available_memory() / (5 * 2**30))
    return max(1 << 18, int(bench.sizes.frame_rows * scale))


def measure_authentication(bench: Bench) -> None:
    """7. Save + load of the frame with the store's checks and without them, interleaved."""
    import hashlib

    import numpy as np
    import pandas as pd

    from nb2pipe.runtime import records, values
    from nb2pipe.runtime.handoff import Values
    from nb2pipe.runtime.store import Store

    rows = frame_rows(bench)
    section(f"[7] Authentication: 8 float64 columns x {rows:,} rows through the store, "
            "with and without the checks")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.standard_normal(rows) for c in "abcdefgh"})
    size = int(frame.memory_usage(deep=True).sum())
    print(f"  DataFrame in memory: {size / 1e6:,.0f} MB")
    folder = bench.path("auth-store")
    store = Store(str(folder))
    times: dict[str, list[float]] = {}

    def clock(name: str, action: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = action()
        times.setdefault(name, []).append(time.perf_counter() - start)
        return result

    class NoHash:
        """hashlib.sha256 as a no-op: the store's own code, without the checks' hashing."""

        def __init__(self, data: Any = b"") -> None:
            pass

        def update(self, data: Any) -> None:
            pass

        def hexdigest(self) -> str:
            return "0" * 64

    def unhashed(action: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            real = hashlib.sha256
            hashlib.sha256 = NoHash  # type: ignore[assignment,misc]
            try:
                return action()
            finally:
                hashlib.sha256 = real
        return run

    def cache(checked: bool) -> None:
        # Saved as the cache keeps it (pickle 5 chunks, named by their hashes either way).
        ref = clock("cache save", lambda: store.save({"frame": frame})[0]["frame"])
        path = folder / ref.path
        if checked:
            clock("cache load, checked", lambda: store.load_ref(ref))
        else:  # as before the checks: the file memory-mapped and decoded as it is
            clock("cache load, unchecked", lambda: values.load_file(str(path)))
        shutil.rmtree(folder)

    def handoff(checked: bool) -> None:
        def save() -> Any:
            return store.save({"frame": frame}, run="bench")[0]["frame"]

        if checked:
            ref = clock("handoff save, hashed", save)
            clock("handoff load, checked", lambda: store.load_ref(ref))
        else:
            ref = clock("handoff save, unhashed", unhashed(save))
            clock("handoff load, unchecked", unhashed(lambda: store.load_ref(ref)))
        shutil.rmtree(folder)

    def record() -> None:
        kept = Values("make", None, {"frame": store.save({"frame": frame.head()})[0]["frame"]},
                      store.location, "bench")
        kept.key = "0" * 64
        start = time.perf_counter()
        for _ in range(1000):
            records.read(records.SERIALIZER.dumps(kept), kept.key)
        times.setdefault("record", []).append((time.perf_counter() - start) / 1000)
        shutil.rmtree(folder)

    def sha256() -> None:
        memory = np.ascontiguousarray(frame["a"].to_numpy())
        start = time.perf_counter()
        hashlib.sha256(memoryview(memory).cast("B")).digest()
        times.setdefault("sha256", []).append(
            (time.perf_counter() - start) * size / memory.nbytes)

    warm = bench.path("auth-warm.parquet")  # first use imports pyarrow.parquet and pandas
    frame.head().to_parquet(warm)
    pd.read_parquet(warm)
    turns = [lambda: cache(False), lambda: cache(True), lambda: handoff(False),
             lambda: handoff(True)]
    for repeat in range(bench.repeat):  # each side first every other time
        interleave(1, *(turns if repeat % 2 == 0 else [turns[1], turns[0], turns[3],
                                                        turns[2]]))
        record()
        sha256()
    mb = size / 1e6
    row("sha256 of the frame's bytes in memory (one core)", times["sha256"])
    row("a step's record: signed, written as JSON, read and checked", times["record"][0] * 1e3,
        "ms")
    row("cache save (parquet, hashed as written: as before)", times["cache save"])
    row("cache load, unchecked (memory-mapped, as before)", times["cache load, unchecked"])
    row("cache load, checked (read once, hashed, then decoded)", times["cache load, checked"])
    row("next-step save (pickle 5 buffers), not hashed (as before)",
        times["handoff save, unhashed"])
    row("next-step save, hashed as written", times["handoff save, hashed"])
    row("next-step load, not checked (as before)", times["handoff load, unchecked"])
    row("next-step load, read once, hashed, then decoded", times["handoff load, checked"])
    save = median(times["cache save"])  # the same either way: its hash names the file
    for kind, before, after in (
            ("cache", save + median(times["cache load, unchecked"]),
             save + median(times["cache load, checked"])),
            ("next step", median(times["handoff save, unhashed"])
             + median(times["handoff load, unchecked"]),
             median(times["handoff save, hashed"]) + median(times["handoff load, checked"]))):
        row(f"{kind}: save + load without the checks", before)
        row(f"{kind}: save + load with the checks", after)
        row(f"{kind}: with / without", after / before, "x")
        row(f"{kind}: throughput with the checks", mb / after, "MB/s")


# --------------------------------------------------------------------------------------------
# 5. Cold and warm runs of examples/churn: benchmarks/cold_start.py


CHURN = Path(__file__).resolve().parent.parent / "examples" / "churn"


def local_server(env: dict[str, str], action: str) -> str:
    done = subprocess.run([sys.executable, "-m", "nb2pipe", "server", action], env=env,
                          capture_output=True, text=True, check=False)
    return done.stdout


def measure_local_server(bench: Bench, baseline: Path | None = None) -> None:
    from cold_start import measure_cold_start

    measure_cold_start(bench, baseline)


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per measurement, reported as the median (default 3; 1 with "
                             "--quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: smaller work, 128 MB frame, 1 run each")
    parser.add_argument("--only", choices=("parallel", "handoff", "report", "auth", "cold"),
                        help="run this measurement alone (2: parallel steps, 4: the handoff, "
                             "6: the report, 7: the store's checks, 5: cold and warm runs of "
                             "examples/churn)")
    parser.add_argument("--server-only", action="store_true",
                        help="the same as --only cold")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="measurement 5: also time another nb2pipe source tree (on "
                             "PYTHONPATH), interleaved with this one")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    root = Path(tempfile.mkdtemp(prefix="nb2pipe-speed-"))
    bench = Bench(root, max(1, repeat), sizes)
    bench.env = {**os.environ, **THREADS, "NB2PIPE_CACHE_DIR": str(root / "cache"),
                 "NB2PIPE_CONFIG_DIR": str(root / "config"),  # the storage key
                 "PREFECT_HOME": str(root / "prefect"),
                 "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                 # Temporary files of the runs (their progress channels) stay in this folder.
                 "TMPDIR": str(root / "tmp")}
    (root / "tmp").mkdir()
    os.environ["NB2PIPE_CACHE_DIR"] = bench.env["NB2PIPE_CACHE_DIR"]
    os.environ["NB2PIPE_CONFIG_DIR"] = bench.env["NB2PIPE_CONFIG_DIR"]
    started = time.perf_counter()
    print(f"nb2pipe run benchmark: {CORES} cores, Python {sys.version.split()[0]}, "
          f"median of {bench.repeat} runs{' (quick)' if args.quick else ''}; folder {root}")
    try:
        if args.server_only or args.only == "cold":
            measure_local_server(bench, args.baseline)
            return summary(bench, started)
        if args.only == "parallel":
            measure_parallel(bench, calibrate_parallel(sizes.parallel_seconds))
            return summary(bench, started)
        if args.only == "auth":
            measure_authentication(bench)
            return summary(bench, started)
        if args.only == "report":
            rows = calibrate_sequential(sizes.step_seconds)
            measure_report(bench, sequential_notebook(bench.path("sequential.ipynb"), rows))
            return summary(bench, started)
        if args.only is None:
            rows = calibrate_sequential(sizes.step_seconds)
            rounds = calibrate_parallel(sizes.parallel_seconds)
            print(f"calibrated: {rows:,} rows for ~{sizes.step_seconds:g} s per sequential "
                  f"step, {rounds} rounds for ~{sizes.parallel_seconds:g} s per parallel step")
            fixed = prefect_fixed_cost(bench)
            overhead = measure_overhead(bench, rows, fixed)
            measure_parallel(bench, rounds)
            measure_incremental(bench, overhead["notebook"], overhead["papermill_cells"])
            measure_report(bench, overhead["notebook"])
        measure_handoff(bench)
        if args.only is None:
            measure_authentication(bench)
            measure_local_server(bench, args.baseline)
    finally:
        local_server(bench.env, "stop")  # the one the runs above started
        shutil.rmtree(root, ignore_errors=True)
    return summary(bench, started)


def summary(bench: Bench, started: float) -> int:
    print(f"\nSummary (median of {bench.repeat}; informational, not assertions)")
    width = max((len(g.target) for g in bench.goals), default=0)
    print(f"  {'measurement':<26}{'goal':<{width + 2}}{'measured':<24}result")
    for g in bench.goals:
        print(f"  {g.name:<26}{g.target:<{width + 2}}{g.measured:<24}"
              f"{'PASS' if g.passed else 'MISS'}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
