"""The jupyter_server extension app: the handlers, the run store and the analysis workers.

An extension app rather than a bare module for its shutdown hook: when the server stops, every
pipeline run it started is stopped together with everything the run started.
"""

from __future__ import annotations

from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode


class Nb2pipeExtension(ExtensionApp):
    name = "nb2pipe"
    load_other_extensions = True

    runs_dir = Unicode(
        "", config=True,
        help="Folder of the run history (default: nb2pipe/runs in the Jupyter data folder)",
    )

    def initialize_handlers(self) -> None:
        from nb2pipe.server.handlers import setup_handlers
        from nb2pipe.server.runs import RunStore
        from nb2pipe.server.work import Workers

        assert self.serverapp is not None
        folder = Path(self.runs_dir or Path(self.data_dir) / "nb2pipe" / "runs")
        self.runs = RunStore(folder)
        self.workers = Workers()
        setup_handlers(self.serverapp.web_app, self.runs, self.workers)
        self.log.info("nb2pipe: REST handlers registered under /nb2pipe/; run history in %s",
                      folder)

    def current_activity(self) -> list[str] | None:
        """Active runs keep an idle-culling server alive."""
        active = [r.id for r in self.runs.runs.values() if not r.finished]
        return active or None

    async def stop_extension(self) -> None:
        self.log.info("nb2pipe: stopping runs and analysis workers")
        await self.runs.stop_all()
        self.workers.close()
