"""The run's HTML report: what steps show (figures, tables, prints, last values) lands in the
section of the step and cell that showed it; notebook mode and failures too."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup, Tag
from support import manifest_of, write_notebook
from test_security import HOSTILE, PLAIN, name_of

from nb2pipe.execute import RunOptions, run_project
from nb2pipe.generate.last_value import shown_last_value
from nb2pipe.prepare import prepare
from nb2pipe.runtime import capture, render, report
from nb2pipe.runtime.manifest import Manifest

PLOTS = [
    ("n = 20", "parameters"),
    ("import matplotlib.pyplot as plt\nimport numpy as np\nimport pandas as pd\n"
     "import seaborn as sns", ),
    ("xs = np.arange(n)\nplt.plot(xs, xs ** 2)\nplt.title('squares')\nplt.show()",
     "step:line"),
    # After `line` (it reads xs): steps that draw at the same time on threads share pyplot's
    # current figure.
    ("grid = np.outer(xs[:4], np.arange(5))\nsns.heatmap(grid, annot=True)", "step:heat"),
    # The heatmap is shown when its cell ends (the runtime closes it there, as Jupyter does); this
    # figure, closed by its own cell, is not (Jupyter shows nothing either).
    ("plt.figure()\nplt.plot([1, 2])\nplt.savefig('saved.png')\nplt.close()", ),
    ("frame = pd.DataFrame({'alpha': [1, 2], 'beta': [3, 4]})\nframe", "step:table"),
    ("print('hello from the notes step')\ntotal = int(xs.sum())\nprint(f'total={total}')",
     "step:notes"),
]


@pytest.fixture(autouse=True)
def keep_cwd() -> Iterator[None]:
    before = os.getcwd()
    yield
    os.chdir(before)


def sections(page: str) -> dict[str, list[Tag]]:
    """The report's cells by step: each `step-NAME` heading starts a section."""
    soup = BeautifulSoup(page, "html.parser")
    found: dict[str, list[Tag]] = {}
    current: str | None = None
    for cell in soup.select("div.jp-Cell"):
        heading = cell.select_one("h2[id^=step-]")
        if heading is not None:
            current = str(heading["id"])[len("step-"):]
            found[current] = []
        elif current is not None:
            found[current].append(cell)
    return found


def images(cells: list[Tag]) -> list[bytes]:
    return [base64.b64decode(str(img["src"]).split(",", 1)[1])
            for cell in cells for img in cell.select(".jp-OutputArea-output img")
            if str(img.get("src", "")).startswith("data:image/png;base64,")]


def text(cells: list[Tag]) -> str:
    return "\n".join(c.select_one(".jp-Cell-outputWrapper").get_text()
                     for c in cells if c.select_one(".jp-Cell-outputWrapper"))


def run_with_report(source: Path, tmp_path: Path, **options: Any) -> tuple[Any, Path]:
    prepared = prepare(source, cache=tmp_path / "cache")
    target = tmp_path / "report.html"
    result = run_project(prepared.project, RunOptions(
        storage=str(tmp_path / "cache" / "results"), report=str(target), cache=False,
        **options))
    return result, target


# -- fast ---------------------------------------------------------------------------------


def test_the_last_expression_of_a_cell_is_shown_on_its_own_lines() -> None:
    assert shown_last_value("x = 1\nx", set(), 1) == "x = 1\ndisplayhook(x)"
    assert shown_last_value("df.head(\n  3)  # look", set(), 1) == (
        "displayhook(df.head(\n  3))  # look")
    for hidden in ("x;", "print(x)", "plt.show()", "x = 1", "'text'", "df.dropna(inplace=True)",
                   "sys.exit(3)"):
        assert shown_last_value(hidden, set(), 1) == hidden
    assert shown_last_value("x", {(1, 1)}, 1) == "x"  # a line the step does not run


def test_rich_representations_are_kept_by_mime_type() -> None:
    class Rich:
        def _repr_html_(self) -> str:
            return "<b>rich</b>"

        def _repr_png_(self) -> bytes:
            return b"\x89PNG"

        def __repr__(self) -> str:
            return "Rich()"

    bundle = capture.mime_bundle(Rich())
    assert bundle["text/html"] == "<b>rich</b>"
    assert base64.b64decode(bundle["image/png"]) == b"\x89PNG"
    assert bundle["text/plain"] == "Rich()"
    assert capture.mime_bundle(3) == {"text/plain": "3"}


def test_the_document_puts_outputs_under_their_step_and_marks_the_failing_cell() -> None:
    manifest = manifest_of({"a": [1], "b": [3]}, edges=(("a", "b"),))
    cells = [{"cell_type": "code", "source": "x = 1\nprint(x)", "skip": False},
             {"cell_type": "markdown", "source": "## Then", "skip": False},
             {"cell_type": "code", "source": "1 / 0", "skip": False}]
    printed = {"output_type": "stream", "name": "stdout", "text": "1\n"}
    error = {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
             "traceback": ["ZeroDivisionError: division by zero"]}
    records = {"a": {"state": "completed", "duration": 0.5, "cells": {"1": [printed]}},
               "b": {"state": "failed", "duration": 0.1, "error": "cell 3: ZeroDivisionError",
                     "error_cell": 3, "cells": {"3": [error]}}}
    document = report.build_document(manifest, records, {}, cells, run="r")
    code = [c for c in document["cells"] if c["cell_type"] == "code" and c["source"]]
    assert [(c["execution_count"], c["outputs"]) for c in code] == [(1, [printed]), (3, [error])]
    assert code[1]["metadata"]["tags"] == [report.FAILED_TAG]
    page = report.render_html(document)
    found = sections(page)
    assert set(found) == {"a", "b"}
    assert "1" in text(found["a"]) and "ZeroDivisionError" in text(found["b"])
    failed = BeautifulSoup(page, "html.parser").select(f".celltag_{report.FAILED_TAG}")
    assert len(failed) == 1 and "1 / 0" in failed[0].get_text()
    assert "<script src=" not in page  # nothing fetched from elsewhere
    # The renderer process (started with a run's first step) writes the same page.
    assert render.Renderer().render(document) == page


def test_a_renderer_that_gets_no_document_ends_and_one_that_fails_leaves_it_to_the_flow(
        ) -> None:
    idle = render.Renderer()
    assert idle.process.stdin is not None
    idle.process.stdin.close()  # the flow's process ended without a report
    assert idle.process.wait(timeout=120) == 0
    broken = render.Renderer()
    assert broken.render({"cells": "not a notebook"}) is None  # the hook renders it itself
    assert broken.process.returncode != 0


def test_a_flow_run_gets_one_renderer_and_a_run_without_report_stops_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    run = SimpleNamespace(id="run-without-report")
    monkeypatch.setenv("NB2PIPE_REPORT", "off")
    report.prepare(run)  # nothing is captured: no renderer
    assert run.id not in report._renderers
    monkeypatch.delenv("NB2PIPE_REPORT")
    report.prepare(run)
    report.prepare(run)  # the flow's start and its first step: one renderer
    renderer = report._renderers[run.id]
    report.discard(run.id)  # the run crashed before its report
    assert run.id not in report._renderers
    assert renderer.process.poll() is not None


def test_the_capture_backend_is_chosen_in_this_process_only(tmp_path: Path) -> None:
    # A fresh interpreter, where matplotlib is imported only when a step draws (pandas'
    # `plot`): the figure goes to the capture's backend, and a process the step starts
    # (`!python plot.py`) draws with matplotlib's own.
    script = tmp_path / "plot.py"
    script.write_text("import matplotlib.pyplot as plt\nplt.plot([1, 2])\n"
                      "plt.savefig('child.png')\n")
    probe = f"""
import os, subprocess, sys
from nb2pipe.runtime import capture
capture._use_backend()
import pandas as pd
axes = pd.Series([1, 2]).plot()
print(type(axes.figure.canvas.manager).__module__)
print(os.environ.get("MPLBACKEND"))
done = subprocess.run([sys.executable, {str(script)!r}], capture_output=True, text=True)
print(done.returncode, done.stderr.strip().splitlines()[-1:] )
"""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["nb2pipe.runtime.pyplot_backend", "None", "0 []"]
    assert (tmp_path / "child.png").is_file()


# -- real runs ----------------------------------------------------------------------------


@pytest.mark.integration
def test_plots_tables_and_prints_land_in_their_step(tmp_path: Path) -> None:
    # `nb2pipe run` in a process of its own, as a user runs it: pyplot's state is per process,
    # and this test's process has run other tests' flows (and their figures) before.
    notebook = write_notebook(tmp_path / "plots.ipynb", *PLOTS)
    target = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "nb2pipe", "run", str(notebook), "--no-cache", "--report",
         str(target)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "NB2PIPE_CACHE_DIR": str(tmp_path / "cache")})  # the session's API
    assert done.returncode == 0, done.stdout + done.stderr
    found = sections(target.read_text(encoding="utf-8"))
    assert list(found) == ["line", "heat", "table", "notes"]
    line, heat = images(found["line"]), images(found["heat"])
    assert len(line) == 1 and len(heat) == 1  # rendered once each, at show / the step's end
    assert all(png.startswith(b"\x89PNG") for png in line + heat)
    assert not images(found["table"]) and not images(found["notes"])
    table = [t for c in found["table"] for t in c.select(".jp-OutputArea-output table")]
    assert len(table) == 1 and [th.get_text() for th in table[0].select("thead th")][1:] == [
        "alpha", "beta"]
    assert "hello from the notes step" in text(found["notes"])
    assert "total=190" in text(found["notes"])
    assert "hello" not in text(found["line"]) + text(found["table"])
    assert "<Axes" in text(found["heat"])  # the cell's last value, as Jupyter shows it


@pytest.mark.integration
def test_a_failing_step_is_highlighted_and_the_rest_is_reported(tmp_path: Path,
                                                                 prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "broken.ipynb",
                              ("print('fine so far')\nx = 1", "step:first"),
                              ("y = x + 1\nprint('about to fail')\nz = y / 0", "step:second"),
                              ("w = z * 2", "step:third"))
    result, target = run_with_report(notebook, tmp_path)
    assert not result.ok
    page = target.read_text(encoding="utf-8")
    found = sections(page)
    assert "fine so far" in text(found["first"])
    assert "about to fail" in text(found["second"])
    assert "ZeroDivisionError" in text(found["second"])
    failed = BeautifulSoup(page, "html.parser").select(f".celltag_{report.FAILED_TAG}")
    assert len(failed) == 1 and "z = y / 0" in failed[0].get_text()
    heading = BeautifulSoup(page, "html.parser").select_one("h2#step-third")
    assert heading is not None and "not run" in heading.get_text()


@pytest.mark.integration
def test_notebook_mode_renders_the_executed_step_notebooks(
        tmp_path: Path, prefect_harness: None) -> None:
    # After a module-mode run in this process the kernels still draw with Jupyter's inline
    # backend (the capture's backend is chosen in this process only).
    module_mode, _ = run_with_report(write_notebook(tmp_path / "first.ipynb", *PLOTS[:3]),
                                     tmp_path / "first")
    assert module_mode.ok, module_mode.error
    notebook = write_notebook(tmp_path / "plots.ipynb", *PLOTS)
    result, target = run_with_report(notebook, tmp_path, mode="notebook",
                                     notebook=str(notebook), run_dir=str(tmp_path / "run"))
    assert result.ok, result.error
    found = sections(target.read_text(encoding="utf-8"))
    assert len(images(found["line"])) == 1 and len(images(found["heat"])) == 1
    assert "total=190" in text(found["notes"])


@pytest.mark.integration
def test_nb2pipe_run_prints_the_report_and_no_report_turns_it_off(
        tmp_path: Path, prefect_server: str) -> None:
    notebook = write_notebook(tmp_path / "plots.ipynb", *PLOTS[:3])
    env = {**os.environ, "NB2PIPE_CACHE_DIR": str(tmp_path / "cache"),
           "PREFECT_API_URL": prefect_server}
    done = subprocess.run([sys.executable, "-m", "nb2pipe", "run", str(notebook),
                           "--progress", "jsonl"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    reported = [e["path"] for e in events if e.get("event") == "report"]
    assert len(reported) == 1 and Path(reported[0]).is_file()
    assert len(images(sections(Path(reported[0]).read_text())["line"])) == 1
    off = subprocess.run([sys.executable, "-m", "nb2pipe", "run", str(notebook), "--no-report",
                          "--no-cache"], capture_output=True, text=True, env=env)
    assert off.returncode == 0, off.stderr
    assert "report:" not in off.stdout
    assert len(list((tmp_path / "cache" / "reports").rglob("*.html"))) == 1


@pytest.mark.integration
def test_recording_after_a_module_mode_run_in_the_same_process_still_runs_the_plots(
        tmp_path: Path, prefect_harness: None) -> None:
    from nb2pipe.convert import convert

    # The recording kernel cannot import the backend module-mode steps capture with: it
    # draws with Jupyter's own.
    module_mode, _ = run_with_report(write_notebook(tmp_path / "first.ipynb", *PLOTS[:3]),
                                     tmp_path / "first")
    assert module_mode.ok, module_mode.error
    assert "MPLBACKEND" not in os.environ
    notebook = write_notebook(tmp_path / "plots.ipynb", *PLOTS[:3])
    result = convert(notebook, tmp_path / "project", record=True)
    assert result.ok
    assert (tmp_path / "project" / "tests" / "fixtures").is_dir()


# --- text from outside, in the page and in the artifacts ----------------------------------

# Each is put in every place of the report that shows text from outside the notebook's cells:
# the notebook's name, the flow's and a step's name, a parameter's value and default, and what
# a step's record (a file in a result storage others may write) says: its state, duration,
# error, metric names and values.
XSS = {
    "html_link": '<a href="javascript:alert(1)">x</a>',
    "html_image": "<img src=x onerror=alert(1)>",
    "script": "<script>alert(document.cookie)</script>",
    "md_link": "[click](javascript:alert(1))",
    "md_image": "![i](javascript:alert(1)) ![j](http://evil.example/x.png)",
    "md_autolink": "<javascript:alert(1)> <http://evil.example>",
    "table_break": "a | b |\n|---|\n| <b>c</b> |",
    "html_entity": "&lt;img src=x onerror=alert(1)&gt; &#60;b&#62;",
    "attribute_quote": "\" onmouseover=\"alert(1)\" x='",
}


def hostile_texts() -> dict[str, str]:
    return {**HOSTILE, **XSS, PLAIN: PLAIN}


def outside_text_report(text: str) -> tuple[Manifest, dict[str, dict[str, Any]],
                                            dict[str, Any]]:
    """(manifest, records, parameters) with `text` in every place outside text can reach."""
    manifest = manifest_of({"load": [1], text: [2]}, notebook=f"{name_of(text)}.ipynb",
                           flow=text, edges=(("load", text),), parameters={"title": text})
    records = {"load": {"state": text, "duration": text, "error": text, "cells": {},
                        "metrics": {text: text}},
               text: {"state": "failed", "duration": 0.5, "error": text, "error_cell": 2,
                      "cells": {}, "metrics": {"score": text}}}
    return manifest, records, {"title": text}


def page_shape(page: str) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
    """Every element of the page (its tag and attribute names) in order, and every address it
    links to or loads that is not a place in the page itself."""
    soup = BeautifulSoup(page, "html.parser")
    elements = [(t.name, tuple(sorted(t.attrs))) for t in soup.find_all(True)]
    addresses = [str(t.get(a)) for t in soup.find_all(True) for a in ("href", "src", "action")
                 if t.get(a) is not None and not str(t.get(a)).startswith("#")]
    return elements, addresses


@pytest.fixture(scope="module")
def plain_page() -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
    manifest, records, parameters = outside_text_report("plain")
    cells = [{"cell_type": "code", "source": "x = 1", "skip": False},
             {"cell_type": "code", "source": "y = x", "skip": False}]
    return page_shape(report.render_html(report.build_document(
        manifest, records, parameters, cells, run="r")))


@pytest.mark.parametrize("case", sorted(hostile_texts()))
def test_outside_text_never_becomes_markup_in_the_report(
        case: str, plain_page: tuple[list[tuple[str, tuple[str, ...]]], list[str]]) -> None:
    text = hostile_texts()[case]
    manifest, records, parameters = outside_text_report(text)
    cells = [{"cell_type": "code", "source": "x = 1", "skip": False},
             {"cell_type": "code", "source": "y = x", "skip": False}]
    page = report.render_html(report.build_document(manifest, records, parameters, cells,
                                                    run="r"))
    assert page_shape(page) == plain_page  # no element, attribute, link or image added
    soup = BeautifulSoup(page, "html.parser")
    title = soup.find("h1")
    assert title is not None
    shown = " ".join(title.get_text().replace("¶", "").split())
    expected = " ".join(f"Run of {name_of(text)}.ipynb".split())
    if case not in ("controls", "unicode_breaks", "bidi", "not_utf8", "newline",
                    "carriage_return", "table_break"):  # shown on one line, without controls
        assert shown == expected


def markdown_shape(text: str) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """The Markdown's tokens (type, tag, attributes) as CommonMark with HTML reads it."""
    from markdown_it import MarkdownIt

    found = []
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        for each in [token, *(token.children or [])]:
            attrs = tuple(sorted((k, str(v)) for k, v in (each.attrs or {}).items()
                                 if k != "style"))
            found.append((each.type, each.tag, attrs))
    return found


@pytest.mark.parametrize("case", sorted(hostile_texts()))
def test_outside_text_never_becomes_markup_in_the_summary_artifact(case: str) -> None:
    text = hostile_texts()[case]
    url = "https://storage.example/results/reports/r/report.html"
    expected = markdown_shape(report.summary_markdown(*outside_text_report("plain")[:2], url))
    found = markdown_shape(report.summary_markdown(*outside_text_report(text)[:2], url))
    assert found == expected
    assert [a for t in found for a in t[2] if a[0] in ("href", "src")] == [("href", url)]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(1)",
                                 "data:text/html,<script>alert(1)</script>",
                                 "vbscript:msgbox(1)", "http://x/\njavascript:alert(1)"])
def test_a_report_address_that_is_no_web_or_file_address_is_never_a_link(url: str) -> None:
    from nb2pipe.runtime.text import md_link

    tokens = markdown_shape(md_link("HTML report", url))
    assert not [t for t in tokens if t[0] in ("link_open", "image", "html_inline")], tokens


def test_a_report_address_with_spaces_and_parentheses_stays_one_link() -> None:
    from nb2pipe.runtime.text import md_link

    url = "https://storage.example/a b/(x)/report [1].html"
    [link] = [t for t in markdown_shape(md_link(url, url)) if t[0] == "link_open"]
    assert link[2] == (("href", "https://storage.example/a%20b/%28x%29/report%20%5B1%5D.html"),)


def test_a_duration_is_written_the_same_way_everywhere() -> None:
    """The report's rule; present.ts `seconds` writes the panel's durations by the same one."""
    assert [report.duration_text(s) for s in (None, 0.0, 0.4234, 1.3, 9.999, 12.34, 89.9,
                                               125.2)] == [
        "", "0.00 s", "0.42 s", "1.30 s", "10.00 s", "12.3 s", "89.9 s", "2 min 5 s"]


def test_a_step_duration_counts_its_code_not_the_wait_for_its_turn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps that plot take turns on the threads: a step's duration starts when its code does."""
    import threading
    import time

    from nb2pipe.runtime import calls, project

    monkeypatch.setenv("NB2PIPE_WORKDIR", str(tmp_path))
    monkeypatch.setenv("NB2PIPE_REPORT", "off")
    plotting = dataclasses.replace(manifest_of({"quick": [1]}).step("quick"), pyplot=True)
    monkeypatch.setattr(project, "step", lambda name: plotting)
    busy = threading.Event()

    def other_step() -> None:
        with calls.PYPLOT:
            busy.set()
            time.sleep(1.0)

    other = threading.Thread(target=other_step)
    other.start()
    busy.wait()
    call = calls.StepCall("quick", lambda: {"x": 1}, {})
    began = time.perf_counter()
    calls.in_process(call, [])
    waited = time.perf_counter() - began
    other.join()
    assert call.outputs == {"x": 1}
    assert waited >= 0.5 and call.seconds is not None and call.seconds < 0.1, (waited, call)


@pytest.mark.integration
def test_a_step_duration_is_one_figure_in_the_events_and_the_report(
        tmp_path: Path, prefect_harness: None) -> None:
    """Two steps that plot take turns on the threads: the second waits for the first. Each
    step's duration in the progress events (what the JupyterLab panel shows) is the figure the
    report shows: how long its code ran."""
    notebook = write_notebook(
        tmp_path / "turns.ipynb",
        ("import time\nimport matplotlib.pyplot as plt",),
        ("plt.plot([1, 2])\ntime.sleep(1.0)\nfirst = 1", "step:first"),
        ("plt.plot([2, 1])\ntime.sleep(1.0)\nsecond = 2", "step:second"))
    result, target = run_with_report(notebook, tmp_path)
    assert result.ok, result.error
    page = BeautifulSoup(target.read_text(encoding="utf-8"), "html.parser")
    for step in ("first", "second"):
        shown = result.steps[step].duration
        assert shown is not None and shown >= 1.0, (step, shown)
        heading = page.select_one(f"h2#step-{step}")
        assert heading is not None
        assert heading.get_text().endswith(f"in {report.duration_text(shown)}"), (
            step, shown, heading.get_text())


def test_the_report_says_where_each_attempt_of_a_step_ran() -> None:
    from nb2pipe.runtime.attempts import describe

    assert describe([{"worker": None, "error": None}]) is None  # one attempt, no Dask
    assert describe([{"worker": "gpu (tcp://h:1)", "error": None}]) == (
        "Ran on Dask worker gpu (tcp://h:1).")
    text = describe([{"worker": "gpu (tcp://h:1)", "error": None},
                     {"worker": "cpu (tcp://h:2)", "error": "OSError: disk\nmore"},
                     {"worker": "cpu (tcp://h:2)", "error": None}])
    assert text == (
        "3 attempts: attempt 1 on Dask worker gpu (tcp://h:1): ended without a result: the "
        "process or machine running it stopped, and the step ran again; attempt 2 on Dask "
        "worker cpu (tcp://h:2): failed: OSError: disk; attempt 3 on Dask worker cpu "
        "(tcp://h:2): the last attempt.")


def test_a_step_on_a_dask_worker_starts_no_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask worker runs steps with the flow run's context but outlives the run: a renderer
    started there would wait for a report that the flow's own process writes, forever."""
    from types import SimpleNamespace

    from distributed import Client
    from prefect.context import FlowRunContext

    run = SimpleNamespace(id="run-on-a-dask-worker")
    monkeypatch.setattr(FlowRunContext, "get", classmethod(
        lambda cls: SimpleNamespace(flow_run=run)))
    monkeypatch.delenv("NB2PIPE_REPORT", raising=False)
    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=None) as client:
        client.submit(report.prepare, pure=False).result()
    assert run.id not in report._renderers
    report.prepare()  # the flow's own process: its first step starts the renderer
    assert run.id in report._renderers
    report.discard(run.id)
