"""Tornado handlers under /nb2pipe/: parse the request, confine the path, call, return JSON.

Every handler needs an authenticated, authorized user. A path outside the server root, a
missing file or a non-notebook is a 4xx JSON error {"message": ...} and nothing is touched.
Analysis and export run in worker processes (nb2pipe.server.work), so the event loop keeps
answering; a newer analysis of the same notebook supersedes the one still running.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async, url_path_join

from nb2pipe.server import bodies, documents, paths
from nb2pipe.server.runs import RunStore
from nb2pipe.server.work import Superseded, WorkerLost, Workers

NAMESPACE = "nb2pipe"
MAX_NOTEBOOK_BYTES = 100 * 1024 * 1024  # a notebook file, outputs included
MAX_CONTENT_BYTES = 32 * 1024 * 1024  # a notebook sent by the editor (without outputs)
_Method = TypeVar("_Method", bound=Callable[..., Any])
T = TypeVar("T")


def _authorized_to(action: str) -> Callable[[_Method], _Method]:
    """jupyter_server's `authorized` for an action other than the HTTP method's default."""
    return cast(Callable[[_Method], _Method], authorized(action=action))


class _Handler(APIHandler):
    """Shared request parsing; PathError and ReadError become 4xx JSON errors."""

    @property
    def root(self) -> Path:
        return Path(self.settings["server_root_dir"]).expanduser()

    @property
    def workers(self) -> Workers:
        workers: Workers = self.settings["nb2pipe_workers"]
        return workers

    def body(self) -> dict[str, Any]:
        if len(self.request.body or b"") > MAX_CONTENT_BYTES:
            raise tornado.web.HTTPError(
                413, f"the request is {_megabytes(len(self.request.body))}; the limit is "
                     f"{_megabytes(MAX_CONTENT_BYTES)} (send the notebook without its outputs)")
        try:
            data = bodies.parse(self.request.body or b"{}")
        except bodies.BadRequest as exc:
            raise tornado.web.HTTPError(400, str(exc)) from None
        if not isinstance(data, dict):
            raise tornado.web.HTTPError(400, "the request body must be a JSON object")
        return data

    def posted(self) -> tuple[dict[str, Any], Path]:
        """The request's JSON object and the notebook its `path` names."""
        body = self.body()
        return body, self.notebook(body.get("path"))

    def notebook(self, api_path: object) -> Path:
        try:
            notebook = paths.notebook_file(self.root, api_path)
        except paths.PathError as exc:
            raise tornado.web.HTTPError(exc.status, str(exc)) from None
        size = notebook.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise tornado.web.HTTPError(
                413, f"{self.api_path(notebook)} is {_megabytes(size)}; nb2pipe reads notebooks "
                     f"up to {_megabytes(MAX_NOTEBOOK_BYTES)}")
        return notebook

    def output(self, notebook: Path, api_path: object) -> Path:
        output_path = api_path or paths.relative(self.root, documents.default_output(notebook))
        try:
            return paths.output_dir(self.root, output_path)
        except paths.PathError as exc:
            raise tornado.web.HTTPError(exc.status, str(exc)) from None

    def api_path(self, full: Path) -> str:
        return paths.relative(self.root, full)

    def split(self, value: object) -> str:
        split = "tags" if value is None else value
        if split not in documents.SPLITS:
            raise tornado.web.HTTPError(
                400, f"split must be one of {', '.join(documents.SPLITS)}, not {value!r}")
        return str(split)

    def key(self, kind: str, notebook: Path, client: object = None) -> str:
        """Requests with the same key supersede each other: one page (the frontend names
        itself; else the user), notebook and purpose."""
        who = str(client) if client else getattr(self.current_user, "username", "")
        return json.dumps([who, kind, str(notebook)])

    async def work(self, function: Callable[..., T], *args: Any, key: str | None = None) -> T:
        from nb2pipe.notebook.reader import ReadError

        try:
            return await self.workers.call(function, *args, key=key)
        except Superseded:
            self.reply({"message": "superseded by a newer request", "superseded": True}, 409)
            raise tornado.web.Finish from None
        except ReadError as exc:
            raise tornado.web.HTTPError(422, str(exc)) from None
        except bodies.BadRequest as exc:
            raise tornado.web.HTTPError(400, str(exc)) from None
        except WorkerLost as exc:
            raise tornado.web.HTTPError(503, str(exc)) from None

    def reply_json(self, text: bytes) -> None:
        """A document already written as JSON (by a worker)."""
        self.set_header("Content-Type", "application/json")
        self.finish(text)

    def reply(self, document: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


class GrammarHandler(_Handler):
    auth_resource = "contents"

    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        from nb2pipe.notebook.tags import grammar_json

        self.reply(grammar_json())


class TagsHandler(_Handler):
    """POST {tags}: the problem with each tag nb2pipe would reject ({tag: message})."""

    auth_resource = "contents"

    @tornado.web.authenticated
    @_authorized_to("read")
    def post(self) -> None:
        from nb2pipe.notebook.tags import parse_tag

        tags = self.body().get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise tornado.web.HTTPError(400, "tags must be a list of strings")
        problems = {}
        for tag in tags[:100]:
            parsed = parse_tag(tag)
            if parsed.problem:
                hint = f"; did you mean '{parsed.suggestion}'?" if parsed.suggestion else ""
                problems[tag] = f"{parsed.problem}{hint}"
        self.reply({"problems": problems})


class AnalyzeHandler(_Handler):
    """GET ?path=NB: the saved file. POST ?path=NB[&client=ID] with the notebook's JSON as the
    body: the notebook as the editor holds it. The body is parsed and the answer written in
    a worker process: a 20,000-cell notebook is megabytes of JSON."""

    auth_resource = "contents"

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        notebook = self.notebook(self.get_query_argument("path", None))
        split = self.split(self.get_query_argument("split", None))
        self.reply_json(await self.work(documents.analyze_json, self.root, notebook, split,
                                        None, key=self.key("analyze-file", notebook)))

    @tornado.web.authenticated
    @_authorized_to("read")
    async def post(self) -> None:
        notebook = self.notebook(self.get_query_argument("path", None))
        split = self.split(self.get_query_argument("split", None))
        body = self.request.body or b""
        if len(body) > MAX_CONTENT_BYTES:
            raise tornado.web.HTTPError(
                413, f"the request is {_megabytes(len(body))}; the limit is "
                     f"{_megabytes(MAX_CONTENT_BYTES)} (send the notebook without its outputs)")
        client = self.get_query_argument("client", None)
        self.reply_json(await self.work(documents.analyze_json, self.root, notebook, split,
                                        body, key=self.key("analyze", notebook, client)))


class SplitHandler(_Handler):
    """POST {path, split, content?}: the step tags that make a split explicit (nothing is
    written: the editor applies them to the open notebook)."""

    auth_resource = "contents"

    @tornado.web.authenticated
    @_authorized_to("read")
    async def post(self) -> None:
        body, notebook = self.posted()
        split = self.split(body.get("split"))
        if split == "tags":
            raise tornado.web.HTTPError(400, "split must be headings or cells")
        content = body.get("content")
        if content is not None and not isinstance(content, dict):
            raise tornado.web.HTTPError(400, "content must be the notebook's JSON object")
        self.reply(await self.work(documents.split_tags, self.root, notebook, split, content))


class ExportHandler(_Handler):
    """POST {path, output?, force?, record?}: write the project; 409 with the reason when
    nothing was written (`edited` lists files changed by hand: `force` overwrites them).
    `record: true` runs the notebook to record test fixtures: it needs the permission to
    execute code, like a run; nothing else (no file in the folder) makes an export run code."""

    auth_resource = "contents"

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body, notebook = self.posted()
        record = body.get("record")
        if record not in (None, True, False):
            raise tornado.web.HTTPError(400, "record must be true or false")
        if record and not await ensure_async(self.authorizer.is_authorized(
                self, self.current_user, "execute", "kernels")):
            raise tornado.web.HTTPError(
                403, "recording runs the notebook's code: it needs permission to execute")
        output = self.output(notebook, body.get("output"))
        # In a worker process, off the event loop: recording runs a kernel for as long as the
        # notebook takes.
        status, document = await self.work(documents.export, self.root, notebook, output,
                                           body.get("force") is True, record)
        self.reply(document, status)


class ExportDiffHandler(_Handler):
    """POST {path, output?}: how Export would change the files in the output folder."""

    auth_resource = "contents"

    @tornado.web.authenticated
    @_authorized_to("read")
    async def post(self) -> None:
        body, notebook = self.posted()
        output = self.output(notebook, body.get("output"))
        self.reply(await self.work(documents.export_diff, self.root, notebook, output))


class _RunHandler(_Handler):
    auth_resource = "kernels"  # a run executes the notebook's code

    @property
    def store(self) -> RunStore:
        store: RunStore = self.settings["nb2pipe_runs"]
        return store

    def run_or_404(self, run_id: str) -> Any:
        run = self.store.get(run_id)
        if run is None:
            raise tornado.web.HTTPError(404, f"no run with id {run_id}")
        return run


class RunsHandler(_RunHandler):
    """POST {path, parameters?}: start a run; 202 with the run. GET ?path=NB: the notebook's
    runs, newest first, and the one still running."""

    @tornado.web.authenticated
    @_authorized_to("execute")
    async def post(self) -> None:
        body, notebook = self.posted()
        given = body.get("parameters") or {}
        if not isinstance(given, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in given.items()):
            raise tornado.web.HTTPError(400, "parameters must map names to the text typed")
        api_path = self.api_path(notebook)
        self.refuse_second(api_path)
        plan = await self.work(documents.run_plan, self.root, notebook, given)
        if plan["error"]:
            self.reply({"message": plan["error"]["message"],
                        "parameter": plan["error"]["parameter"]}, 400)
            return
        self.refuse_second(api_path)  # another start may have won while this one was checked
        run = self.store.start(notebook, api_path, plan["flags"], given, plan["steps"])
        self.reply(run.to_json(), 202)

    def refuse_second(self, api_path: str) -> None:
        running = self.store.active(api_path)
        if running is not None:
            self.reply({"message": f"{api_path} is already running (run {running.id})",
                        "id": running.id}, 409)
            raise tornado.web.Finish

    @tornado.web.authenticated
    @_authorized_to("read")
    def get(self) -> None:
        try:
            full = paths.confine(self.root, self.get_query_argument("path", None),
                                 what="notebook path")
        except paths.PathError as exc:
            raise tornado.web.HTTPError(exc.status, str(exc)) from None
        api_path = self.api_path(full)
        active = self.store.active(api_path)
        self.reply({"path": api_path, "active": active.id if active else None,
                    "runs": [r.summary() for r in self.store.history(api_path)]})


class RunHandler(_RunHandler):
    """GET /runs/ID: the run's state, per-step status and log."""

    @tornado.web.authenticated
    @_authorized_to("read")
    def get(self, run_id: str) -> None:
        self.reply(self.run_or_404(run_id).to_json())


class RunCancelHandler(_RunHandler):
    """POST /runs/ID/cancel: stop the run and everything it started; answers once it is gone."""

    @tornado.web.authenticated
    @_authorized_to("execute")
    async def post(self, run_id: str) -> None:
        run = self.run_or_404(run_id)
        await self.store.cancel(run_id)
        self.reply(run.to_json())


class RunReportHandler(_RunHandler):
    """GET /runs/ID/report: the run's HTML report, sandboxed (it holds the notebook's output)."""

    @tornado.web.authenticated
    @_authorized_to("read")
    def get(self, run_id: str) -> None:
        run = self.run_or_404(run_id)
        report = Path(run.report) if run.report else None
        if report is not None and not report.is_absolute():  # the run's folder: the notebook's
            report = self.root / Path(run.path).parent / report
        if report is None or report.suffix.lower() != ".html" or not report.is_file():
            raise tornado.web.HTTPError(404, f"run {run_id} has no report")
        # the report runs no script with the page's rights: its own origin, no cookies
        self.set_header("Content-Security-Policy", "sandbox allow-scripts allow-popups")
        # (an API handler's reply is JSON unless it says otherwise)
        self.finish(report.read_bytes(), set_content_type="text/html; charset=utf-8")


def setup_handlers(web_app: Any, store: RunStore, workers: Workers) -> None:
    web_app.settings["nb2pipe_runs"] = store
    web_app.settings["nb2pipe_workers"] = workers
    base = url_path_join(web_app.settings["base_url"], NAMESPACE)
    run = url_path_join(base, "runs", "([0-9a-f]{32})")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "grammar"), GrammarHandler),
        (url_path_join(base, "tags"), TagsHandler),
        (url_path_join(base, "analyze"), AnalyzeHandler),
        (url_path_join(base, "split"), SplitHandler),
        (url_path_join(base, "export"), ExportHandler),
        (url_path_join(base, "export", "diff"), ExportDiffHandler),
        (url_path_join(base, "runs"), RunsHandler),
        (run, RunHandler),
        (url_path_join(run, "cancel"), RunCancelHandler),
        (url_path_join(run, "report"), RunReportHandler),
    ])
