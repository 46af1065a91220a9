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
    markdown,
    running_jupyter,
    small_pipeline_notebook,
    undefined_name_notebook,
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


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jupyter]:
    root = tmp_path_factory.mktemp("lab-root")
    copy_churn(root)
    undefined_name_notebook(root / "broken.ipynb")
    small_pipeline_notebook(root / "small.ipynb")
    write_notebook(root / "editor.ipynb", [
        markdown("# Step editor"),
        code("a = 1", "step:first"),
        code("b = a + 1"),
        code("c = b * 2", "metrics"),
    ])
    with running_jupyter(root, tmp_path_factory.mktemp("lab-state"), app="lab") as jupyter:
        yield jupyter


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium "
                    "(or set NB2PIPE_CHROMIUM to a Chromium binary)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, lab: Jupyter, request: pytest.FixtureRequest) -> Iterator[Any]:
    """JupyterLab loaded and idle, in a fresh browser context."""
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{lab.url}lab?token={lab.token}&reset")
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    page.wait_for_selector(".jp-DirListing-item", timeout=60_000)
    yield page
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
    context.close()
