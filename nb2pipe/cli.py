"""The `nb2pipe` command: parse arguments, call the library, print, exit.

Exit codes: 0 success (warnings allowed), 1 the notebook has errors (or warnings with --strict),
2 usage error or unreadable file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nb2pipe import __version__
from nb2pipe.exceptions import Nb2pipeError

if TYPE_CHECKING:
    from nb2pipe.execute import RunOptions
    from nb2pipe.execute.run_output import JsonProgress
    from nb2pipe.model import StepGraph
    from nb2pipe.prepare import Prepared

EXAMPLES = """\
examples:
  nb2pipe check analysis.ipynb                 report steps, edges and problems
  nb2pipe convert analysis.ipynb               write the Prefect project beside it
  nb2pipe run analysis.ipynb -p alpha 0.5      run the pipeline with a parameter
  nb2pipe COMMAND --help                       each command's own examples

exit codes (every command): 0 success (warnings allowed), 1 the notebook has errors (or the
check failed: a stale project, a failed run, a divergence), 2 usage error or unreadable file
"""

COMMAND_EXAMPLES = {
    "check": """\
examples:
  nb2pipe check analysis.ipynb                 path:line:col: CODE message, then a summary
  nb2pipe check a.ipynb b.ipynb --strict       several notebooks; warnings fail too
  nb2pipe check analysis.ipynb --show-info     also the notes (information, nothing to fix)
  nb2pipe check analysis.ipynb --format json   one JSON object (one notebook only)
  nb2pipe check analysis.ipynb --format github annotations for GitHub Actions
  nb2pipe check eda.ipynb --split headings     one step per markdown H1/H2 section

Lines and columns are the .ipynb file's own (the JSON line holding the cell's source line), so
an editor jumps to them; the message names the cell and its line as JupyterLab shows them.

exit codes: 0 no errors, 1 errors (or warnings with --strict), 2 usage error or unreadable file
""",
    "graph": """\
examples:
  nb2pipe graph analysis.ipynb                 each step with the steps it reads from
  nb2pipe graph analysis.ipynb --format mermaid | tee graph.mmd
  nb2pipe graph analysis.ipynb --format dot | dot -Tsvg > graph.svg

exit codes: 0 drawn, 1 the notebook has errors (listed on stderr), 2 usage error
""",
    "convert": """\
examples:
  nb2pipe convert churn.ipynb                  into churn_pipeline/ beside the notebook
  nb2pipe convert churn.ipynb -o pipelines/churn --docker
  nb2pipe convert churn.ipynb --record         run it once: values become test fixtures
  nb2pipe convert churn.ipynb --check          CI: is churn_pipeline/ up to date?
  nb2pipe convert --check                      CI: every project under this folder

Nothing runs the notebook but --record. A file edited by hand is kept unless --force.

exit codes: 0 written (or up to date), 1 errors in the notebook or a stale project (--check),
2 usage error, unreadable file, or a project that cannot be written
""",
    "run": """\
examples:
  nb2pipe run churn.ipynb                      convert into a cache folder, then run
  nb2pipe run churn_pipeline -p n_estimators 50 -r data_path data/other.csv
  nb2pipe run churn.ipynb -f params.yaml --runner process
  nb2pipe run churn.ipynb --progress jsonl     one JSON event per line, for programs

exit codes: 0 every step completed, 1 errors in the notebook or a failed step, 2 usage error
""",
    "deploy": """\
examples:
  nb2pipe deploy churn_pipeline                to the server at PREFECT_API_URL
  nb2pipe deploy churn_pipeline --cron "0 6 * * *" -p n_estimators 200
  nb2pipe deploy churn_pipeline --serve        serve it from this process instead
  nb2pipe deploy churn_pipeline --git          workers clone this commit from the remote
  nb2pipe deploy churn_pipeline --git URL --branch main
  nb2pipe deploy churn_pipeline --yes          CI: deploy a hand-edited prefect.yaml as it is

A prefect.yaml edited by hand may run steps nb2pipe never wrote (build and push steps run
here): they are listed, and deploying needs a yes on the terminal, or --yes.

exit codes: 0 deployed, 1 the deployment failed or was declined, 2 usage error (a hand-edited
prefect.yaml without --yes, off a terminal)
""",
    "verify": """\
examples:
  nb2pipe verify churn.ipynb                   notebook and pipeline compute the same values?
  nb2pipe verify churn.ipynb -p test_size 0.3
  nb2pipe verify notebooks/*.ipynb             several: one Prefect server start for all

exit codes: 0 the same values, 1 errors in the notebook or a divergence, 2 usage error
""",
}

SERVER_EXAMPLES = """\
examples:
  nb2pipe server status          URL, pid, uptime and state folder of the local server
  nb2pipe server status --json   the same, as one JSON object
  nb2pipe server stop            stop it (the next nb2pipe run starts it again)

exit codes: 0 done (status: running), 1 not running (status) or failed to start
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if args.handler is _verify and argv is None:
        _with_fixed_hash_seed()
    try:
        result: int = args.handler(args)
        return result
    except BrokenPipeError:  # `nb2pipe ... | head`: the reader left
        sys.stderr.close()
        return 0
    except Nb2pipeError as exc:
        print(_error_text(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


class _UsageError(Nb2pipeError):
    """The command line asks for something the command cannot do: one line, exit 2."""


def _error_text(exc: Nb2pipeError) -> str:
    """The error as the command line shows it: a message naming a file whose name holds a
    line break is still one line."""
    from nb2pipe.escape import one_line

    return exc.label + (one_line(str(exc)) if exc.one_line else str(exc))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nb2pipe",
        description="Turn a tagged Jupyter notebook into a tested Prefect pipeline.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nb2pipe {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    _add_check(commands)
    graph = _command(commands, "graph", "print the step graph", _graph)
    graph.add_argument("--format", choices=("mermaid", "dot", "text"), default="text")
    _add_convert(commands)
    _add_run(commands)
    _add_deploy(commands)
    verify = _command(commands, "verify",
                      "check that the pipeline computes what the notebook computes", _verify,
                      several=True)
    _parameter_flags(verify)
    _add_server(commands)
    return parser


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """nb2pipe check NOTEBOOK..."""
    check = _command(commands, "check", "check notebooks: steps, dependencies, problems", _check,
                     several=True)
    check.add_argument("--format", choices=("text", "json", "github"), default="text",
                       help="text: path:line:col: CODE message (default); json; github")
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    check.add_argument("--show-info", action="store_true",
                       help="also list the notes (information, nothing to fix: e.g. NB306, a "
                            "cell whose output goes to the run's report)")


def _add_convert(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """nb2pipe convert NOTEBOOK..."""
    convert = _command(commands, "convert", "write a Prefect project for a notebook", _convert,
                       several=True)
    convert.add_argument("-o", "--output", metavar="DIR",
                         help="project folder (default: NOTEBOOK_STEM_pipeline beside it)")
    convert.add_argument("--force", action="store_true",
                         help="overwrite files edited by hand since they were generated")
    convert.add_argument("--check", action="store_true",
                         help="write nothing; exit 1 if DIR is out of date with the notebook "
                              "(with no notebook: every nb2pipe project under this folder)")
    convert.add_argument("--record", action=argparse.BooleanOptionalAction, default=None,
                         help="run the notebook once and keep each step's inputs and outputs "
                              "as test fixtures (the only way convert runs code); without it, "
                              "fixtures recorded earlier are kept as they are; --no-record "
                              "drops them")
    convert.add_argument("--docker", action="store_true", default=None,
                         help="also write a Dockerfile and docker/kubernetes deployments")


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """nb2pipe run NOTEBOOK"""
    from nb2pipe.execute.engine import MODES, RUNNERS

    run = _command(commands, "run", "run a notebook's pipeline (or a converted project)", _run)
    _parameter_flags(run)
    run.add_argument("--mode", choices=MODES, default="module",
                     help="module: step functions in this process (default); notebook: each "
                          "step as a papermill notebook, kept with the run")
    run.add_argument("--runner", choices=RUNNERS, default="thread",
                     help="how independent steps run concurrently (default: threads)")
    run.add_argument("--dask-address", metavar="ADDRESS",
                     help="with --runner dask: the scheduler, e.g. tcp://10.0.0.5:8786 "
                          "(default: a local cluster)")
    run.add_argument("--workers", type=int, metavar="N", help="concurrent steps at most")
    run.add_argument("--no-cache", action="store_true", help="run every step again")
    reporting = run.add_mutually_exclusive_group()
    reporting.add_argument("--no-report", action="store_true",
                           help="write no HTML report (and capture no figures or printed output)")
    reporting.add_argument("--report", metavar="FILE",
                           help="write the HTML report to FILE (default: a new file in the "
                                "user's cache folder, printed at the end)")
    run.add_argument("--cwd", metavar="DIR", help="run steps here (default: the notebook's folder)")
    run.add_argument("-o", "--output", metavar="DIR",
                     help="write the converted project here (default: a cache folder)")
    run.add_argument("--json", action="store_true", help="print the result as one JSON object")
    run.add_argument("--progress", choices=("text", "jsonl"), default="text",
                     help="jsonl: one JSON event per line on stdout, for programs (what "
                          "the steps print goes to stderr)")
    run.add_argument("--verbose", action="store_true",
                     help="show Prefect's own log lines (failed tasks' tracebacks included)")


def _add_deploy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """nb2pipe deploy PROJECT"""
    deploy = commands.add_parser(
        "deploy", help="deploy a converted project to a Prefect server",
        description="Deploy a converted project to the Prefect server at PREFECT_API_URL, "
                    "through its prefect.yaml (creating the process work pool if missing).",
        epilog=COMMAND_EXAMPLES["deploy"], formatter_class=argparse.RawDescriptionHelpFormatter)
    deploy.add_argument("project", help="folder written by nb2pipe convert")
    deploy.add_argument("--pool", help="work pool (default: the one in prefect.yaml)")
    deploy.add_argument("--name", help="deployment name (default: the one in prefect.yaml)")
    deploy.add_argument("--cron", metavar="EXPR", help="schedule, e.g. '0 6 * * *'")
    deploy.add_argument("--git", nargs="?", const="", metavar="URL",
                        help="workers clone the project from git: this commit, from URL "
                             "(default: the checkout's remote), instead of running it from "
                             "this folder")
    deploy.add_argument("--branch", help="with --git: the branch (default: the current one)")
    deploy.add_argument("--serve", action="store_true",
                        help="serve the flow from this process instead (no server-side worker)")
    deploy.add_argument("--yes", action="store_true",
                        help="deploy a prefect.yaml edited by hand without asking (its steps "
                             "are still listed)")
    _parameter_flags(deploy)
    deploy.set_defaults(handler=_deploy)


def _add_server(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """nb2pipe server status|start|stop"""
    server = commands.add_parser(
        "server", help="the local Prefect server that nb2pipe run and verify share",
        description="The local Prefect server that nb2pipe run and verify start on first use "
                    "and share (not used when PREFECT_API_URL is set).",
        epilog=SERVER_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = server.add_subparsers(title="actions", metavar="ACTION", required=True)
    for action, text in (("status", "is it running: URL, pid, uptime, state folder"),
                         ("start", "start it now (nb2pipe run does when needed)"),
                         ("stop", "stop it and everything it started")):
        sub = actions.add_parser(action, help=text, description=text[0].upper() + text[1:],
                                 epilog=SERVER_EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(handler=_server, action=action)
        if action == "status":
            sub.add_argument("--json", action="store_true", help="one JSON object")


def _parameter_flags(sub: argparse.ArgumentParser) -> None:
    """papermill's parameter flags, with papermill's meaning."""
    sub.add_argument("-p", "--parameters", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"),
                     help="a parameter; True/False/None, ints and floats are typed")
    sub.add_argument("-r", "--parameters-raw", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="a parameter, always as text")
    sub.add_argument("-y", "--parameters-yaml", action="append", default=[], metavar="YAML",
                     help="parameters as a YAML mapping")
    sub.add_argument("-f", "--parameters-file", action="append", default=[], metavar="FILE",
                     help="parameters from a YAML file")


def _command(commands: argparse._SubParsersAction[argparse.ArgumentParser],
             name: str, help_text: str,
             handler: Callable[[argparse.Namespace], int],
             several: bool = False) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".",
        epilog=COMMAND_EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if several:
        sub.add_argument("notebook", nargs="*" if name == "convert" else "+",
                         help="path to the .ipynb file(s)")
    else:
        sub.add_argument("notebook", help="path to the .ipynb file")
    sub.add_argument("--split", choices=("tags", "headings", "cells"),
                     default=None if name == "convert" else "tags",
                     help="how cells become steps (default: tags)")
    sub.set_defaults(handler=handler)
    return sub


def _analyze(args: argparse.Namespace, notebook: str | None = None) -> StepGraph:
    from nb2pipe.pipeline import analyze_notebook

    return analyze_notebook(notebook or args.notebook, args.split)


def _check(args: argparse.Namespace) -> int:
    from nb2pipe.diagnostics import has_errors, problems
    from nb2pipe.graph_text import render_check

    if args.format == "json" and len(args.notebook) > 1:
        raise _UsageError("--format json reports one notebook; give one, or use text/github")
    code = 0
    for notebook in args.notebook:
        try:
            graph = _analyze(args, notebook)
        except Nb2pipeError as exc:  # the others are still checked
            print(_error_text(exc), file=sys.stderr)
            code = max(code, exc.exit_code)
            continue
        hint = _split_hint(graph) if args.split == "tags" and args.format != "json" else None
        print(render_check(graph, args.format, hint, args.show_info), flush=True)
        if has_errors(graph.diagnostics) or (args.strict and problems(graph.diagnostics)):
            code = max(code, 1)
    return code


def _split_hint(graph: StepGraph) -> str | None:
    """For a notebook without step tags: what each other split would make of it."""
    from nb2pipe.notebook.tags import parse_tag
    from nb2pipe.pipeline import notebook_graph

    tagged = any(parse_tag(t).kind == "step" for c in graph.notebook.cells for t in c.tags)
    if tagged or len(graph.steps) > 1 or len(graph.notebook.code_cells) < 2:
        return None
    counts = {split: len(notebook_graph(graph.notebook, split).steps)
              for split in ("headings", "cells")}
    tries = [f"--split {split} ({_plural(n, 'step')})" for split, n in counts.items() if n > 1]
    if not tries:
        return None
    return (f"{_plural(len(graph.steps), 'step')} (untagged): try {' or '.join(tries)}, "
            "or tag the cells that start steps step:NAME")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _graph(args: argparse.Namespace) -> int:
    from nb2pipe.diagnostics import has_errors
    from nb2pipe.graph_text import Positions, diagnostic_text, render_graph

    graph = _analyze(args)
    errors = [d for d in graph.diagnostics if d.severity.value == "error"]
    if has_errors(graph.diagnostics):
        positions = Positions(graph.notebook)
        for d in errors:
            print(diagnostic_text(d, positions.of(d)), file=sys.stderr)
        return 1
    print(render_graph(graph, args.format))
    return 0


def _convert(args: argparse.Namespace) -> int:
    if not args.notebook:
        if not args.check:
            raise _UsageError("convert needs a notebook (only --check finds the projects itself)")
        return _check_projects(args)
    if len(args.notebook) > 1 and args.output:
        raise _UsageError("-o/--output names one project folder: give one notebook")
    return max(_convert_one(args, notebook, args.output) for notebook in args.notebook)


def _convert_one(args: argparse.Namespace, notebook: str, output: str | None) -> int:
    from nb2pipe.convert import ConvertError, convert
    from nb2pipe.graph_text import Positions, diagnostic_text

    try:
        result = convert(notebook, output, split=args.split, force=args.force,
                         record=args.record, docker=args.docker, check=args.check)
    except ConvertError as exc:  # on to the other notebooks
        print(_error_text(exc), file=sys.stderr)
        return exc.exit_code
    from nb2pipe.diagnostics import problems

    positions = Positions(result.notebook) if result.notebook else None
    for d in problems(result.diagnostics):  # notes are for `check --show-info`
        print(diagnostic_text(d, positions.of(d) if positions else None), file=sys.stderr)
    if not result.ok:
        print(f"nb2pipe: {notebook} has errors; nothing was written", file=sys.stderr)
        return 1
    if args.check:
        for reason in result.stale:
            print(f"{result.output}/{reason}")
        if result.stale:
            print(f"nb2pipe: {result.output} is out of date: run nb2pipe convert "
                  f"{notebook} -o {result.output}", file=sys.stderr)
            return 1
        print(f"{result.output}: up to date with {notebook}")
        return 0
    for path in result.written:
        print(f"wrote {result.output / path}")
    for path in result.removed:
        print(f"removed {result.output / path}")
    if not result.written and not result.removed:
        print(f"{result.output}: already up to date")
    return 0


_NOT_PROJECTS = {"node_modules", "__pycache__", "site-packages", "venv"}


def _check_projects(args: argparse.Namespace) -> int:
    """`convert --check` alone: every nb2pipe project under the current folder, against the
    notebook its pipeline.json names (which must be under the current folder too)."""
    import os

    from nb2pipe.runtime.manifest import NAME, ManifestError, NotNb2pipe, load

    here = Path.cwd().resolve()
    projects = []
    for folder, names, files in os.walk(here):
        names[:] = sorted(n for n in names if not n.startswith(".") and n not in _NOT_PROJECTS)
        if NAME in files:
            projects.append(Path(folder))
    code, checked = 0, 0
    for project in projects:
        try:
            notebook = load(project).notebook
        except NotNb2pipe:
            continue  # a pipeline.json of something else
        except ManifestError as exc:  # on to the other projects
            error = Nb2pipeError(str(exc))
            print(_error_text(error), file=sys.stderr)
            code = max(code, error.exit_code)
            continue
        shown = project.relative_to(here)
        source = (project / notebook).resolve()
        if not source.is_relative_to(here):
            print(f"nb2pipe: {shown}: its notebook {notebook} is outside {here}; skipped",
                  file=sys.stderr)
            code = max(code, 2)
            continue
        if not source.is_file():
            print(f"{shown}/pipeline.json: its notebook {notebook} is missing")
            code = max(code, 1)
            continue
        checked += 1
        code = max(code, _convert_one(args, str(source.relative_to(here)), str(shown)))
    if not checked and code == 0:
        print("nb2pipe: no nb2pipe project (a folder with pipeline.json) under this folder",
              file=sys.stderr)
    return code


def _prefect_environment(verbose: bool) -> None:
    """Set before Prefect is imported. A run's own log lines go to the Prefect server, where
    the flow run's page shows them; the terminal shows Prefect's warnings only, unless
    --verbose."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _phase_printer(jsonl: bool, stream: TextIO) -> Callable[..., None]:
    """Phases of a command (server start, running, the flow run's address): a line for people,
    or a `{"event": "phase", ...}` line for programs, which also says since when (`since`,
    seconds since the epoch) and why (`detail`) when the phase is a wait."""
    lock = threading.Lock()  # phases come from the local server's thread too

    def phase(name: str, message: str, url: str | None = None, since: float | None = None,
              detail: str | None = None) -> None:
        if jsonl:
            event: dict[str, Any] = {"event": "phase", "phase": name, "message": message}
            extra = {"url": url, "since": since, "detail": detail}
            line = json.dumps({**event, **{k: v for k, v in extra.items() if v is not None}})
        else:
            line = message
        with lock:
            print(line, file=sys.stdout if jsonl else stream, flush=True)
    return phase


def _server_phase(phase: Callable[..., None]) -> Callable[[Any], None]:
    """The local server's progress (local_server.Waiting) as `server` phases."""
    return lambda waiting: phase("server", waiting.message, since=waiting.since,
                                 detail=waiting.detail)


def _run(args: argparse.Namespace) -> int:
    _prefect_environment(args.verbose)
    from nb2pipe.execute import prefect_api
    from nb2pipe.execute.run_output import (
        JsonProgress,
        TextProgress,
        print_interrupted,
        print_result,
    )
    from nb2pipe.execute.supervise import Interrupted, supervise

    jsonl = JsonProgress() if args.progress == "jsonl" else None
    prepared, values = _prepare_run(args, jsonl)
    order = prepared.manifest.order
    text = TextProgress(max(len(n) for n in order)) if not (jsonl or args.json) else None
    if text:
        where = "" if not prepared.converted else f" (project: {prepared.project})"
        print(f"nb2pipe run {args.notebook}{where}", flush=True)
    options = _run_options(args, prepared, values)
    phase = _phase_printer(jsonl is not None, sys.stderr if args.json else sys.stdout)
    links: list[str] = []

    def on_phase(name: str, message: str, url: str | None = None, **waiting: Any) -> None:
        if name == "flow_run" and url:
            links.append(url)
        phase(name, message, url, **waiting)

    warn = jsonl.warning if jsonl else (
        lambda message: print(f"nb2pipe: warning: {message}", file=sys.stderr, flush=True))
    try:
        # The local Prefect server starts (when one must) while the flow's process imports
        # Prefect, flow.py and the steps' libraries: the flow waits for it only to run.
        with prefect_api.connecting(_server_phase(phase)) as api:
            api.when_ready(lambda url: phase("running", "running…"))
            # The flow runs in a child process (a step may end its process; Ctrl-C must stop
            # a step's thread). With --json and --progress jsonl, what the steps print goes to
            # stderr: stdout holds only what this process writes, so no printed line can pass
            # for the result or an event.
            with api.handed_over():
                result = supervise(prepared.project, options, jsonl or text, warn,
                                   args.verbose, sys.stderr if args.json or jsonl else None,
                                   on_phase)
            if api.failed is not None:  # the flow stopped waiting for it: say why
                raise api.failed
    except Nb2pipeError as exc:  # the local server did not start
        _failed(jsonl, exc)
        raise
    except Interrupted as stop:
        print_interrupted(stop.result, jsonl, args.json)
        return 130
    print_result(result, str(prepared.project), jsonl, args.json, links[0] if links else None)
    return 0 if result.ok else 1


def _prepare_run(args: argparse.Namespace,
                 jsonl: JsonProgress | None) -> tuple[Prepared, dict[str, Any]]:
    """The project to run (converted first when given a notebook) and its parameters."""
    from nb2pipe.prepare import parameters, prepare

    flags = _flags(args)
    try:
        prepared = prepare(args.notebook, args.split or "tags", args.output)
        values = parameters(prepared, flags)
    except Nb2pipeError as exc:
        _failed(jsonl, exc)
        raise
    if args.mode == "notebook" and prepared.notebook is None:
        raise _UsageError(f"{args.notebook}: notebook mode needs the notebook, not found at "
                          f"{prepared.manifest.notebook}")
    return prepared, values


def _run_options(args: argparse.Namespace, prepared: Prepared,
                 values: dict[str, Any]) -> RunOptions:
    from nb2pipe.execute import RunOptions

    return RunOptions(parameters=values, mode=args.mode, runner=args.runner,
                      cache=not args.no_cache, dask_address=args.dask_address,
                      workdir=args.cwd, max_workers=args.workers,
                      notebook=str(prepared.notebook) if prepared.notebook else None,
                      report=None if args.no_report else
                      str(Path(args.report).resolve()) if args.report else
                      _report_file(prepared.manifest.flow.name))


def _failed(jsonl: JsonProgress | None, exc: Exception) -> None:
    """With --progress jsonl, the run's last event says it failed before it started."""
    if jsonl is not None:
        print(json.dumps({"event": "finished", "state": "failed", "error": str(exc)}))


def _report_file(flow: str) -> str:
    """A new file for the run's HTML report: in the user's cache, by flow and time."""
    import time

    from nb2pipe.runtime.store import cache_folder

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = cache_folder() / "reports" / flow
    return str(folder / f"{stamp}-{os.getpid()}.html")


def _deploy(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from nb2pipe.deploy import HandEdited, deploy, git_source, remote_url, serve
    from nb2pipe.prepare import parameters, prepare

    project = Path(args.project)
    if not project.is_dir():
        raise _UsageError(f"{project}: not a folder; convert the notebook first: "
                          f"nb2pipe convert NOTEBOOK -o {project}")
    prepared = prepare(project)
    values = parameters(prepared, _flags(args))
    if args.serve:
        flow = prepared.manifest.flow.name
        name = args.name or flow.replace("_", "-")
        print(f"serving {flow}/{name} from this process (Ctrl-C stops); trigger a run with:"
              f"\n  prefect deployment run '{flow}/{name}'", flush=True)
        serve(project, name=args.name, cron=args.cron, parameters=values)
        return 0
    git = None
    if args.git is not None:
        workdir = project / prepared.manifest.workdir
        git = git_source(project, workdir, args.git or None, args.branch)
    elif args.branch:
        raise _UsageError("--branch goes with --git")
    try:
        deployment = deploy(project, pool=args.pool, name=args.name, cron=args.cron,
                            parameters=values, edited_ok=args.yes, git=git)
    except HandEdited as exc:
        if not _confirmed(exc.lines(), "Deploy it as it is, running these steps? [y/N] "):
            if not sys.stdin.isatty():
                raise _UsageError(f"{exc}: listed above; re-run with --yes to deploy it as "
                                  "it is") from None
            print("nb2pipe: nothing was deployed", file=sys.stderr)
            return 1
        deployment = deploy(project, pool=args.pool, name=args.name, cron=args.cron,
                            parameters=values, edited_ok=True, git=git)
    if deployment.hand_edited is not None and args.yes:
        from nb2pipe.escape import one_line

        print(f"nb2pipe: {one_line(str(deployment.hand_edited))} (--yes):",
              *deployment.hand_edited.lines()[1:], sep="\n", file=sys.stderr)
    print(f"deployed {deployment.full_name} to {deployment.api_url} (work pool "
          f"'{deployment.pool}')")
    if git is not None:
        print(f"  workers clone {git.url} at {git.commit[:12]} ({git.branch}), folder "
              f"{git.folder}")
    elif remote_url(project):
        print(f"  workers run it from {project.resolve()} on this machine; to let workers "
              "anywhere clone it from git instead: --git")
    if args.cron:
        print(f"  scheduled: {args.cron}")
    print(f"start a worker:  prefect worker start --pool {deployment.pool}")
    declared = prepared.manifest.parameters
    example = next(iter([p for p in declared if p.type in ("int", "float")] or declared), None)
    hint = f" -p {example.name}={json.dumps(example.default)}" if example else ""
    print(f"trigger a run:   prefect deployment run '{deployment.full_name}'{hint}")
    return 0


def _confirmed(lines: list[str], question: str) -> bool:
    """Show `lines` on stderr, then ask `question` when a person is at the terminal (False
    when none is: a program must say yes with a flag)."""
    from nb2pipe.escape import one_line

    print(f"nb2pipe: {one_line(lines[0])}", *lines[1:], sep="\n", file=sys.stderr)
    if not sys.stdin.isatty():
        return False
    print(question, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _flags(args: argparse.Namespace) -> Any:
    from nb2pipe.execute import ParameterArgs

    return ParameterArgs(files=args.parameters_file, yaml=args.parameters_yaml,
                         typed=[(n, v) for n, v in args.parameters],
                         raw=[(n, v) for n, v in args.parameters_raw])


def _with_fixed_hash_seed() -> None:
    """Start this command again under a fixed string hash seed, unless it has one: verify's
    pipeline runs in this process, and its first notebook run must hash strings as it does
    (nb2pipe/execute/hash_seed.py). Python reads the seed only as it starts. Only from the
    command line (`main()` called with no arguments): a caller's own process is left alone."""
    from nb2pipe.execute.hash_seed import restart_environment

    environment = restart_environment(os.environ)
    if environment is not None and sys.executable:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, environment)


def _verify(args: argparse.Namespace) -> int:
    _prefect_environment(verbose=False)
    from nb2pipe.execute import local_server, prefect_api, startup
    from nb2pipe.prepare import parameters, prepare

    flags = _flags(args)
    phase = _phase_printer(jsonl=False, stream=sys.stdout)
    several = len(args.notebook) > 1
    code = 0
    with contextlib.ExitStack() as stack:
        api = None  # one local server for every notebook, started for the first valid one
        for notebook in args.notebook:
            if several:
                print(f"{notebook}:", flush=True)
            try:
                prepared = prepare(notebook, args.split or "tags")
                values = parameters(prepared, flags)
                if api is None:  # it starts (when one must) while papermill runs
                    api = stack.enter_context(prefect_api.connecting(_server_phase(phase)))
                    startup.import_prefect()
                code = max(code, _verify_one(args, notebook, prepared, values, api, phase))
            except Nb2pipeError as exc:
                if not several or isinstance(exc, local_server.ServerError):
                    raise
                print(_error_text(exc), file=sys.stderr)  # the other notebooks still run
                code = max(code, exc.exit_code)
    startup.leave()
    return code


# verify's outcome when values differ only in state methods keep on objects not as memos
ONLY_METHOD_STATE = "differ only in attributes their classes' methods store"


def _verify_one(args: argparse.Namespace, notebook: str, prepared: Any, values: Any, api: Any,
                phase: Callable[..., None]) -> int:
    from nb2pipe.execute import prefect_api
    from nb2pipe.execute.verify import verify

    graph = _analyze(args, notebook)
    with prefect_api.flow_run_links(lambda url: phase("flow_run", f"flow run: {url}")):
        verdict = verify(Path(notebook), args.split or "tags", values, graph,
                         prepared.project, lambda message: phase("verify", message),
                         connect=api.connected)  # a failed pipeline: PipelineFailed
    name = Path(notebook).name
    for (step, kind, variable) in verdict.nondeterministic:
        print(f"  left out: '{variable}' ({step} {kind}) differs between two notebook runs "
              "(unseeded randomness, time, the order of a set of strings?)")
    for (step, kind, variable), source in verdict.unstable_inputs:
        print(f"  left out: '{variable}' ({step} {kind}) differs, but it is made from "
              f"'{source}', which differs between two notebook runs")
    for (step, kind, variable), reason in verdict.skipped:
        print(f"  left out: '{variable}' ({step} {kind}) cannot be fingerprinted: {reason}")
    for variable in verdict.missing:
        print(f"  left out: '{variable}': the notebook has it as its run ends, no step of the "
              "pipeline leaves it")
    for (step, kind, variable), memos in verdict.memos:
        print(f"  memos: '{variable}' ({step} {kind}) differs only in what its class's methods "
              "compute from the rest of it and keep on it: "
              + ", ".join(d.describe(variable) for d in memos))
    for (step, kind, variable), held in verdict.method_state:
        print(f"  method state: '{variable}' ({step} {kind}) differs only in attributes its "
              "class's methods store, not from the rest of it alone: "
              + ", ".join(d.describe(variable) for d in held))
    counts = (f"{verdict.total} values compared: {verdict.compared} at the step boundaries, "
              f"{verdict.compared_final} that the notebook leaves behind; "
              f"{len(verdict.skipped)} could not be fingerprinted, "
              f"{len(verdict.nondeterministic)} differ between two notebook runs, "
              f"{len(verdict.unstable_inputs)} made from such values, "
              f"{len(verdict.missing)} not in the pipeline, "
              f"{len(verdict.memos)} the same but for memos")
    if verdict.divergence is not None:
        print(f"nb2pipe: first divergence: {verdict.divergence.describe(name)}", file=sys.stderr)
        return 1
    if verdict.method_state:
        print(f"nb2pipe: {name}: {len(verdict.method_state)} values {ONLY_METHOD_STATE} (named "
              "above: kept from a call's arguments, a global or their own earlier value), "
              "which verify cannot tell from a change the pipeline lost; every other value is "
              f"the same ({counts})", file=sys.stderr)
        return 1
    if verdict.total == 0:
        print(f"nb2pipe: {name}: nothing could be compared, so verify cannot tell whether the "
              f"pipeline computes what the notebook computes ({counts})", file=sys.stderr)
        return 1
    print(f"{name}: the pipeline computes what the notebook computes ({counts})", flush=True)
    return 0


def _server(args: argparse.Namespace) -> int:
    from nb2pipe.execute import local_server, prefect_api

    if args.action == "stop":
        stopped = local_server.stop()
        print(f"stopped the local Prefect server (pid {stopped.pid}, {stopped.url})" if stopped
              else "no local Prefect server was running")
        return 0
    if args.action == "start":
        local_server.ensure_running(lambda waiting: print(waiting.message, flush=True))
    found = local_server.status()
    configured = prefect_api.configured_api_url()
    if getattr(args, "json", False):
        print(json.dumps({**found.to_json(), "prefect_api_url": configured}, indent=2))
        return 0 if found.state in ("running", "starting") else 1
    if found.server is None:
        print(f"local Prefect server: not running (nb2pipe run starts it)\n"
              f"  state:    {found.folder}")
    else:
        server = found.server
        print(f"local Prefect server: {found.state}\n"
              f"  URL:      {server.url} (API {server.api_url})\n"
              f"  pid:      {server.pid}\n"
              f"  uptime:   {_duration(server.started)}\n"
              f"  Prefect:  {server.prefect}\n"
              f"  state:    {found.folder} (log: {found.log.name})")
    if configured:
        print(f"PREFECT_API_URL is set: nb2pipe run and verify use {configured}, "
              "not the local server")
    return 0 if found.state in ("running", "starting") else 1


def _duration(since: float) -> str:
    import time

    seconds = max(0, int(time.time() - since))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
