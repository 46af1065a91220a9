"""The run's report holds the notebook's own output, scripts included: in Chromium, a script in
an output can neither read the page's cookies nor call the Jupyter API, whether the report is
shown in JupyterLab's report tab (an iframe with sandbox="") or opened at its own address (a
sandboxed page of origin `null`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from lab import Jupyter, code, markdown, running_jupyter, write_notebook
from test_lab import _act, _open_notebook, _panel_of, _wait_run

pytestmark = pytest.mark.integration

NOT_RUN = "the probe did not run"
# What a hostile output would try: read the cookies (the page's, and its parent's), and call
# the Contents API with the user's credentials. It writes what it got into the page.
PROBE = f"""<pre id="nb2pipe-probe">{NOT_RUN}</pre>
<script>
(async () => {{
  const found = ["ran"];
  try {{ found.push("cookie=" + document.cookie); }}
  catch (e) {{ found.push("cookie-error=" + e.name); }}
  try {{ found.push("parent-cookie=" + window.parent.document.cookie); }}
  catch (e) {{ found.push("parent-error=" + e.name); }}
  try {{
    const reply = await fetch("/api/contents", {{credentials: "include"}});
    found.push("contents=" + reply.status + " " + (await reply.text()).slice(0, 500));
  }} catch (e) {{ found.push("contents-error=" + e.name); }}
  document.getElementById("nb2pipe-probe").textContent = found.join("\\n");
}})();
</script>"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, prefect: str) -> Iterator[Jupyter]:
    """JupyterLab serving one notebook whose step shows the probe as an HTML output."""
    root = tmp_path_factory.mktemp("sandbox-root")
    write_notebook(root / "probe.ipynb", [
        markdown("# A step with a script in its output"),
        code("from IPython.display import HTML"),
        code(f"probe = {PROBE!r}\nshown = True\nHTML(probe)", "step:show"),
        code("print('after', shown)", "step:after"),
    ])
    with running_jupyter(root, tmp_path_factory.mktemp("sandbox-state"), app="lab",
                         prefect=prefect) as jupyter:
        yield jupyter


def _leaks(found: str, page: Any, lab: Jupyter) -> list[str]:
    """What of the user's credentials or files the probe got hold of."""
    secrets = [c["value"] for c in page.context.cookies() if c["value"]] + [lab.token]
    leaked = [s for s in secrets if s in found]
    if "probe.ipynb" in found or "contents=200" in found:
        leaked.append("the Contents API answered")
    return leaked


def test_a_script_in_the_report_reaches_no_cookie_and_no_api(page: Any, lab: Jupyter) -> None:
    assert page.context.cookies(), "JupyterLab's page has cookies to steal"
    notebook = _open_notebook(page, "probe.ipynb")
    panel = _panel_of(page, notebook)
    _act(page, panel.locator("button.nb2pipe-run"))
    assert _wait_run(page) == "completed", panel.locator(".nb2pipe-result").inner_text()

    # In JupyterLab's report tab: the frame runs no script at all.
    panel.locator(".nb2pipe-run-links .nb2pipe-report-link").click()
    frame = page.frame_locator(".nb2pipe-report-tab iframe")
    probe = frame.locator("#nb2pipe-probe")
    probe.wait_for(timeout=60_000)
    assert page.locator(".nb2pipe-report-tab iframe").get_attribute("sandbox") == ""
    page.wait_for_timeout(2000)  # time for a script that was allowed to run
    in_tab = probe.inner_text()
    assert in_tab == NOT_RUN and not _leaks(in_tab, page, lab), in_tab

    # At its own address, in the same browser (logged in): scripts run, as nobody.
    status, runs = lab.get("nb2pipe/runs", path="probe.ipynb")
    assert status == 200, runs
    direct = page.context.new_page()
    direct.goto(f"{lab.url}nb2pipe/runs/{runs['runs'][0]['id']}/report")
    direct.wait_for_function(
        "() => (document.getElementById('nb2pipe-probe')?.textContent || '')"
        ".includes('contents')", timeout=60_000)
    found = direct.locator("#nb2pipe-probe").inner_text()
    assert found.startswith("ran") and "cookie-error=SecurityError" in found, found
    assert direct.evaluate("() => window.origin") == "null"
    assert not _leaks(found, direct, lab), found
    direct.close()
