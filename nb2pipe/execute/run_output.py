"""Progress and results of a run: lines for people, JSON lines for the JupyterLab server, one
JSON document for scripts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from nb2pipe.execute.engine import RunResult
from nb2pipe.execute.step_events import StepReport
from nb2pipe.runtime.report import duration_text

_WORDS = {"running": "started", "completed": "done", "cached": "cached", "failed": "failed",
          "skipped": "skipped"}


class TextProgress:
    def __init__(self, width: int, stream: TextIO = sys.stdout) -> None:
        self.width = width
        self.stream = stream

    def __call__(self, report: StepReport) -> None:
        word = _WORDS.get(report.state, report.state)
        detail = ""
        if report.state == "completed" and report.duration is not None:
            detail = duration_text(report.duration)  # as the report and JupyterLab write it
        elif report.state in ("failed", "skipped") and report.error:
            detail = report.error.replace("\n", "\n" + " " * (self.width + 14))
        print(f"  {report.name:<{self.width}}  {word:<8}  {detail}".rstrip(), file=self.stream,
              flush=True)


class JsonProgress:
    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream

    def __call__(self, report: StepReport) -> None:
        print(json.dumps({"event": "step", "step": report.name, "state": report.state,
                          "duration": report.duration, "error": report.error,
                          "cell": report.cell, "line": report.line}),
              file=self.stream, flush=True)

    def warning(self, message: str) -> None:
        print(json.dumps({"event": "warning", "message": message}), file=self.stream,
              flush=True)

    def report(self, path: str) -> None:
        """The run's HTML report (the JupyterLab server links it)."""
        print(json.dumps({"event": "report", "path": path}), file=self.stream, flush=True)

    def finished(self, result: RunResult) -> None:
        print(json.dumps({"event": "finished", "state": "completed" if result.ok else "failed",
                          "error": result.error}), file=self.stream, flush=True)


def summary(result: RunResult) -> str:
    counts: dict[str, int] = {}
    for report in result.steps.values():
        counts[report.state] = counts.get(report.state, 0) + 1
    parts = [f"{counts[s]} {w}" for s, w in (("completed", "done"), ("cached", "cached"),
                                              ("failed", "failed"), ("skipped", "skipped"))
             if counts.get(s)]
    startup = f" (+ {result.startup:.1f} s Prefect start-up)" if result.startup else ""
    return f"{', '.join(parts) or 'nothing ran'} in {result.seconds:.2f} s{startup}"


def document(result: RunResult, project: str) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "project": project,
        "seconds": round(result.seconds, 3),
        "startup_seconds": round(result.startup, 3),
        "error": result.error,
        "steps": [
            {"name": r.name, "state": r.state, "duration": r.duration, "error": r.error,
             "cell": r.cell, "line": r.line, "notebook": r.notebook}
            for r in result.steps.values()
        ],
        "metrics": result.metrics,
        "report": result.report,
    }


def print_result(result: RunResult, project: str, jsonl: JsonProgress | None, as_json: bool,
                 flow_run_url: str | None) -> None:
    """The end of `nb2pipe run`: the last events (--progress jsonl), one JSON document
    (--json), or lines for people: the summary, the report, the metrics, the error."""
    if jsonl:
        if result.report:
            jsonl.report(result.report)
        jsonl.finished(result)
    elif as_json:
        print(json.dumps({**document(result, project), "flow_run_url": flow_run_url},
                         indent=2))
    else:
        print(summary(result))
        if result.report:
            print(f"report: {result.report}")
        kept = sorted({Path(r.notebook).parent for r in result.steps.values() if r.notebook})
        for folder in kept:
            print(f"executed step notebooks: {folder}")
        for step, found in result.metrics.items():
            for name, value in found.items():
                print(f"  {step}.{name} = {value!r}")
        if result.error:
            print(f"nb2pipe: {result.error}", file=sys.stderr)


def print_interrupted(result: RunResult, jsonl: JsonProgress | None, as_json: bool) -> None:
    """The end of a run stopped by Ctrl-C: what ran until then, and that it was stopped."""
    if jsonl:
        jsonl.finished(result)
    elif not as_json:
        print(summary(result))
    print("nb2pipe: interrupted; the run's processes were stopped", file=sys.stderr)
