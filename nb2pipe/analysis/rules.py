"""The ast-grep rule table: pattern-shaped facts about calls (mutations, file I/O, display, ...).

Rules are data (id, kind, rule, message). All code cells of a notebook are parsed once; the rules
of one kind run as a single `any` traversal, so the cost does not grow with the number of rules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nb2pipe.model import Fact


def _names(*names: str) -> str:
    return "^(" + "|".join(sorted(set(names))) + ")$"


def _words(regex: str) -> tuple[str, ...]:
    """The alternatives of a `^(a|b|c)$` regex, as anchor words."""
    return tuple(w.replace("\\", "") for w in regex.strip("^$()").split("|"))


# Methods that change their receiver in place.
MUTATING_METHODS = _names(
    "append", "extend", "insert", "remove", "pop", "popitem", "clear", "update", "setdefault",
    "add", "discard", "sort", "reverse", "appendleft", "extendleft", "popleft", "rotate",
    "fit", "partial_fit", "fit_transform", "fit_predict", "fit_resample", "set_params",
    "set_output", "compile", "load_weights", "load_state_dict", "train", "eval", "zero_grad",
    "requires_grad_", "write", "writelines", "close", "seek", "truncate", "flush",
    "resize", "fill", "itemset", "setflags", "put", "sort_index_inplace", "set_value",
)
# Methods that also store their arguments in the receiver: `frames.append(df)` aliases df.
STORING_METHODS = _names(
    "append", "extend", "insert", "add", "update", "setdefault", "appendleft", "extendleft", "put"
)
# Method calls as a statement (result discarded) are assumed to mutate, except these, which only
# display or compute: `df.head()` alone in a cell shows a table and changes nothing.
PURE_METHODS = _names(
    "head", "tail", "describe", "info", "sample", "plot", "hist", "boxplot", "show", "display",
    "copy", "to_string", "to_markdown", "to_html", "value_counts", "nunique", "unique", "isna",
    "isnull", "notna", "notnull", "sum", "mean", "median", "mode", "count", "corr", "cov", "std",
    "var", "min", "max", "idxmin", "idxmax", "memory_usage", "summary", "predict",
    "predict_proba", "score", "transform", "get", "keys", "values", "items", "any", "all",
    "round", "astype", "apply", "map", "agg", "aggregate", "groupby", "pivot_table", "query",
    "filter", "sort_values", "sort_index", "drop_duplicates", "drop", "dropna", "fillna",
    "reset_index", "set_index", "rename", "merge", "join", "nlargest", "nsmallest", "quantile",
    "cumsum", "diff", "pct_change", "rolling", "resample", "to_csv", "to_parquet", "to_json",
    "to_excel", "to_pickle", "to_sql", "to_feather", "to_numpy", "tolist", "to_dict", "to_list",
    "savefig", "get_params", "format", "split", "replace", "strip", "lower", "upper",
    "encode", "decode", "evaluate", "print_summary", "get_feature_names_out", "explain",
    "crosstab", "corrwith", "equals", "dtypes", "select_dtypes", "isin", "between", "clip",
    "abs", "prod", "cumprod", "shift", "explode", "melt", "pivot", "stack", "unstack", "loc",
    "style", "background_gradient", "set_caption", "format_index", "hide", "set_title",
    "set_xlabel", "set_ylabel", "legend", "tight_layout", "suptitle", "grid", "bar", "barh",
    "scatter", "imshow", "colorbar", "heatmap", "pairplot", "displot", "histplot", "lineplot",
)
# Functions that change their first argument in place.
MUTATING_FUNCTIONS = (
    "random.shuffle", "np.random.shuffle", "numpy.random.shuffle", "heapq.heappush",
    "heapq.heappop", "heapq.heapify", "heapq.heapreplace", "heapq.heappushpop", "bisect.insort",
    "bisect.insort_left", "bisect.insort_right", "np.copyto", "np.fill_diagonal", "np.put",
    "np.place", "np.putmask", "numpy.copyto", "numpy.fill_diagonal", "setattr", "delattr",
    "next",  # advances an iterator: `next(it)` in two steps gives two different items
)
READ_FUNCTIONS = _names(
    "read_csv", "read_parquet", "read_json", "read_excel", "read_feather", "read_pickle",
    "read_table", "read_hdf", "read_orc", "read_stata", "read_sas", "read_spss", "read_xml",
    "read_fwf", "scan_csv", "scan_parquet", "load", "loadtxt", "genfromtxt", "fromfile",
    "imread", "read_text", "read_bytes",
)
WRITE_METHODS = _names(
    "to_csv", "to_parquet", "to_json", "to_excel", "to_pickle", "to_feather", "to_hdf", "to_orc",
    "to_stata", "to_xml", "write_csv", "write_parquet", "savefig", "save", "savetxt", "savez",
    "savez_compressed", "imwrite", "write_text", "write_bytes",
)
URL = r"^[rbuf]*['\"](https?|s3|gs|ftp|abfss?)://"


def _call(callee: str, first: str = "$A") -> dict[str, Any]:
    """`callee(first, ...)`; `$A $$$` (no comma) also matches a call with one argument."""
    return {"pattern": f"{callee}({first} $$$)"}


def _method(names: str, receiver: str = "$X") -> dict[str, Any]:
    """`receiver.m(...)` for a method name matching the regex `names`."""
    return {"all": [{"pattern": f"{receiver}.$M($$$)"}, _method_named(names)]}


def _method_named(names: str) -> dict[str, Any]:
    return {"has": {"field": "function", "has": {"field": "attribute", "regex": names}}}


def _first_arg(rule: dict[str, Any], regex: str, nth: int = 1) -> dict[str, Any]:
    argument = {"nthChild": nth, "regex": regex}
    return {"all": [rule, {"has": {"field": "arguments", "has": argument}}]}


_WRITE_MODE = r"^[rbuf]*['\"][^'\"]*[wax+]"


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    rule: dict[str, Any]
    message: str  # `{X}` `{P}` `{N}` are filled from the match
    name_var: str | None = None  # the metavariable holding the variable involved
    path_var: str | None = None  # the metavariable holding a file path
    anchors: tuple[str, ...] = ()  # the rule only runs if one of these occurs in the code


RULES: tuple[Rule, ...] = (
    # In-place changes: the graph makes these a use and a new definition of the receiver.
    Rule("mutating-method", "mutate", _method(MUTATING_METHODS), "changes {X} in place",
         anchors=_words(MUTATING_METHODS)),
    Rule("inplace-keyword", "mutate",
         {"all": [{"pattern": "$X.$M($$$)"}, {"has": {"field": "arguments", "has": {
             "kind": "keyword_argument", "regex": r"^inplace\s*=\s*True$"}}}]},
         "changes {X} in place (inplace=True)", anchors=("inplace",)),
    Rule("statement-call", "mutate",
         {"all": [{"pattern": "$X.$M($$$)"}, {"inside": {"kind": "expression_statement"}},
                  {"not": _method_named(PURE_METHODS)}]},
         "a method call as a statement may change {X}"),
    Rule("storing-method", "store", _method(STORING_METHODS), "stores values in {X}",
         anchors=_words(STORING_METHODS)),
    Rule("mutates-argument", "mutate-argument",
         {"all": [{"pattern": "$F($A $$$)"}, {"has": {"field": "function", "regex": "^(" + "|".join(
             f.replace(".", "\\.") for f in MUTATING_FUNCTIONS) + ")$"}}]},
         "changes its first argument",
         anchors=tuple(f.rpartition(".")[2] for f in MUTATING_FUNCTIONS)),
    # File I/O: a file written in one step and read in another needs an ordering edge.
    Rule("file-read", "read", {"all": [_call("$R.$F", "$P"), _method_named(READ_FUNCTIONS)]},
         "reads {P}", path_var="P", anchors=_words(READ_FUNCTIONS)),
    Rule("file-read-open", "read",
         {"all": [_call("open", "$P"), {"not": _first_arg({"pattern": "open($P, $MODE $$$)"},
                                                         _WRITE_MODE, nth=2)}]},
         "opens {P}", path_var="P", anchors=("open(",)),
    Rule("file-write", "write", {"all": [_call("$R.$F", "$P"), _method_named(WRITE_METHODS)]},
         "writes {P}", path_var="P", anchors=_words(WRITE_METHODS)),
    Rule("file-write-dump", "write",
         {"all": [{"pattern": "$J.dump($O, $P $$$)"},
                  {"has": {"field": "function", "has": {"field": "object",
                                                        "regex": "^(joblib|torch|pickle)$"}}}]},
         "writes {P}", path_var="P", anchors=(".dump(",)),
    Rule("file-write-open", "write",
         _first_arg({"pattern": "open($P, $MODE $$$)"}, _WRITE_MODE, nth=2),
         "writes {P}", path_var="P", anchors=("open(",)),
    # Display: cells that only show things produce nothing a later step can use.
    Rule("display", "display",
         {"any": [{"pattern": "display($$$)"}, {"pattern": "print($$$)"},
                  {"all": [{"pattern": "$P.$F($$$)"},
                           {"has": {"field": "function", "has": {
                               "field": "object", "regex": "^(plt|sns|px|pyplot|alt)$"}}}]},
                  _method("^(plot|hist|boxplot|show|imshow)$")]},
         "displays output",
         anchors=("display(", "print(", "plt.", "sns.", "px.", "pyplot.", "alt.", "plot(",
                  "hist(", "show(", "imshow(")),
    # Dynamic code: the analysis cannot see what it defines.
    Rule("exec", "exec",
         {"any": [{"pattern": "exec($$$)"}, {"pattern": "eval($$$)"}, {"pattern": "globals()"},
                  {"pattern": "locals()"}, {"pattern": "vars()"}]},
         "exec(), eval(), globals(), locals() and vars() reach names the analysis cannot see",
         anchors=("exec(", "eval(", "globals(", "locals(", "vars(")),
    # Global random state does not survive from one step to another.
    Rule("random-seed", "seed",
         {"all": [{"pattern": "$S($$$)"}, {"has": {"field": "function", "regex": (
             r"^(np\.random\.seed|numpy\.random\.seed|random\.seed|torch\.manual_seed|"
             r"tf\.random\.set_seed|tf\.set_random_seed|set_seed|seed_everything|"
             r"L\.seed_everything|pl\.seed_everything)$")}}]},
         "sets a global random seed", anchors=("seed",)),
    Rule("network", "network",
         {"any": [
             {"all": [{"pattern": "$M.$F($$$)"}, {"has": {"field": "function", "has": {
                 "field": "object", "regex": "^(requests|httpx|urllib\\.request|aiohttp)$"}}}]},
             _first_arg({"pattern": "$R.$F($P $$$)"}, URL),
         ]},
         "uses the network", anchors=("requests", "httpx", "urllib", "aiohttp", "://")),
    # Values that pickling cannot carry to another process.
    Rule("unserializable", "unserializable",
         {"any": [
             {"pattern": "$N = open($$$)"},
             {"pattern": "$N = create_engine($$$)"},
             {"all": [{"pattern": "$N = $M.$F($$$)"}, {"has": {"field": "right", "has": {
                 "field": "function", "has": {"field": "attribute", "regex": (
                     "^(connect|create_engine|Lock|RLock|Condition|Semaphore|Event|Thread|"
                     "Pool|socket|cursor)$")}}}}]},
             {"all": [{"pattern": "$N = $G"},
                      {"has": {"field": "right", "kind": "generator_expression"}}]},
         ]},
         "{N} holds an open file, connection, lock or generator", name_var="N",
         anchors=("open(", "create_engine", "connect", "Lock", "Condition", "Semaphore", "Event",
                  "Thread", "Pool", "socket", "cursor", " for ")),
)

CALL_KINDS = ("mutate", "store", "mutate-argument")  # consumed by the scope visitor


SpanKey = tuple[int, int, int, int]  # (line, col, end_line, end_col), 1-based lines, char cols


@dataclass(frozen=True)
class RuleResults:
    facts: dict[int, list[Fact]]  # cell index -> facts
    calls: dict[int, dict[SpanKey, set[str]]]  # cell index -> call span -> kinds


def run_rules(cells: Sequence[tuple[int, str]], rules: Iterable[Rule] = RULES) -> RuleResults:
    """Run every rule over the code cells [(cell index, code)], parsed together once."""
    from ast_grep_py import SgRoot

    offsets: list[tuple[int, int]] = []  # (first line in the joined source, cell index)
    chunks, line = [], 0
    for index, code in cells:
        offsets.append((line, index))
        chunks.append(code)
        line += code.count("\n") + 1
    root = SgRoot("\n".join(chunks), "python").root()

    def locate(row: int) -> tuple[int, int]:
        lo, hi = 0, len(offsets) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if offsets[mid][0] <= row:
                lo = mid
            else:
                hi = mid - 1
        start, index = offsets[lo]
        return index, row - start + 1

    facts: dict[int, list[Fact]] = {}
    calls: dict[int, dict[SpanKey, set[str]]] = {}
    source = "\n".join(chunks)
    for rule in rules:
        if rule.anchors and not any(anchor in source for anchor in rule.anchors):
            continue  # compiling a rule costs more than this scan
        kind = rule.kind
        # One traversal per rule: an `any` of rules is slower (ast-grep then cannot skip nodes
        # by kind), measured by benchmarks/check_speed.py.
        for node in root.find_all(**rule.rule):
            r = node.range()
            cell, first = locate(r.start.line)
            if kind in CALL_KINDS:
                key = (first, r.start.column, first + r.end.line - r.start.line, r.end.column)
                calls.setdefault(cell, {}).setdefault(key, set()).add(kind)
                continue
            values = {v: _metavar(node, v) for v in ("X", "P", "N")}
            facts.setdefault(cell, []).append(
                Fact(
                    rule=rule.id,
                    kind=kind,
                    cell=cell,
                    line=first,
                    message=rule.message.format(**{k: v or "?" for k, v in values.items()}),
                    name=values.get(rule.name_var or "") if rule.name_var else None,
                    path=_literal(values.get(rule.path_var or "")) if rule.path_var else None,
                )
            )
    return RuleResults(facts, calls)


def _metavar(node: Any, name: str) -> str | None:
    found = node.get_match(name)
    return found.text() if found is not None else None


def _literal(text: str | None) -> str | None:
    """The value of a string literal path, or None for an expression."""
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return None
    return value if isinstance(value, str) else None
