"""The process that runs a flow for `nb2pipe run` (see supervise.py), in a process group of its
own: `python -m nb2pipe.execute.child RUN.json RESULT.json KEY`.

It runs the project with the options in RUN.json, its tasks writing step events to the channel
in NB2PIPE_PROGRESS, and writes how the run ended to RESULT.json. Ctrl-C in the terminal reaches
the supervisor, which sends SIGINT here: the flow run is marked cancelled (when the Prefect API
answers within a second) and the process ends at once, without tracebacks.

KEY is a pipe from the supervisor holding the key that signs the step events (see
runtime/progress.py), read and closed before anything else.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType
from uuid import UUID

from nb2pipe.execute import prefect_api, startup
from nb2pipe.execute.engine import RunOptions, run_project
from nb2pipe.runtime.progress import emit

_EXIT = os._exit  # before a step's os._exit is watched (runtime/progress.py)


def main(argv: list[str]) -> int:
    spec, outcome, key_pipe = Path(argv[0]), Path(argv[1]), int(argv[2])
    key = _first_line(key_pipe)
    os.close(key_pipe)
    document = json.loads(spec.read_text(encoding="utf-8"))
    signal.signal(signal.SIGINT, _interrupted)
    try:
        startup.import_prefect()
        with prefect_api.flow_run_links(_flow_run):
            result = run_project(Path(document["project"]), RunOptions(**document["options"]),
                                 channel=os.environ["NB2PIPE_PROGRESS"], key=key)
    except Exception as exc:  # flow.py does not import, Prefect cannot start, ...
        if os.environ.get("NB2PIPE_VERBOSE"):
            traceback.print_exc()
        outcome.write_text(json.dumps({"ok": False, "error": f"the flow could not run: "
                                       f"{type(exc).__name__}: {exc}"}), encoding="utf-8")
        return 1
    outcome.write_text(json.dumps({"ok": result.ok, "seconds": result.seconds,
                                   "startup": result.startup, "error": result.error}),
                       encoding="utf-8")
    emit({"event": "ended"})  # from here on, the supervisor stops a process slow to end
    startup.leave()
    return 0 if result.ok else 1


def _first_line(fd: int) -> str:
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        line += chunk
    return line.decode().strip()


def _flow_run(url: str) -> None:
    """The flow run's address in Prefect's UI, for the supervisor to print."""
    emit({"event": "phase", "phase": "flow_run", "message": f"flow run: {url}", "url": url})


def _interrupted(signum: int, frame: FrameType | None) -> None:
    context = sys.modules.get("prefect.context")
    run = context.FlowRunContext.get() if context is not None else None
    if run is not None and run.flow_run is not None:
        cancelling = threading.Thread(target=_cancel, args=(run.flow_run.id,), daemon=True)
        cancelling.start()
        cancelling.join(1.0)
    _EXIT(130)


def _cancel(flow_run: UUID) -> None:
    try:
        from prefect import get_client
        from prefect.states import Cancelled

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run, Cancelled(message="interrupted"), force=True)
    except Exception:  # the API may be gone already: the run ends anyway
        return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
