"""The `random` module's global generator is the steps' alone in a flow's process: Prefect's
waits and websockets' back-off, drawn in threads of their own, leave its sequence as a
notebook's kernel sees it."""

from __future__ import annotations

import subprocess
import sys

DRAWS = """
import random, threading
import nb2pipe.runtime.tasks  # what flow.py imports
from prefect.utilities.math import clamped_poisson_interval, poisson_interval
from websockets.client import backoff

random.seed(7)
expected = [random.random() for _ in range(4)]
random.seed(7)
got = [random.random()]

def library():  # as Prefect's client and events worker draw, beside the step
    poisson_interval(1.0)
    clamped_poisson_interval(2.0)
    gen = backoff()
    next(gen), next(gen)

thread = threading.Thread(target=library)
thread.start()
thread.join()
got += [random.random() for _ in range(3)]
print(got == expected)
"""


def test_library_draws_in_other_threads_leave_the_steps_sequence_as_it_was() -> None:
    found = subprocess.run([sys.executable, "-c", DRAWS], capture_output=True, text=True,
                           check=True)
    assert found.stdout.strip() == "True"


def test_the_libraries_still_draw_random_waits() -> None:
    code = ("import nb2pipe.runtime.tasks\n"
            "from prefect.utilities.math import poisson_interval\n"
            "print(len({poisson_interval(1.0) for _ in range(20)}))\n")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert int(found.stdout) == 20
