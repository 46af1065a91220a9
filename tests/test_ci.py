"""nb2pipe in CI: the pre-commit hooks (run by pre-commit itself, offline, on a temporary git
repository) and the GitHub Action's scripts (run in bash as the runner would). Marked
integration: they run real tools in subprocesses, seconds each."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import EXAMPLES

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci", *args],
                   cwd=folder, check=True, capture_output=True)


def shell_env(tmp_path: Path) -> dict[str, str]:
    """A terminal where nb2pipe is installed (as the hooks and the action expect)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PRE_COMMIT"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
               PRE_COMMIT_HOME=str(tmp_path / "pre-commit-cache"), PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def notebooks_repo(tmp_path: Path) -> Path:
    """A git repository with a notebook and the project converted from it, committed."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "kale_wine", repo / "wine",
                    ignore=shutil.ignore_patterns("*_pipeline", "*.graph.json"))
    git(repo, "init", "-q")
    converted = subprocess.run([sys.executable, "-m", "nb2pipe", "convert", "wine/kale_wine.ipynb"],
                               cwd=repo, capture_output=True, text=True)
    assert converted.returncode == 0, converted.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "notebook and pipeline")
    return repo


def break_the_notebook(repo: Path) -> None:
    """A later cell uses a name nothing defines: check fails, and the project is stale."""
    path = repo / "wine" / "kale_wine.ipynb"
    raw = json.loads(path.read_text())
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    code[-1]["source"] = "score = undefined_score"
    path.write_text(json.dumps(raw, indent=1))


@pytest.mark.integration
def test_pre_commit_hooks_through_try_repo(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"  # the hooks' repository: this one's manifest, committed
    hooks.mkdir()
    shutil.copy(REPO / ".pre-commit-hooks.yaml", hooks)
    git(hooks, "init", "-q")
    git(hooks, "add", "-A")
    git(hooks, "commit", "-q", "-m", "hooks")
    repo = notebooks_repo(tmp_path)
    env = shell_env(tmp_path)

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "pre-commit"), "try-repo", str(hooks), "--all-files",
                               "--verbose"], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=300)

    clean = try_repo()
    assert clean.returncode == 0, clean.stdout[-3000:]
    assert re.search(r"nb2pipe check\.+Passed", clean.stdout)
    assert re.search(r"nb2pipe convert --check\.+Passed", clean.stdout)

    break_the_notebook(repo)
    broken = try_repo()
    assert broken.returncode == 1
    assert re.search(r"nb2pipe check\.+Failed", broken.stdout)
    assert re.search(r"wine/kale_wine\.ipynb:\d+:\d+: NB201 error: name 'undefined_score'",
                     broken.stdout), broken.stdout[-3000:]
    assert re.search(r"nb2pipe convert --check\.+Failed", broken.stdout)


def action() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text())
    return document


def test_action_is_composite_and_never_pastes_inputs_into_scripts() -> None:
    document = action()
    assert document["runs"]["using"] == "composite"
    scripts = [step for step in document["runs"]["steps"] if "run" in step]
    assert [s["name"] for s in scripts] == ["Install nb2pipe", "nb2pipe check",
                                            "nb2pipe convert --check"]
    for step in scripts:
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], step["name"]  # inputs arrive as environment only


def run_action(repo: Path, tmp_path: Path, inputs: dict[str, str]
               ) -> dict[str, subprocess.CompletedProcess[str]]:
    """The action's scripts, step by step, as a runner runs them: `${{ inputs.x }}` in `env`
    replaced by the input (or its default), GITHUB_ACTION_PATH the action's folder."""
    document = action()
    values = {name: inputs.get(name, spec.get("default", ""))
              for name, spec in document["inputs"].items()}
    results = {}
    for step in document["runs"]["steps"]:
        if "run" not in step:
            continue  # actions/setup-python: this test runs with the Python it has
        env = {**shell_env(tmp_path), "GITHUB_ACTION_PATH": str(REPO)}
        for name, value in (step.get("env") or {}).items():
            env[name] = re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}",
                               lambda m: values[m.group(1)], str(value))
        results[step["name"]] = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo,
                                               env=env, capture_output=True, text=True,
                                               timeout=600)
    return results


@pytest.mark.integration
def test_action_scripts_pass_a_clean_repository_and_annotate_a_broken_one(
        tmp_path: Path) -> None:
    repo = notebooks_repo(tmp_path)
    inputs = {"package": "nb2pipe"}  # installed here already: pip has nothing to fetch
    clean = run_action(repo, tmp_path, inputs)
    for name, result in clean.items():
        assert result.returncode == 0, (name, result.stdout[-2000:], result.stderr[-2000:])
    assert "wine/kale_wine.ipynb: 5 steps" in clean["nb2pipe check"].stdout
    assert "up to date with wine/kale_wine.ipynb" in clean["nb2pipe convert --check"].stdout

    break_the_notebook(repo)
    broken = run_action(repo, tmp_path, inputs)
    assert broken["nb2pipe check"].returncode == 1
    assert re.search(r"^::error file=wine/kale_wine\.ipynb,line=\d+,col=\d+,title=NB201::",
                     broken["nb2pipe check"].stdout, re.MULTILINE)
    assert broken["nb2pipe convert --check"].returncode == 1


@pytest.mark.integration
def test_action_input_is_a_pattern_never_a_command(tmp_path: Path) -> None:
    repo = notebooks_repo(tmp_path)
    results = run_action(repo, tmp_path, {"package": "nb2pipe",
                                          "notebooks": "$(touch PWN) `touch PWN2` wine/*.ipynb"})
    check = results["nb2pipe check"]
    assert "wine/kale_wine.ipynb: 5 steps" in check.stdout  # the pattern matched
    # The other words are file names that do not exist (exit 2), not commands.
    assert check.returncode == 2 and "nb2pipe: error: $(touch: no such file" in check.stderr
    assert not list(repo.glob("PWN*")) and not list(tmp_path.glob("PWN*"))


@pytest.mark.parametrize("snippet", ["pre-commit", "action"])
def test_readme_snippets_name_the_real_hooks_and_inputs(snippet: str) -> None:
    readme = (REPO / "README.md").read_text()
    if snippet == "pre-commit":
        ids = {hook["id"] for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
        block = re.search(r"```yaml\n(repos:.*?)```", readme, re.DOTALL)
        assert block, "README has no .pre-commit-config.yaml snippet"
        config = yaml.safe_load(block.group(1))
        assert {h["id"] for h in config["repos"][0]["hooks"]} == ids
    else:
        block = re.search(r"```yaml\n(on:.*?)```", readme, re.DOTALL)
        assert block, "README has no workflow snippet"
        workflow = yaml.safe_load(block.group(1))
        steps = next(iter(workflow["jobs"].values()))["steps"]
        used = next(s for s in steps if "nb2pipe" in str(s.get("uses", "")))
        assert set(used.get("with", {})) <= set(action()["inputs"])
