"""A real `jupyter lab` on loopback serving a temporary root, and Debian's Chromium driven by
Playwright. Screenshots go to test-artifacts/ (a failing test leaves one of its page too)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab import (
    Jupyter,
    code,
    copy_churn,
    failing_notebook,
    markdown,
    running_jupyter,
    sleeping_notebook,
    small_pipeline_notebook,
    twelve_step_notebook,
    undefined_name_notebook,
    untagged_notebook,
    write_notebook,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("NB2PIPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


SLEEP_MARKER = "nb2pipe-browser-sleeper"


@pytest.fixture(scope="session")
def prefect(prefect_server: str) -> str:
    """The session's Prefect server, for the runs the test servers start."""
    return prefect_server


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, prefect: str) -> Iterator[Jupyter]:
    root = tmp_path_factory.mktemp("lab-root")
    copy_churn(root)
    undefined_name_notebook(root / "broken.ipynb")
    small_pipeline_notebook(root / "small.ipynb")
    twelve_step_notebook(root / "twelve.ipynb")
    untagged_notebook(root / "untagged.ipynb")
    failing_notebook(root / "failing.ipynb")
    sleeping_notebook(root / "sleeper.ipynb", SLEEP_MARKER)
    sleeping_notebook(root / "sleeper2.ipynb", SLEEP_MARKER + "-2")
    write_notebook(root / "editor.ipynb", [
        markdown("# Step editor"),
        code("a = 1", "step:first"),
        code("b = a + 1"),
        code("c = b * 2", "metrics"),
    ])
    with running_jupyter(root, tmp_path_factory.mktemp("lab-state"), app="lab",
                         prefect=prefect) as jupyter:
        yield jupyter


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for this module's tests. Playwright's sync API leaves its event loop running in
    this thread while it is started, so it is stopped when the module ends: the tests that
    follow run where no loop runs, as a user's process would."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium "
                    "(or set NB2PIPE_CHROMIUM to a Chromium binary)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_lab(browser: Any, jupyter: Jupyter, width: int = 1500, height: int = 950) -> Any:
    """JupyterLab loaded and idle in a fresh browser context of that size."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{jupyter.url}lab?token={jupyter.token}&reset")
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    page.wait_for_selector(".jp-DirListing-item", timeout=60_000)
    return page


@pytest.fixture
def page(browser: Any, lab: Jupyter, request: pytest.FixtureRequest) -> Iterator[Any]:
    """JupyterLab loaded and idle, in a fresh browser context."""
    page = open_lab(browser, lab)
    yield page
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
    page.context.close()
