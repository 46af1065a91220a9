"""The local Prefect server's own UI in Chromium: the page of a flow run that `nb2pipe run`
printed (and the JupyterLab panel links to) shows the run and its task runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from lab import small_pipeline_notebook

STEPS = ("load", "scale", "report")


@pytest.mark.integration
def test_the_flow_run_page_lists_its_task_runs(browser: Any, prefect: str,
                                               tmp_path: Path) -> None:
    # The session's server is the local server nb2pipe starts (tests/conftest.py), on a free
    # port: its UI must ask that port's API, not Prefect's default 4200.
    base = prefect.removesuffix("/api")
    with urllib.request.urlopen(f"{base}/ui-settings", timeout=30) as reply:
        assert json.loads(reply.read())["api_url"] == prefect

    notebook = small_pipeline_notebook(tmp_path / "small.ipynb")
    result = subprocess.run([sys.executable, "-m", "nb2pipe", "run", str(notebook), "--json"],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PREFECT_API_URL": prefect})
    assert result.returncode == 0, result.stderr[-3000:]
    url = json.loads(result.stdout)["flow_run_url"]
    assert url.startswith(f"{base}/runs/flow-run/")

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        page.goto(url)
        page.get_by_text("Task Runs", exact=True).first.click()
        page.get_by_text(f"{len(STEPS)} Task runs").first.wait_for()
        listed = page.inner_text("body")
        for step in STEPS:
            assert page.get_by_text(step, exact=True).count() >= 1, listed
        assert "Completed" in listed
        assert "Can't connect" not in listed and "4200" not in listed, listed
    finally:
        context.close()
