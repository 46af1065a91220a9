"""The differential tester's long run: generated notebooks, each run as a kernel runs it and as
its generated steps, compared value by value (tests/semantics/). Prints figures; asserts
nothing.

    python benchmarks/differential.py --budget 500            # 500 notebooks, 3 layouts each
    python benchmarks/differential.py --budget 500 --seed 7 --jobs 2
    python benchmarks/differential.py --budget 200 --json out.json

For every class of failure (the outcome, and the idioms its smallest reproduction still
needs) it prints how many runs failed so and one minimised reproduction. Outcomes: ok (every
value the same), diagnosed (`check` reports an error or a warning about the values: an
answer), notebook-failed (the generated notebook fails on its own: not a case), and the
failures: crash (check or convert raised), failed (a step raised), differs, missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from semantics.differential import run


def _slice(arguments: tuple[int, int, int]) -> dict[str, Any]:
    seed, start, count = arguments
    tally = run(seed, count, first=start)
    return {
        "notebooks": tally.notebooks, "runs": tally.runs, "by_kind": tally.by_kind,
        "diagnosed": tally.diagnosed, "examples": tally.examples,
        "failures": [{"kind": f.outcome.kind, "idioms": list(f.case.idioms()),
                      "detail": f.outcome.detail, "layout": f.case.layout,
                      "notebook": f.case.seed, "reproduction": f.case.text()}
                     for f in tally.failures],
    }


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"notebooks": 0, "runs": 0, "by_kind": {}, "diagnosed": {},
                             "examples": {}, "failures": []}
    for part in parts:
        total["notebooks"] += part["notebooks"]
        total["runs"] += part["runs"]
        for key in ("by_kind", "diagnosed"):
            for name, count in part[key].items():
                total[key][name] = total[key].get(name, 0) + count
        total["failures"].extend(part["failures"])
        for code, example in part["examples"].items():
            total["examples"].setdefault(code, example)
    return total


def report(total: dict[str, Any], seconds: float) -> None:
    runs = total["runs"]
    print(f"{total['notebooks']} notebooks generated, {runs} runs (each notebook under 3 step "
          f"layouts), {seconds:.0f} s")
    for kind in ("ok", "diagnosed", "notebook-failed", "crash", "failed", "differs",
                 "missing"):
        count = total["by_kind"].get(kind, 0)
        print(f"  {kind:16} {count:6}  {100 * count / max(runs, 1):5.1f} %")
    if total["diagnosed"]:
        codes = ", ".join(f"{c} {n}" for c, n in sorted(total["diagnosed"].items()))
        print(f"  diagnostics in diagnosed runs: {codes}")
    classes: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for failure in total["failures"]:
        classes.setdefault((failure["kind"], tuple(failure["idioms"])), []).append(failure)
    print(f"\nfailure classes: {len(classes)} (failed runs: {len(total['failures'])})")
    for (kind, idioms), found in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        first = found[0]
        print(f"\n[{kind}] {', '.join(idioms) or '(prelude only)'}: {len(found)} runs")
        print(f"  {first['detail']}")
        print("  " + first["reproduction"].replace("\n", "\n  "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=200, help="notebooks to generate")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures and failures here")
    args = parser.parse_args()
    started = time.perf_counter()
    chunk = max(1, args.budget // (args.jobs * 4))
    slices = [(args.seed, start, min(chunk, args.budget - start))
              for start in range(0, args.budget, chunk)]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            parts = list(pool.map(_slice, slices))
    else:
        parts = [_slice(s) for s in slices]
    total = merge(parts)
    report(total, time.perf_counter() - started)
    if args.json:
        args.json.write_text(json.dumps(total, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
