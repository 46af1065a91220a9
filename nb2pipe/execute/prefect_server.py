"""The local Prefect server's process (see local_server.py): `prefect server start`, run as a
plain Prefect install runs it.

    python -m nb2pipe.execute.prefect_server --host 127.0.0.1 --port PORT

(`server_command`, with the environment `server_environment` gives it.)

jsonschema, which Prefect imports, builds a grammar of IRIs with lark at import time when the
optional package rfc3987-syntax is installed: 1.3-1.5 s of CPU, a quarter of the server's
start-up. Prefect does not depend on it (JupyterLab's dependencies install it), and the
server does not need it: it only checks the "iri" and "iri-reference" formats of JSON
schemas, which Prefect's schemas never use (pydantic writes "uri"). So its import fails here,
as it does wherever Prefect is installed alone, and the rest is Prefect's own command.
"""

from __future__ import annotations

import os
import runpy
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

from nb2pipe.execute.startup import LEFT_OUT

HOST = "127.0.0.1"  # the local server listens here only
START_UP = "prefect.server.api.server"  # its block registration asks for the collections


def _collections_left_out() -> None:
    """The block registration at the server's start-up gets no collection; every other
    caller (a block class looked up by key, a worker) imports them as before."""
    import prefect.plugins

    load = getattr(prefect.plugins, "load_prefect_collections", None)
    if load is None:
        return

    def left_out_at_start_up(reload: bool = False) -> dict[str, ModuleType | Exception]:
        if sys._getframe(1).f_globals.get("__name__") == START_UP:
            return {}
        loaded: dict[str, ModuleType | Exception] = load(reload=reload)
        return loaded

    prefect.plugins.load_prefect_collections = left_out_at_start_up


def server_command(port: int) -> list[str]:
    """The command that starts this module's server on `port`."""
    return [sys.executable, "-m", "nb2pipe.execute.prefect_server", "--host", HOST,
            "--port", str(port)]


def server_environment(home: Path, url: str) -> dict[str, str]:
    """The local server's environment: its own settings only. The user's PREFECT_* variables
    describe their servers, not this one, and its working directory holds no prefect.toml or
    .env for Prefect to read. Nor is it part of the run that started it (whose leftovers are
    stopped by its mark), nor of the fixed string hash seed `nb2pipe verify` runs under: a
    server hashes what its clients send, and outlives the verify."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k not in ("NB2PIPE_RUN_MARK", "PYTHONHASHSEED")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_LOGGING_LEVEL="WARNING",
               # The UI asks its API here (Prefect's default is port 4200, not this one).
               PREFECT_SERVER_UI_API_URL=f"{url}/api")
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])



def answers(api_url: str, timeout: float = 3.0) -> bool:
    """The server at `api_url` answers its health check with Prefect's own reply."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as reply:
            return bool(reply.status == 200 and reply.read().strip() == b"true")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def main(argv: list[str]) -> None:
    sys.modules[LEFT_OUT] = None  # type: ignore[assignment]  # its import fails, as in startup.py
    _collections_left_out()
    sys.argv = ["prefect", "server", "start", *argv]
    runpy.run_module("prefect", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
