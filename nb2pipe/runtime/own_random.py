"""Libraries of the flow's process that draw from the `random` module's global generator get
one of their own.

A step that seeds `random` and then draws from it must see the sequence the notebook's kernel
sees. In the flow's process, Prefect draws from that same generator in threads of its own while
the step runs: the jitter of its client's retries and of its waits (`poisson_interval`), and
websockets' reconnection back-off. Each draw there shifts the step's sequence, so a notebook
that seeds and draws for a while computed other values through the pipeline, varying from run
to run. Those modules' `random` is a private `random.Random` here, seeded from the operating
system as the module's own generator is: their waits stay random, and the global generator is
the notebook's alone.
"""

from __future__ import annotations

import importlib
import random
import sys

# Modules that call `random.<function>` from threads other than a step's, on the name
# `random` bound at their top level.
LIBRARY_DRAWS = ("prefect.utilities.math", "websockets.client")


def separate() -> None:
    """Give each module of LIBRARY_DRAWS a generator of its own (once per process)."""
    for name in LIBRARY_DRAWS:
        try:
            module = sys.modules.get(name) or importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "random", None) is random:
            module.random = random.Random()  # type: ignore[attr-defined]
