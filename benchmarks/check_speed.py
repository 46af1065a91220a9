"""Benchmark: how fast is `nb2pipe check`, as a whole process? Prints figures; asserts nothing.

Goal: on real notebooks, whole-process `nb2pipe check` p50 < 0.2 s and p95 < 0.5 s. Each
notebook is checked in a fresh `python -m nb2pipe check` (Python start-up and imports
included), with compiled bytecode as an installed package has it. Figures: wall-clock time and
CPU time (user + system of the child): on a busy machine wall-clock grows with the load while
CPU time does not, so both are shown, beside `python -c pass` measured the same way.

It also counts the notebooks and cells whose IPython syntax needed IPython itself (importing it
costs about a quarter of a second); the common forms are rewritten without it.

    python benchmarks/check_speed.py                       # examples and test notebooks
    python benchmarks/check_speed.py --corpus DIR --sample 200   # plus real notebooks
    (the corpus: benchmarks/corpus_build.py writes it; NB2PIPE_CORPUS=DIR works too)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: Sequence[str], source: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process; `source`: an nb2pipe checkout to run
    instead of the installed one."""
    env = _env()
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # Not from this folder: `python -m` would import the nb2pipe found in the working directory.
    subprocess.run(command, check=False, capture_output=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode, as installed
    return env


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ipython_use(paths: list[Path]) -> tuple[int, int, int, int]:
    """(notebooks needing IPython, notebooks with IPython syntax, cells needing it, cells)."""
    from nb2pipe.notebook import ipython
    from nb2pipe.notebook.magics import transform
    from nb2pipe.notebook.reader import ReadError, read_notebook

    calls = [0]
    original = ipython.with_ipython

    def counting(lines: list[str]) -> list[str]:
        calls[0] += 1
        return original(lines)

    ipython.with_ipython = counting
    needing = with_syntax = cells_needing = cells = 0
    try:
        for path in paths:
            try:
                notebook = read_notebook(path)
            except ReadError:
                continue
            before, syntax = calls[0], False
            for cell in notebook.code_cells:
                cells += 1
                start = calls[0]
                if transform(cell.source).code != cell.source:
                    syntax = True
                cells_needing += calls[0] > start
            needing += calls[0] > before
            with_syntax += syntax
    finally:
        ipython.with_ipython = original
    return needing, with_syntax, cells_needing, cells


def corpus_notebooks(folder: Path | None, sample: int) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    found = sorted(folder.rglob("*.ipynb"))
    return sorted(random.Random(20261129).sample(found, min(sample, len(found))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("NB2PIPE_CORPUS")
                                     or ROOT / "benchmarks" / ".corpus"))
    parser.add_argument("--sample", type=int, default=200, help="corpus notebooks to check")
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook (median)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="another nb2pipe source tree (e.g. `git archive main`) to time on "
                             "the same notebooks, alternating with this one")
    args = parser.parse_args()
    own = [*sorted((ROOT / "examples").glob("*/*.ipynb")),
           *sorted((ROOT / "tests" / "notebooks").glob("*.ipynb"))]
    corpus = corpus_notebooks(args.corpus, args.sample)
    for tree in (ROOT, args.baseline):
        if tree is not None:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "nb2pipe")],
                           check=False, capture_output=True, env=_env())
    timed([sys.executable, "-m", "nb2pipe", "check", str(own[0])])  # warm the file cache

    startup = [timed([sys.executable, "-c", "pass"]) for _ in range(10)]
    print(f"python -c pass: wall p50 {percentile([w for w, _ in startup], .5) * 1000:.0f} ms, "
          f"CPU p50 {percentile([c for _, c in startup], .5) * 1000:.0f} ms")
    for title, paths in (("examples and test notebooks", own), ("corpus sample", corpus)):
        if not paths:
            print(f"\n{title}: none (build the corpus with benchmarks/corpus_build.py)")
            continue
        trees = [("this tree", None)] + ([("baseline", args.baseline)] if args.baseline else [])
        times: dict[str, tuple[list[float], list[float]]] = {t: ([], []) for t, _ in trees}
        for path in paths:
            for tree, source in trees:  # alternating, so both see the same load
                command = [sys.executable, "-m", "nb2pipe", "check", str(path)]
                runs = [timed(command, source) for _ in range(args.repeat)]
                times[tree][0].append(statistics.median(w for w, _ in runs))
                times[tree][1].append(statistics.median(c for _, c in runs))
        print(f"\n{title}: {len(paths)} notebooks, whole-process `nb2pipe check`")
        for tree, _ in trees:
            walls, cpus = times[tree]
            slowest = max(range(len(paths)), key=lambda i: walls[i])
            print(f"  {tree:<9}  wall p50 {percentile(walls, .5) * 1000:5.0f} ms  p95 "
                  f"{percentile(walls, .95) * 1000:5.0f} ms  max {max(walls) * 1000:5.0f} ms "
                  f"({paths[slowest].name})")
            print(f"  {'':<9}  CPU  p50 {percentile(cpus, .5) * 1000:5.0f} ms  p95 "
                  f"{percentile(cpus, .95) * 1000:5.0f} ms  max {max(cpus) * 1000:5.0f} ms")
        needing, with_syntax, cells_needing, cells = ipython_use(paths)
        print(f"  IPython imported for {needing} of the {with_syntax} notebooks with IPython "
              f"syntax ({cells_needing} of {cells} code cells)")
    print("\ngoals: p50 < 200 ms, p95 < 500 ms (wall, on an idle machine; CPU when it is busy)")
    print(json.dumps({"load_average": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
