"""Benchmark: nb2pipe on a corpus of public notebooks. Prints figures; asserts nothing.

For every notebook of the corpus (built by `benchmarks/corpus_build.py`) and each split
(`--split cells`, `--split headings`), as a user runs it, one whole process each:

  check    `nb2pipe check NB --split S --format json`: exit code, crashes (a traceback, or an
           exit code other than 0/1/2), diagnostics per code, wall and CPU time
  convert  for notebooks that check clean (exit 0): `nb2pipe convert` into a temporary folder
  ruff     `ruff check` in the generated project, with the project's own ruff settings
  import   `import steps` in a subprocess (timeout), the project on sys.path and the notebook's
           folder as working directory, so its top-level code runs as it would in a step;
           a missing third-party module is counted apart (an environment gap, not a defect)

    python benchmarks/corpus.py                      # both splits, 2 jobs, summary table
    python benchmarks/corpus.py --json out.json      # also every record as JSON
    python benchmarks/corpus.py --from-json out.json # print the summary of an earlier run
    python benchmarks/corpus.py --only kaggle --split cells --jobs 1
    python benchmarks/corpus.py --execute --jobs 1 --json out.json
                                                     # the executed tier: papermill, check and
                                                     # verify, figures per half (see
                                                     # corpus_execute.py)
    python benchmarks/corpus.py --execute --half held-out --resume out.partial.jsonl
    python benchmarks/corpus.py --executed-from out.json   # its figures again
    python benchmarks/corpus.py --from-json out.json --nb201-sample 40 --seed 9
                                                     # NB201 errors of a seeded sample, to judge

Times are measured while `--jobs` checks run side by side on a shared machine: CPU time (user +
system of the check process) is the steadier figure; wall time is what a user waits.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus_execute
from corpus_build import (
    NOTEBOOKS_TSV,
    Entry,
    corpus_dir,
    read_list,
)

BIN = Path(sys.executable).parent
SLOW_CHECK = 1.0  # CPU seconds: a check this slow is a finding of its own (wall time depends
# on what else the machine runs)
IMPORT_TIMEOUT = 120.0
CHECK_TIMEOUT = 120.0

# Runs in the notebook's folder: imports the generated steps module and says how it went. A
# module the environment lacks becomes a stand-in (any attribute, call, base class or loop gives
# another stand-in), so the rest of steps.py's top-level code still runs and what fails is
# nb2pipe's doing; the modules stood in for are reported.
IMPORT_PROBE = """
import importlib.abc, importlib.machinery, json, sys, traceback, types
sys.path.insert(0, sys.argv[1])
imported = set(json.loads(sys.argv[2]))  # the modules steps.py itself imports
stood_in = []

class StandIn:
    def __init__(self, name):
        self.__name = name
    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return StandIn(self.__name + "." + attr)
    def __call__(self, *args, **kwargs):
        return StandIn(self.__name + "()")
    def __mro_entries__(self, bases):
        return (object,)
    def __iter__(self):
        return iter(())
    def __getitem__(self, key):
        return StandIn(self.__name + "[]")

class StandInModule(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return StandIn(self.__name__ + "." + attr)

class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        # Consulted last: no other finder knows the module. Only what steps.py imports is
        # stood in for: libraries probe their optional modules with try/except ImportError.
        if name not in imported and not any(name.startswith(m + ".") for m in stood_in):
            return None
        stood_in.append(name)
        return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        module = StandInModule(spec.name)
        module.__path__ = []
        return module
    def exec_module(self, module):
        pass

sys.meta_path.append(Finder())
try:
    import steps
except BaseException as exc:
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames)
                  if f.filename.endswith("steps.py")), "")
    print(json.dumps({"ok": False, "type": type(exc).__name__, "message": str(exc)[:300],
                      "where": where, "stood_in": stood_in}))
else:
    print(json.dumps({"ok": True, "stood_in": stood_in}))
"""


def tool(name: str) -> list[str]:
    found = BIN / name
    if found.exists():
        return [str(found)]
    return [sys.executable, "-m", name]


@dataclass
class Process:
    code: int
    out: str
    err: str
    wall: float
    cpu: float
    timed_out: bool = False


def run(argv: list[str], cwd: Path | None = None, timeout: float = CHECK_TIMEOUT,
        env: dict[str, str] | None = None) -> Process:
    """Run one process to its end; wall time, and the CPU time of the process itself."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = start + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(child.pid, 9)
                pid, status, usage = os.wait4(child.pid, 0)
                timed_out = True
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Process(child.returncode, out.read().decode(errors="replace"),
                       err.read().decode(errors="replace"), wall,
                       usage.ru_utime + usage.ru_stime, timed_out)


@dataclass
class Record:
    notebook: str  # repo/path
    split: str
    exit: int = 0
    crash: str = ""  # the traceback's last line, or why the exit code is a crash
    wall: float = 0.0
    cpu: float = 0.0
    diagnostics: dict[str, int] = field(default_factory=dict)  # errors and warnings by code
    errors: list[dict[str, Any]] = field(default_factory=list)  # error diagnostics, in full
    convert: str = ""  # "ok", or the failure
    ruff: dict[str, int] = field(default_factory=dict)
    ruff_findings: list[str] = field(default_factory=list)
    imports: str = ""  # "ok", "failed", "failed-with-stand-ins", "timeout"
    import_error: str = ""
    stood_in: list[str] = field(default_factory=list)  # missing modules the import stood in for


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def check_one(entry: Entry, split: str, corpus: Path) -> Record:
    notebook = entry.local(corpus)
    record = Record(f"{entry.repo}/{entry.path}", split)
    done = run([*tool("nb2pipe"), "check", str(notebook), "--split", split, "--format", "json"])
    record.exit, record.wall, record.cpu = done.code, done.wall, done.cpu
    if done.timed_out:
        record.crash = f"timed out after {CHECK_TIMEOUT:.0f} s"
    elif "Traceback (most recent call last)" in done.err or done.code not in (0, 1, 2):
        record.crash = f"exit {done.code}: {last_line(done.err)}"
    if done.code in (0, 1) and not record.crash:
        try:
            report = json.loads(done.out)
        except json.JSONDecodeError:
            record.crash = f"exit {done.code}: --format json printed no JSON"
        else:
            for d in report["diagnostics"]:
                record.diagnostics[d["code"]] = record.diagnostics.get(d["code"], 0) + 1
                if d["severity"] == "error":
                    record.errors.append(d)
    elif done.code == 2:
        record.errors.append({"code": "exit2", "message": last_line(done.err)})
    return record


def clean(record: Record) -> bool:
    return record.exit == 0 and not record.crash


def generated(entry: Entry, corpus: Path, record: Record) -> Record:
    """Convert a clean notebook, lint the project with its own settings, import its steps."""
    deepen(entry, record.split, entry.local(corpus), record)
    return record


def deepen(entry: Entry, split: str, notebook: Path, record: Record) -> None:
    with tempfile.TemporaryDirectory(prefix="nb2pipe-corpus-") as tmp:
        project = Path(tmp) / "project"
        done = run([*tool("nb2pipe"), "convert", str(notebook), "--split", split,
                    "-o", str(project)])
        if done.code != 0 or "Traceback" in done.err:
            record.convert = f"exit {done.code}: {last_line(done.err)}"
            return
        record.convert = "ok"
        lint = run([*tool("ruff"), "check", "--no-cache", "--output-format", "json", "."],
                   cwd=project)
        try:
            findings = json.loads(lint.out) if lint.out.strip() else []
        except json.JSONDecodeError:
            findings = [{"code": "ruff-failed", "filename": "", "location": {"row": 0},
                         "message": last_line(lint.err)}]
        for f in findings:
            code = f.get("code") or "syntax"
            record.ruff[code] = record.ruff.get(code, 0) + 1
            record.ruff_findings.append(f"{Path(f['filename']).name}:{f['location']['row']}: "
                                        f"{code} {f['message']}")
        key = import_key(project / "steps.py", notebook.parent)
        with IMPORT_LOCK:
            known = IMPORTS.get(key)
        if known is None:
            env = dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
            probe = run([sys.executable, "-c", IMPORT_PROBE, str(project),
                         json.dumps(imported_modules(project / "steps.py"))],
                        cwd=notebook.parent, timeout=IMPORT_TIMEOUT, env=env)
            if probe.timed_out:
                known = {"ok": False, "type": "timeout", "message": "", "where": "",
                         "module": None}
            else:
                try:  # the whole line: last_line() cuts at 300 characters
                    known = json.loads(probe.out.strip().splitlines()[-1])
                except (json.JSONDecodeError, IndexError):
                    known = {"ok": False, "type": "no-report", "where": "", "module": None,
                             "message": last_line(probe.err)}
            with IMPORT_LOCK:
                IMPORTS[key] = known
        record.stood_in = sorted({m.split(".")[0] for m in known.get("stood_in", [])})
        if not known["ok"] and known["type"] == "timeout":
            record.imports = "timeout"
        elif known["ok"]:
            record.imports = "ok"
        else:
            record.imports = "failed-with-stand-ins" if record.stood_in else "failed"
            record.import_error = f"{known['where']}: {known['type']}: {known['message']}"


IMPORTS: dict[str, dict[str, Any]] = {}
IMPORT_LOCK = threading.Lock()


def imported_modules(steps: Path) -> list[str]:
    """Every module steps.py imports by name, anywhere in it: `import a.b` gives a and a.b;
    `from a import b` gives a and a.b (b may be a submodule)."""
    try:
        tree = ast.parse(steps.read_text())
    except SyntaxError:
        return []
    found: set[str] = set()

    def add(dotted: str) -> None:
        parts = dotted.split(".")
        found.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            add(node.module)
            for alias in node.names:
                add(f"{node.module}.{alias.name}")
    return sorted(found)


def import_key(steps: Path, cwd: Path) -> str:
    """What importing steps.py runs: its top-level code other than function definitions (the
    same for both splits of one notebook as a rule), and where it runs."""
    source = steps.read_text()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return hashlib.sha256(f"{cwd}\0{source}".encode()).hexdigest()
    kept = [node for node in tree.body
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    text = "\n".join(ast.dump(node) for node in kept)
    return hashlib.sha256(f"{cwd}\0{text}".encode()).hexdigest()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summarize(records: list[Record], split: str) -> dict[str, Any]:
    mine = [r for r in records if r.split == split]
    passed = [r for r in mine if clean(r)]
    walls = [r.wall for r in mine]
    cpus = [r.cpu for r in mine]
    diag_notebooks: Counter[str] = Counter()
    diag_total: Counter[str] = Counter()
    for r in mine:
        for code, n in r.diagnostics.items():
            diag_notebooks[code] += 1
            diag_total[code] += n
    ruff_notebooks: Counter[str] = Counter()
    for r in passed:
        for code in r.ruff:
            ruff_notebooks[code] += 1
    return {
        "split": split,
        "notebooks": len(mine),
        "exit": dict(sorted(Counter(r.exit for r in mine).items())),
        "crashes": sum(1 for r in mine if r.crash),
        "wall_p50": percentile(walls, 0.5), "wall_p95": percentile(walls, 0.95),
        "wall_max": max(walls, default=0.0),
        "cpu_p50": percentile(cpus, 0.5), "cpu_p95": percentile(cpus, 0.95),
        "cpu_max": max(cpus, default=0.0),
        "slow": sum(1 for r in mine if r.cpu > SLOW_CHECK),
        "diagnostics": {c: [diag_notebooks[c], diag_total[c]] for c in sorted(diag_total)},
        "clean": len(passed),
        "deep": sum(1 for r in passed if r.convert),
        "converted": sum(1 for r in passed if r.convert == "ok"),
        "convert_failures": sum(1 for r in passed if r.convert and r.convert != "ok"),
        "ruff_clean": sum(1 for r in passed if r.convert == "ok" and not r.ruff),
        "ruff": dict(sorted(ruff_notebooks.items())),
        "f821": sum(1 for r in passed if "F821" in r.ruff),
        "imports": dict(sorted(Counter(r.imports for r in passed if r.imports).items())),
        "stood_in": sum(1 for r in passed if r.stood_in),
    }


def print_summary(records: list[Record], splits: Iterable[str], wall: float, jobs: int) -> None:
    sums = [summarize(records, s) for s in splits]
    rows: list[tuple[str, ...]] = [("", *(f"--split {s['split']}" for s in sums))]

    def row(label: str, key: Any) -> None:
        rows.append((label, *(str(key(s)) for s in sums)))

    row("notebooks", lambda s: s["notebooks"])
    row("crashes (traceback, exit not 0/1/2)", lambda s: s["crashes"])
    for code in sorted({c for s in sums for c in s["exit"]}):
        row(f"exit {code}", lambda s, c=code: s["exit"].get(c, 0))
    row("check wall p50 / p95 / max (s)",
        lambda s: f"{s['wall_p50']:.2f} / {s['wall_p95']:.2f} / {s['wall_max']:.2f}")
    row("check CPU  p50 / p95 / max (s)",
        lambda s: f"{s['cpu_p50']:.2f} / {s['cpu_p95']:.2f} / {s['cpu_max']:.2f}")
    row(f"checks over {SLOW_CHECK:.0f} s of CPU", lambda s: s["slow"])
    row("checked clean (exit 0)", lambda s: s["clean"])
    row("  of which converted, linted, imported", lambda s: s["deep"])
    row("  convert failures", lambda s: s["convert_failures"])
    row("  projects ruff-clean", lambda s: s["ruff_clean"])
    row("  projects with F821", lambda s: s["f821"])
    for state in sorted({k for s in sums for k in s["imports"]}):
        row(f"  steps import: {state}", lambda s, k=state: s["imports"].get(k, 0))
    row("  ... of which with missing modules stood in for", lambda s: s["stood_in"])
    for code in sorted({c for s in sums for c in s["ruff"]} - {"F821"}):
        row(f"  projects with ruff {code}", lambda s, c=code: s["ruff"].get(c, 0))
    for code in sorted({c for s in sums for c in s["diagnostics"]}):
        row(f"{code} notebooks (occurrences)",
            lambda s, c=code: "{} ({})".format(*s["diagnostics"].get(c, [0, 0])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(r, widths, strict=True))))
    print(f"wall time {wall:.0f} s with {jobs} jobs")
    details(records)


def details(records: list[Record]) -> None:
    def listing(title: str, items: list[str]) -> None:
        if items:
            print(f"\n{title} ({len(items)}):")
            for item in items[:40]:
                print(f"  {item}")
            if len(items) > 40:
                print(f"  ... {len(items) - 40} more (see --json)")

    listing("crashes", [f"[{r.split}] {r.notebook}: {r.crash}" for r in records if r.crash])
    listing("convert failures", [f"[{r.split}] {r.notebook}: {r.convert}" for r in records
                                 if r.convert and r.convert != "ok"])
    listing("F821 in generated projects", [
        f"[{r.split}] {r.notebook}: " + "; ".join(f for f in r.ruff_findings if "F821" in f)[:240]
        for r in records if "F821" in r.ruff])
    listing("steps.py does not import", [f"[{r.split}] {r.notebook}: {r.import_error}"
                                         for r in records if r.imports in ("failed", "timeout")])
    listing("steps.py does not import, with missing modules stood in for", [
        f"[{r.split}] {r.notebook}: {r.import_error} (stood in: {', '.join(r.stood_in)})"
        for r in records if r.imports == "failed-with-stand-ins"])
    listing(f"checks over {SLOW_CHECK:.0f} s of CPU",
            [f"[{r.split}] {r.notebook}: {r.cpu:.2f} s CPU, {r.wall:.2f} s wall"
             for r in records if r.cpu > SLOW_CHECK])
    missing = Counter(m for r in records for m in r.stood_in)
    if missing:
        print("\nmodules the environment lacks, stood in for when importing steps.py "
              "(projects):", ", ".join(f"{m} {n}" for m, n in missing.most_common(25)))


def select_entries(args: argparse.Namespace, path: Path) -> list[Entry]:
    entries = read_list(path)
    if args.only:
        entries = [e for e in entries if args.only in f"{e.repo}/{e.path}"]
    if args.limit:
        entries = sorted(random.Random(args.seed).sample(entries, min(args.limit, len(entries))),
                         key=lambda e: (e.repo, e.path))
    return entries


def benchmark(args: argparse.Namespace) -> int:
    corpus = corpus_dir(args.corpus)
    entries = select_entries(args, NOTEBOOKS_TSV)
    missing = [e for e in entries if not e.local(corpus).exists()]
    if missing:
        sys.exit(f"{len(missing)} notebooks missing under {corpus} (first: "
                 f"{missing[0].local(corpus)}): run python benchmarks/corpus_build.py")
    splits = args.split or ["cells", "headings"]
    jobs = [(e, s) for s in splits for e in entries]
    start = time.perf_counter()
    records: list[Record] = []
    earlier: dict[tuple[str, str], Record] = {}
    if args.checks_from:  # the check phase of an earlier run; convert, ruff and import again
        for r in load(args.checks_from)["records"]:
            r.update(convert="", ruff={}, ruff_findings=[], imports="", import_error="",
                     stood_in=[])
            earlier[(r["notebook"], r["split"])] = Record(**r)
    partial = Path(args.json).with_suffix(".partial.jsonl") if args.json else None
    if partial:
        partial.write_text("")
    by_name = {f"{e.repo}/{e.path}": e for e in entries}

    def keep(record: Record, n: int, total: int, phase: str) -> None:
        records.append(record)
        if partial:  # what is done so far; a later line for a notebook and split wins
            with partial.open("a") as handle:
                handle.write(json.dumps(asdict(record)) + "\n")
        if n % 100 == 0:
            print(f"  {phase} {n}/{total} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)

    # Every check first, then the projects of the clean ones: the check figures of the whole
    # corpus are there early, whatever the deeper phase costs.
    with ThreadPoolExecutor(args.jobs) as pool:
        def checked_one(job: tuple[Entry, str]) -> Record:
            known = earlier.get((f"{job[0].repo}/{job[0].path}", job[1]))
            return known or check_one(job[0], job[1], corpus)

        for n, record in enumerate(pool.map(checked_one, jobs), 1):
            keep(record, n, len(jobs), "check")
        checked = list(records)
        if not args.no_convert:
            todo = [r for r in checked if clean(r)]
            if args.deep_limit:  # the same seeded sample of notebooks under every split
                names = sorted({r.notebook for r in todo})
                keep_names = set(random.Random(args.seed).sample(
                    names, min(args.deep_limit, len(names))))
                todo = [r for r in todo if r.notebook in keep_names]
            records.clear()
            done = pool.map(lambda r: generated(by_name[r.notebook], corpus, r), todo)
            for n, record in enumerate(done, 1):
                keep(record, n, len(todo), "convert")
            deepened = {id(r) for r in todo}
            records[:] = [r for r in checked if id(r) not in deepened] + records
    wall = time.perf_counter() - start
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"wall": wall, "jobs": args.jobs, "splits": splits,
             "records": [asdict(r) for r in records]}, indent=1))
    print_summary(records, splits, wall, args.jobs)
    return 0


def load(path: str) -> dict[str, Any]:
    """An earlier --json run, or the .partial.jsonl of one still going (last line wins)."""
    text = Path(path).read_text()
    if not path.endswith(".jsonl"):
        data: dict[str, Any] = json.loads(text)
        return data
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for line in text.splitlines():
        if line.strip():
            r = json.loads(line)
            latest[(r["notebook"], r["split"])] = r
    splits = sorted({split for _, split in latest})
    print(f"(partial run: {len(latest)} records)")
    return {"wall": 0.0, "jobs": 0, "splits": splits, "records": list(latest.values())}


def from_json(path: str) -> int:
    data = load(path)
    records = [Record(**r) for r in data["records"]]
    print_summary(records, data["splits"], data["wall"], data["jobs"])
    return 0


def cell_sources(notebook: Path) -> list[str]:
    """Code of every cell, numbered as nb2pipe numbers them (1-based, all cell types)."""
    data = json.loads(notebook.read_text())
    cells = data.get("cells") or [c for ws in data.get("worksheets", []) for c in ws["cells"]]
    sources = []
    for cell in cells:
        source = cell.get("source", cell.get("input", ""))
        sources.append("".join(source) if isinstance(source, list) else source)
    return sources


def nb201_sample(path: str, size: int, seed: int, corpus: Path) -> int:
    """A seeded random sample of the notebooks with NB201 errors (--split cells), each error
    printed with its cell's line, for judging true or false positive by reading."""
    data = load(path)
    flagged = sorted({r["notebook"] for r in data["records"]
                      if r["split"] == "cells" and r["diagnostics"].get("NB201")})
    picked = sorted(random.Random(seed).sample(flagged, min(size, len(flagged))))
    print(f"{len(picked)} of {len(flagged)} notebooks with NB201 (--split cells), seed {seed}")
    by_name = {f"{e.repo}/{e.path}": e for e in read_list(NOTEBOOKS_TSV)}
    for n, name in enumerate(picked, 1):
        record = next(r for r in data["records"] if r["notebook"] == name
                      and r["split"] == "cells")
        sources = cell_sources(by_name[name].local(corpus))
        print(f"\n## {n}. {name}")
        for d in record["errors"]:
            if d["code"] != "NB201":
                continue
            cell, line = d.get("cell"), d.get("line")
            text = ""
            if cell and 0 < cell <= len(sources):
                lines = sources[cell - 1].splitlines()
                if line and 0 < line <= len(lines):
                    text = lines[line - 1].strip()[:120]
            print(f"- cell {cell}, line {line}: {d['message']}\n    `{text}`")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="corpus folder (default $NB2PIPE_CORPUS or "
                        "benchmarks/.corpus)")
    parser.add_argument("--split", action="append", choices=("cells", "headings", "tags"),
                        help="repeatable (default: cells and headings)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks at a time (default 2)")
    parser.add_argument("--only", metavar="TEXT", help="notebooks whose repo/path holds TEXT")
    parser.add_argument("--limit", type=int, help="a seeded random sample of N notebooks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-convert", action="store_true",
                        help="check only: no convert, ruff or import")
    parser.add_argument("--json", metavar="FILE", help="write every record as JSON")
    parser.add_argument("--deep-limit", type=int, metavar="N",
                        help="convert, ruff and import a seeded sample of N of the notebooks "
                        "that check clean (default: all of them)")
    parser.add_argument("--checks-from", metavar="FILE",
                        help="take the check results from an earlier --json run (or its "
                        ".partial.jsonl) and redo only convert, ruff and import")
    parser.add_argument("--from-json", metavar="FILE", help="summarize an earlier --json run")
    parser.add_argument("--execute", action="store_true",
                        help="the executed tier (corpus_executed.tsv): papermill, nb2pipe "
                        "check and nb2pipe verify, figures per half")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds per verify in --execute (default 600)")
    parser.add_argument("--executed-from", metavar="FILE",
                        help="the figures of an earlier --execute run (its --json file or "
                        ".partial.jsonl)")
    corpus_execute.add_arguments(parser)
    parser.add_argument("--nb201-sample", type=int, metavar="N",
                        help="with --from-json: print a seeded sample of N notebooks with NB201 "
                        "errors, with their lines, for review (--seed)")
    args = parser.parse_args(argv)
    if args.from_json and args.nb201_sample:
        return nb201_sample(args.from_json, args.nb201_sample, args.seed, corpus_dir(args.corpus))
    if args.from_json:
        return from_json(args.from_json)
    if args.executed_from:
        corpus_execute.report(corpus_execute.load(Path(args.executed_from)))
        return 0
    if args.execute:
        return corpus_execute.execute(args)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
