"""Beyond one machine: deployed runs on Dask workers that share nothing, values in a bucket.

On loopback (tests/cluster.py): a Prefect server, moto's S3 server with a bucket saved as an
`s3-bucket` block, a Dask scheduler, two Dask workers with different resources and a Prefect
process worker, each in an empty folder of its own with its own HOME, no PYTHONPATH. The
projects are committed to a bare git repository made here; `nb2pipe deploy --git` deploys
them, the Prefect worker clones them, the flow ships them to the Dask workers. The README's
Deploy section describes the same setup.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import BLOCK, BUCKET, POOL, Cluster, flow_run, running_cluster, start_dask_worker
from support import EXAMPLES, write_notebook

from nb2pipe.convert import convert

pytestmark = pytest.mark.integration

# The tags cpu:4 memory:8GB pick the first worker, gpu:1 the second: a value one step makes
# on one goes to the next on the other through the bucket.
WORKERS = {"cpu-worker": "CPU=4 MEMORY=8e9", "gpu-worker": "CPU=1 MEMORY=2e9 GPU=1"}
HANDOFF = (
    ("rows = 2_000_000", "parameters"),
    ("import os\nimport numpy as np\nimport pandas as pd\n"
     "frame = pd.DataFrame({'a': np.arange(rows, dtype='float64'), 'b': np.ones(rows),\n"
     "                      'c': np.linspace(0, 1, rows)})\n"
     "matrix = np.arange(rows * 25 // 8, dtype='float64').reshape(-1, 25)\n"
     "made_in = os.getcwd()", "step:make", "cpu:4", "memory:8GB"),
    ("used_in = os.getcwd()\ntotal = float(frame.to_numpy().sum()) + float(matrix.sum())\n"
     "size = frame.memory_usage().sum() + matrix.nbytes", "step:use", "gpu:1"),
    ("made_on, used_on = made_in, used_in\nsize_bytes = int(size)\ntotal_sum = total",
     "step:summary", "metrics"),
)


def notebook_at(path: Path, *specs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_notebook(path, *specs)


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("machines"), WORKERS) as started:
        yield started


@pytest.fixture(scope="module")
def checkout(cluster: Cluster) -> Path:
    """A clone of a bare repository holding the churn example and the hand-off notebook,
    converted, committed and pushed."""
    remote = cluster.root / "repository.git"
    git(cluster.root, "init", "--bare", "-b", "main", str(remote))
    work = cluster.root / "client" / "checkout"
    git(cluster.root, "clone", str(remote), str(work))
    git(work, "config", "user.email", "ci@example.com")
    git(work, "config", "user.name", "ci")
    shutil.copytree(EXAMPLES / "churn", work / "churn",
                    ignore=shutil.ignore_patterns("*_pipeline", "*.graph.json"))
    notebook_at(work / "handoff" / "handoff.ipynb", *HANDOFF)
    for notebook in (work / "churn" / "churn.ipynb", work / "handoff" / "handoff.ipynb"):
        assert convert(notebook, notebook.parent / "pipeline").ok
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "pipelines")
    git(work, "push", "-q", "origin", "main")
    return work


def nb2pipe(cluster: Cluster, *args: str, cwd: Path | None = None, **env: str
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nb2pipe", *args], cwd=cwd,
                          env=cluster.client_env(**env), capture_output=True, text=True,
                          timeout=900)


def deploy(cluster: Cluster, project: Path) -> None:
    done = nb2pipe(cluster, "deploy", str(project), "--git", "--pool", POOL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "workers clone" in done.stdout, done.stdout


def metrics(run: dict[str, Any], step: str) -> dict[str, Any]:
    table = json.loads(run["artifacts"][f"{step}-metrics"])
    return {row["metric"]: row["value"] for row in table}


def local_metrics(cluster: Cluster, notebook: Path, step: str) -> dict[str, Any]:
    """The same notebook run here on threads, with a results folder of its own."""
    done = nb2pipe(cluster, "run", str(notebook), "--json", "--no-report",
                   NB2PIPE_CACHE_DIR=str(cluster.root / "client" / "cache"))
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)["metrics"][step])


def ran_on_dask_workers(cluster: Cluster, steps: list[str]) -> None:
    """Each step finished in a Dask worker's process, none in the Prefect worker's."""
    workers = "".join(cluster.machines[name].text() for name in WORKERS)
    flows = cluster.machines["prefect-worker"].text()
    for step in steps:
        assert f"Task run '{step}' - Finished in state" in workers, step
        assert f"Task run '{step}' - Finished in state" not in flows, step


def no_results_folder(cluster: Cluster) -> None:
    """No machine kept values in a folder: they are in the bucket."""
    for machine in cluster.machines.values():
        found = [p for p in machine.folder.rglob("results") if p.parent.name == "nb2pipe"]
        assert found == [], found


def test_churn_deployed_from_git_runs_on_the_workers_with_values_in_the_bucket(
        cluster: Cluster, checkout: Path) -> None:
    deploy(cluster, checkout / "churn" / "pipeline")
    run = flow_run(cluster.client_env(), "churn/churn", {})
    assert run["state"] == "COMPLETED", run["logs"][-20:]
    steps = ["load", "clean", "features", "train_logreg", "train_forest", "train_boosting",
             "evaluate"]
    assert run["tasks"] == dict.fromkeys(steps, "COMPLETED")
    # The Prefect worker ran the deployment's pull steps: a clone of the repository at the
    # deployed commit, then the project's folder inside the clone (which the worker deletes
    # once the run ends); nothing points at this checkout.
    assert "Running 2 deployment pull step(s)" in run["logs"], run["logs"][:20]
    pulls = json.loads(cluster.python(
        "import json\nfrom prefect import get_client\n"
        "with get_client(sync_client=True) as client:\n"
        "    print(json.dumps(client.read_deployment_by_name('churn/churn').pull_steps))"))
    assert [next(iter(step)) for step in pulls] == [
        "prefect.deployments.steps.git_clone", "prefect.deployments.steps.set_working_directory"]
    assert pulls[0]["prefect.deployments.steps.git_clone"]["repository"] == str(
        cluster.root / "repository.git")
    assert pulls[1]["prefect.deployments.steps.set_working_directory"]["directory"] == (
        "{{ clone.directory }}/churn/pipeline")
    assert str(checkout) not in json.dumps(pulls)
    ran_on_dask_workers(cluster, steps)
    # The same values as a run of the same notebook here, on threads.
    assert metrics(run, "evaluate") == local_metrics(cluster, checkout / "churn" /
                                                       "churn.ipynb", "evaluate")
    # Values, cache records, the report and its figures and records, all in the bucket.
    keys = cluster.keys()
    assert [k for k in keys if k.startswith("values/")], keys
    records = [k for k in keys if "/" not in k]
    assert len(records) >= len(steps), keys  # Prefect's records, under the steps' cache keys
    report = f"reports/{run['id']}/"
    assert f"{report}report.html" in keys
    assert {f"{report}steps/{step}.json" for step in steps} <= set(keys)
    assert [k for k in keys if k.startswith(f"{report}figures/")], keys
    page = cluster.s3().get_object(Bucket=BUCKET, Key=f"{report}report.html")["Body"].read()
    assert b"Ran on Dask worker" in page
    no_results_folder(cluster)
    # Run again: every step is taken from the bucket.
    again = flow_run(cluster.client_env(), "churn/churn", {})
    assert again["state"] == "COMPLETED"
    assert again["task_states"] == dict.fromkeys(steps, "Cached"), again["task_states"]


def test_values_cross_workers_through_the_bucket_to_the_worker_with_the_resources(
        cluster: Cluster, checkout: Path) -> None:
    deploy(cluster, checkout / "handoff" / "pipeline")
    run = flow_run(cluster.client_env(), "handoff/handoff", {})
    assert run["state"] == "COMPLETED", run["logs"][-20:]
    found = metrics(run, "summary")
    made_in, used_in = found["made_on"], found["used_on"]
    # cpu:4 memory:8GB ran on the worker declaring them, gpu:1 on the other: their own folders
    assert made_in.startswith(str(cluster.machines["cpu-worker"].folder)), made_in
    assert used_in.startswith(str(cluster.machines["gpu-worker"].folder)), used_in
    local = local_metrics(cluster, checkout / "handoff" / "handoff.ipynb", "summary")
    assert local["total_sum"] == found["total_sum"]
    assert found["size_bytes"] >= 95_000_000  # bytes of the frame and the array
    no_results_folder(cluster)


def test_a_step_no_worker_can_run_fails_at_once_naming_its_tags_and_the_workers(
        cluster: Cluster, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "greedy.ipynb", ("x = 1", "step:small"),
                              ("y = x + 1", "step:huge", "gpu:2", "memory:64GB"))
    started = time.monotonic()
    done = nb2pipe(cluster, "run", str(notebook), "--runner", "dask", "--dask-address",
                   cluster.scheduler, "--no-report",
                   NB2PIPE_CACHE_DIR=str(tmp_path / "cache"))
    assert done.returncode == 1
    assert "step 'huge' needs gpu:2, memory:64GB (its tags), but no worker of the Dask " \
           f"cluster at {cluster.scheduler} has them" in done.stderr, done.stderr
    assert "gpu-worker (tcp://127.0.0.1:" in done.stderr, done.stderr
    assert "CPU=1, GPU=1, MEMORY=2000000000" in done.stderr, done.stderr
    assert time.monotonic() - started < 300  # not a wait for a worker that never comes


SLOW = (("x = 21", "step:first"),
        ("import time\nfor _ in range(60):\n    time.sleep(0.5)\ny = x * 2", "step:slow"),
        ("z = y + 1", "step:last", "metrics"))


def test_a_worker_lost_while_running_a_step_is_replaced_and_the_report_says_so(
        cluster: Cluster, checkout: Path) -> None:
    notebook_at(checkout / "slow" / "slow.ipynb", *SLOW)
    assert convert(checkout / "slow" / "slow.ipynb", checkout / "slow" / "pipeline").ok
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "slow")
    git(checkout, "push", "-q", "origin", "main")
    deploy(cluster, checkout / "slow" / "pipeline")
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(
        flow_run(cluster.client_env(), "slow/slow", {})))
    runner.start()
    victim = None
    deadline = time.monotonic() + 600
    while victim is None and time.monotonic() < deadline:
        busy = cluster.processing()
        victim = next((w for w, keys in busy.items() if any(k.startswith("slow-")
                                                             for k in keys)), None)
        time.sleep(1)
    assert victim is not None, "the step never started"
    time.sleep(3)
    cluster.kill(victim)  # the machine is gone, mid-step
    runner.join(900)
    try:
        assert result["state"] == "COMPLETED", result["logs"][-20:]
        assert metrics(result, "last") == {"z": 43}
        page = cluster.s3().get_object(Bucket=BUCKET,
                                       Key=f"reports/{result['id']}/report.html")["Body"].read()
        text = page.decode()
        assert "2 attempts: attempt 1 on Dask worker " + victim in text, text[-3000:]
        assert "ended without a result: the process or machine running it stopped" in text
    finally:
        start_dask_worker(cluster, victim, WORKERS[victim])


def test_a_stopped_object_store_fails_the_step_naming_it_and_a_rerun_resumes(
        cluster: Cluster, checkout: Path) -> None:
    notebook_at(checkout / "paused" / "paused.ipynb",
                   ("a = 1", "step:first"),
                   ("import time\ntime.sleep(20)\nb = a + 1", "step:wait"),
                   ("c = b + 1", "step:last", "metrics"))
    assert convert(checkout / "paused" / "paused.ipynb", checkout / "paused" / "pipeline").ok
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "paused")
    git(checkout, "push", "-q", "origin", "main")
    deploy(cluster, checkout / "paused" / "pipeline")
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(
        flow_run(cluster.client_env(), "paused/paused", {})))
    runner.start()
    store = cluster.machines["object-store"].process
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not any(
            k.startswith("wait-") for keys in cluster.processing().values() for k in keys):
        time.sleep(1)
    os.killpg(store.pid, signal.SIGSTOP)  # the object store stops answering, mid-step
    try:
        runner.join(600)
    finally:
        os.killpg(store.pid, signal.SIGCONT)
    assert result["state"] == "FAILED", result
    assert result["tasks"]["first"] == "COMPLETED"
    assert result["tasks"]["wait"] == "FAILED"
    logs = "\n".join(result["logs"])
    assert re.search(rf"step 'wait' could not save its (values|outputs for the run's report) in "
                     rf"the result storage block:{BLOCK}: ", logs), logs[-3000:]
    again = flow_run(cluster.client_env(), "paused/paused", {})
    assert again["state"] == "COMPLETED", again["logs"][-20:]
    assert again["task_states"] == {"first": "Cached", "wait": "Completed",
                                    "last": "Completed"}, again["task_states"]
    assert metrics(again, "last") == {"c": 3}
