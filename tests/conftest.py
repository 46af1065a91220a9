"""Test fixtures and options: --update-golden, a Prefect test server, a private PREFECT_HOME."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

# Prefect keeps its state here, not in the developer's home (set before Prefect is imported).
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="nb2pipe-test-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Results and cached values of flows the tests run stay out of the user's cache.
os.environ.setdefault("NB2PIPE_CACHE_DIR", tempfile.mkdtemp(prefix="nb2pipe-test-cache-"))



def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the golden files from the current output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the session (starting one costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):  # a busy machine starts it slowly
        yield
