"""Plan -> the project's other files: prefect.yaml (+ Dockerfile), README.md, pipeline.json,
pyproject.toml (pytest and ruff settings)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nb2pipe import __version__
from nb2pipe.generate.code import comment, literal
from nb2pipe.generate.flow_py import flow_names
from nb2pipe.generate.plan import Plan
from nb2pipe.render import mermaid

DEFAULT_POOL = "nb2pipe-process"


@dataclass(frozen=True)
class Options:
    split: str = "tags"
    record: bool = False
    docker: bool = False
    workdir: str = ".."  # the notebook's folder, relative to the project
    notebook: str = "../notebook.ipynb"  # the notebook, relative to the project
    python: str = "3.11"
    # Docker builds from the folder holding both the notebook's folder and the project:
    docker_context: str = ".."  # that folder, relative to the project
    project_in_context: str = "pipeline"  # the project, relative to that folder


def deployment_name(plan: Plan) -> str:
    return plan.slug.replace("_", "-")


def render_prefect_yaml(plan: Plan, options: Options) -> str:
    names = flow_names(plan)
    name = deployment_name(plan)
    lines = [
        f"# Prefect deployment of the pipeline converted from {comment(plan.notebook_name)}.",
        "# From this folder, with PREFECT_API_URL set: prefect deploy --all (see README.md).",
        f"name: {json.dumps(name)}",
        "prefect-version: 3.8.8",
        "",
        "build: null",
        "push: null",
        "",
        "# A worker runs the flow from this folder, which `prefect deploy` (run here) records",
        "# as an absolute path; the pipeline finds the notebook's files from it.",
        "pull:",
        "  - prefect.deployments.steps.set_working_directory:",
        '      directory: "{{ $PWD }}"',
        "",
        "deployments:",
        f"  - name: {json.dumps(name)}",
        f"    description: {json.dumps('Pipeline converted from ' + plan.notebook_name)}",
        f"    entrypoint: flow.py:{names.flow}",
        "    parameters: {}",
        "    work_pool:",
        f"      name: {DEFAULT_POOL}",
        "      work_queue_name: default",
        "      job_variables: {}",
    ]
    if options.docker:
        lines.extend([
            "",
            "  # The same flow in a container: build the image from the Dockerfile here, then",
            "  # prefect work-pool create --type docker nb2pipe-docker",
            f"  - name: {json.dumps(name + '-docker')}",
            f"    entrypoint: flow.py:{names.flow}",
            "    parameters: {}",
            "    pull:  # the project's folder inside the image",
            "      - prefect.deployments.steps.set_working_directory:",
            f"          directory: {json.dumps(_in_image(options))}",
            "    work_pool:",
            "      name: nb2pipe-docker",
            "      job_variables:",
            f"        image: {json.dumps(name + ':latest')}",
            "        image_pull_policy: Never",
            "",
            "  # Per-step isolation on Kubernetes: a kubernetes work pool runs the flow in a pod",
            "  # prefect work-pool create --type kubernetes nb2pipe-kubernetes",
            f"  - name: {json.dumps(name + '-kubernetes')}",
            f"    entrypoint: flow.py:{names.flow}",
            "    parameters: {}",
            "    pull:",
            "      - prefect.deployments.steps.set_working_directory:",
            f"          directory: {json.dumps(_in_image(options))}",
            "    work_pool:",
            "      name: nb2pipe-kubernetes",
            "      job_variables:",
            f"        image: {json.dumps(name + ':latest')}",
            "        namespace: default",
        ])
    return "\n".join(lines) + "\n"


def render_dockerfile(plan: Plan, options: Options) -> str:
    project = options.project_in_context
    return "\n".join([
        f"# Image for the pipeline converted from {comment(plan.notebook_name)}.",
        f"# Build it from {options.docker_context} (relative to this folder), which holds the",
        "# notebook's files and this project:",
        f"#   docker build -f {project}/Dockerfile -t {deployment_name(plan)} .",
        f"FROM python:{options.python}-slim",
        "WORKDIR /opt/pipeline",
        f"COPY {project}/requirements.txt /opt/requirements.txt",
        "RUN pip install --no-cache-dir -r /opt/requirements.txt",
        "COPY . .",
        f"WORKDIR {_in_image(options)}",
        "",
    ])


def _in_image(options: Options) -> str:
    return f"/opt/pipeline/{options.project_in_context}"


def render_pyproject(plan: Plan) -> str:
    return "\n".join([
        f"# Settings for the pipeline converted from {comment(plan.notebook_name)}.",
        "[tool.pytest.ini_options]",
        'pythonpath = ["."]',
        'testpaths = ["tests"]',
        "",
        "[tool.ruff]",
        "line-length = 100",
        "",
        "[tool.ruff.lint]",
        "# Syntax errors, undefined names, unused imports, statement mistakes.",
        'select = ["E4", "E7", "E9", "F"]',
        "",
        "[tool.ruff.lint.per-file-ignores]",
        "# steps.py holds the notebook's cells as written: values computed for display and",
        "# notebook-style formatting are the notebook's business.",
        '"steps.py" = ["E401", "E402", "E701", "E702", "E703", "E711", "E712", "E713", '
        '"E714", "E721", "E722", "E731", "E741", "F811", "F841"]',
        "",
    ])


def render_readme(plan: Plan, options: Options) -> str:
    names = flow_names(plan)
    name = deployment_name(plan)
    lines = [
        f"# {plan.slug} pipeline",
        "",
        f"Converted by nb2pipe {__version__} from `{options.notebook}`: one Prefect task per step,",
        "dependencies inferred from the code. Edit the notebook, then convert again; a file you",
        "edit here is kept (nb2pipe refuses to overwrite it unless `--force`).",
        "",
        "## Steps",
        "",
        "```mermaid",
        mermaid(plan.graph),
        "```",
        "",
        "| step | cells | reads | returns |",
        "|---|---|---|---|",
    ]
    for step in plan.steps:
        reads = ", ".join(f"`{v}` ({p})" for v, p in step.inputs)
        reads = ", ".join(x for x in (reads, ", ".join(f"`{p}`" for p in step.parameters)) if x)
        returns = ", ".join(f"`{r}`" for r in step.returns)
        cells = ", ".join(str(c) for c in step.cells)
        lines.append(f"| {step.name} | {cells} | {reads or '-'} | {returns or '-'} |")
    lines.extend(["", "## Parameters", ""])
    if plan.parameters:
        lines.extend(["| name | type | default | description |", "|---|---|---|---|"])
        for p in plan.parameters:
            row = [f"`{p.name}`", f"`{p.type}`", f"`{literal(p.default)}`",
                   comment(p.help or "")]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    else:
        lines.append("The notebook has no `parameters` cell.")
    example = plan.parameters[0] if plan.parameters else None
    override = f"{example.name}={literal(example.default)}" if example else ""
    lines.extend([
        "",
        "## Run",
        "",
        "```bash",
        "pip install -r requirements.txt",
        "python flow.py                       # runs every step with the default parameters",
        f'python -c "from flow import {names.flow}; {names.flow}({override})"',
        "```",
        "",
        "Steps run in the notebook's folder, so its relative paths work. Independent steps run",
        "concurrently.",
        "",
        "## Results and caching",
        "",
        "Each step's values are kept in the result storage, and a step runs again only when its",
        "code, the parameters it reads or the content of its inputs changed (Prefect reports",
        "it `Cached`); a failed flow run, retried, runs the failed step and the steps after it.",
        "The storage is the folder `~/.cache/nb2pipe/results` unless `NB2PIPE_RESULT_STORAGE`",
        "names another folder or a saved Prefect filesystem block as `TYPE/NAME`",
        "(`s3-bucket/pipeline-results`), in the environment of the run or of a deployment:",
        "",
        "```yaml",
        "    work_pool:",
        "      job_variables:",
        "        env:",
        "          NB2PIPE_RESULT_STORAGE: s3-bucket/pipeline-results",
        "```",
        "",
        "`NB2PIPE_CACHE=off` runs every step. `nb2pipe_runtime/` holds what the flow needs at run",
        "time (the cache policy, the storage, errors named by notebook cell and line).",
        "",
        "## Test",
        "",
        "```bash",
        "pytest",
        "```",
        "",
        "## Deploy",
        "",
        "```bash",
        "prefect server start                 # or point PREFECT_API_URL at your server",
        f"prefect work-pool create --type process {DEFAULT_POOL}",
        "prefect --no-prompt deploy --all         # in this folder: the worker runs from here",
        f"prefect worker start --pool {DEFAULT_POOL}",
        f"prefect deployment run '{plan.slug}/{name}'" + (f" -p {override}" if override else ""),
        "```",
        "",
    ])
    return "\n".join(lines)


def manifest(plan: Plan, options: Options, source_sha256: str,
             line_map: dict[str, list[list[int]]], code_hashes: dict[str, str]) -> dict[str, Any]:
    names = flow_names(plan)
    return {
        "nb2pipe": __version__,
        "notebook": options.notebook,
        "source_sha256": source_sha256,
        "options": {"split": options.split, "record": options.record, "docker": options.docker},
        "workdir": options.workdir,
        "flow": {"name": plan.slug, "function": names.flow,
                 "entrypoint": f"flow.py:{names.flow}"},
        "parameters": [
            {"name": p.name, "type": p.type, "default": p.default, "help": p.help,
             "cell": p.cell, "line": p.line}
            for p in plan.parameters
        ],
        "steps": [
            {
                "name": s.name,
                "function": s.function,
                "task": names.tasks[s.name],
                "cells": list(s.cells),
                "inputs": [{"name": v, "from": p} for v, p in s.inputs],
                "parameters": list(s.parameters),
                "outputs": list(s.outputs),
                "metrics": list(s.metrics),
                "copied": list(s.copied),
                "after": list(s.after),
                "consumed_in_place": list(s.consumed_in_place),
                "options": {"retries": s.options.retries, "timeout": s.options.timeout,
                            "cache": s.options.cache},
                "code_sha256": code_hashes[s.name],
                "lines": _ranges(line_map.get(s.name, [])),
            }
            for s in plan.steps
        ],
        "order": list(plan.order),
        "edges": [{"source": e.source, "target": e.target, "variables": list(e.variables)}
                  for e in plan.graph.edges],
    }


def _ranges(lines: list[list[int]]) -> list[list[int]]:
    """[[steps.py line, cell, cell line], ...] -> [[first steps.py line, cell, first cell line,
    count], ...] for runs of consecutive lines."""
    ranges: list[list[int]] = []
    for generated, cell, line in lines:
        last = ranges[-1] if ranges else None
        follows = last and generated == last[0] + last[3] and line == last[2] + last[3]
        if last and follows and last[1] == cell:
            last[3] += 1
        else:
            ranges.append([generated, cell, line, 1])
    return ranges
