"""Deploying generated projects, all on loopback: a real `prefect server`, a real process worker,
`nb2pipe deploy`, runs triggered through Prefect; Dask; the container variants checked statically.

The steps follow README.md's "Deploy" section.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cluster import flow_run, free_port, stop
from support import EXAMPLES, project_modules, write_notebook

from nb2pipe.convert import convert

pytestmark = pytest.mark.integration
PREFECT = [sys.executable, "-m", "prefect"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`prefect server start` on a free loopback port, SQLite in a temporary PREFECT_HOME."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_WORKER_QUERY_SECONDS="2", NB2PIPE_CACHE_DIR=str(home / "nb2pipe"))
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen([*PREFECT, "server", "start", "--host", "127.0.0.1", "--port",
                                str(port), "--no-ui"], env=env, stdout=log, stderr=log,
                               start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        stop(process)
        pytest.fail("prefect server did not start: " + (home / "server.log").read_text()[-2000:])
    yield env
    stop(process)
    log.close()


@pytest.fixture(scope="module")
def worker(server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A process worker, started in an unrelated folder (the pull step must find the project)."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    subprocess.run([*PREFECT, "--no-prompt", "work-pool", "create", "--type", "process",
                    "nb2pipe-process"], env=server, check=True, capture_output=True)
    log_path = elsewhere / "worker.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen([*PREFECT, "worker", "start", "--pool", "nb2pipe-process"],
                               env=server, cwd=elsewhere, stdout=log, stderr=log,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while b"started" not in log_path.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.3)
    yield
    stop(process)
    log.close()


def nb2pipe(*args: str, env: dict[str, str], cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nb2pipe", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def project_copy(tmp_path: Path, notebook: Path | None = None, **options: Any) -> Path:
    source = notebook or EXAMPLES / "churn" / "churn.ipynb"
    folder = tmp_path / source.parent.name
    shutil.copytree(source.parent, folder, ignore=shutil.ignore_patterns("*_pipeline",
                                                                          "*.graph.json"))
    project = folder / "pipeline"
    assert convert(folder / source.name, project, **options).ok
    return project


def test_deploy_and_run_with_non_default_parameters(server: dict[str, str], worker: None,
                                                    tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    deployed = nb2pipe("deploy", str(project), "-p", "n_estimators", "30", env=server)
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed churn/churn" in deployed.stdout
    assert "prefect deployment run 'churn/churn'" in deployed.stdout
    run = flow_run(server, "churn/churn", {"C": 0.5})
    assert run["state"] == "COMPLETED", run["logs"][-20:]
    assert run["parameters"] == {"n_estimators": 30, "C": 0.5}
    assert run["tasks"] == {name: "COMPLETED" for name in (
        "load", "clean", "features", "train_logreg", "train_forest", "train_boosting",
        "evaluate")}
    # The deployed run computes what a local run computes with the same parameters.
    local_env = {**server, "PREFECT_API_URL": os.environ["PREFECT_API_URL"]}  # the session's
    local = nb2pipe("run", str(project), "-p", "n_estimators", "30", "-p", "C", "0.5",
                    "--json", env=local_env)
    assert local.returncode == 0, local.stderr[-2000:]
    expected = json.loads(local.stdout)["metrics"]["evaluate"]
    table = json.loads(run["artifacts"]["evaluate-metrics"])
    assert {row["metric"]: row["value"] for row in table} == expected


def retried(server: dict[str, str], flow_run: str) -> dict[str, Any]:
    """`prefect flow-run retry`, as after fixing what failed; the states its steps end in."""
    done = subprocess.run([*PREFECT, "flow-run", "retry", flow_run], env=server,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    script = f"""
import json, time
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
with get_client(sync_client=True) as client:
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        run = client.read_flow_run({flow_run!r})
        if run.state.is_final() and run.run_count > 1:
            break
        time.sleep(1)
    tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
        any_=[run.id])))
    latest = {{}}
    for task in sorted(tasks, key=lambda t: t.state.timestamp):
        if task.state.name != "NotReady":  # a step that did not run in the failed attempt
            latest[task.name] = task.state.name
print(json.dumps({{"state": run.state.type.value, "task_states": latest}}))
"""
    result = subprocess.run([sys.executable, "-c", script], env=server, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_failed_run_resumes_from_the_failed_step_and_a_second_run_is_cached(
        server: dict[str, str], worker: None, tmp_path: Path) -> None:
    folder = tmp_path / "nb"
    folder.mkdir()
    notebook = write_notebook(
        folder / "resume.ipynb", ("rows = [1, 2, 3]", "step:load"),
        ("other = len(rows)", "step:side"),
        ("divisor = int(open('divisor.txt').read())\nratio = sum(rows) / divisor", "step:ratio"),
        ("report = ratio + other", "step:report", "metrics"))
    project = project_copy(tmp_path / "copy", notebook)
    assert nb2pipe("deploy", str(project), env=server).returncode == 0
    failed = flow_run(server, "resume/resume", {})
    assert failed["state"] == "FAILED"
    ran = {name: state for name, state in failed["task_states"].items() if state != "NotReady"}
    assert ran == {"load": "Completed", "side": "Completed", "ratio": "Failed"}
    (project.parent / "divisor.txt").write_text("2")  # the cause, fixed
    resumed = retried(server, failed["id"])
    assert resumed["state"] == "COMPLETED"
    # Only the failed step and what follows it ran again; the rest came from the cache.
    assert resumed["task_states"] == {"load": "Cached", "side": "Cached", "ratio": "Completed",
                                      "report": "Completed"}
    again = flow_run(server, "resume/resume", {})
    assert again["state"] == "COMPLETED"
    assert again["task_states"] == {name: "Cached" for name in ("load", "side", "ratio",
                                                                  "report")}


def test_prefect_yaml_deploys_as_is_with_prefect_deploy(server: dict[str, str], worker: None,
                                                       tmp_path: Path) -> None:
    project = project_copy(tmp_path, EXAMPLES / "kale_wine" / "kale_wine.ipynb")
    env = {**server, "PWD": str(project)}  # what a shell sets after `cd` into the project
    deployed = subprocess.run([*PREFECT, "--no-prompt", "deploy", "--all"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=300)
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    run = flow_run(server, "kale_wine/kale-wine", {"svm_c": 2.0})
    assert run["state"] == "COMPLETED", run["logs"][-20:]
    assert set(run["tasks"].values()) == {"COMPLETED"} and len(run["tasks"]) == 5


def test_deployed_run_keeps_figures_and_its_report_as_artifacts(server: dict[str, str],
                                                               worker: None,
                                                               tmp_path: Path) -> None:
    (tmp_path / "nb").mkdir()
    notebook = write_notebook(
        tmp_path / "nb" / "drawn.ipynb",
        ("import matplotlib.pyplot as plt\nimport numpy as np\nimport seaborn as sns",),
        ("xs = np.arange(10)\nplt.plot(xs, xs ** 2)\nplt.show()\nprint('drawn')", "step:curve"),
        ("sns.heatmap(np.outer(xs[:3], xs[:4]))\nplt.figure()\nplt.bar([1, 2], [3, 4])",
         "step:heat"))
    project = project_copy(tmp_path / "copy", notebook)
    assert nb2pipe("deploy", str(project), env=server).returncode == 0
    run = flow_run(server, "drawn/drawn", {})
    assert run["state"] == "COMPLETED", run["logs"][-20:]
    figures = {key: url for key, url in run["artifacts"].items() if "-figure-" in key}
    assert sorted(figures) == ["curve-figure-1", "heat-figure-1", "heat-figure-2"]
    results = Path(server["NB2PIPE_CACHE_DIR"]) / "results"
    for url in figures.values():  # files kept in the result storage
        path = Path(url.removeprefix("file://"))
        assert path.is_relative_to(results) and path.read_bytes().startswith(b"\x89PNG")
    link = re.fullmatch(r"\[HTML report\]\(file://(.+)\)", run["artifacts"]["drawn-report"])
    assert link is not None, run["artifacts"]["drawn-report"]
    report = Path(link.group(1))
    assert report.is_relative_to(results)
    page = report.read_text(encoding="utf-8")
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 3
    assert "drawn" in page
    assert "drawn-summary" in run["artifacts"]


def test_failing_step_fails_the_run_with_its_cell_in_the_logs(server: dict[str, str],
                                                              worker: None,
                                                              tmp_path: Path) -> None:
    (tmp_path / "nb").mkdir()
    notebook = write_notebook(tmp_path / "nb" / "fails.ipynb", ("rows = [1, 2]", "step:load"),
                              ("total = sum(rows)\nratio = total / (len(rows) - 2)",
                               "step:ratio"))
    project = project_copy(tmp_path / "copy", notebook)
    assert nb2pipe("deploy", str(project), env=server).returncode == 0
    run = flow_run(server, "fails/fails", {})
    assert run["state"] == "FAILED"
    assert run["tasks"] == {"load": "COMPLETED", "ratio": "FAILED"}
    assert any("fails.ipynb: cell 2, line 2 (step 'ratio'): ZeroDivisionError" in message
               for message in run["logs"]), run["logs"]


def test_deploy_without_a_server_says_how_to_start_one(tmp_path: Path,
                                                       server: dict[str, str]) -> None:
    project = project_copy(tmp_path)
    env = {k: v for k, v in server.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "empty-home")
    result = nb2pipe("deploy", str(project), env=env)
    assert result.returncode == 1 and "PREFECT_API_URL is not set" in result.stderr
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{free_port()}/api"
    result = nb2pipe("deploy", str(project), env=env)
    assert result.returncode == 1 and "cannot reach the Prefect API" in result.stderr
    result = nb2pipe("deploy", str(project), "-p", "n_estimators", "many", env=server)
    assert result.returncode == 2 and "parameter 'n_estimators' is int" in result.stderr


def test_a_hand_edited_build_step_runs_only_when_confirmed(server: dict[str, str],
                                                          tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb" / "built.ipynb", ("rows = [1, 2]", "step:load"),
                              ("total = sum(rows)", "step:add")) if (
        tmp_path / "nb").mkdir() is None else None
    assert notebook is not None
    project = project_copy(tmp_path / "copy", notebook)
    marker = tmp_path / "BUILT"
    prefect_yaml = project / "prefect.yaml"
    prefect_yaml.write_text(prefect_yaml.read_text().replace("build: null", (
        "build:\n  - prefect.deployments.steps.run_shell_script:\n"
        f"      script: touch {marker}")))
    refused = subprocess.run([sys.executable, "-m", "nb2pipe", "deploy", str(project)],
                             env=server, capture_output=True, text=True, timeout=600,
                             stdin=subprocess.DEVNULL)  # as in CI: nobody to ask
    assert refused.returncode == 2, refused.stderr
    assert "run_shell_script" in refused.stderr and "--yes" in refused.stderr
    assert not marker.exists()
    deployed = nb2pipe("deploy", str(project), "--yes", env=server)
    assert deployed.returncode == 0, deployed.stderr
    assert "run_shell_script" in deployed.stderr and "deployed built/built" in deployed.stdout
    assert marker.exists()  # the step is real: it ran once it was confirmed


def test_serve_runs_the_flow_from_this_process(server: dict[str, str], tmp_path: Path) -> None:
    project = project_copy(tmp_path, EXAMPLES / "kale_wine" / "kale_wine.ipynb")
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "nb2pipe", "deploy", str(project),
                                    "--serve", "--name", "wine-served"],
                                   env={**server, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
                                   stdout=log, stderr=log, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while b"being served" not in log_path.read_bytes() and time.monotonic() < deadline:
                time.sleep(0.3)
            run = flow_run(server, "kale_wine/wine-served", {"tree_max_depth": 2})
            assert run["state"] == "COMPLETED", log_path.read_text()[-2000:]
            assert set(run["tasks"].values()) == {"COMPLETED"}
        finally:
            stop(process)


def test_generated_flow_on_dask_matches_threads(tmp_path: Path, prefect_harness: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = tmp_path / "nb" / "pids.ipynb"
    notebook.parent.mkdir()
    write_notebook(notebook, ("import os, time\nimport numpy as np\nseed = 3", "step:start"),
                   ("time.sleep(1)\nleft = (os.getpid(), float(np.arange(seed).sum()))",
                    "step:left"),
                   ("time.sleep(1)\nright = (os.getpid(), seed * 2)", "step:right"),
                   ("total = left[1] + right[1]", "step:join", "metrics"))
    project = project_copy(tmp_path / "copy", notebook)
    monkeypatch.setenv("NB2PIPE_CACHE", "off")  # the second run must not reuse the first's
    before = os.getcwd()
    try:
        with project_modules(project) as (_, flow):
            threads = flow.pids()
        monkeypatch.setenv("NB2PIPE_DASK_WORKERS", "2")
        with project_modules(project) as (_, flow):
            dask = flow.pids()
    finally:
        os.chdir(before)
    assert threads["join"]["total"] == dask["join"]["total"] == 9.0
    left, right = dask["left"]["left"][0], dask["right"]["right"][0]
    # Dask worker processes, not this one (which worker takes which step is Dask's choice:
    # both may land on one)
    assert os.getpid() not in (left, right)
    assert threads["left"]["left"][0] == threads["right"]["right"][0] == os.getpid()


def job_variable_schemas() -> dict[str, dict[str, Any]]:
    """Prefect's own base job templates for docker and kubernetes work pools."""
    import prefect

    path = (Path(prefect.__file__).parent / "server" / "api" / "collections_data" / "views"
            / "aggregate-worker-metadata.json")
    metadata = json.loads(path.read_text())
    found = {}
    for workers in metadata.values():
        for kind, worker in workers.items():
            if kind in ("docker", "kubernetes"):
                found[kind] = worker["default_base_job_configuration"]["variables"]
    return found


def test_container_variants_are_valid_deployments(tmp_path: Path) -> None:
    import jsonschema

    project = project_copy(tmp_path, docker=True)
    document = yaml.safe_load((project / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in document["deployments"]}
    assert set(deployments) == {"churn", "churn-docker", "churn-kubernetes"}
    pull = document["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert pull["directory"] == "{{ $PWD }}"  # recorded by `prefect deploy` run in the project
    schemas = job_variable_schemas()
    for name, kind in (("churn-docker", "docker"), ("churn-kubernetes", "kubernetes")):
        deployment = deployments[name]
        assert deployment["entrypoint"] == "flow.py:churn"
        own_pull = deployment["pull"][0]["prefect.deployments.steps.set_working_directory"]
        assert own_pull["directory"] == "/opt/pipeline/pipeline"  # inside the image
        variables = deployment["work_pool"]["job_variables"]
        schema = schemas[kind]
        assert set(variables) <= set(schema["properties"]), f"{name}: unknown job variables"
        jsonschema.validate(variables, {**schema, "required": []})
        assert variables["image"] == "churn:latest"
    dockerfile = (project / "Dockerfile").read_text().splitlines()
    instructions = [line.split()[0] for line in dockerfile if line and not line.startswith("#")]
    assert instructions == ["FROM", "WORKDIR", "COPY", "RUN", "COPY", "WORKDIR"]
    assert "COPY pipeline/requirements.txt /opt/requirements.txt" in dockerfile
    assert "WORKDIR /opt/pipeline/pipeline" in dockerfile
