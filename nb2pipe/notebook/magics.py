"""IPython syntax -> plain Python, line for line, driven by one table of magics.

Line magics, `!shell` and `?help` become what IPython itself runs (ipython.py), then each
`get_ipython()` call is replaced by what the pipeline should run. Cell magics are handled here,
because IPython turns a whole `%%time` cell into one string the analysis could not see into.
Line i of the result is always line i of the cell, so every diagnostic and every traceback maps
back to the notebook.
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from nb2pipe.model import Notebook, split_lines
from nb2pipe.notebook.ipython import to_ipython

# How each magic is treated in a pipeline:
#   drop    notebook-only (display, editor, introspection): commented out
#   code    the rest of the line / the cell body is ordinary Python: kept
#   pip     package installs: become requirements, commented out
#   shell   run through subprocess
#   write   %%writefile: the body is written to the file
#   env     %env NAME=VALUE: sets os.environ
#   pylab   %pylab: numpy and matplotlib names, imported one by one where they are used
#   alias   IPython's shell aliases (`%rm x` runs `rm x`): run through subprocess
DROP, CODE, PIP, SHELL, WRITE, ENV, PYLAB = "drop", "code", "pip", "shell", "write", "env", "pylab"
ALIAS = "alias"

LINE_MAGICS: dict[str, str] = {
    **dict.fromkeys(
        (
            "matplotlib", "load_ext", "reload_ext", "unload_ext", "autoreload", "aimport",
            "config", "who", "whos", "who_ls", "history", "pinfo", "pinfo2", "pdef", "pdoc",
            "psource", "pfile", "psearch", "precision", "xmode", "pdb", "pprint", "colors",
            "notebook", "qtconsole", "magic", "lsmagic", "quickref", "page", "automagic",
            "autocall", "doctest_mode", "alias_magic", "tb", "pwd", "ls", "store",
            # IPython's shell aliases that only show something
            "cat", "clear", "ldir", "less", "lf", "lk", "ll", "lx", "man", "more",
        ),
        DROP,
    ),
    # IPython's shell aliases that change files: run by the shell, as IPython does
    **dict.fromkeys(("cp", "mkdir", "mv", "rm", "rmdir"), ALIAS),
    **dict.fromkeys(("time", "timeit", "prun", "memit", "mprun"), CODE),
    **dict.fromkeys(("pip", "conda", "mamba"), PIP),
    "sx": SHELL,
    "system": SHELL,
    "env": ENV,
    "pylab": PYLAB,
}

CELL_MAGICS: dict[str, str] = {
    **dict.fromkeys(("time", "timeit", "capture", "prun", "memit", "mprun"), CODE),
    **dict.fromkeys(
        ("html", "HTML", "markdown", "javascript", "js", "latex", "svg", "md"), DROP
    ),
    **dict.fromkeys(("bash", "sh", "script"), SHELL),
    **dict.fromkeys(("writefile", "file"), WRITE),
}


@dataclass(frozen=True)
class Unsupported:
    """A magic the pipeline cannot reproduce: left out, with a warning."""

    line: int
    magic: str  # as written, e.g. "%%sql"
    message: str
    hint: str = "tag the cell skip, or replace the magic with Python"


# Cell magics that compile their body in another language and bind its functions in the
# notebook's namespace: later uses of those names are explained by the cell, not "undefined".
COMPILING_CELL_MAGICS = frozenset(("cython", "fortran"))


@dataclass
class Transformed:
    code: str
    requirements: list[str] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)  # modules the rewritten lines use
    unsupported: list[Unsupported] = field(default_factory=list)
    star_imports: list[tuple[int, str]] = field(default_factory=list)  # (line, namespace)
    # Lines after the cell's last (`%%timeit`'s call of its function); all others keep theirs.
    extra_lines: int = 0

    def leave_out(self, line: int, magic: str) -> None:
        self.unsupported.append(Unsupported(
            line, magic, f"{magic} has no pipeline equivalent; it is left out of the pipeline"))


def transform(source: str) -> Transformed:
    """Plain Python with the same number of lines as `source`."""
    if not source:
        return Transformed("")
    lines = split_lines(source)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        result = _cell_magic(lines, first)
    else:
        result = _line_syntax(lines)
    # line i of the result is line i of the cell
    return _pad(result, len(lines) + result.extra_lines)


def _cell_magic(lines: list[str], at: int) -> Transformed:
    name, _, args = lines[at].strip()[2:].partition(" ")
    action = CELL_MAGICS.get(name)
    head, body = lines[:at], lines[at + 1 :]
    out = Transformed("")
    if action == CODE:
        inner = _line_syntax(body) if body else Transformed("")
        body_code = inner.code.split("\n")[: len(body)]
        captured = _capture_target(args) if name == "capture" else None
        if name == "timeit":
            timed = _timed_in_own_scope(inner, head, body_code, args, lines[at].strip(), at)
            return _pad(timed, len(lines) + timed.extra_lines)
        if captured is not None:  # `%%capture out`: the body's output, kept in `out`
            flags, target = captured
            inner.imports.add("IPython.utils.capture")
            opening = f"with IPython.utils.capture.capture_output({flags}) as {target}:"
            if not _has_statements(body_code):
                opening += " pass"
            inner.code = "\n".join([*head, f"{opening}  # {lines[at].strip()}",
                                     *_indented_block(body_code)])
        else:
            inner.code = "\n".join([*head, f"# {lines[at].strip()}", *body_code])
        inner.unsupported = [replace(u, line=u.line + at + 1) for u in inner.unsupported]
        inner.star_imports = [(line + at + 1, name) for line, name in inner.star_imports]
        return _pad(inner, len(lines))
    if action == SHELL:
        program = ["bash"] if name in ("bash", "sh") else shlex.split(args) or ["bash"]
        call = f"subprocess.run({program!r}, check=True, text=True, input="
        out.code = "\n".join([*head, *_string_statement(call, body, lines[at])])
        out.imports.add("subprocess")
        return out
    if action == WRITE:
        words = shlex.split(args)
        append = "-a" in words or "--append" in words
        target = next((w for w in words if not w.startswith("-")), "output.txt")
        mode = "a" if append else "w"
        call = f"pathlib.Path({target!r}).open({mode!r}).write("
        out.code = "\n".join([*head, *_string_statement(call, body, lines[at])])
        out.imports.add("pathlib")
        return out
    if action is None:
        out.leave_out(at + 1, f"%%{name}")
        if name in COMPILING_CELL_MAGICS:  # the compiled functions land in the namespace
            out.star_imports.append((at + 1, f"%%{name}"))
    out.code = "\n".join([*head, *(f"# {line}" if line else "#" for line in lines[at:])])
    return out


# What a `%%timeit` cell runs in its own scope: IPython compiles the setup (the magic line's
# statement) and the body into a function and calls it (many times); the names they bind are
# that function's locals and never reach the notebook's namespace.
TIMED_FUNCTION = "_nb2pipe_timeit"


def _timed_in_own_scope(inner: Transformed, head: list[str], body: list[str], args: str,
                        magic: str, at: int) -> Transformed:
    """The body as a function called once, one line after the cell's last: what it binds stays
    its own, what it reads and changes in place is the notebook's."""
    setup = _strip_options(args, "timeit")
    opening = f"def {TIMED_FUNCTION}():"
    code = _indented_block(body)
    if not _has_statements(body):
        opening += f" {setup or 'pass'}"
    elif setup:
        placed = _with_setup(code, setup)
        if placed is None:  # no line can take the setup before the body's first statement
            inner.unsupported = [Unsupported(
                at + 1, "%%timeit",
                f"`{magic}`: its setup statement cannot be placed before the cell's "
                "first statement; the cell is left out of the pipeline",
                "put the setup on the cell's first line, or time the code in a plain cell")]
            inner.code = "\n".join([*head, *(f"# {line}" if line else "#"
                                              for line in [magic, *body])])
            return inner
        code = placed
    inner.code = "\n".join([*head, f"{opening}  # {magic}", *code,
                             f"{TIMED_FUNCTION}()  # run once: timing is not the pipeline's"])
    inner.extra_lines = 1
    inner.unsupported = [replace(u, line=u.line + at + 1) for u in inner.unsupported]
    inner.star_imports = [(line + at + 1, name) for line, name in inner.star_imports]
    return inner


def _with_setup(code: list[str], setup: str) -> list[str] | None:
    """The indented body with `setup` run first, on a line of its own that is blank or a
    comment, or before the first statement when that is simple and starts the line."""
    try:
        tree = ast.parse("\n".join(line[4:] if line.startswith("    ") else line
                                   for line in code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the parse of the whole cell reports it
    first = tree.body[0]
    for n, line in enumerate(code[: first.lineno - 1]):
        if not line.strip() or line.strip().startswith("#"):
            return [*code[:n], f"    {setup}  {line.strip()}".rstrip(), *code[n + 1:]]
    compound = isinstance(first, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.If
                          | ast.For | ast.AsyncFor | ast.While | ast.With | ast.AsyncWith
                          | ast.Try | ast.Match) or type(first).__name__ == "TryStar"
    text = code[first.lineno - 1]
    if compound or first.col_offset != 0 or not text.startswith("    ") or text[4:5].isspace():
        return None
    return [*code[: first.lineno - 1], f"    {setup}; {text[4:]}", *code[first.lineno:]]


_CAPTURE_FLAGS = {"--no-stdout": "stdout=False", "--no-stderr": "stderr=False",
                  "--no-display": "display=False"}


def _capture_target(args: str) -> tuple[str, str] | None:
    """`%%capture --no-stderr out` -> ("stderr=False", "out"); None without a plain name."""
    words = args.split()
    names = [w for w in words if not w.startswith("-")]
    if len(names) != 1 or not names[0].isidentifier() or any(
            w.startswith("-") and w not in _CAPTURE_FLAGS for w in words):
        return None
    return ", ".join(_CAPTURE_FLAGS[w] for w in words if w in _CAPTURE_FLAGS), names[0]


def _indented_block(code: list[str]) -> list[str]:
    """Lines made the body of a block, one level in. Lines inside a multi-line string keep
    their text: indenting them would change the string."""
    import io
    import tokenize

    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO("\n".join(code)).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return [line if n in inside or not line.strip() else "    " + line
            for n, line in enumerate(code, start=1)]


def _has_statements(code: list[str]) -> bool:
    try:
        return bool(ast.parse("\n".join(code)).body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True  # let the parse of the whole cell report it


def _string_statement(call: str, body: list[str], magic_line: str) -> list[str]:
    """`call` applied to the body as one string literal, spread over the body's own lines."""
    if not body:
        return [f"{call}'')  # {magic_line.strip()}"]
    pieces = [f"    {line + chr(10)!r}" for line in body]
    return [f"{call}(  # {magic_line.strip()}", *pieces[:-1], pieces[-1] + "))"]


def _line_syntax(lines: list[str]) -> Transformed:
    out_lines = to_ipython(lines)
    if out_lines == lines:
        return Transformed("\n".join(lines))  # plain Python: nothing to rewrite
    result = Transformed("")
    try:
        tree = ast.parse("\n".join(out_lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        result.code = "\n".join(out_lines[: len(lines)])
        return result
    statements = {
        id(stmt.value): stmt for stmt in ast.walk(tree) if isinstance(stmt, ast.Expr)
    }
    edits: list[tuple[int, int, int, str]] = []
    for node in ast.walk(tree):
        rewrite = _rewrite(node, statements.get(id(node)), lines, result)
        if rewrite is not None:
            edits.append(rewrite)
    for line_no, start, end, text in sorted(edits, reverse=True):
        encoded = out_lines[line_no - 1].encode()
        out_lines[line_no - 1] = (encoded[:start].decode() + text + encoded[end:].decode())
    result.code = "\n".join(out_lines[: len(lines)])
    return _pad(result, len(lines))


def _pad(result: Transformed, count: int) -> Transformed:
    got = result.code.split("\n") if result.code else [""]
    got += [""] * (count - len(got))
    result.code = "\n".join(got[:count])
    return result


def _ipython_call(node: ast.AST) -> tuple[str, list[str]] | None:
    """`get_ipython().METHOD('a', 'b')` -> ("METHOD", ["a", "b"])."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    receiver = node.func.value
    if not (
        isinstance(receiver, ast.Call)
        and isinstance(receiver.func, ast.Name)
        and receiver.func.id == "get_ipython"
    ):
        return None
    args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if len(args) != len(node.args) or node.end_lineno != node.lineno:
        return None
    return node.func.attr, args


def _rewrite(
    node: ast.AST, statement: ast.stmt | None, lines: list[str], out: Transformed
) -> tuple[int, int, int, str] | None:
    found = _ipython_call(node)
    if found is None:
        return None
    assert isinstance(node, ast.Call) and node.end_col_offset is not None
    method, args = found
    line = node.lineno
    written = lines[line - 1].strip() if line <= len(lines) else ""
    span = (line, node.col_offset, node.end_col_offset)

    def replace_statement(text: str) -> tuple[int, int, int, str]:
        if statement is None:
            return (*span, "None")
        if text.startswith("#") and statement.col_offset > 0:
            text = "pass  " + text  # a comment alone would leave the block empty
        return (line, statement.col_offset, statement.end_col_offset or span[2], text)

    if method == "run_line_magic" and len(args) == 2:
        name, rest = args
        if not name:
            return _unnamed_magic(line, rest, out, replace_statement)
        action = LINE_MAGICS.get(name)
        if action == CODE:
            rest = _strip_options(rest, name)
            if name == "timeit" and _binds(rest):  # IPython runs it in a function of its own
                out.unsupported.append(Unsupported(
                    line, "%timeit", f"`{written}` binds names only inside the function IPython "
                    "times it in; it is left out of the pipeline",
                    "time an expression (`%timeit f(x)`), or assign in a plain line"))
                return replace_statement(f"# {written}")
            return (*span, f"({rest})") if statement is None else replace_statement(rest)
        if action == PIP:
            out.requirements.extend(pip_requirements(rest))
            return replace_statement(f"# {written}")
        if action == SHELL:
            return _shell(span, rest, out, capture=True)
        if action == ALIAS:  # output printed, nothing returned, as IPython's alias does
            return _shell(span, f"{name} {rest}".rstrip(), out, capture=False)
        if action == ENV and "=" in rest.replace(" ", "=", 1):
            key, _, value = rest.replace(" ", "=", 1).partition("=")
            out.imports.add("os")
            return replace_statement(f"os.environ[{key.strip()!r}] = {value.strip()!r}")
        if action == PYLAB:
            everything = "--no-import-all" not in rest.split()
            out.star_imports.append((line, "%pylab" if everything else "%pylab --no-import-all"))
        elif action is None:
            out.leave_out(line, f"%{name}")
            if name == "run":  # the script's names land in the notebook's namespace
                out.star_imports.append((line, f"%run {rest}".strip()))
        return replace_statement(f"# {written}")
    if method == "system" and len(args) == 1:
        command = args[0]
        if _is_pip_install(command):
            out.requirements.extend(pip_requirements(command.split(None, 1)[1]))
            return replace_statement(f"# {written}")
        return _shell(span, command, out, capture=False)
    if method == "getoutput" and len(args) == 1:
        return _shell(span, args[0], out, capture=True)
    if method == "run_cell_magic":
        out.leave_out(line, written)
        return replace_statement(f"# {written}")
    return None


def _unnamed_magic(line: int, rest: str, out: Transformed,
                   replace_statement: Callable[[str], tuple[int, int, int, str]]
                   ) -> tuple[int, int, int, str]:
    """`% matplotlib inline`: IPython reads a magic with no name (a space follows the `%`) and
    fails with UsageError. Left out, with a warning naming the magic meant."""
    meant = rest.split(None, 1)[0] if rest.strip() else ""
    written = f"% {rest}".rstrip()
    if meant:
        message = (f"`{written}` runs no magic: with a space after `%`, IPython finds no magic "
                   f"name and fails with UsageError; it is left out of the pipeline")
        hint = f"write %{meant} without the space (or remove the line)"
    else:
        message = "a lone `%` runs no magic (IPython fails with UsageError); it is left out"
        hint = "remove the line"
    out.unsupported.append(Unsupported(line, f"%{meant}" if meant else "%", message, hint))
    return replace_statement(f"# {written}")


def _shell(
    span: tuple[int, int, int], command: str, out: Transformed, *, capture: bool
) -> tuple[int, int, int, str]:
    out.imports.add("subprocess")
    literal = repr(command)
    if "{" in command and "}" in command and _expands(literal):
        literal = "f" + literal  # IPython expands {expr} in shell commands
    # IPython ignores the command's exit status (`!ls missing` prints the error and the cell
    # goes on), so no check=True: the command's own error output says what failed.
    if capture:
        text = (
            f"subprocess.run({literal}, shell=True, capture_output=True, text=True)"
            ".stdout.splitlines()"
        )
    else:
        text = f"subprocess.run({literal}, shell=True)"
    return (*span, text)


def _expands(literal: str) -> bool:
    """Whether IPython would expand the `{...}` of a shell command: only when each one holds a
    Python expression. `find . -exec rm {} \\;` and `awk '{print $1}'` reach the shell as
    written (IPython keeps the whole command literal when expanding it fails)."""
    try:
        tree = ast.parse("f" + literal, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(node, ast.FormattedValue) for node in ast.walk(tree))


def _binds(statement: str) -> bool:
    """Whether a statement binds a name (`x = f()`, `for i in r: ...`, `import m`)."""
    try:
        tree = ast.parse(statement)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    nodes: list[ast.AST] = [tree]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) or isinstance(
                node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef
                | ast.ClassDef | ast.NamedExpr):
            return True
        if not isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp
                          | ast.GeneratorExp):  # their names are their own
            nodes.extend(ast.iter_child_nodes(node))
    return False


# The options of each magic that take a value (`-n 3`): IPython's and memory_profiler's.
_OPTIONS_WITH_VALUE = {"timeit": "nrp", "prun": "lsTD", "memit": "rt", "mprun": "fT"}


def _strip_options(rest: str, magic: str) -> str:
    """`-n 3 -r2 f()` -> `f()`: the statement a %time/%timeit/%prun/%mprun line runs."""
    with_value = _OPTIONS_WITH_VALUE.get(magic, "")
    words = rest.split(" ")
    while words and words[0].startswith("-") and len(words[0]) >= 2:
        flag = words.pop(0)
        if flag[1] in with_value and len(flag) == 2 and words:
            words.pop(0)
    return " ".join(words).strip()


def _is_pip_install(command: str) -> bool:
    words = command.split()
    if len(words) >= 2 and words[0] in ("pip", "pip3", "conda", "mamba") and words[1] == "install":
        return True
    return len(words) >= 4 and words[1:4] == ["-m", "pip", "install"]


def pip_requirements(args: str) -> list[str]:
    """`install -q pandas==2.2 "numpy>=1" -r x.txt` -> ["pandas==2.2", "numpy>=1"]."""
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    if words and words[0] == "install":
        words = words[1:]
    while words and words[0] in ("-m", "pip", "install"):
        words = words[1:]
    requirements, skip_next = [], False
    for word in words:
        if skip_next:
            skip_next = False
        elif word in ("-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "-e"):
            skip_next = True
        elif not word.startswith("-") and "{" not in word and "$" not in word:
            requirements.append(word)
    return requirements


def transform_notebook(notebook: Notebook) -> tuple[Notebook, dict[int, list[Unsupported]]]:
    """Every code cell made plain Python; returns the unsupported magics by cell index."""
    cells = []
    unsupported: dict[int, list[Unsupported]] = {}
    for cell in notebook.cells:
        if not cell.is_code:
            cells.append(cell)
            continue
        result = transform(cell.source)
        if result.unsupported:
            unsupported[cell.index] = result.unsupported
        cells.append(replace(
            cell,
            code=result.code,
            requirements=tuple(result.requirements),
            implicit_imports=tuple(sorted(result.imports)),
            star_imports=tuple(result.star_imports),
        ))
    return replace(notebook, cells=tuple(cells)), unsupported
