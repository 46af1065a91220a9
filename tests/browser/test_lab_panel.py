"""The pipeline panel as a sidebar beside the notebooks, in Chromium against a real `jupyter lab`:
one panel that follows the active notebook, nothing too narrow, a graph that fits and moves, a
run whose durations, links and report read as one, badges that open a step's options, the
context menu, and Export without a needless save question. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import open_lab
from lab import Jupyter, code, markdown, write_notebook
from test_lab import (
    VISIBLE_PANEL,
    _act,
    _file,
    _open_folder,
    _open_notebook,
    _panel_of,
    _ready_panel,
    _screenshot,
    _wait_run,
)

pytestmark = pytest.mark.integration

SIZES = [(1400, 900), (1024, 700)]
PANEL_MIN = 300  # px: the narrowest the panel gets
MAIN_MIN = 400  # px: the narrowest the notebooks and the report get beside it
LONG_NAME = "gridsearchcv_evaluating_multiple_scorers_repeated"


@pytest.fixture(scope="module")
def notebooks(lab: Jupyter) -> Jupyter:
    """Two more notebooks: forty steps (a fan-out, one name far too long to draw), and one no
    test saves (a fresh notebook exports without a save question)."""
    middle = [f"feature_{i}" for i in range(37)] + [LONG_NAME]
    cells = [markdown("# Forty steps"), code("rows = list(range(50))", "step:load")]
    cells += [code(f"{name}_score = len(rows) + {i}", f"step:{name}")
              for i, name in enumerate(middle)]
    cells.append(code("total = " + " + ".join(f"{name}_score" for name in middle),
                      "step:report"))
    write_notebook(lab.root / "forty.ipynb", cells)
    write_notebook(lab.root / "fresh.ipynb", [
        markdown("# Fresh"), code("a = 1", "step:first"), code("b = a * 2", "step:second")])
    return lab


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return dict(box)


def _export_from_browser(page: Any, name: str) -> Any:
    _file(page, name).click(button="right")
    page.locator('.lm-Menu-item:has-text("Export to Pipeline")').click()
    return _ready_panel(page)


def _tab(page: Any, name: str) -> Any:
    return page.locator("#jp-main-dock-panel .lm-TabBar-tab").filter(has_text=name)


def _widths(page: Any) -> dict[str, float]:
    return {"panel": _box(page.locator(".nb2pipe-sidebar"))["width"],
            "main": _box(page.locator("#jp-main-dock-panel"))["width"]}


def _inside(inner: dict[str, float], outer: dict[str, float], slack: float = 0.5) -> bool:
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_one_panel_follows_the_active_notebook_and_nothing_gets_too_narrow(
        browser: Any, notebooks: Jupyter, width: int, height: int) -> None:
    page = open_lab(browser, notebooks, width, height)
    try:
        # Export from the file browser opens the notebook, not open yet, beside the panel.
        _open_folder(page, "churn")
        panel = _export_from_browser(page, "churn.ipynb")
        _tab(page, "churn.ipynb").wait_for()
        assert "lm-mod-current" in (_tab(page, "churn.ipynb").get_attribute("class") or "")
        assert page.locator("#jp-right-stack .nb2pipe-sidebar").is_visible()
        assert page.locator("#jp-main-dock-panel .nb2pipe-panel").count() == 0
        assert panel.get_attribute("data-path") == "churn/churn.ipynb"

        # A second notebook: the one panel now shows it; back to the first, it shows that.
        page.locator(".jp-BreadCrumbs-home").click()
        _open_notebook(page, "small.ipynb")
        page.wait_for_function(f"() => document.querySelector('{VISIBLE_PANEL}')"
                               "?.dataset.path === 'small.ipynb'")
        small = _ready_panel(page)
        assert small.locator(".nb2pipe-step-name").all_inner_texts() == [
            "load", "scale", "report"]
        _tab(page, "churn.ipynb").click()
        page.wait_for_function(f"() => document.querySelector('{VISIBLE_PANEL}')"
                               "?.dataset.path === 'churn/churn.ipynb'")
        assert page.locator(".nb2pipe-sidebar").count() == 1
        assert page.locator(".nb2pipe-panel:visible").count() == 1

        widths = _widths(page)
        assert widths["panel"] >= PANEL_MIN, widths
        assert widths["main"] >= MAIN_MIN, widths
        shown = _box(page.locator(".nb2pipe-sidebar"))
        panel = page.locator(".nb2pipe-panel:visible")
        for part in ("input.nb2pipe-output", "button.nb2pipe-choose", "button.nb2pipe-export",
                     "button.nb2pipe-run", "button.nb2pipe-stop", "button.nb2pipe-refresh"):
            assert _inside(_box(panel.locator(part)), shown), part
        assert _box(panel.locator("input.nb2pipe-output"))["width"] >= 150
        panel.locator(".nb2pipe-parameters > summary").click()
        for field in panel.locator(".nb2pipe-parameter-input[type='text']").all():
            assert _inside(_box(field), shown)
            assert _box(field)["width"] >= 80
        assert panel.locator(".nb2pipe-parameter-label").all_inner_texts() == [
            "data_path", "test_size", "random_state", "n_estimators", "C", "max_depth"]
        assert panel.locator('.nb2pipe-parameter[data-parameter="C"] input').input_value() \
            == "1.0"
        _screenshot(page, f"panel-follows-{width}x{height}.png")
    finally:
        page.context.close()


def _font_px(page: Any) -> float:
    """The height a step's name is drawn at in the graph on show: its font size times the
    picture's scale (measured at one moment: a new analysis redraws the graph)."""
    return float(page.locator(VISIBLE_PANEL).evaluate(
        "p => { const t = p.querySelector('.nb2pipe-node-label');"
        " const svg = t.ownerSVGElement;"
        " const scale = svg.width.baseVal.value / svg.viewBox.baseVal.width;"
        " return parseFloat(getComputedStyle(t).fontSize) * scale; }"))


def _graph_fits(page: Any) -> None:
    """Every step of the graph on show lies inside the frame, and the frame does not scroll
    (measured at one moment: a new analysis redraws the graph)."""
    page.wait_for_timeout(500)  # the frame follows the panel's size
    found = page.locator(f"{VISIBLE_PANEL} .nb2pipe-graph-frame").evaluate(
        "f => { const box = e => { const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; };"
        " return {frame: box(f), overflow: [f.scrollWidth - f.clientWidth,"
        " f.scrollHeight - f.clientHeight],"
        " nodes: [...f.querySelectorAll('rect.nb2pipe-node-box')].map(box)}; }")
    assert found["overflow"][0] <= 1 and found["overflow"][1] <= 1, found["overflow"]
    assert found["nodes"]
    for node in found["nodes"]:
        assert _inside(node, found["frame"], slack=1), (node, found["frame"])


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_fit_shows_the_whole_graph_and_labels_stay_readable(
        browser: Any, notebooks: Jupyter, width: int, height: int) -> None:
    page = open_lab(browser, notebooks, width, height)
    try:
        _open_folder(page, "churn")
        _export_from_browser(page, "churn.ipynb")
        view = page.locator(f"{VISIBLE_PANEL} .nb2pipe-graph-view")
        view.locator("svg.nb2pipe-graph").wait_for()
        assert view.get_attribute("data-zoom") == "fit"
        _graph_fits(page)
        assert _font_px(page) >= 10
        # the data each edge carries is in its tooltip (and on the edge when there is room)
        titles = view.locator("g.nb2pipe-edge > title").all_text_contents()
        assert "load → clean: df" in titles

        page.locator(".jp-BreadCrumbs-home").click()
        _export_from_browser(page, "forty.ipynb")
        page.wait_for_function(f"() => document.querySelector('{VISIBLE_PANEL}')"
                               "?.dataset.path === 'forty.ipynb'")
        view = page.locator(f"{VISIBLE_PANEL} .nb2pipe-graph-view")
        assert view.locator("g.nb2pipe-node").count() == 40
        _graph_fits(page)
        long = view.locator(f'g.nb2pipe-node[data-step="{LONG_NAME}"]')
        assert long.locator(".nb2pipe-node-label").text_content().endswith("…")
        assert long.locator("title").text_content() == f"step {LONG_NAME}: select its first cell"
        _screenshot(page, f"graph-forty-{width}x{height}.png")
    finally:
        page.context.close()


def test_drag_pans_and_ctrl_wheel_zooms_the_graph(browser: Any, notebooks: Jupyter) -> None:
    page = open_lab(browser, notebooks, 1024, 700)
    try:
        _open_folder(page, "churn")
        _export_from_browser(page, "churn.ipynb")
        view = page.locator(f"{VISIBLE_PANEL} .nb2pipe-graph-view")
        frame = view.locator(".nb2pipe-graph-frame")
        frame.scroll_into_view_if_needed()
        level = view.locator(".nb2pipe-zoom-level")
        fit = int(level.inner_text().rstrip("%"))
        box = _box(frame)
        middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.move(*middle)
        page.mouse.wheel(0, 120)  # the wheel alone scrolls the panel, not the zoom
        page.wait_for_timeout(200)
        assert int(level.inner_text().rstrip("%")) == fit
        box = _box(frame)
        middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.move(*middle)
        page.keyboard.down("Control")
        page.mouse.wheel(0, -400)  # Ctrl+wheel, as a touchpad sends a pinch
        page.keyboard.up("Control")
        page.wait_for_function("([v, fit]) => parseInt(document.querySelector(v).textContent)"
                               " > fit", arg=[f"{VISIBLE_PANEL} .nb2pipe-zoom-level", fit])
        assert view.get_attribute("data-zoom") != "fit"
        scrolled = frame.evaluate(
            "f => [f.scrollLeft, f.scrollTop, f.scrollWidth > f.clientWidth]")
        assert scrolled[2], "zoomed in, the graph is larger than its frame"
        box = _box(frame)
        start = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(start[0] - 60, start[1] - 40, steps=6)
        page.mouse.move(start[0] - 120, start[1] - 80, steps=6)
        page.mouse.up()
        moved = frame.evaluate("f => [f.scrollLeft, f.scrollTop]")
        assert moved[0] > scrolled[0] + 60, (scrolled, moved)
        view.locator("button.nb2pipe-zoom", has_text="Fit").click()
        assert view.get_attribute("data-zoom") == "fit"
        _graph_fits(page)
    finally:
        page.context.close()


def _report_heading_times(page: Any) -> dict[str, str]:
    report = page.frame_locator(".nb2pipe-report-tab iframe")
    report.locator("h2#step-evaluate").wait_for(timeout=60_000)
    found = {}
    for heading in report.locator("h2[id^='step-']").all():
        step = str(heading.get_attribute("id"))[len("step-"):]
        time = re.search(r" in (.+)$", heading.inner_text())
        found[step] = time.group(1) if time else ""
    return found


def _show_steps_and_badges(page: Any, panel: Any) -> None:
    """For the screenshots: the panel's steps and graph, the notebook's first step cells."""
    panel.locator(".nb2pipe-steps-section").evaluate("s => s.scrollIntoView({block: 'start'})")
    page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(5).evaluate(
        "c => c.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)


def test_a_run_reads_as_one_in_panel_and_report_and_its_links_stay_inside(
        browser: Any, notebooks: Jupyter) -> None:
    page = open_lab(browser, notebooks, 1400, 900)
    try:
        page.locator(".jp-BreadCrumbs-home").click()
        _open_notebook(page, "small.ipynb")  # a second notebook open
        _open_folder(page, "churn")
        panel = _export_from_browser(page, "churn.ipynb")
        _act(page, panel.locator("button.nb2pipe-run"))
        statuses: list[str] = []
        while not panel.locator(".nb2pipe-run-result[data-state='completed'],"
                                " .nb2pipe-run-result[data-state='failed']").count():
            statuses.append(panel.locator(".nb2pipe-status").inner_text())
            page.wait_for_timeout(400)
        assert _wait_run(page) == "completed", panel.locator(".nb2pipe-result").inner_text()
        # The status line says what the run waits for and counts the seconds; no address.
        assert not [s for s in statuses if "http" in s], statuses
        assert [s for s in statuses if re.search(r"\(\d+ s\)$", s)], statuses

        # The two links, one a line; the report opens in a tab beside the notebooks.
        links = panel.locator(".nb2pipe-run-links li")
        assert links.all_inner_texts() == ["Open the run report", "Open the flow run in Prefect"]
        first, second = _box(links.nth(0)), _box(links.nth(1))
        assert second["y"] >= first["y"] + first["height"]
        for link in links.locator("a").all():  # they look like links
            look = link.evaluate("a => [getComputedStyle(a).textDecorationLine,"
                                 " getComputedStyle(a).color, getComputedStyle("
                                 "a.closest('.nb2pipe-panel')).color]")
            assert look[0] == "underline" and look[1] != look[2], look
        pages = len(page.context.pages)
        panel.locator(".nb2pipe-run-links .nb2pipe-report-link").click()
        _tab(page, "Report: churn.ipynb").wait_for()
        assert _tab(page, "churn.ipynb").count() == 2  # the notebook's and the report's
        same_bar = page.evaluate(
            "() => [...document.querySelectorAll('#jp-main-dock-panel .lm-TabBar')].some("
            "b => b.textContent.includes('Report: churn.ipynb') &&"
            " b.textContent.includes('small.ipynb'))")
        assert same_bar, "the report is a tab of the notebooks' area, not a new column"

        # Each step's duration: the figure the report shows.
        times = _report_heading_times(page)
        for item in panel.locator(".nb2pipe-step").all():
            step = str(item.get_attribute("data-step"))
            state = item.locator(".nb2pipe-step-state").inner_text()
            if item.get_attribute("data-state") == "completed":
                assert state == f"✓ completed ({times[step]})", (step, state, times)

        # The history's report link opens the same tab, inside JupyterLab.
        _tab(page, "churn.ipynb").first.click()
        history = panel.locator(".nb2pipe-history-item").first
        history.locator(".nb2pipe-report-link").click()
        page.locator(".lm-TabBar-tab.lm-mod-current").filter(
            has_text="Report: churn.ipynb").wait_for()
        assert len(page.context.pages) == pages
        assert page.locator(".nb2pipe-report-tab").count() == 1
        _tab(page, "churn.ipynb").first.click()
        _show_steps_and_badges(page, panel)
        _screenshot(page, "panel-1400x900.png")
    finally:
        page.context.close()
    # The same at 1024x700: two notebooks, the run's report in a tab beside them.
    page = open_lab(browser, notebooks, 1024, 700)
    try:
        _open_notebook(page, "small.ipynb")
        _open_folder(page, "churn")
        panel = _export_from_browser(page, "churn.ipynb")
        panel.locator(".nb2pipe-history-item").first.click()
        panel.locator(".nb2pipe-run-result[data-state='completed']").wait_for()
        panel.locator(".nb2pipe-run-links .nb2pipe-report-link").click()
        _tab(page, "Report: churn.ipynb").wait_for()
        _tab(page, "churn.ipynb").first.click()
        widths = _widths(page)
        assert widths["panel"] >= PANEL_MIN and widths["main"] >= MAIN_MIN, widths
        _show_steps_and_badges(page, panel)
        _screenshot(page, "panel-1024x700.png")
    finally:
        page.context.close()


def test_a_badge_opens_its_step_options_and_the_menu_has_a_group_of_its_own(
        page: Any, notebooks: Jupyter) -> None:
    notebook = _open_notebook(page, "fresh.ipynb")
    badge = notebook.locator(".jp-Cell").nth(1).locator(".nb2pipe-badge")
    badge.filter(has_text="step first").wait_for()
    badge.click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-Dialog-header").filter(has_text="Step first: options").wait_for()
    cache = dialog.locator('.nb2pipe-option[data-kind="cache"]')
    assert cache.locator(".nb2pipe-option-name").inner_text() == "cache results"
    assert cache.locator("input").is_checked()
    assert cache.locator(".nb2pipe-option-help").inner_text().startswith("Checked (the default)")
    assert dialog.locator('.nb2pipe-option[data-kind="retries"] input').get_attribute(
        "placeholder") == "a whole number, e.g. 2"
    assert dialog.locator('.nb2pipe-option[data-kind="timeout"] input').get_attribute(
        "placeholder") == "seconds, e.g. 600"
    dialog.locator("button.jp-mod-reject").click()
    dialog.wait_for(state="detached")

    notebook.locator(".jp-Cell").nth(2).locator(".jp-InputPrompt").click(button="right")
    menu = page.locator(".lm-Menu").first
    menu.wait_for()
    items = menu.evaluate(
        "m => [...m.querySelectorAll(':scope > ul > li')].map(li =>"
        " li.classList.contains('lm-mod-hidden') ? null :"
        " li.getAttribute('data-type') === 'separator' ? '---' :"
        " li.querySelector('.lm-Menu-itemLabel').textContent)")
    items = [i for i in items if i is not None]
    step = items.index("Pipeline Step")
    assert items[step + 1] == "Export to Pipeline", items
    assert items[step - 1] == "---" and items[step + 2] == "---", items
    undo = items.index("Undo Cell Operation")
    assert items[undo + 1] == "Redo Cell Operation", items
    page.keyboard.press("Escape")


def test_a_fresh_notebook_exports_without_asking_to_save(page: Any, notebooks: Jupyter) -> None:
    path = notebooks.root / "fresh.ipynb"
    before = path.read_bytes()
    notebook = _open_notebook(page, "fresh.ipynb")
    panel = _panel_of(page, notebook)
    # JupyterLab records the kernel in the metadata once it starts: the notebook is "changed"
    page.locator(".lm-TabBar-tab.jp-mod-dirty").filter(has_text="fresh.ipynb").wait_for(
        timeout=60_000)
    panel.locator("button.nb2pipe-export").click()
    panel.locator(".nb2pipe-export-summary").wait_for()
    assert page.locator(".jp-Dialog").count() == 0
    assert path.read_bytes() == before
    # a change to a cell's code is a change of the pipeline: Export asks
    cell = notebook.locator(".jp-Cell").nth(2)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("End")
    page.keyboard.type(" + 1")
    page.keyboard.press("Escape")
    panel.locator("button.nb2pipe-export").click()
    question = page.locator(".jp-Dialog:has-text('Save the notebook?')")
    question.wait_for()
    question.locator("button.jp-mod-reject").click()
    assert path.read_bytes() == before


def test_notes_are_out_of_the_warning_count(page: Any, notebooks: Jupyter) -> None:
    _open_folder(page, "churn")
    panel = _export_from_browser(page, "churn.ipynb")
    assert panel.locator(".nb2pipe-summary").inner_text().endswith("0 errors, 0 warnings")
    section = panel.locator(".nb2pipe-diagnostics-section")
    assert section.locator(".nb2pipe-section-title").inner_text().lower() == "diagnostics (0)"
    notes = section.locator("details.nb2pipe-notes")
    assert notes.locator("summary").inner_text() == "4 notes"
    assert notes.get_attribute("open") is None
    notes.locator("summary").click()
    assert notes.locator('.nb2pipe-diagnostic[data-code="NB306"]').count() == 4
