"""Benchmark: how many values the static analysis marks as changed in place, and copied, on the
static corpus. Prints figures; asserts nothing.

A value a step changes in place (made by an earlier step) is handed on from that step; when
another step reads the earlier version, the changing step gets a copy. Each such mark costs a
handover or a copy, so a rule that marks more (a call in a function body that may change what
it is given, say) is measured here against the tree before it, on the same notebooks:

    python benchmarks/changed_values.py                        # this tree
    git archive main | tar -x -C /tmp/base                      # an older tree beside it
    python benchmarks/changed_values.py --baseline /tmp/base    # both, and what differs

For every notebook of the corpus (`benchmarks/corpus_build.py`) and each split, in one process
per tree (the tree's `nb2pipe` first on sys.path): the values marked changed (the sum over steps
of the earlier steps' values each changes in place) and the values copied (the sum over steps
of the inputs copied for it). No kernel, no conversion: the graph and the plan only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_build import NOTEBOOKS_TSV, corpus_dir, read_list

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ("cells", "headings")

# Runs in the tree measured: one JSON line per notebook and split.
_MEASURE = """
import json, sys
from nb2pipe.generate.plan import make_plan
from nb2pipe.pipeline import analyze_notebook
for line in sys.stdin:
    path, split = json.loads(line)
    try:
        graph = analyze_notebook(path, split)
        plan = make_plan(graph)
    except Exception as error:
        print(json.dumps([path, split, None, None, type(error).__name__]), flush=True)
        continue
    changed = sorted(f"{s.name}:{v}" for s in graph.steps for v in s.mutates)
    copied = sorted(f"{s.name}:{v}" for s in plan.steps for v in s.copied)
    print(json.dumps([path, split, changed, copied, None]), flush=True)
"""

Record = tuple[list[str] | None, list[str] | None]


def measure(tree: Path, jobs: list[tuple[str, str]]) -> dict[tuple[str, str], Record]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", _MEASURE], input="".join(
        json.dumps(job) + "\n" for job in jobs), capture_output=True, text=True, env=env,
        check=True, cwd=tree)
    found: dict[tuple[str, str], Record] = {}
    for line in done.stdout.splitlines():
        path, split, changed, copied, _ = json.loads(line)
        found[(path, split)] = (changed, copied)
    return found


def totals(found: dict[tuple[str, str], Record]) -> tuple[int, int, int]:
    good = [r for r in found.values() if r[0] is not None and r[1] is not None]
    return (len(good), sum(len(r[0] or ()) for r in good), sum(len(r[1] or ()) for r in good))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", help="corpus folder (default $NB2PIPE_CORPUS or "
                                         "benchmarks/.corpus)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="another nb2pipe source tree (e.g. `git archive main`) measured "
                             "on the same notebooks")
    parser.add_argument("--show", type=int, default=20, metavar="N",
                        help="list up to N notebooks whose marks differ (default 20)")
    args = parser.parse_args()
    corpus = corpus_dir(args.corpus)
    paths = sorted(str(e.local(corpus)) for e in read_list(NOTEBOOKS_TSV)
                   if e.local(corpus).exists())
    if not paths:
        print("no corpus notebooks: build them with benchmarks/corpus_build.py")
        return
    jobs = [(path, split) for path in paths for split in SPLITS]
    trees = [("this tree", ROOT)] + ([("baseline", args.baseline)] if args.baseline else [])
    results = {name: measure(tree, jobs) for name, tree in trees}
    print(f"{len(paths)} notebooks x {len(SPLITS)} splits")
    for name, found in results.items():
        graphs, changed, copied = totals(found)
        print(f"  {name:<9}  {graphs} graphs  {changed} values marked changed  "
              f"{copied} values copied")
    if args.baseline is None:
        return
    mine, base = results["this tree"], results["baseline"]
    differing = []
    for job in jobs:
        now, before = mine.get(job, (None, None)), base.get(job, (None, None))
        if None in (*now, *before) or now == before:
            continue
        more = sorted(set(now[0] or ()) - set(before[0] or ()))
        fewer = sorted(set(before[0] or ()) - set(now[0] or ()))
        copies = len(now[1] or ()) - len(before[1] or ())
        differing.append((job, more, fewer, copies))
    print(f"  graphs whose marks differ: {len(differing)}")
    for (path, split), more, fewer, copies in differing[:args.show]:
        shown = os.path.relpath(path, corpus)
        print(f"    {shown} [{split}]: +{len(more)} changed {more[:4]}"
              f"{f' -{len(fewer)} {fewer[:4]}' if fewer else ''}, copies {copies:+d}")


if __name__ == "__main__":
    main()
