"""Plan -> flow.py: a Prefect 3 flow with one task per step and the notebook's parameters.

flow.py holds only the flow's own code: the steps as tasks, their options from the tags, and
the wiring. What every project needs at run time (the cache policy, result storage, error
mapping to cells, the task runner) is the package nb2pipe_runtime beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nb2pipe.analysis.parameters import flow_argument
from nb2pipe.escape import docstring_text
from nb2pipe.generate.code import Namer, literal
from nb2pipe.generate.plan import Plan, StepPlan

_TYPES_NEEDING_ANY = ("None",)
# What flow.py imports, by module: every name is claimed after the notebook's parameters, so
# a parameter can never shadow one of them (`wait = 3` makes flow.py import `wait as wait_`).
_IMPORTS = (
    ("typing", "Any", "Any"),
    ("prefect", "flow", "flow"),
    ("prefect.cache_policies", "NO_CACHE", "NO_CACHE"),
    ("prefect.futures", "wait", "wait"),
    ("steps", None, "steps"),
    ("nb2pipe_runtime.handoff", "copied", "copied"),
    ("nb2pipe_runtime.report", "write_report", "write_report"),
    ("nb2pipe_runtime.runners", "resources", "resources"),
    ("nb2pipe_runtime.runners", "task_runner", "task_runner"),
    ("nb2pipe_runtime.tasks", "Values", "Values"),
    ("nb2pipe_runtime.tasks", "finish_writes", "finish_writes"),
    ("nb2pipe_runtime.tasks", "result_storage", "result_storage"),
    ("nb2pipe_runtime.tasks", "run_step", "run_step"),
    ("nb2pipe_runtime.tasks", "step_task", "step_task"),
)


@dataclass(frozen=True)
class FlowNames:
    """Identifiers used in flow.py, chosen so that nothing from the notebook shadows them."""

    flow: str
    arguments: dict[str, str]  # notebook parameter -> the flow's argument (`_run` -> `run_`)
    imported: dict[str, str]  # name as imported -> the name it has in flow.py
    tasks: dict[str, str]  # step -> task function
    runs: dict[str, str]  # step -> local variable holding its future

    def __getitem__(self, name: str) -> str:
        return self.imported[name]


def flow_names(plan: Plan) -> FlowNames:
    namer = Namer(p.name for p in plan.parameters)
    arguments = {p.name: p.name if flow_argument(p.name) == p.name
                 else namer.claim(flow_argument(p.name)) for p in plan.parameters}
    imported = {name: namer.claim(name) for _, _, name in _IMPORTS}
    tasks = {s.name: namer.claim(s.function) for s in plan.steps}
    flow = namer.claim(plan.slug if plan.slug not in tasks.values() else f"{plan.slug}_flow")
    runs = {s.name: namer.claim(f"{s.function}_run") for s in plan.steps}
    return FlowNames(flow, arguments, imported, tasks, runs)


def render_flow(plan: Plan) -> str:
    names = flow_names(plan)
    body: list[str] = []
    for step in plan.steps:
        body.extend(["", ""])
        body.extend(_task(plan, step, names))
    body.extend(["", ""])
    body.extend(_flow(plan, names))
    body.extend(["", ""])
    body.extend(_main(plan, names))
    used = {"flow", "wait", "steps", "task_runner", "Values", "result_storage", "run_step",
            "step_task", "write_report", "finish_writes"}
    used |= {"copied"} if any(s.copied for s in plan.steps) else set()
    used |= {"NO_CACHE"} if any(not s.options.cache for s in plan.steps) else set()
    used |= {"Any"} if any(p.type in _TYPES_NEEDING_ANY for p in plan.parameters) else set()
    used |= {"resources"} if any(s.options.resources for s in plan.steps) else set()
    out = [
        f'"""Prefect flow of the pipeline converted from {docstring_text(plan.notebook_name)}.',
        "",
        "Run it:     python flow.py",
        "Test it:    pytest",
        "Deploy it:  see README.md",
        '"""',
        "",
        *_import_lines(names, used),
    ]
    return "\n".join([*out, *body]) + "\n"


def _import_lines(names: FlowNames, used: set[str]) -> list[str]:
    """The imports flow.py uses, grouped and sorted as ruff's isort wants them."""
    groups: list[list[str]] = [[], [], []]  # standard library, Prefect, this project
    for module, name, key in _IMPORTS:
        if key not in used:
            continue
        alias = names[key]
        lines = groups[0 if module == "typing" else
                       1 if module.startswith("prefect") else 2]
        if name is None:
            lines.append(f"import {module}" + (f" as {alias}" if alias != key else ""))
            continue
        entry = name if alias == name else f"{name} as {alias}"
        found = next((i for i, existing in enumerate(lines)
                      if existing.startswith(f"from {module} import ")), None)
        if found is None:
            lines.append(f"from {module} import {entry}")
        else:
            lines[found] += f", {entry}"
    out: list[str] = []
    for lines in groups:
        if lines:
            out.extend([*sorted(lines, key=_isort_key), ""])
    return out[:-1]


def _isort_key(line: str) -> tuple[int, str]:
    return (line.startswith("from "), line.split()[1])


def _task(plan: Plan, step: StepPlan, names: FlowNames) -> list[str]:
    function = names.tasks[step.name]
    # The task is named after its function, which is the step's name unless that is taken.
    options = [] if function == step.name else [f"name={literal(step.name)}"]
    if step.options.retries:
        options += [f"retries={step.options.retries}", "retry_delay_seconds=1"]
    if step.options.timeout:
        options.append(f"timeout_seconds={step.options.timeout:g}")
    if not step.options.cache:
        options.append(f"cache_policy={names['NO_CACHE']}")  # tag cache:off
    upstream_names = upstream_arguments(step, names)
    values = names["Values"]
    arguments = [f"{upstream_names[producer]}: {values}" for producer in step.upstream]
    arguments += [f"{p}: {_annotation(plan, p, names)}" for p in step.parameters]
    lines = [*_decorator(names["step_task"], options),
             f"def {function}({', '.join(arguments)}) -> {values}:"]
    cells = f'ell{"s" if len(step.cells) > 1 else ""} {", ".join(str(c) for c in step.cells)}'
    notebook = docstring_text(plan.notebook_name)
    lines.append(f'    """C{cells} of {notebook}."""' if function == step.name else
                 f'    """Step `{step.name}`: c{cells} of {notebook}."""')
    passed = {v: f"{upstream_names[producer]}[{literal(v)}]" for v, producer in step.inputs}
    if step.copied:
        # This step changes these values in place while another step reads them: give it copies.
        targets = ", ".join(step.copied)
        sources = ", ".join(passed[v] for v in step.copied)
        comma = "," if len(step.copied) == 1 else ""
        lines.append(f"    # {', '.join(step.copied)}: changed in place here, read by other "
                     "steps too")
        lines.append(f"    {targets}{comma} = {names['copied']}(({sources}{comma}), "
                     f"step={literal(step.name)}, names={literal(list(step.copied))})")
        passed.update({v: v for v in step.copied})
    passed.update({p: p for p in step.parameters})
    call_args = "".join(f", {a}={passed[a]}" for a in step.arguments)
    lines.append(f"    return {names['run_step']}({names['steps']}.{step.function}{call_args})")
    return _wrap(lines)


def _flow(plan: Plan, names: FlowNames) -> list[str]:
    parameters = [f"{names.arguments[p.name]}: {_type(p.type, names)} = {literal(p.default)}"
                  for p in plan.parameters]
    lines = [
        "# Each step's values go to the result storage (a folder, or a Prefect block: see",
        "# README.md), where Prefect finds them again for steps whose code, parameters and",
        "# inputs did not change; the flow's own result (all of them together) is not kept.",
        "# When it ends, the run's HTML report is written (see README.md).",
        *_decorator(names["flow"], [
            f"name={literal(plan.slug)}", f"task_runner={names['task_runner']}()",
            f"result_storage={names['result_storage']}()", "persist_result=False",
            "log_prints=True", f"on_completion=[{names['write_report']}]",
            f"on_failure=[{names['write_report']}]"]),
    ]
    returns = f"dict[str, {names['Values']}]"
    if parameters:
        lines.append(f"def {names.flow}(")
        lines.extend(f"    {p}," for p in parameters)
        lines.append(f") -> {returns}:")
    else:
        lines.append(f"def {names.flow}() -> {returns}:")
    notebook = docstring_text(plan.notebook_name)
    lines.append(f'    """The pipeline of {notebook}: returns each step\'s values.')
    if any(s.consumed_in_place for s in plan.steps):
        lines.extend(["",
                      "    Values are as they are at the end of the run: a value that a later step",
                      "    changes in place (as the notebook does) is returned changed."])
    documented = [p for p in plan.parameters if p.help]
    if documented:
        lines.extend(["", "    Args:"])
        lines.extend(f"        {names.arguments[p.name]}: {docstring_text(p.help or '')}"
                     for p in documented)
    lines.append('    """')
    for name in plan.order:
        step = plan.step(name)
        upstream_names = upstream_arguments(step, names)
        args = [f"{upstream_names[p]}={names.runs[p]}" for p in step.upstream]
        args += [f"{p}={names.arguments[p]}" for p in step.parameters]
        if step.after:
            args.append(f"wait_for=[{', '.join(names.runs[a] for a in step.after)}]")
        submit = f"{names.runs[name]} = {names.tasks[name]}.submit({', '.join(args)})"
        if step.options.resources:  # tags cpu:N, memory:SIZE, gpu:N
            needs = ", ".join(f"{k}={_number(v)}" for k, v in step.options.resources)
            lines.append(f"    with {names['resources']}({needs}):  # on a Dask worker with these")
            lines.append(f"        {submit}")
        else:
            lines.append(f"    {submit}")
    lines.append("    runs = {")
    lines.extend(f"        {literal(s)}: {names.runs[s]}," for s in plan.order)
    lines.append("    }")
    lines.append(f"    {names['wait']}(list(runs.values()))  # independent steps finish even if "
                 "one fails")
    lines.append(f"    {names['finish_writes']}()  # values still being written to the result "
                 "storage")
    lines.append("    # In pipeline order: the first failed step's error, naming its cell, fails "
                 "the flow.")
    lines.append("    return {step: run.result() for step, run in runs.items()}")
    return _wrap(lines)


def _main(plan: Plan, names: FlowNames) -> list[str]:
    lines = ['if __name__ == "__main__":', f"    results = {names.flow}()"]
    shown = [(s.name, m) for s in plan.steps for m in s.metrics]
    if shown:
        lines.append("    for step, name in [")
        lines.extend(f"        ({literal(step)}, {literal(name)})," for step, name in shown)
        lines.append("    ]:")
        lines.append("        value = results[step][name]")
        lines.append("        if isinstance(value, bool | int | float | str):")
        lines.append('            print(f"{step}.{name} = {value!r}")')
    else:
        lines.append('    print("completed:", ", ".join(results))')
    return lines


def _decorator(name: str, options: list[str]) -> list[str]:
    if not options:
        return [f"@{name}"]
    single = f"@{name}({', '.join(options)})"
    if len(single) <= 100:
        return [single]
    return [f"@{name}(", *(f"    {o}," for o in options), ")"]


def _wrap(lines: list[str]) -> list[str]:
    """Break a long `def f(a, ...)` or `x = f(a, ...)` line into one argument per line."""
    out = []
    for line in lines:
        match = (re.match(r"^(\s*def \w+\()(.*)(\) -> .*:)$", line)
                 or re.match(r"^(\s*(?:[\w, ]+ = |return )?[\w.]+\()(.*)(\))$", line))
        if len(line) > 100 and match and match.group(2):
            head, args, tail = match.groups()
            indent = " " * (len(head) - len(head.lstrip()))
            out.append(head)
            out.extend(f"{indent}    {a.strip()}," for a in _split_args(args))
            out.append(indent + tail.lstrip())
        else:
            out.append(line)
    return out


def _split_args(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[(" and 1 or (-1 if char in "])" else 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in [*parts, current] if p.strip()]


def upstream_arguments(step: StepPlan, names: FlowNames | None = None) -> dict[str, str]:
    """The task argument holding each upstream step's values: named after that step, never
    after a parameter or a name the task's body uses (`steps`, `run_step`, `copied`)."""
    namer = Namer(step.parameters)
    if names is not None:
        namer.taken.update(names[n] for n in ("steps", "run_step", "copied", "Values"))
    namer.taken.discard("_")
    return {p: namer.claim(p if p not in namer.taken else f"{p}_values") for p in step.upstream}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _annotation(plan: Plan, name: str, names: FlowNames) -> str:
    parameter = next(p for p in plan.parameters if p.name == name)
    return _type(parameter.type, names)


def _type(type_name: str, names: FlowNames) -> str:
    return names["Any"] if type_name in _TYPES_NEEDING_ANY else type_name
