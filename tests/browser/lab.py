"""A real Jupyter server (or JupyterLab) for the tests: a subprocess on a free loopback port,
with a token, a temporary root folder and its own config, runtime and settings folders."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

STARTUP_SECONDS = 180  # a busy machine starts jupyter lab slowly
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Jupyter:
    url: str  # http://127.0.0.1:PORT/
    token: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]

    def request(self, method: str, path: str, body: Any = None, *,
                token: str | None = "default", timeout: float = 60) -> tuple[int, Any]:
        """(status, JSON body) of one request; token=None sends no credentials."""
        headers = {"Content-Type": "application/json"}
        token = self.token if token == "default" else token
        if token:
            headers["Authorization"] = f"token {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path.lstrip("/"), data=data,
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def get(self, endpoint: str, **params: str) -> tuple[int, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return self.request("GET", endpoint + query)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def wait_for_run(self, run_id: str, seconds: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status, run = self.get(f"nb2pipe/runs/{run_id}")
            assert status == 200, run
            if run["state"] in ("completed", "failed", "cancelled"):
                return dict(run)
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} did not finish in {seconds} s: {run}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_jupyter(root: Path, state: Path, app: str = "server",
                    prefect: str | None = None) -> Iterator[Jupyter]:
    """`jupyter server` or `jupyter lab` serving `root`; `state` holds its config, data (the
    run history), pipeline cache and log. `prefect`: the Prefect API its runs use (the
    session's server; tests/conftest.py)."""
    port, token = free_port(), secrets.token_hex(16)
    for folder in ("config", "runtime", "data", "cache", "settings", "workspaces"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(state / "config"),
               JUPYTER_RUNTIME_DIR=str(state / "runtime"), JUPYTER_DATA_DIR=str(state / "data"),
               NB2PIPE_CACHE_DIR=str(state / "cache"))
    if prefect:
        env["PREFECT_API_URL"] = prefect
    command = [
        sys.executable, "-m", "jupyter", app, "--allow-root", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
    ]
    if app == "lab":
        # no "receive Jupyter news?" toast over the page under test
        labconfig = state / "config" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        command += [
            f"--LabApp.user_settings_dir={state / 'settings'}",
            f"--LabApp.workspaces_dir={state / 'workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
    log = state / f"jupyter-{app}.log"
    with log.open("a") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL)
    jupyter = Jupyter(f"http://127.0.0.1:{port}/", token, root, log, process)
    try:
        _wait_until_up(jupyter, process)
        yield jupyter
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(jupyter: Jupyter, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter exited with {process.returncode}:\n"
                               + jupyter.log.read_text()[-3000:])
        with contextlib.suppress(OSError):
            status, _ = jupyter.get("api/status")
            if status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"jupyter did not answer in {STARTUP_SECONDS} s:\n"
                       + jupyter.log.read_text()[-3000:])


# --- the notebooks the tests serve -------------------------------------------------------------

def code(source: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def markdown(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source)


def write_notebook(path: Path, cells: list[nbformat.NotebookNode]) -> Path:
    for number, cell in enumerate(cells, start=1):
        cell.id = f"cell-{number}"  # stable ids: the same notebook, the same bytes
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def copy_churn(root: Path) -> Path:
    """The bundled churn example (notebook and data) under `root`/churn."""
    shutil.copytree(EXAMPLES / "churn", root / "churn",
                    ignore=shutil.ignore_patterns("*_pipeline", "*.graph.json"))
    return root / "churn" / "churn.ipynb"


def undefined_name_notebook(path: Path) -> Path:
    """Cell 4 (counting the markdown cell) uses a name no earlier step defines."""
    return write_notebook(path, [
        markdown("# A notebook with a mistake"),
        code("prices = [3, 5, 8]", "step:load"),
        code("total = sum(prices)", "step:add"),
        code("report = f'{total} {discount}'", "step:report"),
    ])


def twelve_step_notebook(path: Path) -> Path:
    """Twelve steps: one source fanned out to ten, gathered by a report; long edge labels."""
    cells = [markdown("# Twelve steps"),
             code("X_train = [1, 2]\ny_train = [0, 1]\nX_test = [3]\ny_test = [1]", "step:load")]
    for i in range(10):
        cells.append(code(f"score_{i} = len(X_train) + len(y_train) + len(X_test) + len(y_test)"
                          f" + {i}", f"step:model_{i}"))
    cells.append(code("total = " + " + ".join(f"score_{i}" for i in range(10)) + "\nprint(total)",
                      "step:report"))
    return write_notebook(path, cells)


def untagged_notebook(path: Path) -> Path:
    """No step tags; three markdown sections."""
    return write_notebook(path, [
        markdown("# Load"),
        code("rows = list(range(20))"),
        code("count = len(rows)"),
        markdown("## Clean"),
        code("kept = [r for r in rows if r % 2]"),
        markdown("## Report"),
        code("print(count, len(kept))"),
    ])


def failing_notebook(path: Path) -> Path:
    """Cell 4, line 2 divides by zero."""
    return write_notebook(path, [
        markdown("# A step that fails"),
        code("values = [1, 2, 3]", "step:load"),
        code("total = sum(values)", "step:add"),
        code("half = total / 2\nratio = total / (len(values) - 3)", "step:divide"),
    ])


def sleeping_notebook(path: Path, marker: str) -> Path:
    """A step that starts a child process (marked for `ps`) and sleeps: a run to stop."""
    return write_notebook(path, [
        code("import subprocess\nimport sys\nimport time"),
        code("child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', "
             f"{marker!r}])\ntime.sleep(600)\nslept = 600", "step:sleep"),
        code("print('woke up after', slept)", "step:after"),
    ])


def small_pipeline_notebook(path: Path) -> Path:
    """Three quick steps in plain Python: a pipeline that runs in seconds."""
    return write_notebook(path, [
        markdown("# A small pipeline"),
        code("factor = 3", "parameters"),
        code("numbers = list(range(10))", "step:load"),
        code("scaled = [n * factor for n in numbers]", "step:scale"),
        code("total = sum(scaled)\nprint(total)", "step:report"),
    ])


# --- processes, as `ps` sees them ---------------------------------------------------------

def processes() -> list[tuple[int, int, str, str]]:
    """(pid, process group, state, command line) of every process on the machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                "utf-8", "replace").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        found.append((int(entry.name), int(fields[2]), fields[0], command))
    return found


def running(predicate: Any) -> list[tuple[int, int, str, str]]:
    """The live processes (zombies left out) that `predicate(pid, group, command)` picks."""
    return [p for p in processes()
            if p[2] not in ("Z", "X") and predicate(p[0], p[1], p[3])]


def run_group(notebook: Path) -> int:
    """The process group of the `nb2pipe run` of a notebook."""
    found = running(lambda pid, group, command: "nb2pipe run" in command.replace(
        "-m nb2pipe run", "nb2pipe run") and str(notebook) in command)
    assert found, f"no nb2pipe run of {notebook} is running"
    return found[0][1]


def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {seconds} s")
        time.sleep(0.2)
