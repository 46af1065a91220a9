"""The project this package sits in: its pipeline.json, where steps run, what a step's code is.

In a generated project this package is `nb2pipe_runtime/`, beside steps.py, flow.py and
pipeline.json; everything here is read from those files, so the project runs without nb2pipe.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from . import files
from .manifest import Manifest, StepEntry, load

PROJECT = Path(__file__).resolve().parent.parent


@functools.cache
def manifest() -> Manifest:
    """This project's pipeline.json: steps, parameters, the line map back to the notebook."""
    return load(PROJECT)


def step(name: str) -> StepEntry:
    return manifest().step(name)


def readers(name: str) -> list[str]:
    """The steps that read values of step `name`."""
    return sorted({entry.name for entry in manifest().steps
                   if any(i.source == name for i in entry.inputs)})


def workdir() -> Path:
    """Where steps run: the notebook's folder (NB2PIPE_WORKDIR overrides), like papermill --cwd,
    so the notebook's relative paths work."""
    configured = os.environ.get("NB2PIPE_WORKDIR")
    return Path(configured or PROJECT / manifest().workdir).resolve()


def notebook(manifest: Manifest) -> Path:
    """The notebook the project was converted from: NB2PIPE_NOTEBOOK, else the one the
    manifest names, beside the project."""
    return Path(os.environ.get("NB2PIPE_NOTEBOOK") or PROJECT / manifest.notebook)


def code_hash(name: str) -> str:
    """What the step's code is, for the cache: its own hash from pipeline.json while steps.py is
    as generated; once steps.py is edited by hand, the hash of the whole file (an edit anywhere
    runs every step again)."""
    written = _steps_file_hash()
    if manifest().files.get("steps.py") == written:
        return step(name).code_sha256
    return f"steps.py:{written}"


@functools.cache
def _steps_file_hash() -> str:
    return hashlib.sha256(files.read_bytes(PROJECT / "steps.py")).hexdigest()


def memory_text(amount: float) -> str:
    """Bytes as a memory tag spells them, exactly: 4e9 -> '4GB', 2**29 -> '512MiB'."""
    for unit, factor in (("TB", 1000**4), ("TiB", 1024**4), ("GB", 1000**3), ("GiB", 1024**3),
                         ("MB", 1000**2), ("MiB", 1024**2), ("KB", 1000), ("KiB", 1024)):
        if amount >= factor and amount % factor == 0:
            return f"{int(amount // factor)}{unit}"
    return f"{int(amount)}B" if float(amount).is_integer() else f"{amount}B"


def resource_tags(needs: dict[str, float]) -> str:
    """A step's resource needs as its tags say them: `cpu:4, memory:8GB, gpu:1`."""
    spelled = [f"{name.lower()}:" + (memory_text(amount) if name == "MEMORY" else
                                     f"{int(amount)}" if float(amount).is_integer()
                                     else f"{amount}")
               for name, amount in sorted(needs.items())]
    return ", ".join(spelled)
