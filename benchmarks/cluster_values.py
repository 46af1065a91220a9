"""Big values between machines that share nothing: a DataFrame and an ndarray handed from a
step on one Dask worker to a step on another through an S3 bucket, against writing and reading
the same bytes with s3fs directly on the same server.

    python benchmarks/cluster_values.py                 # 2 GB, 2 pairs (needs ~12 GB free)
    python benchmarks/cluster_values.py --size-mb 200   # smaller, quicker

The machines are those of tests/cluster.py (moto's S3 server on loopback, a Dask scheduler,
two workers with their own resources, each in a folder of its own); the flow runs here, with
NB2PIPE_RESULT_STORAGE naming the bucket's block. For each kind of value and each pair
(interleaved): the hand-over (from the end of the producing step's code to the start of the
consuming step's code, on the other worker: save, scheduling, load), s3fs's write and read of
as many bytes, and each worker process's peak resident memory (VmHWM), against the value's
size. Goals: hand-over throughput >= 0.7 of s3fs's, peak memory <= 2.5x the value.

The hand-over's phases come from the Prefect API's times of the two task runs: save, from the
end of the producing step's code to the end of its task run (its values written to the
bucket); scheduling, from there to the start of the consuming task run on the other worker;
load, from there to the start of its code (its values read from the bucket). The producer's
peak memory is also given as it was at the end of its step's code, before anything was saved:
what the notebook's own code took.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cluster import AWS, BLOCK, BUCKET, Cluster, running_cluster
from support import write_notebook

WORKERS = {"cpu-worker": "CPU=4 MEMORY=8e9", "gpu-worker": "CPU=1 MEMORY=2e9 GPU=1"}
KINDS = {
    "frame": ("import pandas as pd\n"
              "value = pd.DataFrame({f'c{i}': np.arange(size // 8 // 8, dtype='float64') + i\n"
              "                      for i in range(8)})"),
    "array": "value = np.arange(size // 8, dtype='float64').reshape(-1, 1000)",
}


def notebook(path: Path, kind: str, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_notebook(
        path,
        (f"size = {size}\nrun = 0", "parameters"),
        ("import time\nimport numpy as np\n" + KINDS[kind] + "\nmade_at = time.time()\n"
         + PEAK.format(name="made_peak"), "step:make", "cpu:4"),
        ("import time\nstarted_at = time.time()\n"
         "checksum = float(np.asarray(value).sum())", "step:use", "gpu:1"),
        ("handover = started_at - made_at\ntotal = checksum + run * 0\n"
         "made, started, code_peak = made_at, started_at, made_peak", "step:summary",
         "metrics"))


# The process's peak resident memory so far, in bytes (Linux).
PEAK = ("{name} = [int(line.split()[1]) * 1024 for line in open('/proc/self/status')\n"
        "          if line.startswith('VmHWM:')][0]\n")


def worker_peaks(cluster: Cluster) -> dict[str, int]:
    """Each Dask worker process's peak resident memory (bytes), by worker name."""
    import psutil

    found = {}
    for name in WORKERS:
        nanny = psutil.Process(cluster.machines[name].process.pid)
        peaks = []
        for child in nanny.children(recursive=True):
            status = Path(f"/proc/{child.pid}/status").read_text()
            peaks += [int(line.split()[1]) * 1024 for line in status.splitlines()
                      if line.startswith("VmHWM:")]
        found[name] = max(peaks, default=0)
    return found


def restart_workers(cluster: Cluster) -> None:
    """Fresh worker processes, so that each measurement's peak memory is its own, which have
    imported what every step's task imports (Prefect, pandas): a worker does that once, for
    its first step, not for each value it hands over."""
    cluster.python(f"import distributed; c = distributed.Client({cluster.scheduler!r}, "
                   "timeout=30); c.restart(wait_for_workers=True); "
                   "c.run(lambda: [__import__(m) for m in ('prefect', 'prefect_dask', "
                   "'prefect_aws', 'pandas', 'numpy')] and None); c.close(); print('ok')")


def handover(cluster: Cluster, path: Path, size: int, run: int) -> dict[str, float]:
    """The hand-over's seconds, whole and by phase, and the producing step's own peak."""
    done = subprocess.run(
        [sys.executable, "-m", "nb2pipe", "run", str(path), "--runner", "dask",
         "--dask-address", cluster.scheduler, "--no-cache", "--no-report", "--json",
         "-p", "size", str(size), "-p", "run", str(run)],
        env=cluster.client_env(NB2PIPE_RESULT_STORAGE=BLOCK,
                               NB2PIPE_STORAGE_KEY="benchmark-" + "k" * 40,
                               NB2PIPE_CACHE_DIR=str(cluster.root / "client" / "cache")),
        capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:  # with --json, the run's error is in its document on stdout
        raise RuntimeError(f"{done.stderr[-2000:]}\n{done.stdout[-3000:]}")
    document = json.loads(done.stdout)
    metrics = document["metrics"]["summary"]
    times = task_times(cluster, document["flow_run_url"].rstrip("/").rpartition("/")[2])
    saved, started = times["make"][1], times["use"][0]
    return {"handover": float(metrics["handover"]), "save": saved - metrics["made"],
            "scheduling": started - saved, "load": metrics["started"] - started,
            "code_peak": float(metrics["code_peak"])}


def task_times(cluster: Cluster, flow_run: str) -> dict[str, tuple[float, float]]:
    """Each task run's start and end (seconds since the epoch), by step, from the Prefect API."""
    code = f"""
import json
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
with get_client(sync_client=True) as client:
    runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
        any_=[{flow_run!r}])))
print(json.dumps({{r.name: [r.start_time.timestamp(), r.end_time.timestamp()] for r in runs
                  if r.start_time and r.end_time}}))
"""
    return {name: (start, end) for name, (start, end) in json.loads(cluster.python(code)).items()}


S3FS = """
import sys, time, numpy as np, s3fs
size, url, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
# A long read timeout: moto joins a large multipart upload's parts in memory, in one request
# that takes minutes at 2 GB; retried after a timeout, the two joins race (an HTTP 500).
fs = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": url,
                       "region_name": "us-east-1"}, config_kwargs={"read_timeout": 900})
data = np.arange(size // 8, dtype="float64")
started = time.perf_counter()
with fs.open(key, "wb", block_size=64 << 20) as handle:
    view = memoryview(data).cast("B")
    for offset in range(0, len(view), 64 << 20):
        handle.write(view[offset:offset + (64 << 20)])
written = time.perf_counter()
back = bytearray(size)
with fs.open(key, "rb", block_size=64 << 20) as handle:
    got = handle.readinto(back)
read = time.perf_counter()
assert got == size
fs.rm(key)
print(written - started, read - written)
"""


def direct(cluster: Cluster, size: int) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", S3FS, str(size), cluster.s3_url,
                           f"{BUCKET}/benchmark/direct.bin"],
                          env=cluster.client_env(), capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    write, read = map(float, done.stdout.split())
    return write, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    size = args.size_mb * 1_000_000
    assert AWS  # moto's credentials, set on the block by tests/cluster.py
    with tempfile.TemporaryDirectory(prefix="nb2pipe-cluster-bench-") as root, \
            running_cluster(Path(root), WORKERS, prefect_worker=False) as cluster:
        rows = []
        for kind in KINDS:
            path = notebook(Path(root) / "client" / kind / f"{kind}.ipynb", kind, size)
            for number in range(args.repeat):
                restart_workers(cluster)
                try:
                    phases = handover(cluster, path, size, number)
                except RuntimeError:
                    for name in WORKERS:  # what the workers said, to see why
                        print(f"--- {name}\n{cluster.machines[name].text()[-4000:]}",
                              file=sys.stderr)
                    raise
                peaks = worker_peaks(cluster)
                write, read = direct(cluster, size)
                seconds = phases["handover"]
                rows.append((kind, seconds, write + read, peaks, phases))
                print(f"{kind} #{number + 1}: hand-over {seconds:.2f} s (save "
                      f"{phases['save']:.2f} s, scheduling {phases['scheduling']:.2f} s, load "
                      f"{phases['load']:.2f} s), s3fs write {write:.2f} s + read {read:.2f} s; "
                      "peak memory " + ", ".join(
                          f"{n} {p / size:.2f}x" for n, p in sorted(peaks.items())) +
                      f" (producer at the end of its step's code "
                      f"{phases['code_peak'] / size:.2f}x)", flush=True)
        print()
        print(f"value size: {size / 1e6:.0f} MB; medians of {args.repeat}")
        print("| value | hand-over | s3fs write + read | throughput ratio (goal >= 0.7) "
              "| peak memory / size, producer | consumer (goal <= 2.5) |")
        print("|---|---:|---:|---:|---:|---:|")
        for kind in KINDS:
            mine = [r for r in rows if r[0] == kind]
            ours = statistics.median(r[1] for r in mine)
            theirs = statistics.median(r[2] for r in mine)
            producer = max(r[3]["cpu-worker"] for r in mine) / size
            consumer = max(r[3]["gpu-worker"] for r in mine) / size
            print(f"| {kind} | {ours:.2f} s ({size / ours / 1e6:.0f} MB/s) | {theirs:.2f} s "
                  f"({size / theirs / 1e6:.0f} MB/s) | {theirs / ours:.2f} | {producer:.2f}x "
                  f"| {consumer:.2f}x |")
        print()
        print("| value | save | scheduling | load | producer's peak at the end of its code |")
        print("|---|---:|---:|---:|---:|")
        for kind in KINDS:
            mine = [r[4] for r in rows if r[0] == kind]
            print(f"| {kind} | " + " | ".join(
                f"{statistics.median(p[phase] for p in mine):.2f} s"
                for phase in ("save", "scheduling", "load")) +
                f" | {max(p['code_peak'] for p in mine) / size:.2f}x |")
        print(f"(load average {os.getloadavg()[0]:.1f}; at {time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
