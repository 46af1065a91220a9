"""Machines that share nothing but network ports, simulated on loopback for the tests and the
benchmarks: a Prefect server, an S3-compatible object store (moto) with a bucket, a Dask
scheduler, Dask workers with their own resources and a Prefect process worker, each started in
an empty folder of its own with its own HOME and TMPDIR, no PYTHONPATH and none of nb2pipe's or
Prefect's settings from this process. Everything is started here and stopped here: each process
leads its own process group, killed whole when the cluster closes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PYTHON = sys.executable
BIN = str(Path(sys.executable).parent)
BUCKET = "pipeline-results"
BLOCK = f"s3-bucket/{BUCKET}"
POOL = "nb2pipe-cluster"
# Fixed S3 credentials of moto's stand-in, and a storage key the cluster's machines share.
AWS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
STORAGE_KEY = "0123456789abcdef0123456789abcdef-cluster-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGINT, then SIGTERM and SIGKILL for what is left of the process group."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    # what the leader left behind in its group (a Dask nanny's worker, a flow run)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@dataclass
class Machine:
    name: str
    folder: Path  # its working folder and HOME
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    root: Path
    machines: dict[str, Machine] = field(default_factory=dict)
    api_url: str = ""
    s3_url: str = ""
    scheduler: str = ""
    workers: dict[str, str] = field(default_factory=dict)  # name -> --resources

    # -- processes ------------------------------------------------------------------

    def environment(self, folder: Path, **extra: str) -> dict[str, str]:
        """What a machine of its own has: a HOME and TMPDIR of its own, the installed Python
        on PATH, none of this process's nb2pipe, Prefect, Dask, AWS or Python path settings."""
        kept = {k: v for k, v in os.environ.items() if not k.startswith(
            ("PREFECT_", "NB2PIPE_", "DASK_", "AWS_", "PYTHON", "VIRTUAL_ENV"))}
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        return {**kept, "HOME": str(folder), "TMPDIR": str(folder / "tmp"),
                "PATH": f"{BIN}{os.pathsep}{kept.get('PATH', '')}",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}

    def start(self, name: str, argv: list[str], ready: Callable[[Machine], bool],
              timeout: float = 120, **extra: str) -> Machine:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        log = folder.parent / f"{name}.log"
        with open(log, "ab") as handle:
            process = subprocess.Popen(argv, cwd=folder, env=self.environment(folder, **extra),
                                       stdout=handle, stderr=handle, start_new_session=True)
        machine = self.machines[name] = Machine(name, folder, process, log)
        deadline = time.monotonic() + timeout
        while not ready(machine):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{machine.text()[-3000:]}")
            time.sleep(0.5)
        return machine

    def kill(self, name: str) -> None:
        """The machine is gone: its whole process group, at once."""
        machine = self.machines[name]
        with suppress(ProcessLookupError):
            os.killpg(machine.process.pid, signal.SIGKILL)
        machine.process.wait(30)

    def close(self) -> None:
        for machine in reversed(list(self.machines.values())):
            stop(machine.process, grace=10)

    # -- what runs on it ------------------------------------------------------------

    def client_env(self, folder: Path | None = None, **extra: str) -> dict[str, str]:
        """The environment of a machine that deploys and triggers runs (this test's)."""
        folder = folder or self.root / "client"
        return self.environment(folder, PREFECT_API_URL=self.api_url, **extra)

    def python(self, code: str, *args: str, **extra: str) -> str:
        """Run Python on the client machine; its last line of output."""
        done = subprocess.run([PYTHON, "-c", code, *args], env=self.client_env(**extra),
                              cwd=self.root, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def s3(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1", **AWS)

    def keys(self, prefix: str = "") -> list[str]:
        """Every object in the bucket under `prefix`."""
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                     Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def dask_workers(self) -> dict[str, dict[str, Any]]:
        """The scheduler's workers: address -> name, resources, local directory."""
        code = (f"import json, distributed; c = distributed.Client({self.scheduler!r}, "
                "timeout=30); print(json.dumps({a: {'name': w['name'], "
                "'resources': w['resources'], 'dir': w.get('local_directory')} for a, w in "
                "c.scheduler_info(n_workers=-1)['workers'].items()})); c.close()")
        return dict(json.loads(self.python(code)))

    def processing(self) -> dict[str, list[str]]:
        """Which task keys each worker (by name) is running now."""
        code = (f"import json, distributed; c = distributed.Client({self.scheduler!r}, "
                "timeout=30); names = {a: w['name'] for a, w in c.scheduler_info(n_workers=-1)"
                "['workers'].items()}; print(json.dumps({str(names.get(a, a)): [str(k) for k in "
                "keys] for a, keys in c.processing().items()})); c.close()")
        return dict(json.loads(self.python(code)))


def _answers(url: str) -> Callable[[Machine], bool]:
    def ready(machine: Machine) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    return ready


def _logged(text: str) -> Callable[[Machine], bool]:
    return lambda machine: text in machine.text()


@contextmanager
def running_cluster(root: Path, workers: dict[str, str], *, prefect_worker: bool = True
                    ) -> Iterator[Cluster]:
    """Start everything (see the module's docstring); `workers`: name -> Dask resources
    (`"CPU=4 MEMORY=8e9 GPU=1"`). The S3 bucket is saved as the Prefect block BLOCK; the
    Prefect worker (pool POOL) runs flow runs with NB2PIPE_RESULT_STORAGE=BLOCK and
    NB2PIPE_DASK_ADDRESS set to the scheduler, as a deployment's machine would."""
    cluster = Cluster(root)
    try:
        port = free_port()
        cluster.api_url = f"http://127.0.0.1:{port}/api"
        cluster.start("prefect-server", [PYTHON, "-m", "prefect", "server", "start", "--host",
                                         "127.0.0.1", "--port", str(port), "--no-ui"],
                      _answers(f"{cluster.api_url}/health"), timeout=180)
        port = free_port()
        cluster.s3_url = f"http://127.0.0.1:{port}"
        cluster.start("object-store", [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                       str(port)], _answers(f"{cluster.s3_url}/moto-api/"))
        cluster.s3().create_bucket(Bucket=BUCKET)
        save_blocks(cluster)
        port = free_port()
        cluster.scheduler = f"tcp://127.0.0.1:{port}"
        cluster.start("dask-scheduler", [PYTHON, "-m", "distributed.cli.dask_scheduler",
                                         "--host", "127.0.0.1", "--port", str(port),
                                         "--no-dashboard"],
                      _logged("Scheduler at:"))
        for name, resources in workers.items():
            start_dask_worker(cluster, name, resources)
        if prefect_worker:
            start_prefect_worker(cluster)
        yield cluster
    finally:
        cluster.close()


def start_dask_worker(cluster: Cluster, name: str, resources: str) -> Machine:
    cluster.workers[name] = resources
    argv = [PYTHON, "-m", "distributed.cli.dask_worker", cluster.scheduler, "--name", name,
            "--nthreads", "1", "--no-dashboard", "--local-directory", "dask"]
    if resources:
        argv += ["--resources", resources]
    return cluster.start(name, argv, _logged("Registered to:"),
                         NB2PIPE_STORAGE_KEY=STORAGE_KEY)


def start_prefect_worker(cluster: Cluster) -> Machine:
    subprocess.run([PYTHON, "-m", "prefect", "--no-prompt", "work-pool", "create", "--type",
                    "process", POOL], env=cluster.client_env(), check=True, capture_output=True)
    return cluster.start("prefect-worker", [PYTHON, "-m", "prefect", "worker", "start",
                                            "--pool", POOL],
                         _logged("started"), PREFECT_API_URL=cluster.api_url,
                         PREFECT_WORKER_QUERY_SECONDS="2", NB2PIPE_RESULT_STORAGE=BLOCK,
                         NB2PIPE_DASK_ADDRESS=cluster.scheduler,
                         NB2PIPE_STORAGE_KEY=STORAGE_KEY)


def save_blocks(cluster: Cluster) -> None:
    """The bucket as an `s3-bucket` block, reached at moto's address; short timeouts, so that
    an object store that stops answering fails a step within seconds."""
    cluster.python(f"""
from prefect_aws import AwsCredentials, S3Bucket
from prefect_aws.client_parameters import AwsClientParameters
credentials = AwsCredentials(**{AWS!r}, region_name="us-east-1",
    aws_client_parameters=AwsClientParameters(endpoint_url={cluster.s3_url!r}, config={{
        "connect_timeout": 5, "read_timeout": 10, "retries": {{"max_attempts": 2}}}}))
S3Bucket(bucket_name={BUCKET!r}, credentials=credentials).save({BUCKET!r}, overwrite=True)
print("saved")
""")


def flow_run(server: dict[str, str], deployment: str, parameters: dict[str, Any]
             ) -> dict[str, Any]:
    """Trigger a run through the Prefect API and wait for it; returns what the API says of it."""
    script = f"""
import json, sys, time
from prefect import get_client
from prefect.deployments import run_deployment
from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId,
    FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId)
run = run_deployment({deployment!r}, parameters=json.loads(sys.argv[1]), timeout=900,
                     poll_interval=1)
with get_client(sync_client=True) as client:
    # Task-run states reach the API as events, after the flow run's own final state: wait until
    # none is still pending or running (or the deadline says the task really is stuck).
    deadline = time.monotonic() + 60
    while True:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        if all(t.state.is_final() for t in tasks) or time.monotonic() > deadline:
            break
        time.sleep(1)
    # The run's process ships its logs in batches, the last ones as it exits: after the state
    # the API reports, until the flow's own closing line is in and nothing more arrives.
    logs, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        found = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        if len(found) == len(logs) and any(entry.task_run_id is None and
                                           entry.message.startswith("Finished in state")
                                           for entry in found):
            break
        logs = found
        time.sleep(1)
    logs = found
    # Read after the closing line: the flow's state hooks (the report) run before it.
    artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
print(json.dumps({{"id": str(run.id), "state": run.state.type.value,
    "parameters": run.parameters,
    "tasks": {{t.name: t.state.type.value for t in tasks}},
    "task_states": {{t.name: t.state.name for t in tasks}},
    "artifacts": {{a.key: a.data for a in artifacts}},
    "logs": [entry.message for entry in logs]}}))
"""
    result = subprocess.run([sys.executable, "-c", script, json.dumps(parameters)], env=server,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))
