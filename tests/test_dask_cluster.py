"""The parts of running on a Dask cluster of machines that share nothing, without a cluster:
what is shipped to the workers, how a worker unpacks it, the resource check, git sources."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from nb2pipe.deploy import DeployError, git_source
from nb2pipe.runtime import dask_worker
from nb2pipe.runtime.dask_cluster import MissingResources, ShippingError, bundle, check_resources


def names(archive: bytes) -> list[str]:
    return sorted(zipfile.ZipFile(io.BytesIO(archive)).namelist())


def make_tree(root: Path) -> Path:
    """A notebook's folder holding its data and its project (with tests and caches)."""
    for name, text in {"nb.ipynb": "{}", "data/rows.csv": "a\n1\n", ".git/config": "x",
                       ".ipynb_checkpoints/nb.ipynb": "{}", "nb_pipeline/steps.py": "x = 1\n",
                       "nb_pipeline/pipeline.json": "{}", "nb_pipeline/tests/test_x.py": "",
                       "nb_pipeline/nb2pipe_runtime/__init__.py": "",
                       "nb_pipeline/__pycache__/steps.cpython-311.pyc": ""}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "data" / "link.csv").symlink_to(root / "data" / "rows.csv")
    return root / "nb_pipeline"


def test_the_notebooks_folder_and_its_project_are_shipped_without_caches_tests_or_links(
        tmp_path: Path) -> None:
    project = make_tree(tmp_path / "nb")
    archive, digest, inside = bundle(project, tmp_path / "nb")
    assert names(archive) == ["work/data/rows.csv", "work/nb.ipynb",
                              "work/nb_pipeline/nb2pipe_runtime/__init__.py",
                              "work/nb_pipeline/pipeline.json", "work/nb_pipeline/steps.py"]
    assert inside == "work/nb_pipeline"
    # The digest names the contents: the same files give the same one; a change, another.
    assert bundle(project, tmp_path / "nb")[1] == digest
    (tmp_path / "nb" / "data" / "rows.csv").write_text("a\n2\n")
    assert bundle(project, tmp_path / "nb")[1] != digest


def test_a_project_outside_the_notebooks_folder_is_shipped_beside_it(tmp_path: Path) -> None:
    project = make_tree(tmp_path / "nb")
    (tmp_path / "elsewhere").mkdir()
    archive, _, inside = bundle(project, tmp_path / "elsewhere")
    assert inside == "project"
    assert "project/steps.py" in names(archive)


def test_a_folder_too_large_to_ship_is_an_error_naming_its_largest_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_tree(tmp_path / "nb")
    (tmp_path / "nb" / "data" / "big.bin").write_bytes(b"\0" * 4096)
    monkeypatch.setattr("nb2pipe.runtime.dask_cluster.MAX_BYTES", 1000)
    with pytest.raises(ShippingError, match=r"work/data/big\.bin"):
        bundle(project, tmp_path / "nb")


def test_a_worker_unpacks_the_archive_once_into_a_folder_named_by_its_digest(
        tmp_path: Path) -> None:
    project = make_tree(tmp_path / "nb")
    archive, digest, inside = bundle(project, tmp_path / "nb")
    where = dask_worker.unpack(tmp_path / "worker", digest, archive)
    assert where == tmp_path / "worker" / digest
    assert (where / inside / "steps.py").read_text() == "x = 1\n"
    (where / inside / "steps.py").write_text("kept")  # not unpacked again
    assert dask_worker.unpack(tmp_path / "worker", digest, archive) == where
    assert (where / inside / "steps.py").read_text() == "kept"


def test_an_archive_with_paths_leading_out_is_refused(tmp_path: Path) -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("../outside.txt", "x")
    with pytest.raises(ValueError, match="refused entry"):
        dask_worker.unpack(tmp_path / "worker", "d", data.getvalue())
    assert not (tmp_path / "outside.txt").exists()


STEPS = {"load": {}, "train": {"CPU": 4.0, "MEMORY": 8e9, "GPU": 1.0}}


def test_a_step_no_worker_can_run_is_named_with_its_tags_and_the_workers_resources() -> None:
    workers = {"tcp://10.0.0.1:1": {"CPU": 4.0, "MEMORY": 16e9},
               "tcp://10.0.0.2:1": {}}
    with pytest.raises(MissingResources) as raised:
        check_resources(STEPS, workers, "tcp://scheduler:8786")
    message = str(raised.value)
    assert "step 'train' needs cpu:4, gpu:1, memory:8GB (its tags)" in message
    assert ("tcp://10.0.0.1:1: CPU=4, MEMORY=16000000000; tcp://10.0.0.2:1: no resources"
            in message)
    assert ('dask worker tcp://scheduler:8786 --resources "CPU=4 GPU=1 MEMORY=8000000000"'
            in message)


def test_steps_some_worker_can_run_pass_the_check() -> None:
    check_resources(STEPS, {"a": {"CPU": 8.0, "MEMORY": 32e9, "GPU": 2.0}, "b": {}}, "x")
    check_resources({"load": {}}, {}, "x")  # no needs: any worker, even one joining later


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A clone of a bare repository holding a notebook's folder and its project, pushed."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--bare", "-b", "main", str(remote))
    work = tmp_path / "work"
    git(tmp_path, "clone", str(remote), str(work))
    git(work, "config", "user.email", "t@example.com")
    git(work, "config", "user.name", "t")
    make_tree(work / "analysis")
    git(work, "add", "-A")
    git(work, "commit", "-m", "pipeline")
    git(work, "push", "origin", "main")
    return work


def test_git_source_is_the_pushed_commit_and_the_projects_folder(checkout: Path) -> None:
    project = checkout / "analysis" / "nb_pipeline"
    source = git_source(project, project.parent)
    assert source.url == str(checkout.parent / "remote.git")
    assert (source.branch, source.commit) == ("main", git(checkout, "rev-parse", "HEAD"))
    assert source.folder == "analysis/nb_pipeline"
    clone, workdir = source.pull_steps()
    assert clone["prefect.deployments.steps.git_clone"] == {
        "id": "clone", "repository": source.url, "commit_sha": source.commit}
    assert workdir["prefect.deployments.steps.set_working_directory"]["directory"] == (
        "{{ clone.directory }}/analysis/nb_pipeline")


def test_git_source_refuses_uncommitted_and_unpushed_work(checkout: Path) -> None:
    project = checkout / "analysis" / "nb_pipeline"
    (checkout / "analysis" / "data" / "new.csv").write_text("b\n")
    with pytest.raises(DeployError, match=r"not committed \(analysis/data/new\.csv\)"):
        git_source(project, project.parent)
    git(checkout, "add", "-A")
    git(checkout, "commit", "-m", "more data")
    with pytest.raises(DeployError, match="branch 'main' of .* is at [0-9a-f]{12}, this "
                                          "checkout at [0-9a-f]{12}: push it"):
        git_source(project, project.parent)
    git(checkout, "push", "origin", "main")
    assert git_source(project, project.parent).commit == git(checkout, "rev-parse", "HEAD")


def test_git_source_outside_a_repository_or_without_a_remote_says_what_to_do(
        tmp_path: Path) -> None:
    project = make_tree(tmp_path / "nb")
    with pytest.raises(DeployError, match="not inside a git repository"):
        git_source(project, project.parent)
    git(tmp_path / "nb", "init", "-b", "main")
    with pytest.raises(DeployError, match="has no remote"):
        git_source(project, project.parent)


def test_a_worker_process_imports_the_project_of_each_step_with_its_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    monkeypatch.delitem(sys.modules, dask_worker.STATE, raising=False)
    for version in ("one", "two"):
        (tmp_path / version / "work" / "p").mkdir(parents=True)
        (tmp_path / version / "work" / "p" / "steps.py").write_text(f"VERSION = {version!r}\n")
    with dask_worker._project(tmp_path / "one", "work/p", {"NB2PIPE_CACHE": "off"}):
        import steps

        assert steps.VERSION == "one"
        assert dask_worker.os.environ["NB2PIPE_CACHE"] == "off"
        assert dask_worker.os.environ["NB2PIPE_WORKDIR"] == str(tmp_path / "one" / "work")
    with dask_worker._project(tmp_path / "two", "work/p", {}):
        del steps
        import steps

        assert steps.VERSION == "two"  # the other project's module was forgotten
        assert "NB2PIPE_CACHE" not in dask_worker.os.environ  # the other run's setting too
    monkeypatch.delenv("NB2PIPE_WORKDIR")
