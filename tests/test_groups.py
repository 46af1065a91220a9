"""Process groups (nb2pipe/groups.py): ended whole, stopped processes woken, zombies not counted,
one policy for a group that is not ours, and no other module signalling groups by itself."""

from __future__ import annotations

import ast
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nb2pipe import groups

PACKAGE = Path(__file__).parent.parent / "nb2pipe"

IGNORES_SIGTERM = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a second process
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts, each in a group of its own; whatever is left is killed."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        groups.kill_group(process.pid)
        process.wait()


def start(started: list[subprocess.Popen[bytes]], code: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               start_new_session=True)
    started.append(process)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    return process


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace(
        started: list[subprocess.Popen[bytes]]) -> None:
    process = start(started, IGNORES_SIGTERM)
    assert groups.group_alive(process.pid)
    began = time.monotonic()
    assert groups.end_group(process.pid, grace=0.5)
    assert time.monotonic() - began >= 0.5
    assert process.wait(5) == -signal.SIGKILL
    assert not groups.group_alive(process.pid)  # the second process went with it


def test_a_stopped_process_is_woken_to_act_on_its_sigterm(
        started: list[subprocess.Popen[bytes]]) -> None:
    process = start(started, "import time; print('ready', flush=True); time.sleep(60)")
    os.kill(process.pid, signal.SIGSTOP)
    assert groups.end_group(process.pid, grace=10)
    assert process.wait(5) == -signal.SIGTERM  # not SIGKILL after the grace


def test_the_async_variant_ends_the_group_while_the_loop_runs(
        started: list[subprocess.Popen[bytes]]) -> None:
    process = start(started, IGNORES_SIGTERM)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    async def main() -> bool:
        ticking = asyncio.create_task(tick())
        try:
            return await groups.end_group_async(process.pid, grace=0.5)
        finally:
            ticking.cancel()

    assert asyncio.run(main())
    assert process.wait(5) == -signal.SIGKILL
    assert ticks >= 5  # the grace was awaited, not slept


def test_a_zombie_is_not_a_running_process(started: list[subprocess.Popen[bytes]]) -> None:
    process = start(started, "print('ready', flush=True)")
    deadline = time.monotonic() + 10
    while groups.group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not groups.group_alive(process.pid)
    assert process.returncode is None  # not reaped yet: a zombie
    assert groups.end_group(process.pid, grace=5)


def test_a_group_that_is_not_ours_is_neither_signalled_nor_waited_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(pid: int, number: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "killpg", refused)
    monkeypatch.setattr(os, "kill", refused)
    group = os.getpgrp()  # really alive: only the permission is refused
    assert not groups.signal_group(group, signal.SIGTERM)
    assert not groups.group_alive(group)
    began = time.monotonic()
    assert groups.end_group(group, grace=30)
    assert time.monotonic() - began < 5


def test_a_group_that_outlives_sigkill_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    monkeypatch.setattr(groups, "group_alive", lambda group: True)
    monkeypatch.setattr(groups, "signal_group", lambda group, number: sent.append(number))
    assert not groups.end_group(12345, grace=0.1, kill_wait=0.1)
    assert sent == [signal.SIGTERM, signal.SIGCONT, signal.SIGKILL]


def test_only_the_groups_module_signals_process_groups() -> None:
    callers = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                     if path.name != "groups.py" and any(
                         isinstance(node, ast.Attribute) and node.attr == "killpg"
                         for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))))
    assert callers == []
