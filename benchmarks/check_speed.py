"""Benchmark: how fast is `nb2pipe check`? Prints figures and ratios; asserts nothing.

For each notebook: whole-process `nb2pipe check` (includes Python start-up and imports), the
in-process analysis (read + transform + split + analyze + graph), and the floor: what any tool
must do to look at the code at all (nbformat read + IPython's transformer + ast.parse of every
code cell). Goals: analysis <= 3x the floor; whole-process check < 0.5 s on the examples.

    python benchmarks/check_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def floor(path: Path) -> None:
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    manager = TransformerManager()
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            with contextlib.suppress(SyntaxError):
                ast.parse(manager.transform_cell(cell.source))


def analysis(path: Path) -> None:
    from nb2pipe.pipeline import analyze_notebook

    analyze_notebook(path)


def whole_process(path: Path) -> None:
    subprocess.run([sys.executable, "-m", "nb2pipe", "check", str(path)], check=False,
                   capture_output=True)


def generated_notebook(cells: int) -> dict[str, object]:
    """A large, realistic notebook: imports, helpers, steps that load, mutate, fit, report."""
    out: list[dict[str, object]] = []

    def add(kind: str, source: str, tags: list[str] | None = None) -> None:
        cell: dict[str, object] = {"cell_type": kind, "id": f"g{len(out)}",
                                   "metadata": {"tags": tags} if tags else {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        out.append(cell)

    add("code", "import numpy as np\nimport pandas as pd\n%matplotlib inline\n"
                "from sklearn.linear_model import LinearRegression")
    add("code", "rows = 100\nseed = 0\nthreshold = 0.5", ["parameters"])
    add("code", "def scale(frame, factor):\n    frame['v'] = frame['v'] * factor\n"
                "    return frame\n\ndef summary(frame):\n    return frame.describe()")
    step = 0
    while len(out) < cells:
        step += 1
        prev = f"df{step - 1}" if step > 1 else None
        add("markdown", f"## Stage {step}\nSome explanation of what happens here.")
        source = (f"df{step} = {prev}.copy()" if prev else
                  "df1 = pd.DataFrame({'v': np.arange(rows, dtype=float)})")
        add("code", source, [f"step:stage_{step}"])
        add("code", f"df{step}['w{step}'] = df{step}['v'] * {step}\n"
                    f"df{step}.dropna(inplace=True)\nscale(df{step}, 1.01)")
        add("code", f"values_{step} = [x * 2 for x in df{step}['v'] if x > threshold]\n"
                    f"total_{step} = sum(values_{step})\nlabels = {{k: v for k, v in "
                    f"enumerate(values_{step}[:3])}}")
        add("code", f"model_{step} = LinearRegression()\n"
                    f"model_{step}.fit(df{step}[['v']], df{step}['w{step}'])")
        add("code", f"df{step}.head()", ["skip"])
        add("code", f"%%time\nreport_{step} = summary(df{step})\n"
                    f"print(total_{step}, model_{step}.coef_)")
        add("code", f"for i in range(3):\n    total_{step} += i\n"
                    f"with open('/dev/null', 'w') as fh:\n    fh.write(str(total_{step}))")
    return {"cells": out[:cells], "metadata": {"kernelspec": {"name": "python3",
            "language": "python", "display_name": "Python 3"}}, "nbformat": 4,
            "nbformat_minor": 5}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    big = Path(tempfile.mkdtemp()) / "generated_2000_cells.ipynb"
    big.write_text(json.dumps(generated_notebook(2000)))
    notebooks = [*sorted((ROOT / "examples").glob("*/*.ipynb")), big]
    floor(notebooks[0])  # import nbformat/IPython once, outside the timings
    analysis(notebooks[0])
    print(f"{'notebook':<28} {'cells':>5} {'check (process)':>16} {'analysis':>10} "
          f"{'floor':>9} {'analysis/floor':>15}")
    for path in notebooks:
        cells = len(json.loads(path.read_text())["cells"])
        proc = median_seconds(lambda p=path: whole_process(p), args.repeat)
        mine = median_seconds(lambda p=path: analysis(p), args.repeat)
        base = median_seconds(lambda p=path: floor(p), args.repeat)
        print(f"{path.name:<28} {cells:>5} {proc * 1000:>13.0f} ms {mine * 1000:>7.1f} ms "
              f"{base * 1000:>6.1f} ms {mine / base:>14.2f}x")
    python = median_seconds(lambda: subprocess.run([sys.executable, "-c", "pass"]), args.repeat)
    print(f"\n(python start-up alone: {python * 1000:.0f} ms; goals: analysis/floor <= 3x, "
          "check on the examples < 500 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
