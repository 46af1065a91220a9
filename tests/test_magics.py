"""IPython syntax becomes plain Python, line for line."""

from __future__ import annotations

import ast
import json

import pytest
from support import EXAMPLES, NOTEBOOKS

from nb2pipe.model import split_lines
from nb2pipe.notebook import ipython
from nb2pipe.notebook.ipython import reference_transform, to_ipython
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
    assert len(transform(source).code.split("\n")) == len(source.split("\n"))


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


def test_timeit_cell_becomes_a_function_called_once_after_its_last_line() -> None:
    """The one exception to line for line: IPython runs the body in a function of its own."""
    result = transform("%%timeit -n 3 k = 2\nx = k\nf(x)")
    assert result.code.split("\n") == [
        "def _nb2pipe_timeit():  # %%timeit -n 3 k = 2", "    k = 2; x = k", "    f(x)",
        "_nb2pipe_timeit()  # run once: timing is not the pipeline's"]
    assert transform("%%time\nx = 1").code == "# %%time\nx = 1"


def test_line_time_magic_keeps_its_statement() -> None:
    assert transform("%time result = f()").code == "result = f()"
    assert transform("%timeit -n 3 -r 2 f()").code == "f()"
    assert transform("%mprun -f f -f g f(3)").code == "f(3)"  # -f takes a function name
    assert transform("%prun -r -s cumtime f()").code == "f()"  # -r takes none
    assert transform("%memit -r 2 -i f()").code == "f()"


def test_shell_commands_use_subprocess() -> None:
    result = transform("!echo hi\nfiles = !ls {folder}")
    assert result.imports == {"subprocess"}
    first, second = result.code.splitlines()
    assert first == "subprocess.run('echo hi', shell=True)"
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
    assert [(u.line, u.magic) for u in result.unsupported] == [(1, "%%sql")]
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


# -- the rewrite of IPython syntax is IPython's own ----------------------------------------------

# Forms rewritten without importing IPython; each must give exactly what IPython gives.
COMMON_FORMS = [
    "%matplotlib inline", "%matplotlib inline\nimport x", "  %matplotlib inline\n  x = 1",
    "if x:\n    %matplotlib inline\n", "\tif x:\n\t\t%load_ext autoreload", "%load_ext autoreload\n"
    "%autoreload 2", "%time x = 1", "%timeit -n 3 -r2 f()", "!pip install -q pandas==2.2",
    "!ls -l  ", "! ls", "!!ls", "files = !ls {folder}", "x = %time 3", "a, b = %who_ls",
    "x.y = !ls", "x =!ls", "\u00fc = !ls", "% matplotlib inline", "%", "!", "x = % time 3",
    "for f in files:\n    !echo {f}", "x = 1\n\n\n%env A=1", "\n\n%ls\nx=1",
    "!find . -name x -exec rm {} \\;", "!awk '{print $1}' f", "%run script.py", "%cd /tmp",
    "%pip install numpy", "%config InlineBackend.figure_format = 'retina'", "%pylab inline",
    "# a comment?\nx = 1", "x = 'a?'", "print(a != b)", "x = 1; %ls", "s = 'a=%d' % 3",
    "x = 10 % 3", "%who\n%whos\nx = !pwd\n!echo done", "try:\n    %time f()\nexcept E:\n    pass",
]
# Forms IPython itself rewrites (or decides to leave alone): help, prompts, continued escapes,
# escapes inside brackets or strings, autocall.
OTHER_FORMS = [
    "df?", "?df", "df.head??", "%ls \\\n -l\nx = 1", ">>> x = 1\n... y = 2", "In [1]: %ls",
    "s = '''\n%not a magic\n'''", "x = (1 +\n%2)", "a = b = %foo", "x: int = %foo",
    "x = %5", "%%bash\necho", "x = 1\n%%time\ny = 2", "/print 1 2", ",print a b",
    "x = !=3", "x = 1 + \\\n%ls", "%=", "y = [\n    !ls\n]",
    "df['a'] = !ls", "x = %%time",
]


def _normalized(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip()]


def _reference(source: str) -> list[str]:
    return _normalized(reference_transform(source).split("\n"))


@pytest.mark.parametrize("source", COMMON_FORMS)
def test_common_forms_are_rewritten_as_ipython_does_without_it(
        source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(lines: list[str]) -> list[str]:
        raise AssertionError(f"IPython was needed for {source!r}")

    monkeypatch.setattr(ipython, "with_ipython", refuse)
    assert _normalized(to_ipython(split_lines(source))) == _reference(source)


@pytest.mark.parametrize("source", OTHER_FORMS)
def test_other_forms_are_rewritten_as_ipython_does(source: str) -> None:
    lines = split_lines(source)
    rewritten = to_ipython(lines)
    assert _normalized(rewritten) == _reference(source)
    assert len(rewritten) == len(lines)  # IPython joins and drops lines; each stays in place


def test_every_cell_of_the_examples_and_test_notebooks_matches_ipython() -> None:
    for path in (*NOTEBOOKS.glob("*.ipynb"), *EXAMPLES.glob("*/*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or source.lstrip().startswith("%%"):
                continue
            if len(source.splitlines()) != len(split_lines(source.rstrip("\n"))):
                continue  # IPython breaks lines where Python does not (see the test below)
            assert _normalized(to_ipython(split_lines(source))) == _reference(source), path


def test_line_breaks_only_str_splitlines_sees_are_kept_inside_their_line() -> None:
    # IPython splits "!echo a<U+2028>b" into a command and a line `b`; Python (and so the
    # pipeline) sees one line: the command keeps its text, whichever path rewrites it.
    for source in ("!echo a\u2028b", "?x\ns = 'a\x0cb'\n%ls"):
        lines = split_lines(source)
        assert len(to_ipython(lines)) == len(lines)
    command = "echo a\u2028b"
    assert to_ipython([f"!{command}"]) == [f"get_ipython().system({command!r})"]
    assert to_ipython(["?x", "s = 'a\x0cb'", "%ls"])[1] == "s = 'a\x0cb'"


def test_leading_blank_lines_keep_every_line_in_place() -> None:
    result = transform("\n\n%matplotlib inline\nx = 1")
    assert result.code == "\n\n# %matplotlib inline\nx = 1"


def test_indented_cell_is_dedented_as_ipython_does() -> None:
    assert transform("    x = 1\n    y = 2").code == "x = 1\ny = 2"


def test_lines_split_on_newlines_only() -> None:
    source = "text = 'a\u2028b\x0cc\x85d\x1ce'  # note\u2028 here\n!echo hi"
    result = transform(source)
    assert result.code.split("\n")[0] == source.split("\n")[0]
    assert ast.literal_eval(result.code.split("\n")[0].split(" = ", 1)[1].split("  #")[0]) == (
        "a\u2028b\x0cc\x85d\x1ce")


def test_shell_braces_that_are_not_python_stay_literal() -> None:
    for command in ("find . -name x -exec rm {} \\;", "awk '{print $1}' f", "echo {}"):
        code = transform(f"!{command}").code
        assert code == f"subprocess.run({command!r}, shell=True)", code
        compile(code, "<cell>", "exec")
    assert transform("!echo {name}").code.startswith("subprocess.run(f'echo {name}'")


def test_space_after_percent_names_the_magic() -> None:
    result = transform("% matplotlib inline\nx = 1")
    assert [(u.line, u.magic) for u in result.unsupported] == [(1, "%matplotlib")]
    assert "UsageError" in result.unsupported[0].message
    assert result.unsupported[0].hint.startswith("write %matplotlib")


def test_compiling_cell_magic_is_left_out_and_binds_names() -> None:
    result = transform("%%cython\ncpdef int f(int a):\n    return a")
    assert result.star_imports == [(1, "%%cython")]
    assert [u.magic for u in result.unsupported] == ["%%cython"]
    assert transform("%%timeit\nx = 1").star_imports == []


def test_pylab_fills_the_namespace_name_by_name() -> None:
    result = transform("%pylab inline\nx = 1")
    assert result.star_imports == [(1, "%pylab")] and result.unsupported == []
    assert transform("%pylab --no-import-all").star_imports == [(1, "%pylab --no-import-all")]
