"""JupyterLab with the nb2pipe extension, in Chromium: Export to Pipeline, diagnostics that
select their cell, the step editor, and a run that completes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
from conftest import ARTIFACTS
from lab import Jupyter

pytestmark = pytest.mark.integration

CHURN_STEPS = ["load", "clean", "features", "train_logreg", "train_forest", "train_boosting",
               "evaluate"]


def _open_folder(page: Any, name: str) -> None:
    _file(page, name).dblclick()
    page.wait_for_selector(f'.jp-BreadCrumbs:has-text("{name}")')


def _file(page: Any, name: str) -> Any:
    return page.locator(".jp-DirListing-item").filter(
        has=page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")))


def _open_notebook(page: Any, name: str) -> Any:
    _file(page, name).dblclick()
    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.locator(".jp-Cell").first.wait_for()
    return notebook


def _open_palette(page: Any) -> Any:
    """The command palette's search box (the modal palette closes when the notebook takes the
    focus back, e.g. as its kernel starts: then open it again)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    search = page.locator(".lm-CommandPalette-input")
    for _ in range(5):
        page.locator('.lm-MenuBar-item:has-text("View")').click()
        page.locator('.lm-Menu-item:has-text("Activate Command Palette")').click()
        try:
            search.wait_for(timeout=3000)
            return search
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError("the command palette did not open")


def _ready_panel(page: Any) -> Any:
    panel = page.locator(".nb2pipe-panel.nb2pipe-mod-ready:visible")
    panel.wait_for()
    return panel


def _jupyter(*args: str) -> str:
    listed = subprocess.run([sys.executable, "-m", "jupyter", *args],
                            capture_output=True, text=True, check=False)
    return re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)  # no colours


def test_the_extensions_are_installed_enabled_and_ok() -> None:
    from nb2pipe import __version__

    labextensions = _jupyter("labextension", "list")
    assert re.search(rf"^\s*nb2pipe v{re.escape(__version__)} enabled OK \(python, nb2pipe\)",
                     labextensions, re.MULTILINE), labextensions
    server = _jupyter("server", "extension", "list")
    assert re.search(r"^\s*nb2pipe\.server enabled$", server, re.MULTILINE), server
    assert re.search(rf"^\s*nb2pipe\.server {re.escape(__version__)} OK$", server,
                     re.MULTILINE), server


def test_export_from_the_file_browser(page: Any, lab: Jupyter) -> None:
    _open_folder(page, "churn")
    _file(page, "churn.ipynb").click(button="right")
    page.locator('.lm-Menu-item:has-text("Export to Pipeline")').click()
    panel = _ready_panel(page)

    assert panel.locator(".nb2pipe-step-name").all_inner_texts() == CHURN_STEPS
    graph = panel.locator("svg.nb2pipe-graph")
    assert [g.get_attribute("data-step") for g in graph.locator("g.nb2pipe-node").all()] == \
        CHURN_STEPS
    edges = {(g.get_attribute("data-source"), g.get_attribute("data-target"))
             for g in graph.locator("g.nb2pipe-edge").all()}
    assert {("load", "clean"), ("clean", "features"), ("features", "train_forest"),
            ("train_boosting", "evaluate")} <= edges
    labels = graph.locator("text.nb2pipe-edge-label").all_text_contents()
    assert "df" in labels and "X_train, y_train" in labels
    assert panel.locator(".nb2pipe-diagnostic").count() == 3  # NB306 warnings only
    assert panel.locator(".nb2pipe-output").input_value() == "churn/churn_pipeline"

    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "export-dialog.png"))

    panel.locator("button.nb2pipe-export").click()
    panel.locator(".nb2pipe-export-summary").wait_for()
    summary = panel.locator(".nb2pipe-export-summary").inner_text()
    assert "Exported to churn/churn_pipeline" in summary
    project = lab.root / "churn" / "churn_pipeline"
    assert (project / "flow.py").is_file() and (project / "steps.py").is_file()
    check = subprocess.run(
        [sys.executable, "-m", "nb2pipe", "convert", str(lab.root / "churn" / "churn.ipynb"),
         "-o", str(project), "--check"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr

    page.locator('.jp-toast-button:has-text("Open flow.py")').click()
    page.locator('.lm-TabBar-tab.lm-mod-current:has-text("flow.py")').wait_for()


def test_a_diagnostic_selects_its_cell(page: Any) -> None:
    notebook = _open_notebook(page, "broken.ipynb")
    notebook.locator(".nb2pipe-toolbar-export button, .nb2pipe-toolbar-export").first.click()
    panel = _ready_panel(page)

    diagnostic = panel.locator('.nb2pipe-diagnostic[data-code="NB201"]')
    assert diagnostic.locator(".nb2pipe-where").inner_text() == "cell 4, line 1"
    assert "discount" in diagnostic.locator(".nb2pipe-message").inner_text()
    assert panel.locator("button.nb2pipe-export").is_disabled()
    assert "Export is blocked" in panel.locator(".nb2pipe-blocked").inner_text()

    notebook.locator(".jp-Cell").nth(1).click()  # somewhere else first
    diagnostic.click()
    cells = notebook.locator(".jp-Cell")
    active = [i for i in range(cells.count())
              if "jp-mod-active" in (cells.nth(i).get_attribute("class") or "")]
    assert active == [3]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "diagnostic-selects-cell.png"))


def test_the_step_editor_tags_a_cell_and_the_saved_notebook_has_it(page: Any,
                                                                   lab: Jupyter) -> None:
    path = lab.root / "editor.ipynb"
    before = json.loads(path.read_text())["cells"]
    notebook = _open_notebook(page, "editor.ipynb")
    cells = notebook.locator(".jp-Cell")
    # an untagged cell joins the step above: the badge comes from the server's analysis
    cells.nth(2).locator(".nb2pipe-badge").filter(has_text="first").wait_for()

    cells.nth(2).locator(".jp-InputPrompt").click()
    cells.nth(2).locator(".jp-InputPrompt").click(button="right")
    page.locator('.lm-Menu-item:has-text("Pipeline Step")').hover()
    page.locator('.lm-Menu-item:has-text("Assign Cells to Step…")').click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("second")
    dialog.locator("button.jp-mod-accept").click()
    cells.nth(2).locator(".nb2pipe-badge").filter(has_text="second").wait_for()
    # the cell below has no step tag: it joins the new step
    cells.nth(3).locator(".nb2pipe-badge").filter(has_text="second").wait_for()

    page.keyboard.press("Control+s")
    page.wait_for_function(
        "() => !document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-mod-dirty')"
        " && !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')")
    after = json.loads(path.read_text())["cells"]
    assert after[2]["metadata"].get("tags") == ["step:second"]
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        if index != 2:
            assert (new["source"], new["metadata"], new["cell_type"]) == (
                old["source"], old["metadata"], old["cell_type"]), index
    assert after[2]["source"] == before[2]["source"]
    check = subprocess.run([sys.executable, "-m", "nb2pipe", "check", str(path), "--format",
                            "json"], capture_output=True, text=True, check=False)
    steps = [s["name"] for s in json.loads(check.stdout)["steps"]]
    assert steps == ["first", "second"]


def test_run_pipeline_reaches_completed(page: Any) -> None:
    notebook = _open_notebook(page, "small.ipynb")
    notebook.locator(".jp-Cell").nth(2).locator(".jp-InputPrompt").click()
    _open_palette(page).fill("Export to Pipeline")
    page.locator('.lm-CommandPalette-item:has-text("Export to Pipeline")').first.click()
    panel = _ready_panel(page)
    panel.locator("button.nb2pipe-run").click()
    state = panel.locator(".nb2pipe-run-state")
    page.wait_for_function(
        "() => ['completed', 'failed'].includes("
        "document.querySelector('.nb2pipe-panel:not(.lm-mod-hidden) .nb2pipe-run-state')"
        "?.dataset.state)", timeout=300_000)
    assert state.get_attribute("data-state") == "completed", state.inner_text() + "\n" + \
        panel.locator(".nb2pipe-run-log").inner_text()
    states = {item.get_attribute("data-step"): item.get_attribute("data-state")
              for item in panel.locator(".nb2pipe-step").all()}
    assert set(states) == {"load", "scale", "report"}
    assert set(states.values()) <= {"completed", "cached"}, states
