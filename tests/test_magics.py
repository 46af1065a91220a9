"""IPython syntax becomes plain Python, line for line."""

from __future__ import annotations

import pytest

from nb2pipe.notebook.magics import pip_requirements, transform


@pytest.mark.parametrize("source", [
    "%matplotlib inline\nimport x",
    "!pip install foo\nx = 1",
    "%%time\nx = 1\ny = 2",
    "x?",
    "a = !ls {d}",
    "%time x = \\\n  3\ny = 1",
    "if x:\n    %matplotlib inline\n",
    "%%bash\necho hi\nls",
    "%%writefile out.txt\nhello\n",
    "%%html\n<b>x</b>",
    "%env A=1\n%cd /tmp",
    "x = 1\n\n\n",
    "",
])
def test_line_count_is_preserved(source: str) -> None:
    assert len(transform(source).code.split("\n")) == max(len(source.splitlines()), 1)


def test_notebook_only_magics_become_comments() -> None:
    result = transform("%matplotlib inline\n%load_ext autoreload\nx = 1")
    assert result.code == "# %matplotlib inline\n# %load_ext autoreload\nx = 1"


def test_magic_inside_a_block_keeps_the_block_valid() -> None:
    result = transform("if x:\n    %matplotlib inline")
    assert result.code == "if x:\n    pass  # %matplotlib inline"


def test_pip_installs_become_requirements() -> None:
    result = transform("!pip install -q pandas==2.2 'numpy>=1'\n%pip install tqdm")
    assert result.requirements == ["pandas==2.2", "numpy>=1", "tqdm"]
    assert result.code.splitlines()[0].startswith("# !pip install")


def test_cell_magic_body_stays_python() -> None:
    assert transform("%%time\ntotal = 1\nmore = 2").code == "# %%time\ntotal = 1\nmore = 2"


def test_line_time_magic_keeps_its_statement() -> None:
    assert transform("%time result = f()").code == "result = f()"
    assert transform("%timeit -n 3 -r 2 f()").code == "f()"


def test_shell_commands_use_subprocess() -> None:
    result = transform("!echo hi\nfiles = !ls {folder}")
    assert result.imports == {"subprocess"}
    first, second = result.code.splitlines()
    assert first == "subprocess.run('echo hi', shell=True, check=True)"
    assert second.startswith("files = subprocess.run(f'ls {folder}'")


def test_bash_and_writefile_cells_run_their_body() -> None:
    bash = transform("%%bash\necho hi\necho there")
    compile(bash.code, "<cell>", "exec")
    assert "subprocess.run(['bash']" in bash.code
    written = transform("%%writefile notes.txt\nhello")
    assert "pathlib.Path('notes.txt').open('w').write(" in written.code
    compile(written.code, "<cell>", "exec")


def test_unknown_cell_magic_is_reported_and_left_out() -> None:
    result = transform("%%sql\nselect 1")
    assert result.unsupported == [(1, "%%sql")]
    assert result.code == "# %%sql\n# select 1"


def test_plain_python_is_untouched() -> None:
    source = "a = 1  # what? no magic here\nb = a % 2"
    assert transform(source).code == source


@pytest.mark.parametrize(("args", "expected"), [
    ("install pandas", ["pandas"]),
    ("install -U 'scikit-learn>=1.3' -r req.txt x", ["scikit-learn>=1.3", "x"]),
    ("install --quiet {pkg}", []),
])
def test_pip_requirements(args: str, expected: list[str]) -> None:
    assert pip_requirements(args) == expected
