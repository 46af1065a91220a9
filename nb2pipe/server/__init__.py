"""The jupyter_server extension: REST handlers under /nb2pipe/ for the JupyterLab frontend."""

from __future__ import annotations

from typing import Any

from nb2pipe import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nb2pipe.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from nb2pipe.server.handlers import setup_handlers

    setup_handlers(server_app.web_app)
    server_app.log.info("nb2pipe: REST handlers registered under /nb2pipe/")
