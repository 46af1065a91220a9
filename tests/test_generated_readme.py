"""Every command block of a generated project's README.md works when pasted into bash, and a
parameter default never runs as a shell command (`$(touch PWN)`)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from markdown_it import MarkdownIt
from support import EXAMPLES, graph_of, write_notebook

from nb2pipe.convert import convert
from nb2pipe.generate.plan import make_plan
from nb2pipe.generate.project_files import Options, render_readme

# Quotes of both kinds, a command substitution and backticks: what breaks or runs when pasted.
HOSTILE_DEFAULT = "$(touch PWN) \"q\" 'a' `touch PWN2` \\"


def bash_blocks(readme: str) -> list[str]:
    return [token.content for token in MarkdownIt("commonmark").parse(readme)
            if token.type == "fence" and token.info == "bash"]


def hostile_project(tmp_path: Path) -> Path:
    folder = tmp_path / "nb"
    folder.mkdir()
    notebook = write_notebook(folder / "small.ipynb",
                              (f"title = {HOSTILE_DEFAULT!r}\ntimes = 2", "parameters"),
                              ("text = title * times", "step:make"),
                              ("size = len(text)\nprint(size)", "step:measure"))
    project = folder / "project"
    assert convert(notebook, project).ok
    return project


def test_run_command_is_one_shell_word_of_valid_python(tmp_path: Path) -> None:
    """The example call keeps its quotes when pasted (it broke on nested double quotes)."""
    for project, call in (
        (hostile_project(tmp_path), f"small(title={HOSTILE_DEFAULT!r})"),
        (_converted_example(tmp_path), 'churn(data_path="data/customers.csv")'),
    ):
        run_block = bash_blocks((project / "README.md").read_text())[0]
        line = next(x for x in run_block.splitlines() if x.startswith("python -c"))
        argv = shlex.split(line)
        assert argv[:2] == ["python", "-c"] and len(argv) == 3, argv
        assert argv[2].endswith(call), argv[2]
        compile(argv[2], "README", "exec")
        for block in bash_blocks((project / "README.md").read_text()):
            assert subprocess.run(["bash", "-n"], input=block, text=True).returncode == 0


def test_notebook_text_that_looks_like_a_template_placeholder_is_kept_as_written() -> None:
    """The README's prose is a string.Template: a notebook's `$pool` is not filled in."""
    plan = make_plan(graph_of(('title = "$pool ${slug} $$"\ntimes = 2', "parameters"),
                              ("text = title * times", "step:make")))
    readme = render_readme(plan, Options(notebook="../$version.ipynb"))
    assert '| `title` | `str` | `"$pool ${slug} $$"` |' in readme
    assert "test(title=\"$pool ${slug} $$\")" in readme
    assert "from `../$version.ipynb`:" in readme
    assert "--pool nb2pipe-process" in readme  # the template's own placeholders are filled


def _converted_example(tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "churn"
    shutil.copytree(EXAMPLES / "churn", folder, ignore=shutil.ignore_patterns("*_pipeline"))
    assert convert(folder / "churn.ipynb", folder / "project").ok
    return folder / "project"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def shell_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """What a terminal has: this Python's tools on PATH, a private Prefect home, no server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTEST_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    yield env


@pytest.mark.integration
def test_every_readme_block_works_when_pasted(tmp_path: Path, shell_env: dict[str, str]) -> None:
    """Run, Test and Deploy, block by block, in bash: the server and the worker in the
    background (each in its own terminal, says the README), on a free loopback port."""
    project = hostile_project(tmp_path)
    port = free_port()
    readme = (project / "README.md").read_text().replace(":4200/", f":{port}/")
    run, test, server, deploy, worker, trigger = bash_blocks(readme)
    logs = tmp_path / "logs"
    logs.mkdir()

    def paste(block: str, name: str, env: dict[str, str]) -> None:
        result = subprocess.run(["bash", "-e", "-o", "pipefail"], input=block, cwd=project,
                                env=env, capture_output=True, text=True, timeout=600)
        (logs / f"{name}.log").write_text(result.stdout + result.stderr)
        assert result.returncode == 0, (name, result.stdout[-2000:], result.stderr[-3000:])

    def background(block: str, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - the process owns it
        return subprocess.Popen(["bash", "-e", "-c", block], cwd=project, env=env,
                                stdout=log, stderr=log, start_new_session=True)

    api = f"http://127.0.0.1:{port}/api"
    paste(test, "test", shell_env)  # before the server starts: its own temporary one is enough
    started = background(server, "server", {**shell_env, "PREFECT_SERVER_API_PORT": str(port),
                                            "PREFECT_SERVER_API_HOST": "127.0.0.1"})
    processes = [started]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("prefect server start: " + (logs / "server.log").read_text()[-2000:])
        paste(run, "run", shell_env | {"PREFECT_API_URL": api})  # no temporary server per run
        paste(deploy, "deploy", shell_env)  # `prefect config set` points the rest at the server
        processes.append(background(worker, "worker", shell_env | {
            "PREFECT_WORKER_QUERY_SECONDS": "2"}))
        paste(trigger, "trigger", shell_env)
        assert "Flow run finished successfully" in (logs / "trigger.log").read_text()
    finally:
        for process in reversed(processes):
            stop(process)
    assert not list(tmp_path.rglob("PWN*")) and not list(Path.cwd().glob("PWN*"))
