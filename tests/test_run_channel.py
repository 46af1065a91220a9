"""What a run says about itself, and how it ends: only the run's own processes report step
events (never what a step prints, nor a program that knows the channel's path), a flow run's
link leads only to the Prefect UI, and a run killed outright leaves no process and, after the
next run, no folder."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.lab import Jupyter, running_jupyter, wait_until
from support import write_notebook

from nb2pipe.execute import prefect_api
from nb2pipe.execute.step_events import PREFIX, Channel, remove_stale_folders
from nb2pipe.runtime.progress import signed
from nb2pipe.server.runs import Run

EVIL = "https://evil.example/runs/flow-run/1"
# What a step prints or writes, looking like the events of nb2pipe run and of its flow.
FORGED = [
    {"event": "phase", "phase": "flow_run", "message": f"flow run: {EVIL}", "url": EVIL},
    {"event": "step", "step": "later", "state": "completed", "duration": 0.1, "error": None},
    {"event": "finished", "state": "completed", "error": None},
    {"event": "ended"},
]


# --- the channel between the flow's processes and nb2pipe run ------------------------------

def test_the_channel_takes_only_lines_signed_with_the_run_key_and_each_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    channel = Channel()
    taken: list[dict[str, Any]] = []
    arrived = threading.Event()

    def take(event: dict[str, Any]) -> None:
        taken.append(event)
        arrived.set()

    channel.follow(take)
    mine = signed({"event": "step", "step": "a", "state": "running"}, bytes.fromhex(channel.key))
    with open(channel.path, "w") as pipe:  # as a step that knows the path would
        for line in (json.dumps(FORGED[1]), signed(FORGED[1], os.urandom(32)),
                     "0" * 64 + " 00 " + json.dumps(FORGED[1]), mine, mine):
            pipe.write(line + "\n")
    wait_until(arrived.is_set, 30, "the run's own event is read")
    channel.remove()
    assert taken == [{"event": "step", "step": "a", "state": "running"}]
    assert not channel.folder.exists()


def test_run_folders_are_removed_once_no_process_of_their_run_holds_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    live = Channel()
    dead = tmp_path / f"{PREFIX}dead"  # a run killed with all its processes: nothing holds it
    (dead / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (tmp_path / f"{PREFIX}link").symlink_to(outside)
    (tmp_path / f"{PREFIX}file").write_text("x")
    other = tmp_path / f"{PREFIX}other"  # held by another process, as a run's child holds it
    other.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(other)!r}, os.O_RDONLY)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('held', flush=True)\ntime.sleep(600)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert remove_stale_folders(tmp_path) == [dead]
        assert live.folder.is_dir() and other.is_dir() and (outside / "keep").exists()
        assert (tmp_path / f"{PREFIX}file").exists()
    finally:
        holder.kill()
        holder.wait()
    assert remove_stale_folders(tmp_path) == [other]
    live.remove()
    assert not live.folder.exists()


# --- a flow run's link ---------------------------------------------------------------------

@pytest.mark.parametrize(("url", "api", "ok"), [
    ("http://127.0.0.1:4200/runs/flow-run/1", "http://127.0.0.1:4200/api", True),
    ("HTTP://127.0.0.1:4200/runs/flow-run/1", "http://127.0.0.1:4200/api", True),
    ("https://app.prefect.cloud/account/a/workspace/w/runs/flow-run/1",
     "https://api.prefect.cloud/api/accounts/a/workspaces/w", True),
    ("http://127.0.0.1:4201/runs/flow-run/1", "http://127.0.0.1:4200/api", False),
    (EVIL, "http://127.0.0.1:4200/api", False),
    ("javascript:alert(document.cookie)//127.0.0.1:4200", "http://127.0.0.1:4200/api", False),
    ("http://evil.example\\@127.0.0.1:4200/", "http://127.0.0.1:4200/api", False),
    ("http://evil.example@127.0.0.1:4200/", "http://127.0.0.1:4200/api", False),
    (" http://127.0.0.1:4200/", "http://127.0.0.1:4200/api", False),
    ("http://127.0.0.1:4200/runs/1", None, False),
    (None, "http://127.0.0.1:4200/api", False),
])
def test_a_flow_run_link_must_lead_to_the_prefect_ui_of_the_api(
        url: str | None, api: str | None, ok: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    assert prefect_api.ui_link(url, api) == (url if ok else None)


def test_prefect_ui_url_adds_the_origin_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_UI_URL", "https://prefect.example.org/ui")
    assert prefect_api.ui_link("https://prefect.example.org/ui/runs/flow-run/1",
                               "http://10.0.0.5:4200/api")


def test_the_server_keeps_no_flow_run_link_that_leads_elsewhere(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    run = Run(id="r", path="nb.ipynb")
    good = "http://127.0.0.1:4200/runs/flow-run/1"
    run.apply(json.dumps({"event": "phase", "phase": "flow_run", "url": good}))
    for url in (EVIL, "javascript:alert(1)"):
        run.apply(json.dumps({"event": "phase", "phase": "flow_run", "url": url}))
    assert run.summary()["flow_run"] == good
    saved = {**run.to_json(), "flow_run": EVIL}  # a history file written before
    assert Run.from_json(saved).summary()["flow_run"] is None


# --- for real: nb2pipe run, a Jupyter server -----------------------------------------------

def _forging_notebook(path: Path) -> Path:
    """A step that prints events and writes them into the channel whose path it finds in the
    environment; a later step fails."""
    forged = "\n".join(json.dumps(event) for event in FORGED)
    return write_notebook(
        path, ("import os\nx = 1", "step:first"),
        (f"forged = {forged!r}\nprint(forged, flush=True)\n"
         "import sys\nprint(forged, file=sys.stderr, flush=True)\n"
         "channel = os.environ.get('NB2PIPE_PROGRESS')\n"
         "if channel:\n"
         "    with open(channel, 'w') as pipe:\n"
         "        pipe.write(forged + '\\n')\n"
         "y = x + 1", "step:printer"),
        ("z = y / 0", "step:later"))


def _environment(cache: Path, **more: str) -> dict[str, str]:
    return {**os.environ, "NB2PIPE_CACHE_DIR": str(cache), **more}


@pytest.mark.integration
def test_printed_and_written_events_never_pass_for_the_run_s_own(tmp_path: Path) -> None:
    notebook = _forging_notebook(tmp_path / "forging.ipynb")
    done = subprocess.run([sys.executable, "-m", "nb2pipe", "run", str(notebook), "--progress",
                           "jsonl"], capture_output=True, text=True, timeout=600,
                          env=_environment(tmp_path / "cache"))
    assert done.returncode == 1, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]  # stdout: events only
    assert events[-1]["event"] == "finished" and events[-1]["state"] == "failed", events
    steps = {e["step"]: e["state"] for e in events if e["event"] == "step"}
    assert steps["later"] == "failed" and steps["printer"] == "completed", events
    assert EVIL not in done.stdout
    links = [e["url"] for e in events if e["event"] == "phase" and e.get("url")]
    api = os.environ["PREFECT_API_URL"]
    assert links and all(prefect_api.ui_link(url, api) for url in links), links
    assert json.dumps(FORGED[0]) in done.stderr  # what the step printed: its output


@pytest.mark.integration
@pytest.mark.parametrize("runner", ["process", "dask"])
def test_worker_processes_get_the_run_key_and_report_their_steps(
        runner: str, tmp_path: Path, prefect_harness: None) -> None:
    from nb2pipe.execute import RunOptions, run_project
    from nb2pipe.prepare import prepare

    notebook = write_notebook(tmp_path / "n.ipynb", ("import os\nx = os.getpid()", "step:a"),
                              ("y = x", "step:b"))
    project = prepare(notebook, cache=tmp_path / "cache").project
    reported: list[tuple[str, str]] = []
    result = run_project(project, RunOptions(storage=str(tmp_path / "results"), runner=runner,
                                             cache=False),
                         lambda report: reported.append((report.name, report.state)))
    assert result.ok, result.error
    assert result.outputs["a"]["x"] != os.getpid()  # the step ran in a worker process
    assert reported == [("a", "running"), ("a", "completed"), ("b", "running"),
                        ("b", "completed")]


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory, prefect_server: str) -> Iterator[Jupyter]:
    root = tmp_path_factory.mktemp("root")
    with running_jupyter(root, tmp_path_factory.mktemp("state"), prefect=prefect_server) as up:
        yield up


@pytest.mark.integration
def test_a_run_in_jupyter_is_failed_and_links_to_prefect_whatever_a_step_prints(
        jupyter: Jupyter, prefect_server: str) -> None:
    _forging_notebook(jupyter.root / "forging.ipynb")
    status, started = jupyter.post("nb2pipe/runs", {"path": "forging.ipynb"})
    assert status == 202, started
    run = jupyter.wait_for_run(started["id"])
    assert run["state"] == "failed", run
    assert run["steps"]["later"]["state"] == "failed", run["steps"]
    assert run["flow_run"] and prefect_api.ui_link(run["flow_run"], prefect_server), run
    assert json.dumps(FORGED[2]) in run["log"]  # shown as what the step printed
    history = jupyter.get("nb2pipe/runs", path="forging.ipynb")[1]
    assert history["runs"][0]["flow_run"] == run["flow_run"]


def _run_processes(mark: str) -> list[int]:
    """Live processes (zombies left out) whose environment carries `mark`."""
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if (process.environ().get("NB2PIPE_TEST_MARK") == mark
                    and process.status() != psutil.STATUS_ZOMBIE and process.pid != os.getpid()):
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _slow_notebook(path: Path, started: Path) -> Path:
    return write_notebook(
        path, (f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(600)\n"
               "x = 1", "step:slow"), ("y = x", "step:after"))


@pytest.mark.integration
@pytest.mark.parametrize("runner", ["thread", "process"])
def test_killing_nb2pipe_run_ends_its_flow_and_every_process_of_it(
        runner: str, tmp_path: Path) -> None:
    started = tmp_path / "started"
    notebook = _slow_notebook(tmp_path / "slow.ipynb", started)
    mark = f"killed-{runner}-{os.getpid()}"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "nb2pipe", "run", str(notebook), "--runner", runner],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=_environment(tmp_path / "cache", NB2PIPE_TEST_MARK=mark, TMPDIR=str(temporary)))
    try:
        wait_until(started.exists, 300, "the slow step starts")
        assert len(_run_processes(mark)) > 1  # nb2pipe run and the flow's process, at least
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(timeout=60)
        wait_until(lambda: not _run_processes(mark), 60, "every process of the run ends")
        wait_until(lambda: not list(temporary.glob(f"{PREFIX}*")), 60,
                   "the run's folder is removed")
    finally:
        _kill_all(mark)


def _kill_all(mark: str) -> None:
    """Stop every process of the run, then kill them: none can act on another's end."""
    found = _run_processes(mark)
    for number in (signal.SIGSTOP, signal.SIGKILL):
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)


@pytest.mark.integration
def test_the_next_run_removes_the_folder_of_a_run_killed_with_all_its_processes(
        tmp_path: Path) -> None:
    started = tmp_path / "started"
    notebook = _slow_notebook(tmp_path / "slow.ipynb", started)
    quick = write_notebook(tmp_path / "quick.ipynb", ("x = 1", "step:one"))
    mark = f"all-killed-{os.getpid()}"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = _environment(tmp_path / "cache", NB2PIPE_TEST_MARK=mark, TMPDIR=str(temporary))
    supervisor = subprocess.Popen([sys.executable, "-m", "nb2pipe", "run", str(notebook)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_until(started.exists, 300, "the slow step starts")
        [left] = temporary.glob(f"{PREFIX}*")
        _kill_all(mark)  # nothing of the run is left to clean up
        supervisor.wait(timeout=60)
        wait_until(lambda: not _run_processes(mark), 60, "every process of the run ends")
    finally:
        _kill_all(mark)
    assert left.is_dir()
    done = subprocess.run([sys.executable, "-m", "nb2pipe", "run", str(quick)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not left.exists()
    assert not list(temporary.glob(f"{PREFIX}*"))
