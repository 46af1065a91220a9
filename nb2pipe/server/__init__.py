"""The jupyter_server extension: REST handlers under /nb2pipe/ for the JupyterLab frontend
(the app is in nb2pipe.server.app; importing this package stays light for the workers)."""

from __future__ import annotations

from typing import Any

from nb2pipe import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from nb2pipe.server.app import Nb2pipeExtension

    return [{"module": "nb2pipe.server", "app": Nb2pipeExtension}]
