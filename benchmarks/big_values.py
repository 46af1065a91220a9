"""Benchmark: a big DataFrame through a cached pipeline. Prints figures and ratios; asserts nothing.

The notebook: `make` builds a frame of ROWS x 8 random floats (1 GB at 16.7 M rows), `add`
adds a column to it in place, `mean` takes its mean times the parameter `scale` (a metric).
Whole processes, fresh result storage for every first run, interleaved so that a noisy
neighbour slows every side:

    papermill              the notebook top to bottom in a kernel
    --no-cache             `nb2pipe run --no-cache`: the values stay in memory
    cached, first run      `nb2pipe run` into an empty result storage: every value is stored
    cached, second run     `nb2pipe run` again: every step Cached
    cached, mean again     `nb2pipe run -p scale 2`: `make` and `add` Cached, `mean` runs
                           and loads `add`'s frame from the store

Each is timed (wall clock, start to exit) and its peak memory taken as the largest sum of the
resident memory of the process and all its children (the kernel, the report's renderer),
polled every 50 ms. Goals: the first cached run within 1.3x of --no-cache, the peak of every
nb2pipe run within 1.5x of papermill's, and the second run's pipeline as fast as reading its
values back (the phases below) plus what the same run costs on a tiny frame.

Phases, in a process of their own with the frame in memory: the store's parts (saving the
frame as `make` leaves it and as `add` leaves it, what the cache lookup of both steps reads,
loading the frame back), beside the raw disk (the frame's bytes written, then read back) and
SHA-256 over them.

    python benchmarks/big_values.py [--gb 1 4] [--repeat N] [--quick] [--baseline TREE]

`--baseline TREE` runs the nb2pipe runs of another source tree too (a checkout of an older
commit), interleaved with this one's: before and after in one run. Sizes need free memory of
about 3x the frame and free disk of about 3x (per repeat; deleted as it goes). On the 2-core
machine a 1 GB repeat takes 3-6 minutes, with the baseline twice that.
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from run_speed import THREADS, local_server, write_notebook

ROWS_PER_GB = 16_777_216  # 8 float64 columns: 1 GiB
HERE = Path(__file__).resolve().parent.parent


def big_notebook(path: Path, rows: int) -> Path:
    return write_notebook(path, [
        (f"rows = {rows}\nscale = 1", "parameters"),
        ("import numpy as np\nimport pandas as pd\n\nrng = np.random.default_rng(0)\n"
         "df = pd.DataFrame(rng.standard_normal((rows, 8)), columns=list('abcdefgh'))",
         "step:make"),
        ("df['i'] = df['a'] * 2", "step:add"),
        ("m = float(df.mean().sum()) * scale", "step:mean", "metrics"),
    ])


# --------------------------------------------------------------------------------------------
# Running a process, with its peak memory


@dataclass
class Measured:
    wall: float
    peak: float  # bytes: the largest sum of RSS over the process tree
    stdout: str


def measured(command: list[str], env: dict[str, str], cwd: Path | None = None) -> Measured:
    """Run a command to its end, polling the memory of its process tree; a failure stops
    the benchmark with its output."""
    import psutil

    peak = 0.0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=cwd)
        root = psutil.Process(process.pid)
        while process.poll() is None:
            total = 0
            try:
                for member in [root, *root.children(recursive=True)]:
                    try:
                        total += member.memory_info().rss
                    except psutil.Error:  # ended meanwhile
                        continue
            except psutil.Error:
                pass
            peak = max(peak, total)
            time.sleep(0.05)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        if process.returncode != 0:
            sys.exit(f"failed ({process.returncode}): {' '.join(command)}\n{stdout[-3000:]}\n"
                     f"{err.read()[-3000:]}")
    return Measured(wall, peak, stdout)


@dataclass
class Run:
    wall: float
    peak: float
    seconds: float = 0.0  # the pipeline (nb2pipe's "seconds")
    states: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)


@dataclass
class Tree:
    """A source tree of nb2pipe, with a state folder of its own (its converted projects)."""

    label: str
    env: dict[str, str]


def nb2pipe_run(tree: Tree, notebook: Path, storage: Path, *flags: str) -> Run:
    done = measured([sys.executable, "-m", "nb2pipe", "run", str(notebook), "--json",
                     "--no-report", *flags],
                    {**tree.env, "NB2PIPE_RESULT_STORAGE": str(storage)})
    result = json.loads(done.stdout)
    if not result["ok"]:
        sys.exit(f"nb2pipe run failed: {result['error']}")
    return Run(done.wall, done.peak, result["seconds"],
               {s["name"]: s["state"] for s in result["steps"]},
               {s["name"]: s.get("duration") or 0.0 for s in result["steps"]})


def papermill_run(env: dict[str, str], notebook: Path) -> Run:
    executed = notebook.with_name(notebook.stem + ".out.ipynb")
    done = measured([sys.executable, "-m", "papermill", str(notebook), str(executed),
                     "--kernel", "python3", "--cwd", str(notebook.parent), "--log-level",
                     "ERROR", "--no-progress-bar"], env)
    executed.unlink()
    return Run(done.wall, done.peak)


# --------------------------------------------------------------------------------------------
# The phases: the store's parts, in a process of their own

PHASES = r'''
import hashlib, json, os, sys, tempfile, threading, time
import numpy as np, pandas as pd
from nb2pipe.runtime import store as store_module
from nb2pipe.runtime.store import Store

rows, folder = int(sys.argv[1]), sys.argv[2]
found = {}

def clock(name, action):
    start = time.perf_counter()
    result = action()
    found[name] = time.perf_counter() - start
    return result

rng = np.random.default_rng(0)
df = clock("make the frame", lambda: pd.DataFrame(rng.standard_normal((rows, 8)),
                                                   columns=list("abcdefgh")))
raw = [memoryview(np.ascontiguousarray(b.values)).cast("B")
       for b in getattr(df._mgr, "blocks", [])]
size = sum(v.nbytes for v in raw)
found["bytes"] = size

def write_raw():
    with open(os.path.join(folder, "raw"), "wb") as handle:
        for view in raw:
            handle.write(view)

def read_raw():
    with open(os.path.join(folder, "raw"), "rb") as handle:
        data = bytearray(os.fstat(handle.fileno()).st_size)
        handle.readinto(data)
    return data

clock("raw disk: write the frame's bytes (page cache)", write_raw)
clock("raw disk: read them back", read_raw)
clock("SHA-256 of the frame's bytes", lambda: [hashlib.sha256(v).digest() for v in raw])
os.remove(os.path.join(folder, "raw"))

store = Store(os.path.join(folder, "results"))
try:  # background writes and checked bytes kept for readers, where there are
    from nb2pipe.runtime import verified, writes
    settle, forget, later = writes.settle, verified.forget, {"background": {"df"}}
except ImportError:
    settle, forget, later = (lambda: None), (lambda: None), {}
clock("pickle 5 of `make`'s frame (buffers out of band)",
      lambda: store_module.values.pickled_out_of_band(df))
clock("  and hash it too (chunks.pack)", lambda: store_module.chunks.pack(df))
made = clock("save `make`'s frame: until the step may end",
             lambda: store.save({"df": df}, **later)[0])
clock("  its writes still running then", settle)
df["i"] = df["a"] * 2
added = clock("save `add`'s frame (one more column)", lambda: store.save({"df": df}, **later)[0])
clock("  its writes still running then", settle)
written = sum(p.stat().st_size for p in store.folder.rglob("*") if p.is_file())
found["bytes stored"] = written
clock("cache lookup of both steps",
      lambda: (store.discard_damaged(made), store.discard_damaged(added), forget()))
del df
loaded = clock("load the frame of `add`", lambda: store.load(added))
found["peak RSS of this process"] = __import__("resource").getrusage(
    __import__("resource").RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(found))
'''


def phases(tree: Tree, rows: int, folder: Path) -> dict[str, float]:
    done = measured([sys.executable, "-c", PHASES, str(rows), str(folder)], tree.env)
    shutil.rmtree(folder / "results", ignore_errors=True)
    return json.loads(done.stdout.splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Figures


def median(values: list[float]) -> float:
    return statistics.median(values)


def figure(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    text = f"{median(values) / scale:8.2f} {unit}"
    if len(values) > 1:
        text += f" ({min(values) / scale:.2f}-{max(values) / scale:.2f})"
    return text


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} {five:.1f} {fifteen:.1f}"


def interleave(repeat: int, *actions: Callable[[], None]) -> None:
    for _ in range(repeat):
        for action in actions:
            action()


@dataclass
class Goal:
    text: str
    measured: str
    passed: bool


def measure_size(gb: float, repeat: int, root: Path, trees: list[Tree],
                 goals: list[Goal]) -> None:
    rows = int(ROWS_PER_GB * gb)
    folder = root / f"{gb:g}gb"
    folder.mkdir()
    notebook = big_notebook(folder / "big.ipynb", rows)
    tiny = big_notebook(folder / "tiny.ipynb", 1000)
    print(f"\n== {gb:g} GB frame ({rows:,} x 8 float64), {repeat} repeat(s); load average "
          f"{load_average()} on {os.cpu_count()} cores")
    for tree in trees:  # converted once, and the tiny frame's cached run as the fixed part
        nb2pipe_run(tree, notebook, folder / "warm", "--no-cache", "-p", "rows", "1000")
        nb2pipe_run(tree, tiny, folder / f"tiny-{tree.label}")
    pm: list[Run] = []
    runs: dict[tuple[str, str], list[Run]] = {}
    fixed: dict[str, list[Run]] = {}
    phase: dict[str, list[dict[str, float]]] = {}

    def papermill_once() -> None:
        pm.append(papermill_run(trees[0].env, notebook))

    def nb2pipe_once(tree: Tree) -> Callable[[], None]:
        def once() -> None:
            storage = folder / f"results-{tree.label}"
            shutil.rmtree(storage, ignore_errors=True)
            runs.setdefault((tree.label, "no-cache"), []).append(
                nb2pipe_run(tree, notebook, storage, "--no-cache"))
            runs.setdefault((tree.label, "first"), []).append(nb2pipe_run(tree, notebook,
                                                                            storage))
            runs.setdefault((tree.label, "second"), []).append(nb2pipe_run(tree, notebook,
                                                                             storage))
            runs.setdefault((tree.label, "mean again"), []).append(
                nb2pipe_run(tree, notebook, storage, "-p", "scale", "2"))
            fixed.setdefault(tree.label, []).append(
                nb2pipe_run(tree, tiny, folder / f"tiny-{tree.label}"))
            shutil.rmtree(storage, ignore_errors=True)
        return once

    def phases_once(tree: Tree) -> Callable[[], None]:
        def once() -> None:
            phase.setdefault(tree.label, []).append(phases(tree, rows, folder))
        return once

    interleave(repeat, papermill_once, *(nb2pipe_once(t) for t in trees),
               *(phases_once(t) for t in trees))
    print(f"  (load average after: {load_average()})")
    gib = float(1 << 30)
    print(f"  {'':<44}{'wall':>22}{'peak memory':>26}")
    print(f"  {'papermill':<44}{figure([r.wall for r in pm]):>22}"
          f"{figure([r.peak for r in pm], 'GB', gib):>26}")
    for tree in trees:
        for kind, label in (("no-cache", "nb2pipe run --no-cache"),
                            ("first", "nb2pipe run, cached: first run"),
                            ("second", "nb2pipe run, cached: second run"),
                            ("mean again", "nb2pipe run, cached: mean again")):
            found = runs[(tree.label, kind)]
            name = f"{label} [{tree.label}]" if len(trees) > 1 else label
            print(f"  {name:<44}{figure([r.wall for r in found]):>22}"
                  f"{figure([r.peak for r in found], 'GB', gib):>26}")
            steps = ", ".join(f"{s} {median([r.durations[s] for r in found]):.2f} s "
                              f"({found[-1].states[s]})" for s in found[-1].states)
            print(f"    pipeline {median([r.seconds for r in found]):.2f} s: {steps}")
            # Where the rest goes: the pipeline beyond its steps' code (saving and hashing
            # values on the critical path, the wait for the writes at the end, Prefect's
            # own), and the process beyond its pipeline (start-up, exit).
            beyond = median([r.seconds - sum(r.durations.values()) for r in found])
            outside = median([r.wall - r.seconds for r in found])
            print(f"    pipeline beyond its steps' code {beyond:.2f} s; process beyond its "
                  f"pipeline {outside:.2f} s")
    for tree in trees:
        tag = f" [{tree.label}]" if len(trees) > 1 else ""
        nocache = runs[(tree.label, "no-cache")]
        first = runs[(tree.label, "first")]
        second = runs[(tree.label, "second")]
        pairs = [f.wall / n.wall for f, n in zip(first, nocache, strict=True)]
        ratio = median([r.wall for r in first]) / median([r.wall for r in nocache])
        print(f"  first cached / --no-cache{tag}: {ratio:.2f}x (pairs: "
              f"{', '.join(f'{p:.2f}' for p in pairs)})")
        goals.append(Goal(f"{gb:g} GB{tag}: first cached run <= 1.3x --no-cache",
                          f"{ratio:.2f}x", ratio <= 1.3))
        worst = max(median([r.peak for r in runs[(tree.label, k)]])
                    for k in ("no-cache", "first", "second", "mean again"))
        memory = worst / median([r.peak for r in pm])
        print(f"  largest nb2pipe peak / papermill's{tag}: {memory:.2f}x")
        goals.append(Goal(f"{gb:g} GB{tag}: peak memory <= 1.5x papermill's", f"{memory:.2f}x",
                          memory <= 1.5))
        measured_phases = phase[tree.label]
        print(f"  phases{tag} (one process, the frame in memory):")
        for name in measured_phases[0]:
            values = [p[name] for p in measured_phases if name in p]
            if name.startswith(("bytes", "peak")):
                print(f"    {name:<58}{median(values) / gib:8.2f} GB")
            else:
                print(f"    {name:<58}{figure(values)}")
        read_back = median([p["cache lookup of both steps"] +
                            p["load the frame of `add`"] for p in measured_phases])
        lookup = median([p["cache lookup of both steps"] for p in measured_phases])
        overhead = median([r.seconds for r in fixed[tree.label]])
        pipeline = median([r.seconds for r in second])
        print(f"  second run's pipeline {pipeline:.2f} s; the tiny frame's {overhead:.2f} s; "
              f"reading the values back (lookup {lookup:.2f} s, lookup and load "
              f"{read_back:.2f} s)")
        goals.append(Goal(f"{gb:g} GB{tag}: cached second run <= tiny + lookup + load",
                          f"{pipeline:.2f} s vs {overhead + read_back:.2f} s",
                          pipeline <= overhead + read_back))
        again = median([r.seconds for r in runs[(tree.label, "mean again")]])
        load = median([p["load the frame of `add`"] for p in measured_phases])
        print(f"  `mean` run again on the cached frames: pipeline {again:.2f} s, `mean` "
              f"{median([r.durations['mean'] for r in runs[(tree.label, 'mean again')]]):.2f}"
              f" s; loading the frame alone {load:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, nargs="+", default=[1.0],
                        help="frame sizes in GB (default 1)")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each (default 3)")
    parser.add_argument("--quick", action="store_true", help="a 1/8 GB frame, 1 run each")
    parser.add_argument("--baseline", type=Path, help="another nb2pipe source tree to compare")
    args = parser.parse_args(argv)
    sizes = [0.125] if args.quick else args.gb
    repeat = args.repeat or (1 if args.quick else 3)
    root = Path(tempfile.mkdtemp(prefix="nb2pipe-big-values-"))
    base = {**os.environ, **THREADS, "PREFECT_HOME": str(root / "prefect"),
            "NB2PIPE_CONFIG_DIR": str(root / "config"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    base.pop("PREFECT_API_URL", None)
    trees = [Tree("this", {**base, "NB2PIPE_CACHE_DIR": str(root / "cache-this"),
                           "PYTHONPATH": str(HERE)})]
    if args.baseline:
        trees.insert(0, Tree("baseline", {**base, "PYTHONPATH": str(args.baseline.resolve()),
                                          "NB2PIPE_CACHE_DIR": str(root / "cache-baseline")}))
    versions = subprocess.run(
        [sys.executable, "-c", "import numpy, importlib.util as u; print('numpy', "
         "numpy.__version__, end=' '); import pandas; print('pandas', pandas.__version__, "
         "end=' ');\ntry:\n import pyarrow; print('pyarrow', pyarrow.__version__)\n"
         "except Exception as e: print('pyarrow unusable:', type(e).__name__)"],
        capture_output=True, text=True, env=base, check=True).stdout.strip()
    print(f"big values: Python {sys.version.split()[0]}, {versions}; {os.cpu_count()} cores; "
          f"folder {root}")
    goals: list[Goal] = []
    started = time.perf_counter()
    try:
        for gb in sizes:
            measure_size(gb, repeat, root, trees, goals)
    finally:
        for tree in trees:
            local_server(tree.env, "stop")
        shutil.rmtree(root, ignore_errors=True)
    print("\nGoals (medians; informational, not assertions)")
    for goal in goals:
        print(f"  {goal.text:<62}{goal.measured:<24}{'PASS' if goal.passed else 'MISS'}")
    print(f"total {time.perf_counter() - started:.0f} s; load average {load_average()}")
    return 0


if __name__ == "__main__":
    threading.excepthook = lambda args: None  # a poller racing a process's exit says nothing
    sys.exit(main())
