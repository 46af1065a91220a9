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
import subprocess
import sys
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import tomllib
import yaml
from markdown_it import MarkdownIt
from packaging.requirements import Requirement

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
    # Nor do unpaired surrogates (a file name's bytes that are not UTF-8) fit in Python source.
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
                                    "display_name": text}}}), encoding="utf-8")
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
