"""Benchmark: does the Jupyter server keep answering while nb2pipe analyzes or exports a
20,000-cell notebook? Prints figures and ratios; asserts nothing.

A real `jupyter server` on loopback serves a generated notebook of 20,000 small cells (2,000
steps). For each request (the analysis of the file, the analysis of the editor's content, an
export) it measures the request's own time and the latency of `/api/status` polled while it
runs, against `/api/status` on an idle server. Goal: the latency during the work stays within
a few times the idle one (the work runs in worker processes, not on the event loop).

    python benchmarks/server_responsiveness.py [--cells N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from lab import Jupyter, code, running_jupyter, write_notebook  # noqa: E402


def notebook(path: Path, cells: int) -> Path:
    content = []
    for i in range(cells):
        source = "x0 = 0" if i == 0 else f"x{i} = x{i - 1} + 1"
        content.append(code(source, f"step:s{i}") if i % 10 == 0 else code(source))
    return write_notebook(path, content)


def status_latencies(server: Jupyter, until: threading.Event | None, count: int) -> list[float]:
    latencies: list[float] = []
    while (until is None and len(latencies) < count) or (until is not None and not until.is_set()):
        start = time.perf_counter()
        status, _ = server.get("api/status")
        assert status == 200
        latencies.append(time.perf_counter() - start)
    return latencies


def during(server: Jupyter, method: str, endpoint: str, body: Any) -> tuple[float, list[float]]:
    done = threading.Event()
    took: list[float] = []

    def work() -> None:
        start = time.perf_counter()
        status, reply = server.request(method, endpoint, body, timeout=1800)
        took.append(time.perf_counter() - start)
        assert status == 200, reply
        done.set()

    thread = threading.Thread(target=work)
    thread.start()
    latencies = status_latencies(server, done, 0)
    thread.join()
    return took[0], latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "root"
        root.mkdir()
        path = notebook(root / "huge.ipynb", args.cells)
        content = json.loads(path.read_text())
        with running_jupyter(root, Path(folder) / "state") as server:
            server.get("nb2pipe/analyze", path="huge.ipynb")  # workers started and warm
            idle = statistics.median(status_latencies(server, None, 50))
            print(f"{args.cells} cells; /api/status idle: median {idle * 1000:.1f} ms")
            print(f"{'request':<28} {'request s':>10} {'status median':>14} {'status max':>11}"
                  f" {'median / idle':>14}")
            for name, method, endpoint, body in (
                ("analyze the file", "GET", "nb2pipe/analyze?path=huge.ipynb", None),
                ("analyze the editor content", "POST", "nb2pipe/analyze?path=huge.ipynb",
                 content),
                ("export", "POST", "nb2pipe/export", {"path": "huge.ipynb"}),
            ):
                took, latencies = during(server, method, endpoint, body)
                median = statistics.median(latencies)
                print(f"{name:<28} {took:>10.1f} {median * 1000:>11.1f} ms"
                      f" {max(latencies) * 1000:>8.0f} ms {median / idle:>13.1f}x")


if __name__ == "__main__":
    main()
