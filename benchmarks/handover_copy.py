"""Benchmark: the copy a step gets of a value it changes while another step reads it.

`copied` (nb2pipe.runtime.handoff) against `copy.deepcopy`, the copy it used before, on a
frame of ROWS x 8 floats with one column added in place (two blocks, as after `df.insert`),
an array, and a list of small frames; interleaved, in one process, the best of `--repeat`.
Prints seconds and the ratio copied / deepcopy; asserts nothing.

    python benchmarks/handover_copy.py [--mb 256] [--repeat 5]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from nb2pipe.runtime.handoff import copied


def values(megabytes: int) -> dict[str, Any]:
    rows = megabytes * (1 << 20) // 64
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((rows, 8)), columns=[f"c{i}" for i in range(8)])
    frame["extra"] = frame["c0"] * 2  # a block of its own, as `add` leaves it
    return {"frame": frame, "array": rng.random(rows * 8),
            "small frames": [pd.DataFrame({"a": np.arange(100.0)}) for _ in range(2000)]}


def timed(function: Callable[[], Any], times: list[float]) -> None:
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="size of the frame and the array")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'value':<14} {'deepcopy':>10} {'copied':>10} {'ratio':>7}")
    for name, value in values(args.mb).items():
        old: list[float] = []
        new: list[float] = []
        for _ in range(args.repeat):  # interleaved: a noisy neighbour slows both
            timed(lambda v=value: copy.deepcopy(v), old)
            timed(lambda v=value: copied(v), new)
        print(f"{name:<14} {min(old):>9.3f}s {min(new):>9.3f}s {min(new) / min(old):>6.2f}x")


if __name__ == "__main__":
    main()
