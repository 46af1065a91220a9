"""Tornado handlers under /nb2pipe/: parse the request, confine the path, call, return JSON.

Every handler needs an authenticated, authorized user. A path outside the server root, a
missing file or a non-notebook is a 4xx JSON error {"message": ...} and nothing is touched.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async, url_path_join

from nb2pipe.server import documents, paths
from nb2pipe.server.runs import RunStore

NAMESPACE = "nb2pipe"
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _authorized_to(action: str) -> Callable[[_Method], _Method]:
    """jupyter_server's `authorized` for an action other than the HTTP method's default."""
    return cast(Callable[[_Method], _Method], authorized(action=action))


class _Handler(APIHandler):
    """Shared request parsing; PathError and ReadError become 4xx JSON errors."""

    @property
    def root(self) -> Path:
        return Path(self.settings["server_root_dir"]).expanduser()

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400, "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise tornado.web.HTTPError(400, "the request body must be a JSON object")
        return data

    def notebook(self, api_path: object) -> Path:
        try:
            return paths.notebook_file(self.root, api_path)
        except paths.PathError as exc:
            raise tornado.web.HTTPError(exc.status, str(exc)) from None

    def split(self, value: object) -> str:
        split = "tags" if value is None else value
        if split not in documents.SPLITS:
            raise tornado.web.HTTPError(
                400, f"split must be one of {', '.join(documents.SPLITS)}, not {value!r}")
        return str(split)

    def shown(self, exc: Exception) -> str:
        """A library message with server disk paths written as the Contents API names them."""
        return str(exc).replace(str(self.root.resolve()) + "/", "")

    def reply(self, document: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))


class GrammarHandler(_Handler):
    auth_resource = "contents"

    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        from nb2pipe.notebook.tags import grammar_json

        self.reply(grammar_json())


class AnalyzeHandler(_Handler):
    """GET ?path=NB: the saved file. POST {path, content}: the notebook as the editor holds it."""

    auth_resource = "contents"

    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        notebook = self.notebook(self.get_query_argument("path", None))
        self._analyze(notebook, self.split(self.get_query_argument("split", None)))

    @tornado.web.authenticated
    @_authorized_to("read")
    def post(self) -> None:
        body = self.body()
        notebook = self.notebook(body.get("path"))
        content = body.get("content")
        if not isinstance(content, dict):
            raise tornado.web.HTTPError(400, "content must be the notebook's JSON object")
        self._analyze(notebook, self.split(body.get("split")), content)

    def _analyze(self, notebook: Path, split: str,
                 content: dict[str, Any] | None = None) -> None:
        from nb2pipe.notebook.reader import ReadError

        try:
            self.reply(documents.analyze(self.root, notebook, split, content))
        except ReadError as exc:
            raise tornado.web.HTTPError(422, str(exc)) from None


class ExportHandler(_Handler):
    """POST {path, output?, record?}: write the project; 409 with the reason when nothing was
    written. `record: true` runs the notebook to record test fixtures: it needs the permission
    to execute code, like a run; nothing else (no file in the folder) makes an export run code."""

    auth_resource = "contents"

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body()
        notebook = self.notebook(body.get("path"))
        record = body.get("record")
        if record not in (None, True, False):
            raise tornado.web.HTTPError(400, "record must be true or false")
        if record and not await ensure_async(self.authorizer.is_authorized(
                self, self.current_user, "execute", "kernels")):
            raise tornado.web.HTTPError(
                403, "recording runs the notebook's code: it needs permission to execute")
        output_path = body.get("output") or paths.relative(
            self.root, documents.default_output(notebook))
        try:
            output = paths.output_dir(self.root, output_path)
        except paths.PathError as exc:
            raise tornado.web.HTTPError(exc.status, str(exc)) from None
        from nb2pipe.convert import ConvertError, convert

        try:  # off the event loop: recording runs a kernel for as long as the notebook takes
            result = await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(convert, notebook, output, record=record))
        except ConvertError as exc:
            raise tornado.web.HTTPError(409, self.shown(exc)) from None
        document = documents.export_document(self.root, result)
        if not document["ok"]:
            errors = sum(d["severity"] == "error" for d in document["diagnostics"])
            document["message"] = (
                f"{paths.relative(self.root, notebook)} has {errors} "
                f"error{'s' if errors != 1 else ''}; nothing was written")
            self.reply(document, 409)
            return
        self.reply(document)


class RunsHandler(_Handler):
    """POST {path}: start a run of the notebook's pipeline; 202 {"id"}."""

    auth_resource = "kernels"  # a run executes the notebook's code

    @property
    def store(self) -> RunStore:
        store: RunStore = self.settings["nb2pipe_runs"]
        return store

    @tornado.web.authenticated
    @_authorized_to("execute")
    async def post(self) -> None:
        notebook = self.notebook(self.body().get("path"))
        api_path = paths.relative(self.root, notebook)
        running = self.store.active(api_path)
        if running is not None:
            raise tornado.web.HTTPError(409, f"{api_path} is already running (run {running.id})")
        run = await self.store.start(notebook, api_path)
        self.reply({"id": run.id}, 202)


class RunHandler(RunsHandler):
    """GET /runs/ID: the run's state, per-step status and log."""

    @tornado.web.authenticated
    @_authorized_to("read")
    def get(self, run_id: str) -> None:
        run = self.store.get(run_id)
        if run is None:
            raise tornado.web.HTTPError(404, f"no run with id {run_id}")
        self.reply(run.to_json())


def setup_handlers(web_app: Any) -> None:
    web_app.settings.setdefault("nb2pipe_runs", RunStore())
    base = url_path_join(web_app.settings["base_url"], NAMESPACE)
    web_app.add_handlers(".*$", [
        (url_path_join(base, "grammar"), GrammarHandler),
        (url_path_join(base, "analyze"), AnalyzeHandler),
        (url_path_join(base, "export"), ExportHandler),
        (url_path_join(base, "runs"), RunsHandler),
        (url_path_join(base, "runs", "([0-9a-f]{32})"), RunHandler),
    ])
