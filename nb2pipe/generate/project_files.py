"""Plan -> the project's other files: prefect.yaml (+ Dockerfile), README.md, pipeline.json,
pyproject.toml (pytest and ruff settings)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from string import Template
from types import MappingProxyType

from nb2pipe import __version__
from nb2pipe.escape import (
    comment,
    dockerfile_path,
    md_code,
    md_fence,
    md_text,
    shell_word,
    yaml_string,
)
from nb2pipe.generate.code import literal
from nb2pipe.generate.flow_py import flow_names
from nb2pipe.generate.plan import Plan
from nb2pipe.graph_text import mermaid
from nb2pipe.runtime.manifest import (
    CodeSpan,
    ConvertOptions,
    EdgeEntry,
    FlowEntry,
    InputEntry,
    LineRun,
    Manifest,
    ParameterEntry,
    StepEntry,
    StepSettings,
)

DEFAULT_POOL = "nb2pipe-process"
LOCAL_API_URL = "http://127.0.0.1:4200/api"  # where `prefect server start` listens
README_TEMPLATE = "project_readme.md"  # beside this module: README.md's prose, $-placeholders


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
        f"name: {yaml_string(name)}",
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
        f"  - name: {yaml_string(name)}",
        f"    description: {yaml_string('Pipeline converted from ' + plan.notebook_name)}",
        f"    entrypoint: {yaml_string(f'flow.py:{names.flow}')}",
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
            f"  - name: {yaml_string(name + '-docker')}",
            f"    entrypoint: {yaml_string(f'flow.py:{names.flow}')}",
            "    parameters: {}",
            "    pull:  # the project's folder inside the image",
            "      - prefect.deployments.steps.set_working_directory:",
            f"          directory: {yaml_string(_in_image(options))}",
            "    work_pool:",
            "      name: nb2pipe-docker",
            "      job_variables:",
            f"        image: {yaml_string(name + ':latest')}",
            "        image_pull_policy: Never",
            "",
            "  # Per-step isolation on Kubernetes: a kubernetes work pool runs the flow in a pod",
            "  # prefect work-pool create --type kubernetes nb2pipe-kubernetes",
            f"  - name: {yaml_string(name + '-kubernetes')}",
            f"    entrypoint: {yaml_string(f'flow.py:{names.flow}')}",
            "    parameters: {}",
            "    pull:",
            "      - prefect.deployments.steps.set_working_directory:",
            f"          directory: {yaml_string(_in_image(options))}",
            "    work_pool:",
            "      name: nb2pipe-kubernetes",
            "      job_variables:",
            f"        image: {yaml_string(name + ':latest')}",
            "        namespace: default",
        ])
    return "\n".join(lines) + "\n"


def render_dockerfile(plan: Plan, options: Options) -> str:
    """Raises ValueError when a path cannot be written into a Dockerfile safely."""
    project = dockerfile_path(options.project_in_context)
    build = shell_word(f"{project}/Dockerfile")
    return "\n".join([
        f"# Image for the pipeline converted from {comment(plan.notebook_name)}.",
        f"# Build it from {comment(options.docker_context)} (relative to this folder), which",
        "# holds the notebook's files and this project:",
        f"#   docker build -f {comment(build)} -t {deployment_name(plan)} .",
        f"FROM python:{options.python}-slim",
        "WORKDIR /opt/pipeline",
        "COPY " + _docker_arguments([f"{project}/requirements.txt", "/opt/requirements.txt"]),
        "RUN pip install --no-cache-dir -r /opt/requirements.txt",
        "COPY . .",
        f"WORKDIR {dockerfile_path(_in_image(options))}",
        "",
    ])


def _docker_arguments(paths: list[str]) -> str:
    """Paths as Docker's shell form, or its JSON form when one holds a space."""
    if any(" " in path for path in paths):
        return json.dumps(paths, ensure_ascii=False)
    return " ".join(paths)


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
        *(["# Names the notebook reads only where Python 3 never runs (a version check).",
           f"builtins = [{', '.join(json.dumps(n) for n in plan.ruff_builtins)}]"]
          if plan.ruff_builtins else []),
        "",
        "[tool.ruff.lint]",
        "# Syntax errors, undefined names, unused imports, statement mistakes.",
        'select = ["E4", "E7", "E9", "F"]',
        "",
        "[tool.ruff.lint.per-file-ignores]",
        "# steps.py holds the notebook's cells as written: its style, unused names and",
        "# formatting slips are the notebook's business. What would fail when a step runs",
        "# (undefined names, names read before assignment, syntax) is still checked.",
        '"steps.py" = ["E401", "E402", "E701", "E702", "E703", "E711", "E712", "E713", '
        '"E714", "E721", "E722", "E731", "E741", "F401", "F402", "F403", "F405", "F5", '
        '"F6", "F811", "F841", "F842", "F9"]',
        "# flow.py names its variables after the notebook's (`I`, `l`).",
        '"flow.py" = ["E741"]',
        "",
    ])


def render_readme(plan: Plan, options: Options) -> str:
    """README.md from the prose in project_readme.md; every value from the notebook goes in
    escaped for where it lands (a table cell, inline code, a shell word, a fenced block)."""
    names = flow_names(plan)
    example = plan.parameters[0] if plan.parameters else None
    override = f"{example.name}={literal(example.default)}" if example else ""
    call = f"from flow import {names.flow}; {names.flow}({override})"
    run = ["prefect", "deployment", "run",
           shell_word(f"{plan.slug}/{deployment_name(plan)}"), "--watch"]
    if example:
        run += ["-p", shell_word(f"{example.name}={json_value(example.default)}")]
    return _readme_template().substitute(
        slug=plan.slug,
        version=__version__,
        notebook=md_code(options.notebook),
        graph=_lines(md_fence("mermaid", mermaid(plan.graph).splitlines())),
        steps=_lines(_steps_table(plan)),
        parameters=_lines(_parameters_table(plan)),
        run=_lines(md_fence("bash", [
            "pip install -r requirements.txt",
            "python flow.py                       # runs every step with the default parameters",
            f"python -c {shell_word(call)}",
        ])),
        api_url=LOCAL_API_URL,
        pool=DEFAULT_POOL,
        deployment_run=_lines(md_fence("bash", [" ".join(run)])),
    )


@functools.cache
def _readme_template() -> Template:
    # read as package data, so that it is found in an installed wheel too
    text = resources.files("nb2pipe.generate").joinpath(README_TEMPLATE).read_text(encoding="utf-8")
    return Template(text)


def _lines(lines: list[str]) -> str:
    return "\n".join(lines)


def _steps_table(plan: Plan) -> list[str]:
    lines = ["| step | cells | reads | returns |", "|---|---|---|---|"]
    for step in plan.steps:
        reads = ", ".join(f"{md_code(v, in_table=True)} ({p})" for v, p in step.inputs)
        used = ", ".join(md_code(p, in_table=True) for p in step.parameters)
        reads = ", ".join(x for x in (reads, used) if x)
        returns = ", ".join(md_code(r, in_table=True) for r in step.returns)
        cells = ", ".join(str(c) for c in step.cells)
        lines.append(f"| {step.name} | {cells} | {reads or '-'} | {returns or '-'} |")
    return lines


def _parameters_table(plan: Plan) -> list[str]:
    if not plan.parameters:
        return ["The notebook has no `parameters` cell."]
    lines = ["| name | type | default | description |", "|---|---|---|---|"]
    for p in plan.parameters:
        row = [md_code(p.name, in_table=True), md_code(p.type, in_table=True),
               md_code(literal(p.default), in_table=True), md_text(p.help or "")]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def json_value(value: object) -> str:
    """A value as JSON on one line, as `prefect deployment run -p NAME=VALUE` reads it."""
    text = json.dumps(value, ensure_ascii=False)
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


def manifest(plan: Plan, options: Options, source_sha256: str,
             line_map: dict[str, list[list[int]]], code_hashes: dict[str, str]) -> Manifest:
    """What pipeline.json says (the writer adds the files' hashes): read back by the project
    at run time and by nb2pipe run, verify and deploy."""
    names = flow_names(plan)
    spans = _code_spans(plan)
    return Manifest(
        nb2pipe=__version__,
        notebook=options.notebook,
        source_sha256=source_sha256,
        options=ConvertOptions(options.split, options.record, options.docker),
        workdir=options.workdir,
        flow=FlowEntry(plan.slug, names.flow, f"flow.py:{names.flow}"),
        parameters=tuple(
            ParameterEntry(p.name, p.type, p.default, p.help, p.cell, p.line,
                           names.arguments[p.name])
            for p in plan.parameters),
        steps=tuple(
            StepEntry(
                name=s.name,
                function=s.function,
                task=names.tasks[s.name],
                cells=tuple(s.cells),
                inputs=tuple(InputEntry(v, p) for v, p in s.inputs),
                parameters=tuple(s.parameters),
                outputs=tuple(s.outputs),
                metrics=tuple(s.metrics),
                copied=tuple(s.copied),
                after=tuple(s.after),
                consumed_in_place=tuple(s.consumed_in_place),
                pyplot=s.pyplot,
                blas=s.blas,
                options=StepSettings(s.options.retries, s.options.timeout, s.options.cache,
                                     MappingProxyType(dict(s.options.resources))),
                code_sha256=code_hashes[s.name],
                lines=tuple(LineRun(*run) for run in _ranges(line_map.get(s.name, []))),
                notebook_code=spans[s.name],
            )
            for s in plan.steps),
        order=tuple(plan.order),
        edges=tuple(EdgeEntry(e.source, e.target, tuple(e.variables))
                    for e in plan.graph.edges),
        kernel=plan.graph.notebook.kernel_name,
    )


def _code_spans(plan: Plan) -> dict[str, tuple[CodeSpan, ...]]:
    """For each step, the code it needs from other cells (imports, functions) as (cell, first
    line, last line): notebook mode runs them before the step's own cells."""
    code = {}
    for node in plan.graph.steps:
        spans: list[CodeSpan] = []
        for entity in node.code:
            span = CodeSpan(entity.span.cell, entity.span.start, entity.span.end)
            if entity.span.cell in node.cells or entity.span.start == 0 or span in spans:
                continue
            spans.append(span)
        code[node.name] = tuple(spans)
    return code


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
