"""`nb2pipe deploy`: a generated project -> a Prefect deployment, through its own prefect.yaml.

Prefect does the deploying (`prefect deploy`, run in the project folder), so what nb2pipe deploys
is exactly what a data engineer would deploy by hand; nb2pipe adds the checks that make the
first deployment work: a reachable server, the work pool, parameters of the right types, and
the worker's pull step: the project's absolute folder (a worker on this machine), or, with
`--git`, a clone of the commit checked out here from its remote (a worker anywhere).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb2pipe.escape import one_line
from nb2pipe.exceptions import Nb2pipeError
from nb2pipe.runtime.manifest import Manifest, ManifestError, load


class DeployError(Nb2pipeError):
    """Deploying cannot go ahead: the message is one line (or a few) saying why and what to do."""

    exit_code = 1
    one_line = False  # it may end with `prefect deploy`'s own lines


STEP_SECTIONS = ("build", "push", "pull")  # what `prefect deploy` and its worker run


class UnreadableProject(DeployError):
    """A file of the project cannot be read (missing, not a regular file, not YAML)."""

    exit_code = 2
    one_line = True


class HandEdited(DeployError):
    """prefect.yaml is not as nb2pipe wrote it, so it may run code nb2pipe never wrote: the
    build and push steps run here, while deploying; the pull steps on the worker."""

    def __init__(self, path: Path, stamped: bool, steps: tuple[tuple[str, str], ...]) -> None:
        super().__init__(path)
        self.path = path
        self.stamped = stamped  # False: it has no stamp of nb2pipe's at all
        self.steps = steps  # (section, the step as one line of JSON)

    def __str__(self) -> str:
        how = ("was edited by hand since nb2pipe wrote it" if self.stamped
               else "was not written by nb2pipe")
        return (f"{self.path} {how}; deploying it runs "
                f"{len(self.steps) or 'no'} build, push or pull step"
                f"{'' if len(self.steps) == 1 else 's'} of its own")

    def lines(self) -> list[str]:
        """The message and each step on a line of its own: what the user is asked about."""
        return [str(self), *(f"  {section}: {step}" for section, step in self.steps)]


@dataclass(frozen=True)
class GitSource:
    """Where a worker clones the project from: the commit this checkout is at, on a branch of
    a remote repository, and the project's folder inside the repository."""

    url: str
    branch: str
    commit: str
    folder: str  # the project, relative to the repository's top, "/"-separated ("." at the top)

    def pull_steps(self) -> list[dict[str, Any]]:
        """prefect.yaml's pull section: clone that commit (Prefect takes a commit or a branch,
        not both), then run from the project's folder."""
        folder = "{{ clone.directory }}" + ("" if self.folder == "." else f"/{self.folder}")
        return [
            {"prefect.deployments.steps.git_clone": {
                "id": "clone", "repository": self.url, "commit_sha": self.commit}},
            {"prefect.deployments.steps.set_working_directory": {"directory": folder}},
        ]


@dataclass(frozen=True)
class Deployment:
    flow: str
    name: str
    pool: str
    api_url: str
    hand_edited: HandEdited | None = None  # deployed as it was, with edited_ok

    @property
    def full_name(self) -> str:
        return f"{self.flow}/{self.name}"


def api_url() -> str:
    """The Prefect API to deploy to; an error when none is configured or it does not answer."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise DeployError(
            "PREFECT_API_URL is not set, so there is no Prefect server to deploy to: start one "
            "with `prefect server start` and run `export PREFECT_API_URL=http://127.0.0.1:4200/api`"
            " (or use --serve to serve the flow from this process)")
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=10)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DeployError(f"cannot reach the Prefect API at {url}: {exc}") from None
    return str(url)


def ensure_pool(name: str) -> bool:
    """Create the process work pool if it does not exist; True if it was created."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True
    if pool.type != "process":
        raise DeployError(f"work pool '{name}' exists but is a {pool.type} pool; this "
                          "deployment needs a process pool: choose another with --pool")
    return False


def read_prefect_file(project: Path, recorded: str | None) -> tuple[dict[str, Any],
                                                                  HandEdited | None]:
    """The project's prefect.yaml, and what it runs if it is not as nb2pipe wrote it (nor has
    the hash `recorded` for it in pipeline.json)."""
    import yaml

    from nb2pipe.runtime.files import NotAFile, read_bytes
    from nb2pipe.writer import edited

    path = project / "prefect.yaml"
    try:
        content = read_bytes(path)
        document = yaml.safe_load(content)
    except FileNotFoundError:
        raise UnreadableProject(f"{path}: missing; convert the notebook again to write "
                                "it") from None
    except NotAFile as exc:
        raise UnreadableProject(f"{exc}; convert the notebook again (with --force) to "
                                "replace it") from None
    except OSError as exc:
        raise UnreadableProject(f"{path}: cannot be read: {exc.strerror}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise UnreadableProject(f"{path}: not valid YAML: {one_line(str(exc))}") from None
    deployments = document.get("deployments") if isinstance(document, dict) else None
    if not (isinstance(deployments, list) and deployments and isinstance(deployments[0], dict)):
        raise UnreadableProject(f"{path}: has no deployment; convert the notebook again")
    state = edited("prefect.yaml", content, recorded)
    if state is False:
        return document, None
    entry = deployments[0]
    steps = []
    for section in STEP_SECTIONS:
        # a deployment's own section replaces the file's, as in `prefect deploy`
        found = entry[section] if section in entry else document.get(section)
        for step in found if isinstance(found, list) else [] if found is None else [found]:
            steps.append((section, one_line(json.dumps(step, default=str))))
    return document, HandEdited(path, state is True, tuple(steps))


def _git(project: Path, *args: str) -> str | None:
    """A git command's output in the project's folder; None when it fails (or no git)."""
    try:
        done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def remote_url(project: Path) -> str | None:
    """The URL of the remote the checkout holding the project pushes to (its branch's
    upstream remote, else origin); None outside a git repository or without one."""
    if _git(project, "rev-parse", "--show-toplevel") is None:
        return None
    branch = _git(project, "symbolic-ref", "--quiet", "--short", "HEAD") or ""
    remote = (_git(project, "config", f"branch.{branch}.remote") if branch else None) or "origin"
    return _git(project, "remote", "get-url", remote)


def git_source(project: Path, workdir: Path, url: str | None = None,
               branch: str | None = None) -> GitSource:
    """The git source of a deployment of this project, checked: the project and the notebook's
    folder are committed, and the branch on the remote is at this commit (else the worker
    would run something else than what is here)."""
    project = project.resolve()
    top = _git(project, "rev-parse", "--show-toplevel")
    if top is None:
        raise DeployError(f"{project} is not inside a git repository: --git deploys a commit "
                          "that workers clone; commit the notebook and the project first")
    url = url or remote_url(project)
    if not url:
        raise DeployError(f"the git repository at {top} has no remote: give its URL "
                          "(--git URL) or add one (git remote add origin URL) and push")
    branch = branch or _git(project, "symbolic-ref", "--quiet", "--short", "HEAD")
    if not branch:
        raise DeployError("this checkout is on no branch: name the branch workers clone "
                          "with --branch")
    commit = _git(project, "rev-parse", "HEAD") or ""
    changed = _git(project, "status", "--porcelain", "--untracked-files=all", "--",
                   str(project), str(workdir.resolve()))
    if changed:
        files = ", ".join(line[3:] for line in changed.splitlines()[:5])
        raise DeployError(f"files of the pipeline are not committed ({files}): workers clone "
                          "the commit, so commit them and push first")
    remote = _git(project, "ls-remote", url, f"refs/heads/{branch}")
    found = remote.split()[0] if remote else None
    if found != commit:
        where = f"at {found[:12]}" if found else "missing"
        raise DeployError(f"branch '{branch}' of {url} is {where}, this checkout at "
                          f"{commit[:12]}: push it (git push) so that workers clone what is "
                          "deployed from here")
    folder = Path(project).relative_to(Path(top).resolve()).as_posix()
    return GitSource(url, branch, commit, folder)


def deploy(project: Path, *, pool: str | None = None, name: str | None = None,
           cron: str | None = None, parameters: dict[str, Any] | None = None,
           edited_ok: bool = False, git: GitSource | None = None) -> Deployment:
    """Deploy the project's first deployment (cloned by workers from `git` when given). A
    prefect.yaml that is not as nb2pipe wrote it is deployed only with `edited_ok` (else
    HandEdited, before anything runs)."""
    import yaml

    project = project.resolve()
    manifest = _manifest(project)
    document, hand_edited = read_prefect_file(project, manifest.files.get("prefect.yaml"))
    if hand_edited is not None and not edited_ok:
        raise hand_edited
    url = api_url()
    entry = document["deployments"][0]  # the process deployment; the others need images
    pool = pool or entry["work_pool"]["name"]
    name = name or entry["name"]
    entry["name"] = name
    if git is not None:
        entry["pull"] = git.pull_steps()  # the deployment's own, in place of the file's
    ensure_pool(pool)
    with tempfile.TemporaryDirectory(prefix="nb2pipe-deploy-") as folder:
        prefect_file = Path(folder) / "prefect.yaml"
        document["deployments"] = [entry]
        prefect_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", name,
                   "--prefect-file", str(prefect_file), "--pool", pool]
        if cron:
            command += ["--cron", cron]
        if parameters:
            command += ["--params", json.dumps(manifest.flow_arguments(parameters))]
        # prefect.yaml's pull step is this folder, recorded from $PWD when deploying
        env = {**os.environ, "PWD": str(project), "PREFECT_API_URL": url}
        finished = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        output = (finished.stdout + finished.stderr).strip().splitlines()
        raise DeployError("prefect deploy failed:\n" + "\n".join(output[-15:]))
    return Deployment(manifest.flow.name, name, pool, url, hand_edited)


def serve(project: Path, *, name: str | None = None, cron: str | None = None,
          parameters: dict[str, Any] | None = None) -> None:
    """Serve the flow from this process until interrupted (the simplest setup: no worker)."""
    from prefect.flows import load_flow_from_entrypoint

    project = project.resolve()
    manifest = _manifest(project)
    flow: Any = load_flow_from_entrypoint(str(project / manifest.flow.entrypoint),
                                          use_placeholder_flow=False)
    flow.serve(name=name or manifest.flow.name.replace("_", "-"), cron=cron,
               parameters=manifest.flow_arguments(parameters or {}))


def _manifest(project: Path) -> Manifest:
    try:
        return load(project)
    except ManifestError as exc:
        raise UnreadableProject(str(exc)) from None
