"""Nothing from a notebook or a project folder runs, escapes the folder or is lost.

Text from outside the cells (file and folder names, parameter defaults and help) reaches every
generated file only through one escaping function per language: each hostile name below is
converted, and every file is parsed with the tool that reads it and compared with the same
project made from a plain name.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import tomllib
import yaml
from browser.lab import Jupyter, running_jupyter
from markdown_it import MarkdownIt
from packaging.requirements import Requirement
from support import write_notebook

from nb2pipe.convert import ConvertError, convert

# Each becomes a notebook's file name, its folder's name and its string parameter's default and
# help text. They hold what ends a comment, a string, a line or a code block in some language,
# or runs when pasted into a shell.
HOSTILE = {
    "newline": "fn\nimport os; os.system('touch PWN')\n#",
    "carriage_return": "fn\rimport os; os.system('touch PWN')\r#",
    "unicode_breaks": "fn\u2028import os; os.system('touch PWN')\u2029x\x85y\x0b\x0c\x1c\x1e",
    "quotes": "q\"'\"\"\"'''\"",
    "docstring_end": 'x"""; __import__("os").system("touch PWN"); """',
    "html_comment_end": "x --> <script>alert(1)</script> <!-- y",
    "templates": "${{ github.token }} {{ prefect.variables.x }} {{ $HOME }}",
    "command_substitution": "$(touch PWN)",
    "backticks": "`touch PWN` ```",
    "hash": "# x",
    "index_url": "x\n--index-url http://127.0.0.1:9/simple\n-e .\n-r other.txt",
    "leading_option": "--index-url=http:",
    "yaml_syntax": "{a: b} & *x [c]: d, - e | >",
    "leading_dash": "- x",
    "emoji": "\U0001f600\U0001f680",
    "controls": "\x01\x07\x1b[31mred\x7f\x08",
    "bidi": "a\u202eb\u2066c",
    "trailing_backslash": "x\\",
    "not_utf8": os.fsdecode(b"\xff\xfeq"),
    "markdown": "*a* _b_ [c](http://x) <b>d</b> | e | $f$ ~~g~~ ![h](i)",
}
PLAIN = "plain"


def name_of(text: str) -> str:
    """A file name holding `text`: everything but '/' (and NUL, which has none) is allowed."""
    return text.replace("/", "_")


def hostile_notebook(folder: Path, text: str) -> Path:
    """A notebook named after `text`, with `text` as a parameter default and its help."""
    folder.mkdir(parents=True)
    # A comment holds one line (what str.splitlines() splits on stays out: that the notebook
    # reader splits on "\n" alone is the analysis' own test).
    # Unpaired surrogates (a file name's bytes that are not UTF-8) are no text: a notebook
    # holding them is refused as bad input (tests/test_cli.py).
    help_text = " ".join(text.splitlines()).encode("utf-8", "replace").decode()
    cells = [
        {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "outputs": [],
         "execution_count": None,
         "source": f"title = {text!r}  # {help_text}\nrepeat = 2  # how often"},
        {"cell_type": "code", "id": "a", "metadata": {"tags": ["step:make"]}, "outputs": [],
         "execution_count": None, "source": "text = title * repeat"},
        {"cell_type": "code", "id": "b", "metadata": {"tags": ["step:measure"]},
         "outputs": [], "execution_count": None, "source": "size = len(text)"},
    ]
    notebook = folder / f"{name_of(text)}.ipynb"
    notebook.write_text(json.dumps({
        "cells": cells, "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                    "display_name": help_text}}}), encoding="utf-8")
    return notebook


def convert_hostile(tmp_path: Path, text: str, *, docker: bool = False) -> Path:
    """The project of the notebook named `text`: in a folder named after `text` too, unless the
    project has a Dockerfile (paths a Dockerfile cannot hold are refused: tested apart)."""
    folder = tmp_path / ("nb" if docker else f"nb {name_of(text)}")
    notebook = hostile_notebook(folder, text)
    output = folder / ("project" if docker else f"project {name_of(text)}")
    result = convert(notebook, output, docker=docker)
    assert result.ok, [d.message for d in result.diagnostics]
    return output


def files_of(project: Path) -> dict[str, str]:
    return {p.relative_to(project).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(project.rglob("*")) if p.is_file()}


# --- how each language's own reader sees a generated file ----------------------------------

def python_shape(text: str) -> list[str]:
    """The module's syntax tree without names and constants: a hostile name may change the
    strings, never add a statement, a call or an import."""
    return [type(node).__name__ for node in ast.walk(ast.parse(text))]


def yaml_shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: yaml_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [yaml_shape(v) for v in value]
    return type(value).__name__


def yaml_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in yaml_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in yaml_strings(v)]
    return [value] if isinstance(value, str) else []


def pip_lines(text: str) -> list[str]:
    """requirements.txt as pip reads it: lines ending in a backslash joined, comments removed."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = pending + raw
        pending = ""
        line = line.split(" #", 1)[0].strip()
        if line:
            lines.append(line)
    assert not pending, "a continuation line at the end of the file"
    return lines


def markdown_shape(text: str) -> list[tuple[str, str]]:
    """Block structure as a CommonMark parser (with GitHub tables) sees it: fences with their
    language, headings, HTML blocks, table rows with their cell count."""
    parser = MarkdownIt("commonmark").enable("table")
    shape: list[tuple[str, str]] = []
    cells = 0
    for token in parser.parse(text):
        if token.type == "fence":
            shape.append(("fence", token.info))
        elif token.type in ("heading_open", "html_block", "table_open"):
            shape.append((token.type, token.tag))
        elif token.type in ("th_open", "td_open"):
            cells += 1
        elif token.type == "tr_close":
            shape.append(("row", str(cells)))
            cells = 0
    return shape


def dockerfile_shape(text: str) -> list[tuple[str, bool, int]]:
    return [(c.cmd, c.json, len(c.value)) for c in dockerfile.parse_string(text)]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, dict[str, str]]:
    """The projects of a plain name, with and without a Dockerfile."""
    return {docker: files_of(convert_hostile(tmp_path_factory.mktemp("plain"), PLAIN,
                                             docker=docker)) for docker in (False, True)}


@pytest.mark.parametrize("docker", [False, True], ids=["folders", "docker"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_outside_text_changes_no_generated_file_beyond_its_strings(
        case: str, docker: bool, tmp_path: Path, plain: dict[bool, dict[str, str]]) -> None:
    files = files_of(convert_hostile(tmp_path, HOSTILE[case], docker=docker))
    compare_with_plain(files, plain[docker])
    assert not list(tmp_path.rglob("PWN"))


def compare_with_plain(files: dict[str, str], plain: dict[str, str]) -> None:
    assert sorted(files) == sorted(plain)
    for path, content in files.items():
        assert "\x00" not in content, path
        if path.endswith(".py"):
            assert python_shape(content) == python_shape(plain[path]), path
        elif path.endswith(".yaml"):
            document = yaml.safe_load(content)
            assert yaml_shape(document) == yaml_shape(yaml.safe_load(plain[path]))
            templates = [s for s in yaml_strings(document) if "{{" in s]
            assert templates == ["{{ $PWD }}"], templates  # only the project's own
        elif path == "requirements.txt":
            requirements = [Requirement(line) for line in pip_lines(content)]
            assert [r.name for r in requirements] == [
                Requirement(line).name for line in pip_lines(plain[path])]
        elif path.endswith(".toml"):
            assert tomllib.loads(content) == tomllib.loads(plain[path])
        elif path.endswith(".md"):
            assert markdown_shape(content) == markdown_shape(plain[path])
            first = content.splitlines()[0]
            assert first.startswith("<!-- ") and first.endswith(" -->")
            assert first.count("--") == 2  # nothing closes the stamp's comment early
        elif path == "Dockerfile":
            assert dockerfile_shape(content) == dockerfile_shape(plain[path])
        elif path.endswith(".json"):
            json.loads(content)
        if path == "pipeline.json":  # the notebook's strings as JSON data
            continue
        new_lines = set(content.splitlines()) - set(plain[path].splitlines())
        assert not [line for line in new_lines
                    if line.lstrip().startswith(("import os", "--index-url", "-e ", "-r "))], path


@pytest.mark.parametrize("case", ["newline", "quotes", "emoji", "not_utf8", "controls"])
def test_parameter_default_keeps_its_exact_value(case: str, tmp_path: Path) -> None:
    text = HOSTILE[case]
    project = convert_hostile(tmp_path, text)
    flow = ast.parse((project / "flow.py").read_text(encoding="utf-8"))
    defaults = [ast.literal_eval(d) for node in ast.walk(flow) if isinstance(node, ast.FunctionDef)
                for d in node.args.defaults]
    assert text in defaults


def test_a_path_a_dockerfile_cannot_hold_is_refused_before_writing(tmp_path: Path) -> None:
    notebook = hostile_notebook(tmp_path / "nb", PLAIN)
    project = tmp_path / "nb" / "$(touch PWN)"
    with pytest.raises(ConvertError, match=r"Dockerfile cannot hold safely"):
        convert(notebook, project, docker=True)
    assert not project.exists()
    assert convert(notebook, project).ok  # without a Dockerfile it converts
    spaced = tmp_path / "nb" / "my project"  # a space is fine: COPY takes the JSON form
    assert convert(notebook, spaced, docker=True).ok
    commands = dockerfile.parse_string((spaced / "Dockerfile").read_text())
    copy = next(c for c in commands if c.cmd == "COPY")
    assert copy.json and copy.value == ("my project/requirements.txt", "/opt/requirements.txt")
    assert commands[-1].value == ("/opt/pipeline/my project",)


def test_pip_options_in_the_notebook_are_not_requirement_lines(tmp_path: Path) -> None:
    from nb2pipe.generate.requirements import render_requirements, requirements

    found = requirements([], ["--index-url", "http://127.0.0.1:9/simple", "-e", ".",
                              "http://127.0.0.1:9/x.whl", "tqdm==4.66.0\n-r x.txt",
                              "pandas>=2", "pkg @ https://example.org/pkg-1.0.tar.gz"],
                         tmp_path)
    lines = pip_lines(render_requirements(found, "x.ipynb"))
    names = {Requirement(line).name for line in lines}
    assert {"pandas", "pkg"} <= names and "tqdm" not in names
    assert not any(line.startswith("-") or line.startswith("http") for line in lines)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_check_output_stays_one_line_per_finding(case: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from nb2pipe.cli import main
    from nb2pipe.escape import one_line

    notebook = hostile_notebook(tmp_path / "nb", HOSTILE[case])
    raw = json.loads(notebook.read_text())
    raw["cells"][2]["source"] = "size = len(text) + missing"  # one finding, about this file
    notebook.write_text(json.dumps(raw))
    assert main(["check", str(notebook)]) == 1
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 4 and lines[-1] == "", lines  # the finding, its hint, the summary
    assert lines[0].startswith(f"{one_line(str(notebook))}:") and " NB201 error: " in lines[0]
    assert lines[1].startswith("    hint: ")
    assert lines[2].startswith(one_line(str(notebook)) + ": 2 steps")


@pytest.mark.integration
def test_hostile_projects_import_and_run_without_side_effects(tmp_path: Path) -> None:
    """Each project's modules imported by Python itself, and its requirements read by pip."""
    projects = [convert_hostile(tmp_path / case, HOSTILE[case]) for case in sorted(HOSTILE)]
    script = (
        "import importlib, sys\n"
        "for project in sys.argv[1:]:\n"
        "    sys.path.insert(0, project)\n"
        "    for name in ('steps', 'flow', 'tests.test_steps', 'tests.test_flow', 'tests'):\n"
        "        sys.modules.pop(name, None)\n"
        "    steps = importlib.import_module('steps')\n"
        "    importlib.import_module('flow')\n"
        "    importlib.import_module('tests.test_steps')\n"
        "    assert steps.make('ab', 2) == {'text': 'abab'}, steps.make('ab', 2)\n"
        "    sys.path.remove(project)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    result = subprocess.run([sys.executable, "-c", script, *map(str, projects)], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    files = [arg for project in projects for arg in ("-r", str(project / "requirements.txt"))]
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index",
                          "--disable-pip-version-check", *files],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    assert "Would install" not in pip.stdout, pip.stdout  # nothing beyond what is here
    assert not list(tmp_path.rglob("PWN"))


# --- Export never runs notebook code ------------------------------------------------------

def marker_notebook(folder: Path, *, seconds: float = 0) -> Path:
    """A notebook that leaves a line in RAN (beside it) each time its code runs."""
    folder.mkdir(parents=True, exist_ok=True)
    pause = f"import time\ntime.sleep({seconds})\n" if seconds else ""
    return write_notebook(folder / "marked.ipynb",
                          (f"{pause}with open('RAN', 'a') as f:\n    f.write('ran\\n')\nx = 1",
                           "step:first"),
                          ("y = x + 1", "step:second"))


def planted_manifest(project: Path, document: dict[str, Any]) -> None:
    """A pipeline.json that looks written by nb2pipe (its self-hash is valid)."""
    from nb2pipe.writer import manifest_bytes

    project.mkdir(parents=True, exist_ok=True)
    (project / "pipeline.json").write_bytes(manifest_bytes(document, {}))


def test_a_manifest_in_the_folder_never_makes_convert_run_the_notebook(tmp_path: Path) -> None:
    notebook = marker_notebook(tmp_path / "nb")
    output = tmp_path / "nb" / "project"
    planted_manifest(output, {"options": {"record": True}})
    result = convert(notebook, output)
    assert result.ok
    assert not (tmp_path / "nb" / "RAN").exists()  # the notebook did not run
    assert not (output / "tests" / "fixtures").exists()
    assert convert(notebook, output, check=True).stale == []  # and --check runs nothing either
    assert not (tmp_path / "nb" / "RAN").exists()


@pytest.mark.integration
def test_recorded_fixtures_are_kept_until_recorded_again_or_dropped(tmp_path: Path) -> None:
    notebook = marker_notebook(tmp_path / "nb")
    output = tmp_path / "nb" / "project"
    ran = tmp_path / "nb" / "RAN"
    assert convert(notebook, output, record=True).ok
    assert ran.read_text() == "ran\n"
    fixtures = sorted(p.name for p in (output / "tests" / "fixtures").rglob("*") if p.is_file())
    assert fixtures
    raw = json.loads(notebook.read_text())
    raw["cells"][1]["source"] = "y = x + 2"
    notebook.write_text(json.dumps(raw))
    result = convert(notebook, output)  # kept as they are, not recorded again
    assert result.ok and ran.read_text() == "ran\n"
    assert sorted(p.name for p in (output / "tests" / "fixtures").rglob("*")
                  if p.is_file()) == fixtures
    assert convert(notebook, output, check=True).stale == []
    assert convert(notebook, output, record=False).ok  # --no-record drops them
    assert not (output / "tests" / "fixtures").exists()  # no empty folders left either
    assert ran.read_text() == "ran\n"


# A server whose users may read and write files but, when a request says it comes from a
# reader, not execute code; an audit hook logs every file the server process writes.
SERVER_CONFIG = '''
import json, os, sys
from jupyter_server.auth import Authorizer

class ReaderAuthorizer(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        reader = handler.request.headers.get("X-Test-Role") == "reader"
        return not (reader and action == "execute")

c.ServerApp.authorizer_class = ReaderAuthorizer

_log = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

def _where(path, dir_fd=None):
    path = os.fsdecode(path)
    if dir_fd is not None and not os.path.isabs(path):
        path = os.path.join(os.readlink(f"/proc/self/fd/{{dir_fd}}"), path)
    return os.path.abspath(path)

def _audit(event, args):
    try:
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            if args[2] & _WRITES or (args[1] or "r")[0] in "wax":
                paths = [_where(args[0])]
            else:
                return
        elif event == "os.rename":
            paths = [_where(args[0], args[2]), _where(args[1], args[3])]
        elif event in ("os.remove", "os.rmdir", "os.mkdir", "os.symlink", "shutil.rmtree"):
            paths = [_where(args[0], args[-1] if isinstance(args[-1], int) else None)]
        else:
            return
        os.write(_log, (json.dumps([event, paths]) + "\\n").encode())
    except Exception:
        pass

sys.addaudithook(_audit)
'''


@dataclass
class Server:
    jupyter: Jupyter
    writes: Path  # the audit log: one JSON line per file written

    def request(self, method: str, path: str, body: Any = None, *, reader: bool = False
                ) -> tuple[int, Any]:
        headers = {"Authorization": f"token {self.jupyter.token}",
                   "Content-Type": "application/json"}
        if reader:
            headers["X-Test-Role"] = "reader"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.jupyter.url + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return status, json.loads(raw) if raw else None

    def written_outside(self, *allowed: Path) -> list[str]:
        """Files the server wrote under the root's parent, outside the root and `allowed`."""
        inside = [str(p.resolve()) for p in (self.jupyter.root, *allowed)]
        parent = str(self.jupyter.root.resolve().parent)
        found = []
        for line in self.writes.read_text().splitlines():
            for path in json.loads(line)[1]:
                if path.startswith(parent + os.sep) and not any(
                        path == p or path.startswith(p + os.sep) for p in inside):
                    found.append(path)
        return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("root")
    state = tmp_path_factory.mktemp("state")
    writes = state / "writes.jsonl"
    (state / "config").mkdir()
    (state / "config" / "jupyter_server_config.py").write_text(
        SERVER_CONFIG.format(log=str(writes)))
    with running_jupyter(root, state) as jupyter:
        yield Server(jupyter, writes)


def api_path(server: Server, path: Path) -> str:
    return path.relative_to(server.jupyter.root).as_posix()


@pytest.mark.integration
def test_export_never_runs_code_because_of_a_file_in_the_folder(server: Server,
                                                                tmp_path: Path) -> None:
    folder = server.jupyter.root / tmp_path.name
    notebook = marker_notebook(folder)
    project = folder / "project"
    planted_manifest(project, {"options": {"record": True}})
    status, reply = server.request("POST", "nb2pipe/export", {
        "path": api_path(server, notebook), "output": api_path(server, project)})
    assert status == 200, reply
    assert not (folder / "RAN").exists()
    assert not (project / "tests" / "fixtures").exists()


@pytest.mark.integration
def test_recording_needs_permission_to_execute_and_runs_off_the_event_loop(
        server: Server, tmp_path: Path) -> None:
    folder = server.jupyter.root / tmp_path.name
    notebook = marker_notebook(folder, seconds=3)
    body = {"path": api_path(server, notebook), "output": api_path(server, folder / "project"),
            "record": True}
    status, reply = server.request("POST", "nb2pipe/export", body, reader=True)
    assert status == 403 and "execute" in reply["message"], reply
    assert not (folder / "RAN").exists() and not (folder / "project").exists()

    replies: list[tuple[int, Any]] = []
    export = threading.Thread(target=lambda: replies.append(
        server.request("POST", "nb2pipe/export", body)))
    export.start()
    while not (folder / "RAN").exists() and export.is_alive():  # the notebook is running
        time.sleep(0.1)
    status_while_recording = server.request("GET", "api/status")[0]
    still_recording = export.is_alive()  # the server answered while the export was busy
    export.join()
    assert replies[0][0] == 200, replies
    assert (status_while_recording, still_recording) == (200, True)
    assert (folder / "RAN").read_text() == "ran\n"
    assert (folder / "project" / "tests" / "fixtures").is_dir()


# --- paths from pipeline.json and links in the folder ---------------------------------------

def tree(folder: Path) -> dict[str, bytes | str]:
    """Every file (content) and link (its target) under `folder`, dot files included."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[name] = path.read_bytes()
    return found


def small_notebook(folder: Path, factor: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_notebook(folder / "small.ipynb", (f"factor = {factor}", "parameters"),
                          ("numbers = list(range(10))", "step:load"),
                          ("scaled = [n * factor for n in numbers]", "step:scale"),
                          ("total = sum(scaled)", "step:report"))


@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
@pytest.mark.parametrize("entry", ["../../outside/victim.txt", "ABSOLUTE", "tests/../../x.txt",
                                   "tests\\..\\..\\x.txt", "./README.md", ".nb2pipe-staging/x",
                                   ""])
def test_paths_listed_in_pipeline_json_never_leave_the_folder(entry: str, force: bool,
                                                              tmp_path: Path) -> None:
    from nb2pipe.writer import manifest_bytes

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("not nb2pipe's")
    entry = str(outside / "victim.txt") if entry == "ABSOLUTE" else entry
    notebook = small_notebook(tmp_path / "work")
    project = tmp_path / "work" / "project"
    project.mkdir()
    (project / "pipeline.json").write_bytes(manifest_bytes(  # its own hash is valid
        {"options": {}}, {entry: (outside / "victim.txt").read_bytes()}))
    before = tree(tmp_path)
    with pytest.raises(ConvertError, match=r"pipeline\.json: lists .* not a path inside"):
        convert(notebook, project, force=force)
    assert tree(tmp_path) == before  # nothing deleted, nothing copied anywhere


def test_a_symlinked_sub_folder_leading_out_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    notebook = small_notebook(tmp_path / "work")
    project = tmp_path / "work" / "project"
    project.mkdir()
    (project / "tests").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ConvertError, match=r"tests.* leads outside .* through a symbolic link"):
        convert(notebook, project)
    assert list(elsewhere.iterdir()) == [] and tree(project) == {"tests": f"-> {elsewhere}"}
    assert "tests/test_steps.py: a link leading outside the project folder" in convert(
        notebook, project, check=True).stale
    (project / "tests").unlink()
    (project / "flow.py").symlink_to(elsewhere / "flow.py")  # a file link, even dangling
    with pytest.raises(ConvertError, match=r"flow\.py: leads outside"):
        convert(notebook, project, force=True)
    assert list(elsewhere.iterdir()) == []


def test_links_that_stay_inside_the_folder_are_written_through(tmp_path: Path) -> None:
    notebook = small_notebook(tmp_path / "work")
    project = tmp_path / "work" / "project"
    (project / "real-tests").mkdir(parents=True)
    (project / "tests").symlink_to("real-tests", target_is_directory=True)
    assert convert(notebook, project).ok
    assert (project / "real-tests" / "test_steps.py").is_file()


WRITE_EVENTS = ("open", "os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink",
                "os.link", "shutil.rmtree", "shutil.copyfile", "os.truncate", "os.chmod")


def written_paths(event: str, args: tuple[Any, ...]) -> list[str]:
    """The paths an audited file operation changes ([] for reads and other events)."""
    def where(path: Any, dir_fd: Any = None) -> str:
        path = os.fsdecode(path)
        if isinstance(dir_fd, int) and not os.path.isabs(path):
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        return os.path.abspath(path)

    if event == "open":
        path, mode, flags = args
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        if not isinstance(path, str | bytes | os.PathLike) or not (
                writing or (mode or "r")[0] in "wax"):
            return []
        return [where(path)]
    if event == "os.rename":
        return [where(args[0], args[2]), where(args[1], args[3])]
    if event == "os.link":
        return [where(args[1], args[3])]
    if event in WRITE_EVENTS:
        dir_fd = args[-1] if event != "shutil.copyfile" else None
        return [where(args[1] if event == "shutil.copyfile" else args[0], dir_fd)]
    return []


def in_child(work: Any, *, kill_at: int | None = None, watch: Path | None = None
             ) -> tuple[list[str], bool]:
    """Run `work()` in a forked process that records every file operation that writes; with
    `kill_at`, the process SIGKILLs itself just before its `kill_at`-th such operation under
    `watch`. Returns the operations (their paths, NUL-separated) and whether it was killed."""
    import signal

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_end)
        count = 0

        def audit(event: str, args: tuple[Any, ...]) -> None:
            nonlocal count
            try:
                paths = written_paths(event, args)
            except Exception:  # an odd argument is not a write we track
                return
            if paths:  # one line per operation, its paths separated by NUL
                os.write(write_end, ("\0".join(paths) + "\n").encode("utf-8", "surrogateescape"))
            if kill_at is not None and watch is not None and any(
                    p == str(watch) or p.startswith(str(watch) + os.sep) for p in paths):
                count += 1
                if count == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

        sys.addaudithook(audit)
        code = 0
        try:
            work()
        except BaseException:  # reported as the exit status
            code = 1
        os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert killed or os.WEXITSTATUS(status) == 0, "the work failed in the child"
    return b"".join(chunks).decode("utf-8", "surrogateescape").splitlines(), killed


def test_staging_happens_inside_the_output_folder(tmp_path: Path) -> None:
    """An output folder that is a server's root (or "."): nothing is written beside it."""
    root = tmp_path / "root"
    notebook = small_notebook(root)
    written, _ = in_child(lambda: convert(notebook, root))
    paths = [p for operation in written for p in operation.split("\0")]
    beside = [p for p in paths if p.startswith(str(tmp_path) + os.sep)
              and not (p == str(root) or p.startswith(str(root) + os.sep))]
    assert beside == [] and any(p.endswith("flow.py") for p in paths)
    assert (root / "flow.py").is_file() and not (root / ".nb2pipe-staging").exists()


@pytest.mark.integration
def test_export_refuses_a_manifest_listing_files_outside(server: Server, tmp_path: Path,
                                                         tmp_path_factory: pytest.TempPathFactory
                                                         ) -> None:
    from nb2pipe.writer import manifest_bytes

    outside = tmp_path_factory.mktemp("victim")
    (outside / "victim.txt").write_text("not nb2pipe's")
    folder = server.jupyter.root / tmp_path.name
    notebook = small_notebook(folder)
    (folder / "project").mkdir()
    entry = os.path.relpath(outside / "victim.txt", folder / "project")
    (folder / "project" / "pipeline.json").write_bytes(manifest_bytes(
        {"options": {}}, {entry: (outside / "victim.txt").read_bytes()}))
    status, reply = server.request("POST", "nb2pipe/export", {
        "path": api_path(server, notebook), "output": api_path(server, folder / "project")})
    assert status == 409 and "not a path inside the project" in reply["message"], reply
    assert tree(outside) == {"victim.txt": b"not nb2pipe's"}
    assert server.written_outside(server.writes.parent) == []


@pytest.mark.integration
def test_export_through_a_symlinked_sub_folder_is_refused(server: Server, tmp_path: Path,
                                                          tmp_path_factory: pytest.TempPathFactory
                                                          ) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    folder = server.jupyter.root / tmp_path.name
    notebook = small_notebook(folder)
    (folder / "project").mkdir()
    (folder / "project" / "tests").symlink_to(elsewhere, target_is_directory=True)
    status, reply = server.request("POST", "nb2pipe/export", {
        "path": api_path(server, notebook), "output": api_path(server, folder / "project")})
    assert status == 409 and "leads outside" in reply["message"], reply
    assert list(elsewhere.iterdir()) == []
    assert server.written_outside(server.writes.parent) == []


@pytest.mark.integration
def test_export_into_the_root_itself_writes_nothing_beside_it(server: Server) -> None:
    notebook = small_notebook(server.jupyter.root / "top")
    status, reply = server.request("POST", "nb2pipe/export", {
        "path": api_path(server, notebook), "output": "."})
    assert status == 200, reply
    assert (server.jupyter.root / "flow.py").is_file()
    assert server.written_outside(server.writes.parent) == []


# --- a convert killed at any point -------------------------------------------------------

USER_FILES = {"notes.md": b"my notes\n", "data/input.csv": b"a,b\n1,2\n",
              "tests/test_mine.py": b"def test_mine():\n    pass\n"}


def killable_project(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes | str]]:
    """A project converted from version 1 of a notebook (with a Dockerfile), files of the
    user's own added; the notebook then changed to version 2 (a step more, no Dockerfile)."""
    notebook = small_notebook(tmp_path / "work")
    project = tmp_path / "work" / "project"
    assert convert(notebook, project, docker=True).ok
    for name, content in USER_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_bytes(content)
    write_notebook(notebook, ("factor = 4", "parameters"),
                   ("numbers = list(range(12))", "step:load"),
                   ("scaled = [n * factor for n in numbers]", "step:scale"),
                   ("shifted = [n + 1 for n in scaled]", "step:shift"),
                   ("total = sum(shifted)", "step:report"))
    expected = tmp_path / "expected"
    shutil.copytree(notebook.parent, expected, ignore=shutil.ignore_patterns("project"))
    assert convert(expected / notebook.name, expected / "project", docker=False).ok
    after = {**tree(expected / "project"), **USER_FILES}
    return notebook, project, after


def kill_and_recover(notebook: Path, project: Path, saved: Path, point: int,
                     after: dict[str, bytes | str], before: dict[str, bytes | str]) -> bool:
    """Restore the project, kill a convert just before its `point`-th write in the folder,
    check what it left, convert again; returns whether the process was killed."""
    shutil.rmtree(project)
    shutil.copytree(saved, project, symlinks=True)
    _, killed = in_child(lambda: convert(notebook, project, docker=False),
                         kill_at=point, watch=project)
    state = tree(project)
    for name, content in USER_FILES.items():
        assert state[name] == content, (point, name)  # the user's files are never touched
    visible = {k: v for k, v in state.items() if not k.startswith(".nb2pipe-staging/")}
    if ".nb2pipe-staging/journal.json" in state:  # committed: some files may be new already
        assert all(v in (before.get(k), after.get(k)) for k, v in visible.items()), point
        assert ".nb2pipe-staging: a conversion was interrupted" in " ".join(
            convert(notebook, project, check=True).stale)
    else:  # never committed, or complete: the old project or the new one, nothing between
        assert visible in (before, after), point
    assert convert(notebook, project, docker=False).ok  # finishes or discards the write
    assert tree(project) == after, point
    return killed


@pytest.mark.integration
def test_a_convert_killed_at_any_point_leaves_old_or_new_and_loses_nothing(
        tmp_path: Path) -> None:
    notebook, project, after = killable_project(tmp_path)
    before = tree(project)
    saved = tmp_path / "saved"
    shutil.copytree(project, saved, symlinks=True)
    point = 0
    while kill_and_recover(notebook, project, saved, point + 1, after, before):
        point += 1
    assert point > 20, point  # every write of the conversion was a kill point


def test_a_convert_killed_before_during_and_after_its_commit(tmp_path: Path) -> None:
    """The fast version: a few kill points (the whole sweep is an integration test)."""
    notebook, project, after = killable_project(tmp_path)
    before = tree(project)
    saved = tmp_path / "saved"
    shutil.copytree(project, saved, symlinks=True)
    written, _ = in_child(lambda: convert(notebook, project, docker=False))
    inside = [op for op in written if any(p == str(project) or p.startswith(str(project) + os.sep)
                                          for p in op.split("\0"))]
    commit = next(i for i, op in enumerate(inside, start=1) if op.endswith("journal.json"))
    shutil.rmtree(project)
    shutil.copytree(saved, project, symlinks=True)
    for point in (1, commit - 1, commit + 2, commit + 5, len(inside)):
        assert kill_and_recover(notebook, project, saved, point, after, before), point


@pytest.mark.integration
def test_a_killed_recovery_is_itself_recovered(tmp_path: Path) -> None:
    notebook, project, after = killable_project(tmp_path)
    fresh = tmp_path / "fresh"
    shutil.copytree(project, fresh, symlinks=True)
    point = 0
    while True:  # the first kill after the write committed: a journal to roll forward
        point += 1
        _, killed = in_child(lambda: convert(notebook, project, docker=False),
                             kill_at=point, watch=project)
        assert killed
        if (project / ".nb2pipe-staging" / "journal.json").exists():
            break
        shutil.rmtree(project / ".nb2pipe-staging", ignore_errors=True)
    again = 0
    while True:  # now kill the next convert, which first finishes the journal, at every point
        again += 1
        # The interrupted write is made again in place each time: a copied staging folder is
        # not one nb2pipe made there, and is never followed (tests/test_hostile_folders.py).
        shutil.rmtree(project)
        shutil.copytree(fresh, project, symlinks=True)
        _, killed = in_child(lambda: convert(notebook, project, docker=False),
                             kill_at=point, watch=project)
        assert killed and (project / ".nb2pipe-staging" / "journal.json").exists()
        _, killed = in_child(lambda: convert(notebook, project, docker=False),
                             kill_at=again, watch=project)
        assert convert(notebook, project, docker=False).ok
        assert tree(project) == after, again
        if not killed:
            break
    assert again > 5


def test_an_edit_made_after_a_killed_write_is_kept_when_it_is_finished(tmp_path: Path) -> None:
    counted, project = killable_project(tmp_path / "count")[:2]
    written, _ = in_child(lambda: convert(counted, project, docker=False))
    inside = [op for op in written if str(project) in op]
    commit = next(i for i, op in enumerate(inside, start=1) if op.endswith("journal.json"))
    notebook, project, after = killable_project(tmp_path / "kill")
    _, killed = in_child(lambda: convert(notebook, project, docker=False),
                         kill_at=commit + 1, watch=project)  # committed, nothing replaced yet
    assert killed and (project / ".nb2pipe-staging" / "journal.json").exists()
    steps = project / "steps.py"
    steps.write_text(steps.read_text() + "# my change\n")
    with pytest.raises(ConvertError, match=r"steps\.py.*--force"):
        convert(notebook, project, docker=False)  # finishes the write, but not over the edit
    assert steps.read_text().endswith("# my change\n")
    assert not (project / ".nb2pipe-staging").exists()
    assert tree(project)["flow.py"] == after["flow.py"]  # the rest of the write was finished
