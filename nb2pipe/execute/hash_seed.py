"""The string hash seed `nb2pipe verify` runs the notebook and the pipeline under.

Python salts `hash()` of str and bytes with a key chosen when the interpreter starts
(PYTHONHASHSEED: unset or "random" is a fresh key in every process, an integer a fixed one). The
order of a set or frozenset of strings follows those hashes, and so does every value made from
that order: `list(A)`, `itertools.product(A, repeat=2)`, a dict built from the set. Such a value
differs between two processes, and in a notebook the kernel is one process while each pipeline
run is another. verify therefore fixes the seeds: the pipeline's process runs under a seed it
knows, the first notebook run under that same seed (a set built the same way iterates the same
way: the pipeline computes that run's order) and the second under another (a value that follows
the seed usually differs there, and is then left out as differing between the notebook's runs).

`nb2pipe run` fixes nothing: the order of a set of strings is not part of what a notebook
computes, and a pipeline that relied on one seed would still see another order in any process
that starts without it (a worker, a deployment) or whenever a set crosses a step boundary, where
it is rebuilt from its elements and may lay them out otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

VARIABLE = "PYTHONHASHSEED"
# The seed `nb2pipe verify` restarts itself under when it was started without one. Any fixed
# seed serves: siphash under another key is unrelated, whatever the two seeds' distance.
DEFAULT = 1
_LARGEST = 4294967295  # what Python accepts: 0 (hashing unsalted) to 2**32 - 1


def fixed_seed(environ: Mapping[str, str]) -> int | None:
    """The seed a Python started with `environ` hashes strings under; None when that is random
    (unset, "random", or a value Python would refuse)."""
    value = environ.get(VARIABLE, "")
    if not value.isdigit() or int(value) > _LARGEST:
        return None
    return int(value)


def this_process() -> int | None:
    """The seed this process hashes strings under, when it is fixed. Read from the environment
    it started with: Python reads PYTHONHASHSEED once, at start-up, and nothing here changes it
    afterwards. (`sys.flags` shows one case itself: seed 0, strings hashed unsalted.)"""
    seed = fixed_seed(os.environ)
    if seed is None and not sys.flags.hash_randomization:
        return 0
    return seed


def notebook_seeds(pipeline: int | None) -> tuple[int, int]:
    """The seeds of verify's two notebook runs: the pipeline's first, then another. (When the
    pipeline's seed is random there is none to match; two fixed seeds still tell the runs
    apart.) No pair of seeds orders every small set differently, since whether two keys order
    two strings alike is a coin toss for each pair of strings; what makes verify sound is the
    first run matching the pipeline, the second only catches what that cannot cover."""
    first = DEFAULT if pipeline is None else pipeline
    return first, (first + 1) % (_LARGEST + 1)


def restart_environment(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The environment to start this command again in, so that its seed is fixed (None: it
    is already, or this system cannot replace a process by another)."""
    if fixed_seed(environ) is not None or os.name != "posix":
        return None
    return {**environ, VARIABLE: str(DEFAULT)}
