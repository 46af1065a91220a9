"""The executed tier of the corpus: does a notebook that runs compute the same through nb2pipe?

For every notebook of `corpus_executed.tsv` (built by `benchmarks/corpus_build.py`), in a fresh
folder holding the notebook and the data files it reads, one whole process each, as a new user
would run them:

  papermill  the notebook as it is, with papermill, offline (a network namespace of its own,
             loopback only, where `unshare` allows it); a notebook that fails here is left out
             of every figure below (it does not run, so there is nothing to be faithful to) and
             counted apart
  check      `nb2pipe check NB --split S --format json`: clean, warnings only, or errors
  verify     `nb2pipe verify NB --split S` (two papermill runs and the project's flow.py, values
             compared): pass, diverges (another value), fails (an error on the way), timeout,
             crash (a traceback from nb2pipe), refused (check has errors: nothing runs), or
             inconclusive (verify says it cannot tell: no value of the notebook is the same in
             two runs of it, so none can be compared; not a pass)

A notebook passes when verify passes. The figure that must be 0: notebooks whose check is
green (no error) but whose verify does not pass. Figures are given per half of the tier:
`tuning` and `held-out` (split by repository, recorded in the list), `earlier` (the tier's
first notebooks, from repositories the analysis was tuned on before) and `fresh`, `fresh2`
(later held-out sets from other repositories, chosen by rule in corpus_build.py).

A notebook whose kernelspec names a kernel that is not installed (python2, conda-root-py) runs
on the local python3 kernel, as someone opening it would pick; the copy's metadata says so, the
notebook's code is unchanged, and the record keeps the original name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corpus_build import (
    EARLIER,
    EXECUTED_TSV,
    FRESH_HALVES,
    HALVES,
    Entry,
    corpus_dir,
    read_list,
)

BIN = Path(sys.executable).parent
CHECK_TIMEOUT = 120.0
PAPERMILL_TIMEOUT = 400.0
GROUPS = (*HALVES, EARLIER, *FRESH_HALVES)
VERIFY_OUTCOMES = ("pass", "diverges", "method state", "fails", "timeout", "crash", "refused",
                   "inconclusive")
NOTHING_COMPARED = "nothing could be compared"
ONLY_METHOD_STATE = "differ only in attributes their classes' methods store"  # nb2pipe/cli.py


def tool(name: str) -> list[str]:
    found = BIN / name
    return [str(found)] if found.exists() else [sys.executable, "-m", name]


@dataclass
class Process:
    code: int
    out: str
    err: str
    wall: float
    timed_out: bool = False


def run(argv: list[str], cwd: Path | None = None, timeout: float = CHECK_TIMEOUT,
        env: dict[str, str] | None = None) -> Process:
    """One process (and its children, by process group) to its end or its timeout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
        try:
            code = child.wait(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            code = child.wait()
            timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # kernels the process left behind
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Process(code, out.read().decode(errors="replace"),
                       err.read().decode(errors="replace"), wall, timed_out)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


@dataclass
class Executed:
    notebook: str  # repo/path
    repo: str
    half: str
    split: str
    kernel: str = ""  # the kernelspec the notebook names, when it ran on python3 instead
    papermill: str = ""  # "ok", or why not
    papermill_seconds: float = 0.0
    check: str = ""  # "clean", "warnings", "errors", "crash"
    check_codes: dict[str, int] = field(default_factory=dict)
    check_errors: list[str] = field(default_factory=list)  # "NB201 cell 3 line 2: message"
    verify: str = ""  # one of VERIFY_OUTCOMES, "" when not run
    verify_seconds: float = 0.0
    result: str = ""  # the first divergence or failure
    output: str = ""  # the tail of verify's output

    @property
    def counted(self) -> bool:
        return self.papermill == "ok"

    @property
    def passed(self) -> bool:
        return self.verify == "pass"

    @property
    def green_but_fails(self) -> bool:
        return self.check in ("clean", "warnings") and self.verify not in ("pass", "")


def installed_kernels() -> set[str]:
    from jupyter_client.kernelspec import KernelSpecManager

    return set(KernelSpecManager().find_kernel_specs())


def materialize(entry: Entry, corpus: Path, root: Path, kernels: set[str]) -> tuple[Path, str]:
    """The notebook and its data under root, as in the repository; the kernel it named when
    that one is not installed here (the copy then names python3)."""
    for rel in [entry.path, *entry.data]:
        source = corpus / entry.folder / rel
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    notebook = root / entry.path
    raw = json.loads(notebook.read_text(encoding="utf-8"))
    named = str(raw.get("metadata", {}).get("kernelspec", {}).get("name") or "")
    if named in kernels:
        return notebook, ""
    raw.setdefault("metadata", {})["kernelspec"] = {
        "name": "python3", "language": "python", "display_name": "Python 3"}
    raw["metadata"]["language_info"] = {"name": "python"}
    notebook.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return notebook, named or "(none)"


def offline_prefix() -> list[str]:
    """A network namespace with loopback only (the kernel talks to papermill over it), where
    this process may make one: nothing the notebook runs can reach the network."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return []
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"],
                           capture_output=True)
    if probe.returncode != 0:
        return []
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def papermill(notebook: Path, offline: list[str], timeout: float) -> tuple[str, float]:
    env = dict(os.environ, MPLBACKEND="Agg")
    out = notebook.with_name(notebook.stem + ".papermill-out.ipynb")
    done = run([*offline, *tool("papermill"), str(notebook), str(out), "--cwd",
                str(notebook.parent), "--no-progress-bar", "--kernel", "python3"],
               timeout=timeout, env=env)
    out.unlink(missing_ok=True)
    if done.timed_out:
        return f"timed out after {timeout:.0f} s", done.wall
    if done.code == 0:
        return "ok", done.wall
    found = [line for line in done.err.splitlines()
             if "Error" in line and not line.startswith(" ")]
    return (found[-1] if found else last_line(done.err))[:300], done.wall


def check(notebook: Path, split: str, record: Executed) -> None:
    done = run([*tool("nb2pipe"), "check", str(notebook), "--split", split, "--format", "json"],
               cwd=notebook.parent)
    if done.timed_out or "Traceback (most recent call last)" in done.err or done.code not in (
            0, 1):
        record.check = "crash"
        record.check_errors = [f"exit {done.code}: {last_line(done.err)}"]
        return
    try:
        report = json.loads(done.out)
    except json.JSONDecodeError:
        record.check = "crash"
        record.check_errors = [f"exit {done.code}: --format json printed no JSON"]
        return
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    for d in report["diagnostics"]:
        record.check_codes[d["code"]] = record.check_codes.get(d["code"], 0) + 1
    record.check_errors = [f"{d['code']} cell {d.get('cell')} line {d.get('line')}: "
                           f"{d['message']}"[:300] for d in errors]
    record.check = "errors" if errors or done.code else (
        "warnings" if report["diagnostics"] else "clean")


def verify(notebook: Path, split: str, api: str, timeout: float, record: Executed) -> None:
    env = dict(os.environ, MPLBACKEND="Agg", NB2PIPE_CACHE_DIR=str(notebook.parent / ".cache"),
               PREFECT_API_URL=api)
    done = run([*tool("nb2pipe"), "verify", str(notebook), "--split", split],
               cwd=notebook.parent, timeout=timeout, env=env)
    record.verify_seconds = done.wall
    record.output = (done.out + done.err)[-4000:]
    record.verify, record.result = outcome(done.code, done.timed_out, timeout, done.out,
                                           done.err)


def outcome(code: int, timed_out: bool, timeout: float, out: str, err: str) -> tuple[str, str]:
    """verify's outcome and its first line of explanation. A step that raises is a failure
    even though Prefect logs its traceback; a traceback with no step error is nb2pipe's own."""
    text = err + out
    lines = text.splitlines()
    if timed_out:
        return "timeout", f"timed out after {timeout:.0f} s"
    if code == 0:
        return "pass", ""
    if NOTHING_COMPARED in text:
        return "inconclusive", next(line for line in lines if NOTHING_COMPARED in line)[:600]
    if "first divergence" in text:
        return "diverges", next(line for line in lines if "first divergence" in line)[:600]
    if ONLY_METHOD_STATE in text:
        return "method state", " | ".join(line.strip() for line in lines
                                          if line.startswith("  method state:"))[:600]
    errors = [n for n, line in enumerate(lines) if "StepError: " in line]
    if errors:
        n = errors[-1]
        found = lines[n].split("StepError: ", 1)[1]
        if n + 1 < len(lines) and lines[n + 1].startswith("    "):
            found += " | " + lines[n + 1].strip()
        return "fails", found[:600]
    told = [line for line in err.splitlines() if line.startswith("nb2pipe:")]
    if "Traceback (most recent call last)" in err:
        return "crash", (told[-1] if told else last_line(err))[:600]
    return "fails", (told[0] if told else last_line(err or out))[:600]


def execute_one(entry: Entry, corpus: Path, api: str, options: argparse.Namespace,
                kernels: set[str], offline: list[str],
                screened: dict[str, Executed]) -> Executed:
    split = entry.split or "cells"
    record = Executed(f"{entry.repo}/{entry.path}", entry.repo, entry.half or "tuning", split)
    with tempfile.TemporaryDirectory(prefix="nb2pipe-executed-") as tmp:
        notebook, record.kernel = materialize(entry, corpus, Path(tmp), kernels)
        earlier = screened.get(record.notebook)
        if earlier is not None and earlier.papermill:
            record.papermill, record.papermill_seconds = (earlier.papermill,
                                                          earlier.papermill_seconds)
        else:
            with tempfile.TemporaryDirectory(prefix="nb2pipe-pristine-") as pristine:
                shutil.copytree(tmp, pristine, dirs_exist_ok=True)
                record.papermill, record.papermill_seconds = papermill(
                    notebook, offline, options.papermill_timeout)
                # The files the notebook wrote are gone again: verify starts where papermill
                # started (the copy is outside the folder: a notebook may sit at its top).
                shutil.rmtree(tmp)
                shutil.copytree(pristine, tmp)
        if not record.counted or options.papermill_only:
            return record
        check(notebook, split, record)
        if record.check == "errors":
            record.verify = "refused"
            record.result = record.check_errors[0] if record.check_errors else ""
        elif record.check != "crash" or options.verify_after_crash:
            verify(notebook, split, api, options.timeout, record)
    return record


@contextlib.contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """One Prefect server on a free loopback port for the whole tier: no temporary server
    (and database) per verify."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    log = (home / "server.log").open("w")
    server = subprocess.Popen([*tool("prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port), "--no-ui"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the Prefect server did not start; see {home / 'server.log'}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()


def select(options: argparse.Namespace) -> list[Entry]:
    entries = read_list(EXECUTED_TSV)
    if options.half:
        entries = [e for e in entries if (e.half or "tuning") in options.half]
    if options.only:
        entries = [e for e in entries if options.only in f"{e.repo}/{e.path}"]
    if options.shuffle is not None:  # a run cut short is then a random sample of the tier
        random.Random(options.shuffle).shuffle(entries)
    if options.part:  # "K/N": every N-th notebook from the K-th, for runs side by side
        k, n = (int(x) for x in options.part.split("/"))
        entries = entries[k::n]
    if options.reverse:  # a second run from the other end of the same list
        entries.reverse()
    return entries


def load(path: Path) -> list[Executed]:
    """Records of an earlier run: its --json file, or the .partial.jsonl of one (last wins),
    each in the half the list gives it now."""
    if path.suffix == ".jsonl":
        latest: dict[str, dict[str, Any]] = {}
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                latest[r["notebook"]] = r
        rows = list(latest.values())
    else:
        rows = json.loads(path.read_text())["records"]
    halves = {f"{e.repo}/{e.path}": e.half for e in read_list(EXECUTED_TSV)}
    records = [Executed(**{**r, "half": halves.get(r["notebook"], r["half"])}) for r in rows]
    for r in records:  # outcomes again from the output kept, as outcome() reads them now
        if r.verify in ("fails", "crash") and NOTHING_COMPARED in r.result:
            r.verify = "inconclusive"
        elif r.verify in ("fails", "crash") and r.output:
            r.verify, r.result = outcome(1, False, 0.0, "", r.output)
    return records


def execute(options: argparse.Namespace) -> int:
    corpus = corpus_dir(options.corpus)
    entries = select(options)
    missing = [e for e in entries if not e.local(corpus).exists()]
    if missing:
        sys.exit(f"{len(missing)} notebooks missing under {corpus} (first: "
                 f"{missing[0].local(corpus)}): run python benchmarks/corpus_build.py "
                 "--executed-only")
    done: dict[str, Executed] = {}
    if options.resume and Path(options.resume).exists():
        done = {r.notebook: r for r in load(Path(options.resume))}
    todo = [e for e in entries if f"{e.repo}/{e.path}" not in done]
    partial = Path(options.json).with_suffix(".partial.jsonl") if options.json else None
    if partial and partial != Path(options.resume or ""):
        partial.write_text("".join(json.dumps(asdict(r)) + "\n" for r in done.values()))
    screened: dict[str, Executed] = {}
    for path in options.papermill_from or []:
        screened.update((r.notebook, r) for r in load(Path(path)))
    kernels = installed_kernels()
    offline = offline_prefix() if options.offline else []
    if options.offline and not offline:
        print("warning: papermill runs with the network (no network namespace here)",
              file=sys.stderr)
    start = time.perf_counter()
    records = list(done.values())
    with (tempfile.TemporaryDirectory(prefix="nb2pipe-prefect-") as home,
          (contextlib.nullcontext("") if options.papermill_only
           else prefect_server(Path(home))) as api,
          ThreadPoolExecutor(options.jobs) as pool):
        def one(entry: Entry) -> Executed:
            return execute_one(entry, corpus, api, options, kernels, offline, screened)

        for n, r in enumerate(pool.map(one, todo), 1):
            records.append(r)
            if partial:
                with partial.open("a") as handle:
                    handle.write(json.dumps(asdict(r)) + "\n")
            outcome = r.verify or ("papermill ok" if r.counted else "papermill failed")
            print(f"  [{n}/{len(todo)} {time.perf_counter() - start:.0f} s] {r.notebook}: "
                  f"{outcome} {r.result or ('' if r.counted else r.papermill)}"[:220],
                  file=sys.stderr, flush=True)
    wall = time.perf_counter() - start
    order = {f"{e.repo}/{e.path}": n for n, e in enumerate(entries)}
    records.sort(key=lambda r: order.get(r.notebook, len(order)))
    if options.json:
        Path(options.json).write_text(json.dumps(
            {"wall": wall, "jobs": options.jobs, "records": [asdict(r) for r in records]},
            indent=1))
    report(records, wall, options.jobs)
    return 0


def summarize(records: list[Executed]) -> dict[str, Any]:
    counted = [r for r in records if r.counted]
    verify = Counter(r.verify for r in counted)
    return {
        "notebooks": len(records),
        "repositories": len({r.repo for r in records}),
        "papermill_fails": len(records) - len(counted),
        "counted": len(counted),
        "check": {state: sum(1 for r in counted if r.check == state)
                  for state in ("clean", "warnings", "errors", "crash")},
        "verify": {outcome: verify.get(outcome, 0) for outcome in VERIFY_OUTCOMES},
        "passed": verify.get("pass", 0),
        "green_but_fails": sum(1 for r in counted if r.green_but_fails),
        "not_verified": verify.get("", 0),
    }


def report(records: list[Executed], wall: float = 0.0, jobs: int = 0) -> None:
    groups = [g for g in GROUPS if any(r.half == g for r in records)]
    sums = {g: summarize([r for r in records if r.half == g]) for g in groups}
    rows: list[tuple[str, ...]] = [("", *groups)]

    def row(label: str, value: Any) -> None:
        rows.append((label, *(str(value(sums[g])) for g in groups)))

    def rate(s: dict[str, Any]) -> str:
        return (f"{s['passed']}/{s['counted']} ({100 * s['passed'] / s['counted']:.0f} %)"
                if s["counted"] else "-")

    row("notebooks (repositories)", lambda s: f"{s['notebooks']} ({s['repositories']})")
    row("fail under papermill itself (left out)", lambda s: s["papermill_fails"])
    row("run under papermill (counted)", lambda s: s["counted"])
    for state in ("clean", "warnings", "errors", "crash"):
        row(f"  check {state}", lambda s, k=state: s["check"][k])
    for outcome in VERIFY_OUTCOMES:
        row(f"  verify {outcome}", lambda s, k=outcome: s["verify"][k])
    if any(s["not_verified"] for s in sums.values()):
        row("  verify not run", lambda s: s["not_verified"])
    row("pass rate (verify passes / counted)", rate)
    row("check green, verify does not pass", lambda s: s["green_but_fails"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(r, widths, strict=True))))
    if wall:
        print(f"wall time {wall:.0f} s with {jobs} jobs")
    for g in groups:
        mine = [r for r in records if r.half == g]
        failing = [r for r in mine if r.counted and r.verify and not r.passed]
        if failing:
            print(f"\n{g}: notebooks that run under papermill but not through nb2pipe "
                  f"({len(failing)}; * = check was green):")
            for r in failing:
                mark = "*" if r.green_but_fails else " "
                print(f" {mark} {r.notebook}: {r.verify or r.check}: {r.result[:240]}")
        left_out = [r for r in mine if not r.counted]
        if left_out:
            print(f"\n{g}: left out, fail under papermill itself ({len(left_out)}):")
            for r in left_out:
                print(f"    {r.notebook}: {r.papermill[:200]}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--half", action="append", choices=GROUPS,
                        help="--execute: only this half of the tier (repeatable; default all)")
    parser.add_argument("--papermill-only", action="store_true",
                        help="--execute: run each notebook with papermill only (screening)")
    parser.add_argument("--papermill-timeout", type=float, default=PAPERMILL_TIMEOUT,
                        help=f"--execute: seconds per papermill run (default "
                        f"{PAPERMILL_TIMEOUT:.0f})")
    parser.add_argument("--papermill-from", metavar="FILE", action="append",
                        help="--execute: take the papermill result of each notebook from an "
                        "earlier run (a --papermill-only screening, its --json or "
                        ".partial.jsonl) instead of running it once more (repeatable)")
    parser.add_argument("--no-offline", dest="offline", action="store_false",
                        help="--execute: let papermill runs reach the network")
    parser.add_argument("--resume", metavar="FILE",
                        help="--execute: keep the records of an earlier run (its --json file "
                        "or .partial.jsonl) and run only the notebooks it lacks")
    parser.add_argument("--shuffle", type=int, metavar="SEED",
                        help="--execute: run the notebooks in a seeded random order")
    parser.add_argument("--part", metavar="K/N",
                        help="--execute: only every N-th notebook from the K-th (0-based), to "
                        "share a tier between runs")
    parser.add_argument("--reverse", action="store_true",
                        help="--execute: the selected notebooks in reverse order")
    parser.add_argument("--verify-after-crash", action="store_true",
                        help="--execute: run verify even when check crashes")
