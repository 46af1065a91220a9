"""The report's page: a notebook-shaped document -> one HTML file, with nbconvert.

Importing nbconvert and compiling its templates takes one to three seconds, which a short run
would feel at its end. So the first step of a flow run starts a renderer process (`Renderer`):
it imports nbconvert and renders a small page on a core of its own while the steps run, then
waits for the report's document on its stdin and writes the page to its stdout. The flow's
report hook hands it the document; if the renderer is not there (a flow whose steps all ran in
other processes) or fails, the page is rendered in the flow's process. The renderer runs no code
of the notebook's and ends when its stdin closes, so it never outlives the flow's process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HEADER_TAG = "nb2pipe-header"  # a cell of the header: its output only
RENDER_SECONDS = 300  # the longest the flow waits for the renderer before rendering itself

# JupyterLab's page, without the scripts it would fetch from a CDN (require.js, MathJax,
# mermaid): the report is one file that opens offline.
TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""

# What the renderer renders while it waits: every kind of cell and output a report has, so
# that the templates, the markdown parser and the syntax highlighter are all loaded.
SAMPLE: dict[str, Any] = {
    "nbformat": 4, "nbformat_minor": 5, "metadata": {},
    "cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# Run\n\n| a |\n|---|"},
        {"cell_type": "code", "id": "b", "execution_count": 1, "metadata": {"tags": []},
         "source": "x = 1\nprint(x)", "outputs": [
             {"output_type": "stream", "name": "stdout", "text": "1\n"},
             {"output_type": "display_data", "metadata": {},
              "data": {"text/html": "<b>1</b>", "text/plain": "1"}}]},
    ],
}


def render_html(document: dict[str, Any]) -> str:
    """The document as one HTML page, images embedded, no script fetched from elsewhere."""
    import nbformat

    notebook = nbformat.from_dict(document)
    page, _ = _exporter().from_notebook_node(notebook)
    return str(page)


@functools.cache
def _exporter() -> Any:
    """nbconvert's HTML exporter with the report's template, its templates compiled once."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(
        template_name="lab", template_file="nb2pipe-report.html.j2", embed_images=True,
        extra_loaders=[DictLoader({"nb2pipe-report.html.j2": TEMPLATE})])
    hide_input = TagRemovePreprocessor(remove_input_tags=[HEADER_TAG])
    exporter.register_preprocessor(hide_input, enabled=True)
    return exporter


class Renderer:
    """A renderer process, started now, that renders one document later (`render`)."""

    def __init__(self) -> None:
        package = __package__ or "nb2pipe_runtime"
        # The folder the runtime package is imported from: the project (nb2pipe_runtime), or
        # the folder above nb2pipe (nb2pipe.runtime).
        root = Path(__file__).resolve().parents[len(package.split("."))]
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import runpy, sys; sys.path.insert(0, sys.argv[1]); "
             "runpy.run_module(sys.argv[2], run_name='__main__')", str(root),
             f"{package}.render"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def render(self, document: dict[str, Any]) -> str | None:
        """The page, or None when the renderer failed (the caller renders it itself)."""
        try:
            page, _ = self.process.communicate(json.dumps(document).encode(),
                                               timeout=RENDER_SECONDS)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.close()
            return None
        return page.decode() if self.process.returncode == 0 and page else None

    def close(self) -> None:
        """Stop the renderer (a run that writes no report)."""
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
            self.process.communicate(timeout=5)


def main() -> int:
    """The renderer process: warm up, then render the document read from stdin to stdout."""
    # jsonschema (imported by nbformat) builds a grammar for its optional IRI format checker,
    # about two seconds, when `rfc3987_syntax` is installed; a render never checks IRIs.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    render_html(SAMPLE)
    request = sys.stdin.buffer.read()
    if not request:  # the flow ended without a report
        return 0
    sys.stdout.buffer.write(render_html(json.loads(request)).encode())
    sys.stdout.buffer.flush()
    os._exit(0)  # the page is out: no tenth of a second of tearing the interpreter down


if __name__ == "__main__":
    sys.exit(main())
