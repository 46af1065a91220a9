"""What `%pylab` and `from pylab import *` put in a notebook's namespace, name by name.

A pipeline step imports each name it uses explicitly (`from numpy import linspace`), so the
analysis must know where every one of them comes from: in the environment the notebook runs in
(`python -m nb2pipe.notebook.pylab --names NAMESPACE` runs there the very imports IPython's
`%pylab` runs and records the origin of each name), else from the table written by running this
module (`python -m nb2pipe.notebook.pylab`) where numpy and matplotlib are installed.
"""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

# The namespaces a cell can fill with one statement, and the Python that fills them: the same
# statements IPython's `import_pylab` runs for `%pylab` (with and without `--no-import-all`).
_MODULES = ("import numpy\nimport matplotlib\nfrom matplotlib import pylab, mlab, pyplot\n"
            "np = numpy\nplt = pyplot\n"
            "from IPython.core.pylabtools import figsize, getfigs\n")
SOURCES = {
    "%pylab": _MODULES + "from matplotlib.pylab import *\nfrom numpy import *\n",
    "%pylab --no-import-all": _MODULES,
    "pylab": "from matplotlib.pylab import *\n",
    "matplotlib.pylab": "from matplotlib.pylab import *\n",
    "numpy": "from numpy import *\n",
}
# Where a name is imported from when several modules hold the same object: the first wins.
_ORIGINS = ("numpy", "numpy.random", "numpy.fft", "numpy.linalg", "numpy.ma", "matplotlib.pyplot",
            "matplotlib.mlab", "matplotlib.dates", "matplotlib.cbook", "matplotlib",
            "IPython.core.pylabtools", "datetime")


def known(module: str) -> bool:
    """Whether the names `from MODULE import *` (or a magic) binds are known here."""
    return module in SOURCES


def import_for(namespace: str, name: str) -> str | None:
    """The statement binding `name` as the namespace binds it; None if it does not bind it."""
    return _table(namespace).get(name)


@cache
def _table(namespace: str) -> dict[str, str]:
    """What the namespace binds in the environment the notebook runs in (the installed numpy
    and matplotlib, imported as a kernel would); the table written here when they cannot be
    imported."""
    templates = environment_names(namespace)
    if templates is None:
        from nb2pipe.notebook.pylab_names import NAMESPACES

        templates = {name: statement for statement, names in
                     NAMESPACES[_stored(namespace)].items() for name in names.split()}
    return {name: statement.format(name) for name, statement in templates.items()}


# Seconds to wait for a namespace's imports (tensorflow's take long on a busy machine).
_IMPORT_TIMEOUT = 120


@cache
def environment_names(namespace: str) -> dict[str, str] | None:
    """What `from MODULE import *` (or `%pylab`) binds where the notebook runs, as a kernel
    sees it: name -> the import statement binding it (`{}` stands for the name). The imports
    run in a new process of this environment's Python, whose path has neither the notebook's
    folder nor the current one (`-P`, run in an empty folder): only installed modules are
    imported, never a file beside the notebook. None when the import fails (the caller
    checks that the module is installed, and not one whose import acts)."""
    import subprocess
    import tempfile

    command = [sys.executable, "-P", "-m", "nb2pipe.notebook.pylab", "--names", namespace]
    with tempfile.TemporaryDirectory(prefix="nb2pipe-names-") as empty:
        try:
            done = subprocess.run(command, cwd=empty, capture_output=True, text=True,
                                  timeout=_IMPORT_TIMEOUT, stdin=subprocess.DEVNULL,
                                  env={**os.environ, "MPLBACKEND": "Agg"})
        except (OSError, subprocess.TimeoutExpired):
            return None
    if done.returncode != 0:
        return None
    try:
        found = json.loads(done.stdout)
    except ValueError:
        return None
    if not isinstance(found, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        return None
    return found


def bound_names(namespace: str) -> dict[str, str]:
    """Run the namespace's imports here and say, for each public name they bind, the import
    statement binding it (`{}` stands for the name): what `--names` prints."""
    import importlib

    source = SOURCES.get(namespace, f"from {namespace} import *\n")
    origins = _ORIGINS if namespace in SOURCES else (namespace,)
    modules = {name: module for name in origins
               if (module := _imported(importlib, name)) is not None}
    scope: dict[str, Any] = {}
    exec(source, scope)  # the fixed imports above, or `from MODULE import *`
    found: dict[str, str] = {}
    for name in sorted(n for n in scope if not n.startswith("_")):
        statement = _statement(name, scope[name], modules,
                               "from matplotlib.pylab import {}" if namespace in SOURCES
                               else f"from {namespace} import {{}}")
        if statement is not None:
            found[name] = statement
    return found


def _imported(importlib: Any, name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)  # type: ignore[no-any-return]
    except Exception:  # not installed, or broken here: names are not looked up in it
        return None


def _stored(namespace: str) -> str:
    return "pylab" if namespace == "matplotlib.pylab" else namespace


# -- writing the table ---------------------------------------------------------------------------

def _statement(name: str, value: Any, modules: dict[str, ModuleType],
               fallback: str = "from matplotlib.pylab import {}") -> str | None:
    """The import binding `name` to `value`, or None for a builtin (no import needed)."""
    import builtins

    if isinstance(value, ModuleType):
        full = value.__name__
        parent, _, last = full.rpartition(".")
        if full == name:
            return f"import {name}"
        if parent and last == name:
            return f"from {parent} import {name}"
        return f"import {full} as {name}"
    if hasattr(builtins, name) and getattr(builtins, name) is value:
        return None  # (numpy.newaxis is None: not a builtin)
    for origin, module in modules.items():
        if getattr(module, name, None) is value:
            return f"from {origin} import {{}}"
    return fallback


def _write(target: Path) -> None:
    import matplotlib
    import numpy

    lines = [
        f'"""Written by `python -m nb2pipe.notebook.pylab` (numpy {numpy.__version__}, '
        f'matplotlib {matplotlib.__version__}).',
        "",
        "For each namespace: the import statement binding a name (`{}` stands for the name), and",
        'the names it binds. Do not edit: run the module again."""',
        "",
        "NAMESPACES: dict[str, dict[str, str]] = {",
    ]
    for namespace in SOURCES:
        if namespace != _stored(namespace):
            continue
        grouped: dict[str, list[str]] = {}
        for name, statement in bound_names(namespace).items():
            # a template ("from numpy import {}") or one statement
            grouped.setdefault(statement, []).append(name)
        lines.append(f"    {json.dumps(namespace)}: {{")
        for statement in sorted(grouped):
            lines.append(f"        {json.dumps(statement)}: (")
            lines.extend(_wrapped(" ".join(grouped[statement]), "            "))
            lines.append("        ),")
        lines.append("    },")
    lines.append("}")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _wrapped(text: str, indent: str, width: int = 99) -> list[str]:
    out: list[str] = []
    current = ""
    for word in text.split():
        if current and len(indent) + len(current) + len(word) + 4 > width:
            out.append(f"{indent}{json.dumps(current + ' ')}")
            current = ""
        current = f"{current} {word}" if current else word
    out.append(f"{indent}{json.dumps(current)}")
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--names"]:  # what the namespace binds here, as JSON (star_names.py)
        json.dump(bound_names(sys.argv[2]), sys.stdout)
    else:
        _write(Path(__file__).with_name("pylab_names.py"))
    sys.exit(0)
