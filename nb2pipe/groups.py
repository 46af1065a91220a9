"""Process groups, as a run, a local Prefect server or a worker lives in one: whether one still
runs, a signal to all of it, and ending it (SIGTERM, then SIGKILL), waiting or awaiting.

One policy for a group that cannot be signalled: ProcessLookupError means it is gone;
PermissionError means its id now belongs to another user's processes (ours are gone and the
id was reused), so it is not ours: it is never signalled, waited for or counted as running.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

POLL = 0.05  # seconds between two looks at whether a group is gone
KILL_WAIT = 5.0  # after SIGKILL, at most this long for the kernel to remove the processes


def signal_group(group: int, number: int) -> bool:
    """Send signal `number` to every process of the group; False when it has none of ours."""
    try:
        os.killpg(group, number)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(group: int) -> None:
    """SIGKILL to every process of the group, without waiting."""
    signal_group(group, signal.SIGKILL)


def group_alive(group: int) -> bool:
    """Whether a process of ours in the group is still running (zombies waiting to be reaped,
    which no longer run, do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return signal_group(group, 0)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if (len(fields) > 2 and fields[2] == str(group) and fields[0] not in ("Z", "X")
                and _ours(int(entry.name))):
            return True
    return False


def _ours(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _terminate(group: int) -> None:
    signal_group(group, signal.SIGTERM)
    signal_group(group, signal.SIGCONT)  # a stopped process acts on its SIGTERM only once woken


def end_group(group: int, grace: float, kill_wait: float = KILL_WAIT) -> bool:
    """SIGTERM to every process of the group; SIGKILL to what is left after `grace` seconds.
    True once the group is gone, False if something of it still runs `kill_wait` s later."""
    for pause in _ending(group, grace, kill_wait):
        time.sleep(pause)
    return not group_alive(group)


async def end_group_async(group: int, grace: float, kill_wait: float = KILL_WAIT) -> bool:
    """`end_group` for an event loop: the waits are awaited, never slept."""
    for pause in _ending(group, grace, kill_wait):
        await asyncio.sleep(pause)
    return not group_alive(group)


def _ending(group: int, grace: float, kill_wait: float) -> Iterator[float]:
    """The signals that end a group, sent in turn; yields each pause to wait (slept or
    awaited by the caller) and stops once the group is gone or the last wait is over."""
    for send, wait in ((_terminate, grace), (kill_group, kill_wait)):
        if not group_alive(group):
            return
        send(group)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            yield POLL
            if not group_alive(group):
                return
