"""The process that runs a flow for `nb2pipe run` (see supervise.py), in a process group of its
own: `python -m nb2pipe.execute.child RUN.json RESULT.json LIFELINE`.

It runs the project with the options in RUN.json, its tasks writing step events to the channel
in NB2PIPE_PROGRESS, and writes how the run ended to RESULT.json. Ctrl-C in the terminal reaches
the supervisor, which sends SIGINT here: the flow run is marked cancelled (when the Prefect API
answers within a second) and the process ends at once, without tracebacks.

LIFELINE is a pipe from the supervisor: its first line is the key that signs the step events;
then it stays open for as long as the supervisor lives. A watchdog forked here before anything
else waits for its end: a supervisor that was killed (`kill -9`) closes it without stopping the
run, and the watchdog then stops every process of the run and removes the run's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from uuid import UUID

from nb2pipe.execute import prefect_api, startup
from nb2pipe.execute.engine import RunOptions, run_project
from nb2pipe.execute.supervise import MARK, stop_leftovers
from nb2pipe.groups import group_alive
from nb2pipe.runtime.progress import emit

_EXIT = os._exit  # before a step's os._exit is watched (runtime/progress.py)
WATCHDOG_WAIT = 10.0  # seconds the watchdog waits for the killed processes to be gone


def main(argv: list[str]) -> int:
    spec, outcome, lifeline = Path(argv[0]), Path(argv[1]), int(argv[2])
    key = _first_line(lifeline)
    _watchdog(lifeline, spec.parent)
    os.close(lifeline)
    document = json.loads(spec.read_text(encoding="utf-8"))
    signal.signal(signal.SIGINT, _interrupted)
    try:
        startup.import_prefect()
        with prefect_api.flow_run_links(_flow_run):
            result = run_project(Path(document["project"]), RunOptions(**document["options"]),
                                 channel=os.environ["NB2PIPE_PROGRESS"], key=key,
                                 connect=prefect_api.awaited)
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


def _watchdog(lifeline: int, folder: Path) -> None:
    """Fork a process that waits for the lifeline to end; if the run is still there then, its
    supervisor was killed: stop every process of the run, remove its folder. (A supervisor
    that ends normally stops the watchdog first, with the rest of the run.) Called while this
    process has one thread, so forking is safe."""
    group, mark = os.getpgrp(), os.environ.get(MARK, "")
    if os.fork():
        return
    try:
        os.setsid()  # out of the run's group: what stops the group does not stop this
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # hold none of the run's pipes open (the server reads one)
            os.dup2(null, fd)
        os.closerange(3, lifeline)
        os.closerange(lifeline + 1, os.sysconf("SC_OPEN_MAX"))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while os.read(lifeline, 1024):
            pass
        stop_leftovers(group, mark)
        deadline = time.monotonic() + WATCHDOG_WAIT
        while time.monotonic() < deadline and group_alive(group):
            time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        _EXIT(0)


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
