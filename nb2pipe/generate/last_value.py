"""A cell's last expression, shown as Jupyter shows it: `df.head()` -> `displayhook(df.head())`.

Jupyter shows the value of a cell's last expression unless it is None. A call that shows
something itself, never returns, or is known to return None (`plt.tight_layout()`, a table
below) is left as it is: wrapping it would show nothing either, and reads as noise. A call is
known only when the name it starts from can be nothing but an imported module: when unsure,
the value is shown (the runtime skips None), since a value left unshown changes the report.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from nb2pipe.analysis.parse import segment
from nb2pipe.graph.resolve import qualified_import
from nb2pipe.model import Bind, Delete, Mutate, StepGraph
from nb2pipe.notebook.magics import TIMED_FUNCTION

DISPLAYHOOK = "displayhook"  # nb2pipe_runtime.capture.displayhook, imported by steps.py
# Calls, by their name whatever they are called on, that show something themselves or never
# return.
_SHOWS_ITSELF = frozenset({"print", "display", "show", "savefig", "info", "close", "clf",
                           "exit", "quit", "_exit",
                           TIMED_FUNCTION})  # a `%%timeit` cell shows its timings
# Functions that return None, by the module path they are called through (each checked
# against the library: `plt.ion()`, say, returns a context manager that Jupyter shows).
RETURNS_NONE = frozenset({
    *(f"matplotlib.pyplot.{name}" for name in (
        "autoscale", "cla", "clf", "close", "draw", "grid", "minorticks_off", "minorticks_on",
        "rc", "rcdefaults", "show", "style.use", "subplots_adjust", "tick_params",
        "tight_layout")),
    "matplotlib.rc", "matplotlib.rcdefaults", "matplotlib.style.use", "matplotlib.use",
    *(f"seaborn.{name}" for name in ("despine", "set", "set_context", "set_palette",
                                     "set_style", "set_theme")),
    "numpy.random.seed", "numpy.set_printoptions", "random.seed",
    "pandas.reset_option", "pandas.set_option", "sklearn.set_config",
    "warnings.filterwarnings", "warnings.simplefilter", "time.sleep", "os.chdir", "os.makedirs",
})
# Changes to a module that leave its functions as they are (`plt.rcParams[...] = ...`,
# `np.random.seed(0)`): any other (`plt.show = ...`, `del plt.show`) makes its calls unknown.
_HARMLESS_CHANGES = ("item assignment",)


def imported_modules(graph: StepGraph) -> dict[str, str]:
    """Names that the notebook binds only by importing one module (or one function of it), and
    whose attributes it never sets: name -> that module path (`plt` -> matplotlib.pyplot)."""
    found: dict[str, str | None] = {}
    for symbols in graph.symbols.values():
        for event in symbols.events:
            if isinstance(event, Bind):
                code = event.code
                module = (qualified_import(code, event.name)
                          if code is not None and code.kind == "import" and code.text else None)
                if found.setdefault(event.name, module) != module:
                    found[event.name] = None
            elif isinstance(event, Delete) or (
                    isinstance(event, Mutate) and event.reason not in _HARMLESS_CHANGES
                    and not event.reason.endswith("() changes it in place")):
                found[event.name] = None
    return {name: module for name, module in found.items() if module}


def shown_last_value(code: str, removed: set[tuple[int, int]], cell: int,
                     modules: Mapping[str, str] | None = None) -> str:
    """The cell's code with its last expression's value shown, as Jupyter shows it:
    `df.head()` -> `displayhook(df.head())`, on the same lines. Not for an expression ended
    by `;` (Jupyter hides it), a string, a call that shows something itself, or a call of a
    function known to return None (`modules`: the names that are imported modules)."""
    if DISPLAYHOOK in code:
        return code
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return code
    value = tree.body[-1].value
    end_line, end_col = value.end_lineno, value.end_col_offset
    if end_line is None or end_col is None:
        return code
    if isinstance(value, ast.Constant | ast.Await | ast.Yield | ast.YieldFrom):
        return code
    if isinstance(value, ast.Call):
        called = value.func
        name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
        if name in _SHOWS_ITSELF or any(k.arg == "inplace" for k in value.keywords):
            return code
        if called_path(called, modules or {}) in RETURNS_NONE:
            return code
    if any((cell, n) in removed for n in range(value.lineno, end_line + 1)):
        return code
    lines = code.split("\n")
    last = lines[end_line - 1].encode()
    if last[end_col:].lstrip().startswith(b";"):
        return code
    opening, closing = _call_brackets(value, segment(code, value))
    lines[end_line - 1] = (last[:end_col] + closing.encode() + last[end_col:]).decode()
    first = lines[value.lineno - 1].encode()
    lines[value.lineno - 1] = (first[:value.col_offset] + f"{DISPLAYHOOK}{opening}".encode()
                               + first[value.col_offset:]).decode()
    return "\n".join(lines)


def called_path(called: ast.expr, modules: Mapping[str, str]) -> str | None:
    """`plt.style.use` -> "matplotlib.pyplot.style.use" when `plt` is matplotlib.pyplot; None
    when the call does not start from a name in `modules`."""
    attributes: list[str] = []
    while isinstance(called, ast.Attribute):
        attributes.append(called.attr)
        called = called.value
    if not isinstance(called, ast.Name) or called.id not in modules:
        return None
    return ".".join([modules[called.id], *reversed(attributes)])


def _call_brackets(value: ast.expr, text: str) -> tuple[str, str]:
    """The brackets that make `text` the one argument of a call: `(` `)` for most expressions;
    `((` `))` when the call's brackets alone would read it as several arguments (`a, b`)."""
    expected = ast.dump(value, include_attributes=False)
    for opening, closing in (("(", ")"), ("((", "))")):
        try:
            call = ast.parse(f"{DISPLAYHOOK}{opening}{text}{closing}", mode="eval").body
        except SyntaxError:
            continue
        if (isinstance(call, ast.Call) and len(call.args) == 1 and not call.keywords
                and ast.dump(call.args[0], include_attributes=False) == expected):
            return opening, closing
    return "((", "))"
