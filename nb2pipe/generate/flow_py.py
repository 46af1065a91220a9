"""Plan -> flow.py: a Prefect 3 flow with one task per step and the notebook's parameters."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from nb2pipe.generate.code import Namer, docstring_text, literal
from nb2pipe.generate.plan import Plan, StepPlan

_TYPES_NEEDING_ANY = ("None",)


@dataclass(frozen=True)
class FlowNames:
    """Identifiers used in flow.py, chosen so no notebook parameter can shadow them."""

    flow: str
    steps_module: str
    cells_module: str
    tasks: dict[str, str]  # step -> task function
    runs: dict[str, str]  # step -> local variable holding its future


def flow_names(plan: Plan) -> FlowNames:
    namer = Namer(p.name for p in plan.parameters)
    for fixed in ("annotations", "contextlib", "copy", "json", "os", "Path", "Any", "Callable",
                  "flow",
                  "task", "wait", "create_table_artifact", "NO_CACHE", "PROJECT", "WORKDIR",
                  "MANIFEST"):
        namer.claim(fixed)
    steps_module = namer.claim("steps")
    cells_module = namer.claim("cells")
    tasks = {s.name: namer.claim(s.function) for s in plan.steps}
    flow = namer.claim(plan.slug if plan.slug not in tasks.values() else f"{plan.slug}_flow")
    runs = {s.name: namer.claim(f"{s.function}_run") for s in plan.steps}
    return FlowNames(flow, steps_module, cells_module, tasks, runs)


def render_flow(plan: Plan, workdir: str) -> str:
    """`workdir`: the notebook's folder relative to the project folder, posix style."""
    names = flow_names(plan)
    import_steps = ("import steps" if names.steps_module == "steps"
                    else f"import steps as {names.steps_module}")
    import_cells = ("import cells" if names.cells_module == "cells"
                    else f"import cells as {names.cells_module}")
    out = [
        f'"""Prefect flow of the pipeline converted from {docstring_text(plan.notebook_name)}.',
        "",
        "Run it:     python flow.py",
        "Test it:    pytest",
        "Deploy it:  see README.md",
        '"""',
        "",
        *(["import copy"] if any(s.copied for s in plan.steps) else []),
        "import contextlib",
        "import json",
        "import os",
        "from collections.abc import Callable",
        "from pathlib import Path",
        "from typing import Any",
        "",
        "from prefect import flow, task",
        "from prefect.artifacts import create_table_artifact",
        "from prefect.cache_policies import NO_CACHE",
        "from prefect.futures import wait",
        "",
        import_cells,
        import_steps,
        "",
        "PROJECT = Path(__file__).resolve().parent",
        "# Steps run in the notebook's folder, so its relative paths work (like papermill --cwd).",
        f"WORKDIR = Path(os.environ.get(\"NB2PIPE_WORKDIR\") or PROJECT / {literal(workdir)})"
        ".resolve()",
        "# Steps, parameters and the line map from steps.py back to the notebook's cells.",
        f"MANIFEST = {names.cells_module}.load_manifest(str(PROJECT))",
        "",
        "",
        "def _task_runner() -> Any:",
        '    """Threads by default. With prefect-dask installed, NB2PIPE_DASK_WORKERS=N runs the',
        "    steps on a local Dask cluster of N worker processes, NB2PIPE_DASK_ADDRESS=tcp://host:port",
        '    on an existing cluster (its workers need this folder on their PYTHONPATH)."""',
        '    address = os.environ.get("NB2PIPE_DASK_ADDRESS")',
        '    workers = os.environ.get("NB2PIPE_DASK_WORKERS")',
        "    if not address and not workers:",
        "        return None",
        "    from prefect_dask.task_runners import DaskTaskRunner",
        "",
        "    if address:",
        "        return DaskTaskRunner(address=address)",
        "    return DaskTaskRunner(",
        '        cluster_class="distributed.LocalCluster",',
        "        cluster_kwargs={",
        '            "n_workers": int(workers or 2),',
        '            "threads_per_worker": 1,',
        '            "processes": True,',
        '            "dashboard_address": None,',
        '            "resources": {"step": 1},',
        "        },",
        "    )",
        "",
        "",
        "def _placement() -> Any:",
        '    """On the local Dask cluster, one step per worker at a time: Dask would otherwise put',
        '    steps beside their inputs, on one worker, and independent steps would not overlap."""',
        '    local = not os.environ.get("NB2PIPE_DASK_ADDRESS")',
        '    if os.environ.get("NB2PIPE_DASK_WORKERS") and local:',
        "        import dask",
        "",
        '        return dask.annotate(resources={"step": 1})',
        "    return contextlib.nullcontext()",
    ]
    for step in plan.steps:
        out.extend(["", ""])
        out.extend(_task(plan, step, names))
    out.extend(["", ""])
    out.extend(_flow(plan, names))
    out.extend(["", ""])
    out.extend(_helpers(names))
    out.extend(["", ""])
    out.extend(_main(plan, names))
    return "\n".join(out) + "\n"


def _task(plan: Plan, step: StepPlan, names: FlowNames) -> list[str]:
    options = [f"name={literal(step.name)}", f"task_run_name={literal(step.name)}",
               "cache_policy=NO_CACHE", "persist_result=False"]
    if step.options.retries:
        options += [f"retries={step.options.retries}", "retry_delay_seconds=1",
                    f"retry_condition_fn={names.cells_module}.retry_unless_bug"]
    if step.options.timeout:
        options.append(f"timeout_seconds={step.options.timeout:g}")
    arguments = [f"{p}: {_annotation(plan, p)}" for p in step.parameters]
    upstream_names = upstream_arguments(step)
    upstream = [f"{upstream_names[producer]}: dict[str, Any]" for producer in step.upstream]
    signature = ", ".join([*upstream, *arguments])
    header = f"def {names.tasks[step.name]}({signature}) -> dict[str, Any]:"
    lines = [*_decorator("task", options), header]
    cells = ", ".join(str(c) for c in step.cells)
    lines.append(f'    """Step `{step.name}`: cell{"s" if len(step.cells) > 1 else ""} {cells} '
                 f'of {docstring_text(plan.notebook_name)}."""')
    values = {v: f"{upstream_names[producer]}[{literal(v)}]" for v, producer in step.inputs}
    if step.copied:
        # This step changes these values in place while another step reads them: give it copies.
        targets = ", ".join(step.copied)
        sources = ", ".join(values[v] for v in step.copied)
        comma = "," if len(step.copied) == 1 else ""
        lines.append(f"    # {', '.join(step.copied)}: changed in place here, read by other "
                     "steps too")
        lines.append(f"    {targets}{comma} = copy.deepcopy(({sources}{comma}))")
        values.update({v: v for v in step.copied})
    values.update({p: p for p in step.parameters})
    call_args = "".join(f", {a}={values[a]}" for a in step.arguments)
    call = f"_run({literal(step.name)}, {names.steps_module}.{step.function}{call_args})"
    if step.metrics:
        lines.append(f"    result = {call}")
        metrics = ", ".join(literal(m) for m in step.metrics)
        lines.append(f"    _publish_metrics({literal(step.name)}, result, [{metrics}])")
        lines.append("    return result")
    else:
        lines.append(f"    return {call}")
    return _wrap(lines)


def _flow(plan: Plan, names: FlowNames) -> list[str]:
    parameters = [f"{p.name}: {_type(p.type)} = {literal(p.default)}" for p in plan.parameters]
    lines = [*_decorator("flow", [f"name={literal(plan.slug)}", "log_prints=True",
                                  "task_runner=_task_runner()"])]
    if parameters:
        lines.append(f"def {names.flow}(")
        lines.extend(f"    {p}," for p in parameters)
        lines.append(") -> dict[str, dict[str, Any]]:")
    else:
        lines.append(f"def {names.flow}() -> dict[str, dict[str, Any]]:")
    notebook = docstring_text(plan.notebook_name)
    lines.append(f'    """The pipeline of {notebook}: returns each step\'s values.')
    if any(s.consumed_in_place for s in plan.steps):
        lines.extend(["",
                      "    Values are as they are at the end of the run: a value that a later step",
                      "    changes in place (as the notebook does) is returned changed."])
    documented = [p for p in plan.parameters if p.help]
    if documented:
        lines.extend(["", "    Args:"])
        lines.extend(f"        {p.name}: {docstring_text(p.help or '')}" for p in documented)
    lines.append('    """')
    lines.append("    with _placement():")
    for name in plan.order:
        step = plan.step(name)
        upstream_names = upstream_arguments(step)
        args = [f"{upstream_names[p]}={names.runs[p]}" for p in step.upstream]
        args += [f"{p}={p}" for p in step.parameters]
        if step.after:
            args.append(f"wait_for=[{', '.join(names.runs[a] for a in step.after)}]")
        lines.append(f"        {names.runs[name]} = {names.tasks[name]}.submit({', '.join(args)})")
    lines.append("    runs = {")
    lines.extend(f"        {literal(s)}: {names.runs[s]}," for s in plan.order)
    lines.append("    }")
    lines.append("    wait(list(runs.values()))  # independent steps finish even if one fails")
    lines.append("    # In pipeline order: the first failed step's error, naming its cell, fails "
                 "the flow.")
    lines.append("    return {step: run.result() for step, run in runs.items()}")
    return _wrap(lines)


def _helpers(names: FlowNames) -> list[str]:
    return [
        "def _run(step: str, function: Callable[..., dict[str, Any]], **arguments: Any"
        ") -> dict[str, Any]:",
        '    """Run a step in the notebook\'s folder; an error names the cell that raised it."""',
        "    if Path.cwd() != WORKDIR:",
        "        os.chdir(WORKDIR)",
        "    try:",
        "        return function(**arguments)",
        "    except Exception as error:",
        f"        raise {names.cells_module}.step_error(MANIFEST, {names.steps_module}.__file__, "
        "step, error) from error",
        "",
        "",
        "def _publish_metrics(step: str, values: dict[str, Any], names: list[str]) -> None:",
        '    """Publish a step\'s metrics as a Prefect table artifact (and in the logs)."""',
        "    rows = []",
        "    for name in names:",
        "        value = values.get(name)",
        "        if hasattr(value, \"item\") and getattr(value, \"shape\", None) == ():",
        "            value = value.item()  # numpy scalar",
        "        if isinstance(value, bool | int | float | str):",
        "            rows.append({\"metric\": name, \"value\": value})",
        "            print(f\"{step}: {name} = {value}\")",
        "        elif hasattr(value, \"to_json\") and hasattr(value, \"columns\"):",
        "            table = json.loads(value.reset_index().to_json(orient=\"records\",",
        "                                                           date_format=\"iso\"))",
        "            create_table_artifact(key=_artifact_key(f\"{step}-{name}\"), table=table,",
        "                                  description=f\"{name}, from step {step}\")",
        "    if rows:",
        "        create_table_artifact(key=_artifact_key(f\"{step}-metrics\"), table=rows,",
        "                              description=f\"Metrics of step {step}\")",
        "",
        "",
        "def _artifact_key(text: str) -> str:",
        "    return \"\".join(c if c.isalnum() else \"-\" for c in text.lower()).strip(\"-\")",
    ]


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


def upstream_arguments(step: StepPlan) -> dict[str, str]:
    """The task argument holding each upstream step's values: named after that step."""
    namer = Namer(step.parameters)
    namer.taken.discard("_")
    return {p: namer.claim(p if p not in namer.taken else f"{p}_values") for p in step.upstream}


def _annotation(plan: Plan, name: str) -> str:
    parameter = next(p for p in plan.parameters if p.name == name)
    return _type(parameter.type)


def _type(type_name: str) -> str:
    return "Any" if type_name in _TYPES_NEEDING_ANY else type_name


def relative_workdir(project: str, notebook_dir: str) -> str:
    """The notebook's folder as seen from the project folder (posix, never absolute)."""
    return posixpath.relpath(notebook_dir, project)
