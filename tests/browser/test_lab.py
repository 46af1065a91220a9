"""JupyterLab with the nb2pipe extension, in Chromium: the pipeline panel (export, diagnostics,
runs, stop, history, the on-ramp, the graph, both themes, narrow windows) and the step editor.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ARTIFACTS, SLEEP_MARKER, open_lab
from lab import (
    Jupyter,
    run_group,
    running,
    running_jupyter,
    small_pipeline_notebook,
    wait_until,
)

pytestmark = pytest.mark.integration

CHURN_STEPS = ["load", "clean", "features", "train_logreg", "train_forest", "train_boosting",
               "evaluate"]
RUN_SECONDS = 300_000  # ms: a run starts Prefect and a Python process on a busy machine
VISIBLE_PANEL = ".nb2pipe-panel:not(.lm-mod-hidden)"


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
    panel.wait_for(timeout=120_000)
    return panel


def _panel_of(page: Any, notebook: Any) -> Any:
    notebook.locator(".nb2pipe-toolbar-export button, .nb2pipe-toolbar-export").first.click()
    return _ready_panel(page)


SIDEBAR_TAB = '.jp-SideBar .lm-TabBar-tab[data-id="nb2pipe-pipeline"]'


def _close_panel(page: Any) -> None:
    """Collapse the pipeline sidebar (its tab, as a person closes a sidebar)."""
    page.locator(SIDEBAR_TAB).click()
    page.locator(".nb2pipe-sidebar").wait_for(state="hidden")


def _close_notebook(page: Any, name: str) -> None:
    """Close the notebook's tab, discarding what JupyterLab recorded in it (its kernel)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab").filter(has_text=name)
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    question = page.locator(".jp-Dialog")
    try:
        question.wait_for(timeout=3000)
        question.locator("button.jp-mod-warn, button:has-text('Discard')").first.click()
    except PlaywrightTimeout:
        pass
    tab.wait_for(state="detached")


def _act(page: Any, button: Any) -> None:
    """Click Export or Run; when the notebook's cells have unsaved changes, answer the save
    question the panel then asks."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    button.click()
    question = page.locator(".jp-Dialog:has-text('Save the notebook?')")
    try:
        question.wait_for(timeout=2000)
    except PlaywrightTimeout:
        return
    question.locator("button.jp-mod-accept").click()
    question.wait_for(state="detached")


def _wait_run(page: Any, states: tuple[str, ...] = ("completed", "failed", "cancelled")) -> str:
    page.wait_for_function(
        f"states => states.includes(document.querySelector('{VISIBLE_PANEL}')?.dataset.run)",
        arg=list(states), timeout=RUN_SECONDS)
    return str(page.locator(VISIBLE_PANEL).get_attribute("data-run"))


def _step_states(panel: Any) -> dict[str, str]:
    return {item.get_attribute("data-step"): item.get_attribute("data-state")
            for item in panel.locator(".nb2pipe-step").all()}


def _active_cells(notebook: Any) -> list[int]:
    cells = notebook.locator(".jp-Cell")
    return [i for i in range(cells.count())
            if "jp-mod-active" in (cells.nth(i).get_attribute("class") or "")]


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), timeout=90_000)


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
    titles = graph.locator("g.nb2pipe-edge > title").all_text_contents()
    assert "load → clean: df" in titles and "features → train_forest: X_train, y_train" in titles
    assert panel.locator(".nb2pipe-notes .nb2pipe-diagnostic").count() == 4  # NB306, notes
    assert panel.locator(".nb2pipe-output").input_value() == "churn/churn_pipeline"

    _act(page, panel.locator("button.nb2pipe-export"))
    panel.locator(".nb2pipe-export-summary").wait_for()
    summary = panel.locator(".nb2pipe-export-summary").inner_text()
    assert "Exported to churn/churn_pipeline" in summary
    assert panel.locator(".nb2pipe-status").inner_text() == summary
    project = lab.root / "churn" / "churn_pipeline"
    assert (project / "flow.py").is_file() and (project / "steps.py").is_file()
    check = subprocess.run(
        [sys.executable, "-m", "nb2pipe", "convert", str(lab.root / "churn" / "churn.ipynb"),
         "-o", str(project), "--check"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr

    page.locator('.jp-toast-button:has-text("Open flow.py")').click()
    page.locator('.lm-TabBar-tab.lm-mod-current:has-text("flow.py")').wait_for()


def test_re_export_after_a_hand_edit_offers_overwrite_and_diff(page: Any, lab: Jupyter) -> None:
    notebook = _open_notebook(page, "editor.ipynb")
    panel = _panel_of(page, notebook)
    _act(page, panel.locator("button.nb2pipe-export"))
    panel.locator(".nb2pipe-export-summary").wait_for()
    flow = lab.root / "editor_pipeline" / "flow.py"
    flow.write_text(flow.read_text() + "\n# tuned by hand\n")

    _act(page, panel.locator("button.nb2pipe-export"))
    conflict = panel.locator(".nb2pipe-conflict")
    conflict.wait_for()
    assert "editor_pipeline/flow.py was changed by hand" in conflict.inner_text()
    assert panel.locator(".nb2pipe-export-summary").count() == 0  # the last result is gone
    conflict.locator("button.nb2pipe-show-diff").click()
    diff = conflict.locator(".nb2pipe-diff")
    diff.wait_for()
    assert "editor_pipeline/flow.py" in diff.locator("summary").inner_text()
    assert "-# tuned by hand" in diff.locator(".nb2pipe-diff-remove").all_inner_texts()[-1]
    assert "# tuned by hand" in flow.read_text()
    _act(page, conflict.locator("button.nb2pipe-overwrite"))
    panel.locator(".nb2pipe-export-summary").wait_for()
    assert "# tuned by hand" not in flow.read_text()


def test_disabled_actions_look_disabled_and_say_why(page: Any, lab: Jupyter) -> None:
    notebook = _open_notebook(page, "broken.ipynb")
    panel = _panel_of(page, notebook)
    export = panel.locator("button.nb2pipe-export")
    for button, word in ((export, "Export"), (panel.locator("button.nb2pipe-run"), "Run")):
        assert button.get_attribute("aria-disabled") == "true"
        assert button.get_attribute("title").startswith(f"{word} is blocked: the notebook has "
                                                        "1 error")
        opacity = float(button.evaluate("b => getComputedStyle(b).opacity"))
        assert opacity <= 0.5
        assert button.evaluate("b => getComputedStyle(b).cursor") == "not-allowed"
    enabled = float(panel.locator("button.nb2pipe-refresh").evaluate(
        "b => getComputedStyle(b).opacity"))
    assert enabled == 1.0
    export.click(force=True)  # focusable and clickable: says why instead of doing nothing
    assert panel.locator(".nb2pipe-status").inner_text().startswith("Export is blocked")
    assert not (lab.root / "broken_pipeline").exists()
    assert panel.locator("button.nb2pipe-stop").get_attribute("title") == (
        "No run of this notebook is in progress.")


def test_a_diagnostic_selects_its_cell_by_click_and_by_enter(page: Any) -> None:
    notebook = _open_notebook(page, "broken.ipynb")
    panel = _panel_of(page, notebook)
    diagnostic = panel.locator('.nb2pipe-diagnostic[data-code="NB201"]')
    assert diagnostic.locator(".nb2pipe-where").inner_text() == "cell 4, line 1"
    assert "discount" in diagnostic.locator(".nb2pipe-message").inner_text()

    notebook.locator(".jp-Cell").nth(1).click()  # somewhere else first
    diagnostic.click()
    assert _active_cells(notebook) == [3]
    notebook.locator(".jp-Cell").nth(1).click()
    diagnostic.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-"
                           "hidden) .jp-Cell')[3].classList.contains('jp-mod-active')")
    panel.locator('.nb2pipe-step[data-step="add"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-"
                           "hidden) .jp-Cell')[2].classList.contains('jp-mod-active')")
    _screenshot(page, "diagnostic-selects-cell.png")


def test_the_panel_opens_again_after_it_was_closed(page: Any) -> None:
    notebook = _open_notebook(page, "small.ipynb")
    _panel_of(page, notebook)
    _close_panel(page)
    _panel_of(page, notebook)  # the toolbar button
    _close_panel(page)
    notebook.locator(".jp-Cell").nth(2).locator(".jp-InputPrompt").click()
    _open_palette(page).fill("Export to Pipeline")
    page.locator('.lm-CommandPalette-item:has-text("Export to Pipeline")').first.click()
    _ready_panel(page)
    _close_panel(page)
    page.locator(SIDEBAR_TAB).click()  # the sidebar's own tab
    _ready_panel(page)
    _close_panel(page)
    _file(page, "small.ipynb").click(button="right")
    page.locator('.lm-Menu-item:has-text("Export to Pipeline")').click()
    assert _ready_panel(page).locator(".nb2pipe-step-name").all_inner_texts() == [
        "load", "scale", "report"]


def test_opening_the_panel_saves_nothing(page: Any, lab: Jupyter) -> None:
    path = lab.root / "editor.ipynb"
    before = path.read_bytes()
    notebook = _open_notebook(page, "editor.ipynb")
    cell = notebook.locator(".jp-Cell").nth(3)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("End")
    page.keyboard.type("  # unsaved")
    page.keyboard.press("Escape")
    panel = _panel_of(page, notebook)
    assert panel.locator(".nb2pipe-step-name").all_inner_texts() == ["first"]
    assert path.read_bytes() == before
    assert page.locator(".lm-TabBar-tab.jp-mod-dirty:has-text('editor.ipynb')").count() == 1


def test_run_with_a_parameter_reaches_completed_and_is_in_the_history(page: Any) -> None:
    notebook = _open_notebook(page, "small.ipynb")
    panel = _panel_of(page, notebook)
    panel.locator(".nb2pipe-parameters > summary").click()
    factor = panel.locator('.nb2pipe-parameter[data-parameter="factor"] input')
    assert factor.input_value() == "3"
    factor.fill("three")
    _act(page, panel.locator("button.nb2pipe-run"))
    error = panel.locator('.nb2pipe-parameter[data-parameter="factor"] .nb2pipe-parameter-error')
    error.wait_for()
    assert error.inner_text() == "parameter 'factor' is int, but got 'three' (str)"
    assert "did not start" in panel.locator(".nb2pipe-status").inner_text()

    panel.locator('.nb2pipe-parameter[data-parameter="factor"] input').fill("5")
    _act(page, panel.locator("button.nb2pipe-run"))
    page.wait_for_function(f"() => document.querySelector('{VISIBLE_PANEL} .nb2pipe-run')"
                           "?.title.includes('in progress')")
    assert panel.locator("button.nb2pipe-run").get_attribute("aria-disabled") == "true"
    state = _wait_run(page)
    assert state == "completed", panel.locator(".nb2pipe-result").inner_text()
    states = _step_states(panel)
    assert set(states) == {"load", "scale", "report"}
    assert set(states.values()) <= {"completed", "cached"}, states
    assert panel.locator('.nb2pipe-step[data-step="report"] .nb2pipe-step-state').inner_text() \
        .startswith("✓ ")
    first = panel.locator(".nb2pipe-history-item").first
    assert first.get_attribute("data-state") == "completed"
    assert "factor=5" in first.inner_text()
    assert "225" in panel.locator(".nb2pipe-run-log").text_content().splitlines()


def _wait_step_running(page: Any, step: str) -> None:
    page.wait_for_function(
        f"() => document.querySelector('{VISIBLE_PANEL} .nb2pipe-step[data-step=\"{step}\"]')"
        "?.dataset.state === 'running'", timeout=RUN_SECONDS)


def test_stop_ends_a_running_pipeline(page: Any, lab: Jupyter) -> None:
    notebook = _open_notebook(page, "sleeper.ipynb")
    panel = _panel_of(page, notebook)
    assert panel.locator("button.nb2pipe-stop").get_attribute("aria-disabled") == "true"
    _act(page, panel.locator("button.nb2pipe-run"))
    _wait_step_running(page, "sleep")
    wait_until(lambda: bool(running(lambda p, g, c: c.endswith(SLEEP_MARKER))), 60,
               "the step starts its child")
    group = run_group(lab.root / "sleeper.ipynb")
    stop = panel.locator("button.nb2pipe-stop")
    assert stop.get_attribute("aria-disabled") == "false"
    assert panel.locator("button.nb2pipe-run").get_attribute("aria-disabled") == "true"
    stop.click()
    assert _wait_run(page) == "cancelled"
    assert _step_states(panel) == {"sleep": "cancelled", "after": "cancelled"}
    assert panel.locator('.nb2pipe-step[data-step="sleep"] .nb2pipe-step-state').inner_text() \
        == "⊘ cancelled"
    node = panel.locator('g.nb2pipe-node[data-step="sleep"]')
    assert "nb2pipe-state-cancelled" in (node.get_attribute("class") or "")
    assert node.get_attribute("aria-label") == "step sleep: cancelled"
    assert not running(lambda p, g, c: g == group)
    assert not running(lambda p, g, c: c.endswith(SLEEP_MARKER))
    assert panel.locator("button.nb2pipe-run").get_attribute("aria-disabled") == "false"
    assert panel.locator(".nb2pipe-history-item").first.get_attribute("data-state") == \
        "cancelled"


def test_a_reopened_panel_follows_the_run_still_going(page: Any, lab: Jupyter) -> None:
    marker = SLEEP_MARKER + "-2"
    notebook = _open_notebook(page, "sleeper2.ipynb")
    panel = _panel_of(page, notebook)
    _act(page, panel.locator("button.nb2pipe-run"))
    _wait_step_running(page, "sleep")
    _close_notebook(page, "sleeper2.ipynb")  # its view in the panel goes with it
    assert page.locator(".nb2pipe-panel").count() == 0
    wait_until(lambda: bool(running(lambda p, g, c: c.endswith(marker))), 60,
               "the run goes on without its panel")
    notebook = _open_notebook(page, "sleeper2.ipynb")
    panel = _panel_of(page, notebook)
    _wait_step_running(page, "sleep")
    assert panel.locator("button.nb2pipe-stop").get_attribute("aria-disabled") == "false"
    run = panel.locator("button.nb2pipe-run")
    assert run.get_attribute("aria-disabled") == "true"
    assert run.get_attribute("title") == "A run of this notebook is in progress: Stop it first."
    page.wait_for_function(f"() => document.querySelector('{VISIBLE_PANEL} .nb2pipe-status')"
                           "?.textContent.startsWith('Run running')")
    panel.locator("button.nb2pipe-stop").click()
    assert _wait_run(page) == "cancelled"
    assert not running(lambda p, g, c: c.endswith(marker))


def test_the_run_history_survives_a_server_restart(browser: Any, prefect: str,
                                                   tmp_path_factory: pytest.TempPathFactory
                                                   ) -> None:
    root = tmp_path_factory.mktemp("history-root")
    state = tmp_path_factory.mktemp("history-state")
    small_pipeline_notebook(root / "small.ipynb")
    with running_jupyter(root, state, app="lab", prefect=prefect) as jupyter:
        page = open_lab(browser, jupyter)
        panel = _panel_of(page, _open_notebook(page, "small.ipynb"))
        _act(page, panel.locator("button.nb2pipe-run"))
        assert _wait_run(page) == "completed"
        page.context.close()
    with running_jupyter(root, state, app="lab", prefect=prefect) as jupyter:
        page = open_lab(browser, jupyter)
        _file(page, "small.ipynb").click(button="right")
        page.locator('.lm-Menu-item:has-text("Export to Pipeline")').click()
        panel = _ready_panel(page)
        item = panel.locator(".nb2pipe-history-item")
        item.first.wait_for()
        assert item.count() == 1
        assert item.first.get_attribute("data-state") == "completed"
        assert item.first.inner_text().startswith("✓ completed")
        item.first.click()
        panel.locator(".nb2pipe-run-result[data-state='completed']").wait_for()
        assert set(_step_states(panel).values()) <= {"completed", "cached"}
        page.context.close()


def test_the_on_ramp_splits_an_untagged_notebook_by_headings(page: Any, lab: Jupyter) -> None:
    notebook = _open_notebook(page, "untagged.ipynb")
    panel = _panel_of(page, notebook)
    onramp = panel.locator(".nb2pipe-onramp")
    onramp.locator("button.nb2pipe-split-headings").wait_for()  # drawn once analysed
    assert onramp.locator("button").all_inner_texts() == [
        "By headings → 3 steps", "By cells → 4 steps", "Tag by hand"]
    assert "load → clean → report" in onramp.inner_text()
    onramp.locator("button.nb2pipe-split-headings").click()
    page.wait_for_function(f"() => document.querySelector('{VISIBLE_PANEL}')"
                           "?.dataset.steps === '3'")
    assert panel.locator(".nb2pipe-onramp").count() == 0
    cells = notebook.locator(".jp-Cell")
    cells.nth(1).locator(".nb2pipe-badge").filter(has_text="step load").wait_for()
    cells.nth(2).locator(".nb2pipe-badge").filter(has_text="↳ load").wait_for()
    cells.nth(4).locator(".nb2pipe-badge").filter(has_text="step clean").wait_for()
    notebook.locator(".jp-Cell").first.click()
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "() => !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')", timeout=30_000)
    saved = json.loads((lab.root / "untagged.ipynb").read_text())["cells"]
    assert [c["metadata"].get("tags") for c in saved] == [
        None, ["step:load"], None, None, ["step:clean"], None, ["step:report"]]


def _covered(page: Any, locator: Any) -> bool:
    """Whether something else is drawn over the centre of the element."""
    return bool(locator.evaluate(
        "e => { const r = e.getBoundingClientRect();"
        " const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);"
        " return !(top === e || e.contains(top)); }"))


@pytest.mark.parametrize(("width", "height"), [(1400, 1000), (900, 700)])
def test_the_actions_stay_in_view_and_usable_with_a_toast(browser: Any, lab: Jupyter,
                                                         width: int, height: int) -> None:
    page = open_lab(browser, lab, width, height)
    try:
        panel = _panel_of(page, _open_notebook(page, "twelve.ipynb"))
        _act(page, panel.locator("button.nb2pipe-export"))
        page.locator(".jp-toast-message, .Toastify__toast").first.wait_for()
        page.locator(".nb2pipe-export-summary").wait_for()
        for name in ("export", "run", "stop", "refresh"):
            button = panel.locator(f"button.nb2pipe-{name}")
            box = button.bounding_box()
            assert box is not None, name
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)
            assert box["y"] >= 0 and box["y"] + box["height"] <= height, (name, box)
            assert not _covered(page, button), name
        assert not _covered(page, panel.locator(".nb2pipe-status"))
        panel.locator(".nb2pipe-body").evaluate("b => b.scrollTop = b.scrollHeight")
        assert panel.locator("button.nb2pipe-run").bounding_box()["y"] < height / 2
        panel.locator("button.nb2pipe-export").click(trial=True)
        panel.locator("button.nb2pipe-run").click(trial=True)
        if width < 1000:
            _screenshot(page, "panel-narrow.png")
    finally:
        page.context.close()


def _overlap(a: dict[str, float], b: dict[str, float], slack: float = 0.5) -> bool:
    return (a["x"] + slack < b["x"] + b["width"] and b["x"] + slack < a["x"] + a["width"]
            and a["y"] + slack < b["y"] + b["height"] and b["y"] + slack < a["y"] + a["height"])


def test_a_twelve_step_graph_has_no_overlapping_labels(page: Any) -> None:
    # a panel wide enough for the variables on the edges (a narrow one leaves them to tooltips)
    page.evaluate("() => document.documentElement.style.setProperty("
                  "'--nb2pipe-panel-min-width', '1000px')")
    panel = _panel_of(page, _open_notebook(page, "twelve.ipynb"))
    assert panel.locator(".nb2pipe-graph-view").get_attribute("data-density") == "full"
    graph = panel.locator("svg.nb2pipe-graph")
    assert graph.get_attribute("aria-label") == "Dependency graph: 12 steps, 20 edges"
    panel.locator("button.nb2pipe-zoom[aria-label^='Zoom in']").click()
    page.wait_for_timeout(100)
    boxes = graph.evaluate(
        "svg => [...svg.querySelectorAll('g.nb2pipe-node rect.nb2pipe-node-box,"
        " g.nb2pipe-edge-label-group rect, text')].map(e => {"
        " const r = e.getBoundingClientRect();"
        " return {kind: e.tagName + '.' + (e.getAttribute('class') || ''),"
        " text: e.textContent, x: r.x, y: r.y, width: r.width, height: r.height}; })")
    shapes = [b for b in boxes if b["kind"].startswith("rect")]
    texts = [b for b in boxes if b["kind"].startswith("text") and b["text"]]
    assert len([s for s in shapes if "node-box" in s["kind"]]) == 12
    assert len([s for s in shapes if "node-box" not in s["kind"]]) == 20
    for i, a in enumerate(shapes):
        for b in shapes[i + 1:]:
            assert not _overlap(a, b), (a, b)
    for text in texts:  # every label's text lies inside its own box and no other
        holders = [s for s in shapes if _overlap(text, s)]
        assert len(holders) == 1, (text, holders)
        [holder] = holders
        assert holder["x"] - 0.5 <= text["x"] and text["x"] + text["width"] <= \
            holder["x"] + holder["width"] + 0.5, (text, holder)
    ends = graph.evaluate(
        "svg => [...svg.querySelectorAll('g.nb2pipe-edge[data-target=\"report\"] path')]"
        ".map(p => p.getAttribute('d').split(' ').slice(-2).join(' '))")
    assert len(set(ends)) == 10  # ten arrowheads into report, none shared
    graph.locator('g.nb2pipe-node[data-step="model_3"]').hover()
    highlighted = graph.locator("g.nb2pipe-edge.nb2pipe-mod-highlight").all()
    assert {(g.get_attribute("data-source"), g.get_attribute("data-target"))
            for g in highlighted} == {("load", "model_3"), ("model_3", "report")}
    _screenshot(page, "graph-twelve-steps.png")


def _luminance(color: str) -> float:
    red, green, blue = (float(v) / 255 for v in re.findall(r"[\d.]+", color)[:3])
    channel = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
               for c in (red, green, blue)]
    return 0.2126 * channel[0] + 0.7152 * channel[1] + 0.0722 * channel[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _set_theme(page: Any, theme: str) -> None:
    page.locator('.lm-MenuBar-item:has-text("Settings")').click()
    page.locator('.lm-Menu-item:has-text("Theme")').first.hover()
    page.locator(f'.lm-Menu-item:has-text("{theme}")').first.click()
    light = "false" if "Dark" in theme else "true"
    page.wait_for_selector(f'body[data-jp-theme-light="{light}"]', state="attached")
    page.wait_for_timeout(500)  # the theme's stylesheet applies


def test_both_themes_keep_badges_and_nodes_readable(page: Any) -> None:
    _open_folder(page, "churn")
    notebook = _open_notebook(page, "churn.ipynb")
    panel = _panel_of(page, notebook)
    _act(page, panel.locator("button.nb2pipe-run"))
    assert _wait_run(page) == "completed", panel.locator(".nb2pipe-result").inner_text()
    notebook.locator(".jp-Cell").nth(5).evaluate("c => c.scrollIntoView({block: 'start'})")
    _screenshot(page, "panel-light.png")
    try:
        _set_theme(page, "JupyterLab Dark")
        _screenshot(page, "panel-dark.png")
        badges = page.evaluate(
            "() => [...document.querySelectorAll('.nb2pipe-badge')].map(b => {"
            " const s = getComputedStyle(b); return [b.textContent, s.backgroundColor, s.color,"
            " getComputedStyle(b.closest('.jp-Cell')).backgroundColor]; })")
        assert len(badges) >= 3
        for text, background, color, _ in badges:
            if background in ("rgba(0, 0, 0, 0)", "transparent"):  # an outlined badge
                continue
            assert _contrast(background, color) >= 4.5, (text, background, color)
        nodes = panel.locator("svg.nb2pipe-graph").evaluate(
            "svg => [...svg.querySelectorAll('g.nb2pipe-node')].map(g => ["
            " g.dataset.step, g.getAttribute('class'),"
            " getComputedStyle(g.querySelector('.nb2pipe-node-box')).fill,"
            " getComputedStyle(g.querySelector('.nb2pipe-node-label')).fill,"
            " getComputedStyle(g.querySelector('.nb2pipe-node-box')).stroke])")
        background = panel.evaluate("p => getComputedStyle(p).backgroundColor")
        assert any("nb2pipe-state-completed" in n[1] or "nb2pipe-state-cached" in n[1]
                   for n in nodes), nodes
        for step, classes, fill, text, stroke in nodes:
            assert _contrast(fill, text) >= 4.5, (step, classes, fill, text)
            assert _contrast(stroke, background) >= 3, (step, stroke, background)
        labels = panel.locator("svg.nb2pipe-graph").evaluate(
            "svg => [...svg.querySelectorAll('g.nb2pipe-edge-label-group')].map(g => ["
            " getComputedStyle(g.querySelector('rect')).fill,"
            " getComputedStyle(g.querySelector('text')).fill])")
        for fill, text in labels:
            assert _contrast(fill, text) >= 4.5, (fill, text)
        status = panel.locator(".nb2pipe-status")
        assert _contrast(status.evaluate("s => getComputedStyle(s).backgroundColor"),
                         status.evaluate("s => getComputedStyle(s).color")) >= 4.5
    finally:
        _set_theme(page, "JupyterLab Light")


def test_a_failing_step_links_to_its_cell_and_marks_the_line(page: Any) -> None:
    notebook = _open_notebook(page, "failing.ipynb")
    panel = _panel_of(page, notebook)
    _act(page, panel.locator("button.nb2pipe-run"))
    assert _wait_run(page) == "failed"
    failure = panel.locator('.nb2pipe-run-failure[data-step="divide"]')
    assert failure.locator(".nb2pipe-run-failure-error").inner_text() == (
        "ZeroDivisionError: division by zero")
    log = panel.locator(".nb2pipe-run-log-toggle")
    assert log.get_attribute("open") is None  # the full log stays behind its toggle
    link = failure.locator(".nb2pipe-cell-link")
    assert link.inner_text() == "cell 4, line 2"
    notebook.locator(".jp-Cell").nth(1).click()
    link.click()
    page.wait_for_function("() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-"
                           "hidden) .jp-Cell')[3].classList.contains('jp-mod-active')")
    assert page.evaluate("() => document.getSelection().toString()") == (
        "ratio = total / (len(values) - 3)")
    assert _step_states(panel)["divide"] == "failed"
    _screenshot(page, "failing-step.png")


def test_the_step_editor_tags_a_cell_and_the_saved_notebook_has_it(page: Any,
                                                                   lab: Jupyter) -> None:
    path = lab.root / "editor.ipynb"
    before = json.loads(path.read_text())["cells"]
    notebook = _open_notebook(page, "editor.ipynb")
    cells = notebook.locator(".jp-Cell")
    # an untagged cell joins the step above: the badge comes from the server's analysis
    cells.nth(2).locator(".jp-CellHeader .nb2pipe-badge").filter(has_text="↳ first").wait_for()
    header = cells.nth(2).locator(".jp-CellHeader").bounding_box()
    editor = cells.nth(2).locator(".jp-InputArea-editor").bounding_box()
    assert header["y"] + header["height"] <= editor["y"] + 0.5  # above the code, not over it

    cells.nth(2).locator(".jp-InputPrompt").click()
    cells.nth(2).locator(".jp-InputPrompt").click(button="right")
    page.locator('.lm-Menu-item:has-text("Pipeline Step")').hover()
    page.locator('.lm-Menu-item:has-text("Assign Cells to Step…")').click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("second")
    dialog.locator("button.jp-mod-accept").click()
    cells.nth(2).locator(".nb2pipe-badge").filter(has_text="step second").wait_for()
    # the cell below has no step tag: it joins the new step, and a toast says so
    cells.nth(3).locator(".nb2pipe-badge").filter(has_text="↳ second").wait_for()
    page.locator(".jp-toast-message:has-text('cell 4 below has no step tag')").wait_for()

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


def test_step_options_are_edited_in_a_form_and_written_as_tags(page: Any, lab: Jupyter) -> None:
    notebook = _open_notebook(page, "twelve.ipynb")
    panel = _panel_of(page, notebook)
    panel.locator('.nb2pipe-step[data-step="model_2"] .nb2pipe-step-settings').click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator('.nb2pipe-option[data-kind="retries"] input').fill("many")
    dialog.locator("button.jp-mod-accept").click()
    error = page.locator('.jp-Dialog .nb2pipe-option[data-kind="retries"] .nb2pipe-option-error')
    error.wait_for()
    assert "whole number" in error.inner_text()
    page.locator('.jp-Dialog .nb2pipe-option[data-kind="retries"] input').fill("2")
    page.locator('.jp-Dialog .nb2pipe-option[data-kind="timeout"] input').fill("60")
    page.locator('.jp-Dialog .nb2pipe-option[data-kind="cache"] input').uncheck()
    page.locator(".jp-Dialog button.jp-mod-accept").click()
    options = panel.locator('.nb2pipe-step[data-step="model_2"] .nb2pipe-step-options')
    page.wait_for_function(
        f"() => document.querySelector('{VISIBLE_PANEL} .nb2pipe-step[data-step=\"model_2\"] "
        ".nb2pipe-step-options')?.textContent === 'retries 2 · timeout 60 s · no cache'")
    assert options.inner_text() == "retries 2 · timeout 60 s · no cache"
    tags = page.evaluate(
        "() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')[4]"
        ".dataset.nb2pipeStep")
    assert tags == "model_2"
    assert Path(lab.root / "twelve.ipynb").read_text().count("retries:2") == 0  # not saved


def test_the_run_report_opens_in_a_tab_and_steps_link_to_their_sections(page: Any) -> None:
    _open_folder(page, "churn")
    notebook = _open_notebook(page, "churn.ipynb")
    panel = _panel_of(page, notebook)
    _act(page, panel.locator("button.nb2pipe-run"))
    assert _wait_run(page) == "completed", panel.locator(".nb2pipe-result").inner_text()
    panel.locator(".nb2pipe-run-links .nb2pipe-report-link").click()
    tab = page.locator(".lm-TabBar-tab").filter(has_text="Report: churn.ipynb")
    tab.wait_for()
    report = page.frame_locator(".nb2pipe-report-tab iframe")
    report.locator("h2#step-evaluate").wait_for(timeout=60_000)
    assert report.locator("h1").first.inner_text().startswith("Run of churn.ipynb")
    evaluate = report.locator("h2#step-evaluate")
    assert "completed" in evaluate.inner_text() or "cached" in evaluate.inner_text()
    # The evaluation's figure (ROC curves and the heatmap) and its results table are there.
    assert report.locator(".jp-OutputArea-output img[src^='data:image/png']").count() >= 2
    assert report.locator(".jp-OutputArea-output table.dataframe").count() >= 3
    # A step's status in the panel opens the report at that step's section.
    panel.locator('.nb2pipe-step[data-step="train_forest"] .nb2pipe-step-report-link').click()
    page.wait_for_function(
        "() => document.querySelector('.nb2pipe-report-tab iframe')?.src"
        ".endsWith('#step-train_forest')")
    assert page.locator(".lm-TabBar-tab").filter(has_text="Report: churn.ipynb").count() == 1
    _screenshot(page, "run-report-tab.png")
