"""Plan -> requirements.txt: every third-party import mapped to its distribution, pinned.

The import name is not the distribution name (`sklearn` is `scikit-learn`): the installed
environment says which distribution provides each top-level module; a table covers packages that
are not installed where the conversion runs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from nb2pipe.escape import comment, requirement_line

# Import name -> distribution, for packages that are not installed here.
KNOWN_DISTRIBUTIONS = {
    "sklearn": "scikit-learn", "cv2": "opencv-python", "PIL": "pillow", "yaml": "pyyaml",
    "bs4": "beautifulsoup4", "skimage": "scikit-image", "dateutil": "python-dateutil",
    "dotenv": "python-dotenv", "Crypto": "pycryptodome", "OpenSSL": "pyopenssl", "jwt": "pyjwt",
    "attr": "attrs", "docx": "python-docx", "pptx": "python-pptx", "serial": "pyserial",
    "usb": "pyusb", "fitz": "pymupdf", "umap": "umap-learn", "zmq": "pyzmq", "git": "gitpython",
    "github": "pygithub", "slugify": "python-slugify", "MySQLdb": "mysqlclient",
    "psycopg2": "psycopg2-binary", "sentence_transformers": "sentence-transformers",
    "mpl_toolkits": "matplotlib", "google.protobuf": "protobuf", "Levenshtein": "levenshtein",
    "magic": "python-magic", "lxml": "lxml", "tensorflow": "tensorflow", "torch": "torch",
    "xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost", "statsmodels":
    "statsmodels", "seaborn": "seaborn", "matplotlib": "matplotlib", "plotly": "plotly",
    "numpy": "numpy", "pandas": "pandas", "scipy": "scipy", "polars": "polars",
    "pyarrow": "pyarrow", "requests": "requests", "tqdm": "tqdm", "joblib": "joblib",
    "sqlalchemy": "sqlalchemy", "IPython": "ipython", "nltk": "nltk", "spacy": "spacy",
    "transformers": "transformers", "datasets": "datasets", "shap": "shap",
}
# What the generated project itself needs (Prefect's server needs FastAPI below 0.151).
PROJECT_REQUIREMENTS = ("prefect", "pytest")
_DISTRIBUTION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # PEP 508 names
PINS = {"prefect": "prefect==3.8.8", "fastapi": "fastapi>=0.139,<0.151"}


@dataclass(frozen=True)
class Requirement:
    line: str  # e.g. "scikit-learn==1.9.1"
    why: str  # e.g. "import sklearn"


def requirements(modules: Iterable[str], pip_lines: Iterable[str], notebook_dir: Path,
                 extra: Iterable[tuple[str, str]] = ()) -> list[Requirement]:
    """`extra`: (distribution, why) pairs known beyond the imports."""
    found: dict[str, Requirement] = {}
    for spec in pip_lines:  # what the notebook installs wins: it is the author's intent
        line = requirement_line(spec)
        if line is None:  # a pip option, a file or a URL alone: not a requirement line
            continue
        found.setdefault(_normal(_name(line)), Requirement(line, "%pip install in the notebook"))
    for module in sorted(set(modules)):
        if module in sys.stdlib_module_names or _is_local(module, notebook_dir):
            continue
        distribution = distribution_of(module)
        if _normal(distribution) in found:
            continue
        pinned = _pinned(distribution)
        why = f"import {module}" + ("" if "==" in pinned else " (not installed where converted)")
        found[_normal(distribution)] = Requirement(pinned, why)
    for distribution, why in (*extra, *((d, "used by the generated project")
                                        for d in PROJECT_REQUIREMENTS)):
        if not _DISTRIBUTION.match(distribution):  # e.g. a module name a value made up
            continue
        if _normal(distribution) not in found:
            found[_normal(distribution)] = Requirement(
                PINS.get(distribution) or _pinned(distribution), why)
    if _normal("prefect") in found:
        found.setdefault("fastapi", Requirement(PINS["fastapi"], "prefect server: 0.151+ breaks"))
    return sorted(found.values(), key=lambda r: _normal(_name(r.line)))


def render_requirements(items: list[Requirement], notebook_name: str) -> str:
    lines = [f"# Requirements of the pipeline converted from {comment(notebook_name)}.",
             "# Versions are the ones installed where it was converted.", ""]
    width = max((len(r.line) for r in items), default=0)
    lines.extend(f"{r.line:<{width}}  # {comment(r.why)}" for r in items)
    return "\n".join(lines) + "\n"


def distribution_of(module: str) -> str:
    installed = _installed().get(module)
    if installed:
        wanted = KNOWN_DISTRIBUTIONS.get(module, module)
        matching = [d for d in installed if _normal(d) == _normal(wanted)]
        return (matching or sorted(installed, key=_normal))[0]
    return KNOWN_DISTRIBUTIONS.get(module, module)


@lru_cache(maxsize=1)
def _installed() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return {k: list(v) for k, v in packages_distributions().items()}


def _pinned(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{_canonical(distribution)}=={version(distribution)}"
    except PackageNotFoundError:
        return _canonical(distribution)  # not installed here: unpinned


def _canonical(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _normal(name: str) -> str:
    return _canonical(name)


def _name(spec: str) -> str:
    return re.split(r"[\s<>=!~;\[@]", spec.strip(), maxsplit=1)[0]


def local_modules(modules: Iterable[str], notebook_dir: Path) -> list[str]:
    return sorted(m for m in modules if _is_local(m, notebook_dir))


def _is_local(module: str, notebook_dir: Path) -> bool:
    """A module next to the notebook (`from utils import clean`) is the project's own code."""
    return (notebook_dir / f"{module}.py").is_file() or (notebook_dir / module / "__init__.py"
                                                         ).is_file()
