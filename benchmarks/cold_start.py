"""Measurement 5 of run_speed.py: examples/churn as a whole process, the way CI runs it (cold)
and the way a workstation does (warm), paired and interleaved with papermill.

Each round runs, one after the other:

- papermill on the notebook (whole process: papermill, the kernel, the cells);
- a fresh cold `nb2pipe run --no-cache`: a new NB2PIPE_CACHE_DIR, NB2PIPE_CONFIG_DIR and
  PREFECT_HOME, no server running: a CI job, a new container, a new user's first try;
- a second cold run: the same folders, the local server stopped before it (its database and
  the converted project kept): the first run of the day;
- a warm run: the local server of an earlier run still running, every step computed.

Every run prints `--progress jsonl`; each line is timed as it arrives, which gives the phases:
the command's own start (Python, nb2pipe, arguments) until it starts the server, the server
until it answers (and the CPU it used meanwhile, from /proc), the flow's process importing
Prefect and the flow's libraries meanwhile (it says so when it has to wait), the flow run's
creation, the steps, the report and the exit. What the server does before it answers is
measured apart too, in one process, phase by phase (`server_phases`), with Prefect's own
functions: importing Prefect and its server, the app, the migrations of an empty SQLite
database, block registration, and the same start on an existing database.

    python benchmarks/run_speed.py --only cold [--repeat N] [--baseline OLD_TREE]

With --baseline (another nb2pipe source tree, e.g. `git archive main nb2pipe | tar -x -C
OLD_TREE`), every run is repeated with that tree (on PYTHONPATH), interleaved, and the two are
compared pair by pair.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from run_speed import (
    CHURN,
    Bench,
    PmRun,
    goal,
    interleave,
    median,
    papermill,
    row,
    section,
)


@dataclass
class Timeline:
    """One `nb2pipe run --progress jsonl`: when each event arrived (seconds since the
    process started), and the local server's CPU seconds when it answered."""

    whole: float
    events: list[tuple[float, dict[str, Any]]]
    server_cpu: float | None = None
    marks: dict[str, float] = field(default_factory=dict)

    def first(self, test: Any) -> float | None:
        return next((at for at, event in self.events if test(event)), None)

    def last(self, test: Any) -> float | None:
        found = [at for at, event in self.events if test(event)]
        return found[-1] if found else None


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that still run (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _server_pid(cache: Path) -> int | None:
    try:
        return int(json.loads((cache / "server" / "server.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def timeline(notebook: Path, env: dict[str, str], cache: Path) -> Timeline:
    """Run `nb2pipe run NOTEBOOK --no-cache --progress jsonl`, timing every line."""
    command = [sys.executable, "-m", "nb2pipe", "run", str(notebook), "--no-cache",
               "--progress", "jsonl"]
    events: list[tuple[float, dict[str, Any]]] = []
    server_cpu = None
    with tempfile.TemporaryFile("w+") as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors,
                                   text=True)
        assert process.stdout is not None
        for line in process.stdout:
            at = time.perf_counter() - start
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            events.append((at, event))
            if event.get("phase") == "running" and (pid := _server_pid(cache)):
                server_cpu = _cpu_seconds(pid)
        code = process.wait()
        whole = time.perf_counter() - start
        if code != 0:
            errors.seek(0)
            sys.exit(f"failed ({code}): {' '.join(command)}\n{errors.read()[-3000:]}")
    return Timeline(whole, events, server_cpu)


def _phase(message_start: str) -> Any:
    return lambda e: e.get("event") == "phase" and str(e.get("message", "")).startswith(
        message_start)


def phases(run: Timeline) -> dict[str, float | None]:
    """Seconds since the process started, by milestone."""
    spawn = run.first(_phase("starting local Prefect server"))
    ready = run.first(lambda e: e.get("phase") == "running")
    waiting = run.first(_phase("waiting for the local Prefect server"))
    flow_run = run.first(lambda e: e.get("phase") == "flow_run")
    first_step = run.first(lambda e: e.get("event") == "step")
    steps_done = run.last(lambda e: e.get("event") == "step" and e.get("state") != "running")
    finished = run.first(lambda e: e.get("event") == "finished")
    return {"spawn": spawn, "ready": ready, "waiting": waiting, "flow_run": flow_run,
            "first_step": first_step, "steps_done": steps_done, "finished": finished,
            "whole": run.whole}


def _stop_server(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "nb2pipe", "server", "stop"], env=env,
                   capture_output=True, check=False)


# What a Prefect server does before it answers, phase by phase, in one process, with Prefect's
# own functions (those its app's start-up calls). Prints one JSON object: phase -> [wall, CPU].
SERVER_PHASES = r"""
import asyncio, json, resource, sys, time
marks = {}
def clock():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime
last = clock()
def mark(name):
    global last
    now = clock()
    marks[name] = [now[0] - last[0], now[1] - last[1]]
    last = clock()
import prefect
mark("import prefect")
import prefect.server.api.server as server
mark("import the server (API, models, database)")
server.create_app(final=True)
mark("create the app (routes, UI)")
from prefect.server.database import provide_database_interface
from prefect.server.models.block_registration import run_block_auto_registration
db = provide_database_interface()
async def database():
    await db.create_db()
    mark("migrations" + sys.argv[1])
    if sys.argv[1] == " (empty SQLite database)":
        session = await db.session()
        async with session:
            await run_block_auto_registration(session=session)
        mark("block registration (first start)")
asyncio.run(database())
print(json.dumps(marks))
"""


def server_phases(env: dict[str, str], home: Path, label: str) -> dict[str, list[float]]:
    found = subprocess.run([sys.executable, "-c", SERVER_PHASES, label],
                           env={**env, "PREFECT_HOME": str(home)}, capture_output=True,
                           text=True, check=False)
    if found.returncode != 0:
        sys.exit(f"server phases failed:\n{found.stderr[-3000:]}")
    return dict(json.loads(found.stdout.strip().splitlines()[-1]))


def flow_imports(env: dict[str, str], project: Path) -> list[float]:
    """A fresh interpreter importing Prefect (as a run's process does) and the project's
    flow.py with its steps' libraries: [wall, CPU]."""
    code = ("import resource, sys, time\nt = time.perf_counter()\n"
            "from nb2pipe.execute import startup\nstartup.import_prefect()\n"
            f"sys.path.insert(0, {str(project)!r})\nimport flow\n"
            "u = resource.getrusage(resource.RUSAGE_SELF)\n"
            "print(time.perf_counter() - t, u.ru_utime + u.ru_stime)")
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True, cwd=project)
    wall, cpu = found.stdout.split()
    return [float(wall), float(cpu)]


@dataclass
class Side:
    """One nb2pipe source tree under test: this one, or a baseline (PYTHONPATH)."""

    name: str
    env: dict[str, str]
    warm_cache: Path
    fresh: list[Timeline] = field(default_factory=list)
    second: list[Timeline] = field(default_factory=list)
    warm: list[Timeline] = field(default_factory=list)
    homes: list[Path] = field(default_factory=list)

    @property
    def warm_env(self) -> dict[str, str]:
        return {**self.env, "NB2PIPE_CACHE_DIR": str(self.warm_cache)}


def measure_cold_start(bench: Bench, baseline: Path | None = None) -> None:
    section("[5] Cold and warm: examples/churn, whole process, against papermill")
    folder = bench.path("churn")
    shutil.copytree(CHURN, folder, ignore=shutil.ignore_patterns("*_pipeline", "*.out.ipynb"))
    notebook = folder / "churn.ipynb"
    base = {k: v for k, v in bench.env.items() if k != "PREFECT_API_URL"}
    sides = [Side("this tree", base, bench.path("warm-cache"))]
    if baseline is not None:
        print(f"  baseline: {baseline} (PYTHONPATH), interleaved with this tree")
        sides.append(Side("baseline", {**base, "PYTHONPATH": str(baseline)},
                          bench.path("warm-cache-baseline")))
    pm: list[PmRun] = []

    def cold_runs(side: Side) -> None:
        home = Path(tempfile.mkdtemp(prefix="cold-", dir=bench.root))
        side.homes.append(home)
        env = {**side.env, "NB2PIPE_CACHE_DIR": str(home / "cache"),
               "NB2PIPE_CONFIG_DIR": str(home / "config"), "PREFECT_HOME": str(home / "prefect")}
        try:
            side.fresh.append(timeline(notebook, env, home / "cache"))
        finally:
            _stop_server(env)
        try:
            side.second.append(timeline(notebook, env, home / "cache"))
        finally:
            _stop_server(env)

    def one_round() -> None:
        pm.append(papermill(bench, notebook))
        for side in sides:
            cold_runs(side)
            side.warm.append(timeline(notebook, side.warm_env, side.warm_cache))

    try:
        papermill(bench, notebook)  # warm-ups: kernel spec lookup, file cache, the warm servers
        for side in sides:
            timeline(notebook, side.warm_env, side.warm_cache)
        interleave(bench.repeat, one_round)
        project = next((sides[0].homes[0] / "cache" / "projects").iterdir())
        empty = bench.path("server-phases")
        apart = [server_phases(base, empty, " (empty SQLite database)"),
                 server_phases(base, empty, " at head (existing database)")]
        imports = flow_imports(base, project)
    finally:
        for side in sides:
            _stop_server(side.warm_env)
    report(bench, pm, sides, apart, imports)


def _median_of(runs: list[Timeline], key: str, since: str | None = None) -> list[float]:
    values = []
    for run in runs:
        found = phases(run)
        end, start = found[key], (found[since] if since else 0.0)
        if end is not None and start is not None:
            values.append(end - start)
    return values


def _paired(runs: list[Timeline], against: list[float]) -> float:
    return median([r.whole / p for r, p in zip(runs, against, strict=True)])


def report(bench: Bench, pm: list[PmRun], sides: list[Side],
           apart: list[dict[str, list[float]]], imports: list[float]) -> None:
    papermill_whole = [r.whole for r in pm]
    row("papermill (whole process)", papermill_whole)
    for side in sides:
        for label, runs in (("cold, fresh caches (CI)", side.fresh),
                            ("cold, server stopped, caches kept", side.second),
                            ("warm, server running", side.warm)):
            print(f"  {label}{'' if side is sides[0] else f' [{side.name}]'}:")
            row("  whole process", [r.whole for r in runs])
            if _median_of(runs, "spawn"):  # the runs that started the server
                row("    until it starts the server (Python, nb2pipe)",
                    _median_of(runs, "spawn"))
                row("    the server, until it answers", _median_of(runs, "ready", "spawn"))
                cpu = [r.server_cpu for r in runs if r.server_cpu is not None]
                if cpu:
                    row("      CPU the server used meanwhile", cpu)
                waited = _median_of(runs, "waiting")
                if waited:
                    row(f"    the flow imported, waiting for the server ({len(waited)} of "
                        f"{len(runs)} runs)", waited)
            row("    until the flow run exists (flow_run event)", _median_of(runs, "flow_run"))
            row("    flow run -> first step", _median_of(runs, "first_step", "flow_run"))
            row("    the steps (first start -> last end)",
                _median_of(runs, "steps_done", "first_step"))
            row("    report, finish", _median_of(runs, "finished", "steps_done"))
            row("    exit", _median_of(runs, "whole", "finished"))
    print("  measured apart, one process each (wall / CPU):")
    for phases_apart in apart:
        for name, (wall, cpu) in phases_apart.items():
            print(f"    {name:<56}{wall:6.2f} s / {cpu:5.2f} s")
    print(f"    {'the flow process: import Prefect, flow.py and its libraries':<56}"
          f"{imports[0]:6.2f} s / {imports[1]:5.2f} s")
    ratios: dict[tuple[str, str], float] = {}
    for side in sides:
        for name, runs in (("fresh", side.fresh), ("second", side.second), ("warm", side.warm)):
            whole = [r.whole for r in runs]
            ratios[side.name, name] = median(whole) / median(papermill_whole)
            row(f"ratio {name} / papermill{'' if side is sides[0] else f' [{side.name}]'} "
                f"(medians; median of the pairs {_paired(runs, papermill_whole):.2f}x)",
                ratios[side.name, name], "x")
    if len(sides) > 1:
        for name in ("fresh", "second", "warm"):
            this, old = (getattr(side, name) for side in sides)
            row(f"this tree / baseline, {name} (median of the pairs)",
                _paired(this, [r.whole for r in old]), "x")
    this = sides[0].name
    goal(bench, "5 cold (fresh, CI)", "fresh cold nb2pipe run <= 1.5 x papermill",
         f"{ratios[this, 'fresh']:.2f}x", ratios[this, "fresh"] <= 1.5)
    goal(bench, "5 cold (server stopped)", "second cold run <= 1.2 x papermill",
         f"{ratios[this, 'second']:.2f}x", ratios[this, "second"] <= 1.2)
    goal(bench, "5 warm", "warm nb2pipe run <= 1.3 x papermill",
         f"{ratios[this, 'warm']:.2f}x", ratios[this, "warm"] <= 1.3)
