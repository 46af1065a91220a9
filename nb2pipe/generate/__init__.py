"""Stage 5, generate: StepGraph -> the files of a Prefect project (in memory, deterministic)."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from nb2pipe.generate.flow_py import render_flow
from nb2pipe.generate.plan import Plan, content_hash, make_plan
from nb2pipe.generate.project_files import (
    Options,
    manifest,
    render_dockerfile,
    render_prefect_yaml,
    render_pyproject,
    render_readme,
)
from nb2pipe.generate.requirements import render_requirements, requirements
from nb2pipe.generate.steps_py import render_steps
from nb2pipe.generate.tests_py import render_tests
from nb2pipe.model import StepGraph
from nb2pipe.runtime import PACKAGE
from nb2pipe.runtime.manifest import Manifest


@dataclass(frozen=True)
class Project:
    plan: Plan
    files: dict[str, bytes]  # relative path -> content; text files carry no stamp yet
    manifest: Manifest


def generate(graph: StepGraph, options: Options,
             fixtures: dict[str, bytes] | None = None) -> Project:
    plan = make_plan(graph)
    from nb2pipe.generate.requirements import local_modules

    rendered = render_steps(plan, local_modules(plan.modules, graph.notebook.path.parent),
                            options.workdir)
    module_code = {b.key: "\n".join(line.text for line in b.lines) for b in plan.module}
    code_hashes = {
        s.name: content_hash(rendered.functions[s.name], *(module_code[k] for k in s.module_code))
        for s in plan.steps
    }
    text: dict[str, str] = {
        "steps.py": rendered.text,
        "flow.py": render_flow(plan),
        "requirements.txt": render_requirements(
            requirements(plan.modules, plan.pip_requirements, graph.notebook.path.parent,
                         extra=_extra_requirements(plan, options, fixtures)),
            plan.notebook_name),
        "prefect.yaml": render_prefect_yaml(plan, options),
        "README.md": render_readme(plan, options),
        "pyproject.toml": render_pyproject(plan),
        "tests/__init__.py": "",
        **render_tests(plan, recorded=fixtures is not None),
    }
    if options.docker:
        text["Dockerfile"] = render_dockerfile(plan, options)
    files = {path: content.encode() for path, content in text.items()}
    files.update(runtime_files())
    files.update(fixtures or {})
    return Project(plan, files,
                   manifest(plan, options, source_hash(graph), rendered.line_map, code_hashes))


def runtime_files() -> dict[str, bytes]:
    """nb2pipe/runtime/*.py, byte for byte, as the project's nb2pipe_runtime/ package."""
    folder = Path(__file__).resolve().parent.parent / "runtime"
    return {f"{PACKAGE}/{path.name}": path.read_bytes() for path in sorted(folder.glob("*.py"))}


def _extra_requirements(plan: Plan, options: Options,
                        fixtures: dict[str, bytes] | None) -> list[tuple[str, str]]:
    extra = [("nbconvert", "the run's HTML report")]
    if plan.uses_display:
        extra.append(("ipython", "display() in the notebook"))
    if fixtures and any(path.endswith(".parquet") for path in fixtures):
        extra.append(("pyarrow", "reads the recorded DataFrames"))
    if fixtures and "tests/fixtures/modules.txt" in fixtures:
        # Packages of the values that crossed step boundaries while the notebook ran: a
        # DataFrame needs pandas even where no cell imports it.
        from nb2pipe.generate.requirements import distribution_of

        for module in fixtures["tests/fixtures/modules.txt"].decode(errors="replace").split():
            if module not in sys.stdlib_module_names:
                extra.append((distribution_of(module), f"values from {module} cross steps"))
    return extra


def source_hash(graph: StepGraph) -> str:
    """Hash of what the pipeline is made from: cell types, sources and tags (not outputs)."""
    digest = hashlib.sha256()
    for cell in graph.notebook.cells:
        digest.update(json.dumps([cell.cell_type, cell.source, list(cell.tags)]).encode())
    return digest.hexdigest()
