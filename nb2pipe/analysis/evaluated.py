"""Strings a call evaluates as code in its caller's namespace: the names they read.

patsy (statsmodels' formulas) looks the names of a formula up in the frame that calls the
model (`smf.ols("y ~ np.log(x) + myfunc(z)", data=df)`: `x`, `z` are columns, `np` and
`myfunc` the caller's); `DataFrame.query`/`eval` look up `@name`; `pd.eval` and numexpr's
`evaluate` look up every name. A step that runs such a call must have those names in its
own namespace, so they are reads of the step, as if written out. A table says which calls
and which argument; a string that is not a literal cannot be read, which check reports.
"""

from __future__ import annotations

import ast
import io
import keyword
import tokenize
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Evaluator:
    """Calls named `names` (the callee's last part) evaluate their argument `position` (or
    keyword `keyword`) in the caller's namespace; `what`: "formula" (every name, each may be a
    column instead), "at" (names after `@`: the caller's; bare ones are columns) or "expression"
    (every name, each may be given otherwise)."""

    names: frozenset[str]
    position: int
    keyword: str
    what: str


EVALUATORS = (
    Evaluator(frozenset((
        "ols", "wls", "gls", "glsar", "glm", "logit", "probit", "mnlogit", "poisson",
        "negativebinomial", "quantreg", "mixedlm", "gee", "ordinal_gee", "nominal_gee", "rlm",
        "phreg", "conditional_logit", "conditional_poisson", "conditional_mnlogit",
        "from_formula", "dmatrices", "dmatrix",
    )), 0, "formula", "formula"),
    Evaluator(frozenset(("query",)), 0, "expr", "at"),
    Evaluator(frozenset(("eval",)), 0, "expr", "at+expression"),
    Evaluator(frozenset(("evaluate",)), 0, "ex", "expression"),
)


@dataclass(frozen=True)
class Evaluated:
    required: tuple[str, ...]  # names the caller must have (`@name`)
    optional: tuple[str, ...]  # names it may have (a formula's: each may be a column)
    literal: bool  # False: the string is not a literal; its names cannot be known
    formula: bool = False  # a patsy formula (statsmodels evaluates it again when unpickled)


def evaluated(node: ast.Call,
              bound: Callable[[str], str | None] = lambda name: None) -> Evaluated | None:
    """What `node` evaluates in its caller's namespace; None when it is no such call.
    `bound`: the string literal a name given as the argument holds, when the cell says."""
    func = node.func
    last = func.attr if isinstance(func, ast.Attribute) else (
        func.id if isinstance(func, ast.Name) else None)
    evaluator = next((e for e in EVALUATORS if last in e.names), None)
    if evaluator is None:
        return None
    argument = next((k.value for k in node.keywords if k.arg == evaluator.keyword), None)
    if argument is None and len(node.args) > evaluator.position:
        argument = node.args[evaluator.position]
    if argument is None or isinstance(argument, ast.Starred):
        return None
    text = argument.value if isinstance(argument, ast.Constant) else (
        bound(argument.id) if isinstance(argument, ast.Name) else None)
    if not isinstance(text, str):
        # A model given arrays (`sm.OLS(y, X)`'s lowercase twin is never given one), a
        # Keras `model.evaluate(X, y)`: only a string built at run time counts as unknown.
        unknown = isinstance(argument, ast.JoinedStr | ast.Name | ast.BinOp) and (
            evaluator.what != "expression")
        return Evaluated((), (), False) if unknown else None
    at, bare = _names(text)
    if evaluator.what == "formula" or "expression" in evaluator.what:
        return Evaluated(at, tuple(n for n in bare if n not in at), True,
                         evaluator.what == "formula")
    return Evaluated(at, (), True)


def _names(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names `text` reads: (after `@`, bare), leaving out attributes (`np.log`: `np`),
    keyword argument names (`C(x, levels=l)`: `l`, not `levels`) and keywords."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                  if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return (), ()
    at: dict[str, None] = {}
    bare: dict[str, None] = {}
    for i, token in enumerate(tokens):
        if token.type != tokenize.NAME or keyword.iskeyword(token.string):
            continue
        before = tokens[i - 1].string if i else ""
        after = tokens[i + 1].string if i + 1 < len(tokens) else ""
        if before == ".":
            continue
        if after == "=" and before in ("(", ","):
            continue
        (at if before == "@" else bare)[token.string] = None
    return tuple(at), tuple(bare)
