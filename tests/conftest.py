"""Test fixtures and options: --update-golden, a Prefect test server, a private PREFECT_HOME."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Prefect keeps its state here, not in the developer's home (set before Prefect is imported).
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="nb2pipe-test-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Results and cached values of flows the tests run stay out of the user's cache.
os.environ.setdefault("NB2PIPE_CACHE_DIR", tempfile.mkdtemp(prefix="nb2pipe-test-cache-"))
# So does the storage key that signs their records (made on first use).
os.environ.setdefault("NB2PIPE_CONFIG_DIR", tempfile.mkdtemp(prefix="nb2pipe-test-config-"))



def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the golden files from the current output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local Prefect server `nb2pipe run` starts, in a state folder of the session's own,
    started once for the whole session and stopped at its end. Its API URL is the session's
    PREFECT_API_URL (environment and Prefect settings): every `nb2pipe run` and `verify`, in
    this process or in a subprocess (a Jupyter server's runs too), uses it instead of
    starting a server of its own. NB2PIPE_TEST_SERVER_DIR names the folder, so that a script
    can stop the server even when the session is killed."""
    from nb2pipe.execute import local_server, prefect_api

    configured = os.environ.get("NB2PIPE_TEST_SERVER_DIR")
    root = Path(configured) if configured else tmp_path_factory.mktemp("prefect-server")
    try:
        url = local_server.ensure_running(root=root)
        with prefect_api.pointed_at(url):
            yield url
    finally:
        local_server.stop(root=root)


@pytest.fixture(scope="session", autouse=True)
def _integration_prefect_api(request: pytest.FixtureRequest) -> None:
    """The session's Prefect server, started only when integration tests were selected."""
    if any(item.get_closest_marker("integration") for item in request.session.items):
        request.getfixturevalue("prefect_server")


@pytest.fixture(scope="session")
def prefect_harness(prefect_server: str) -> None:
    """A Prefect API for runs in this process: the session's server."""
