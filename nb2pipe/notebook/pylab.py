"""What `%pylab` and `from pylab import *` put in a notebook's namespace, name by name.

A pipeline step imports each name it uses explicitly (`from numpy import linspace`), so the
analysis must know where every one of them comes from. The table is data, written by running
this module (`python -m nb2pipe.notebook.pylab`) where numpy and matplotlib are installed: it
executes the very imports IPython's `%pylab` executes and records the origin of each name.
"""

from __future__ import annotations

import json
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
    from nb2pipe.notebook.pylab_names import NAMESPACES

    found: dict[str, str] = {}
    for statement, names in NAMESPACES[_stored(namespace)].items():
        for name in names.split():
            found[name] = statement.format(name)
    return found


def _stored(namespace: str) -> str:
    return "pylab" if namespace == "matplotlib.pylab" else namespace


# -- writing the table ---------------------------------------------------------------------------

def _statement(name: str, value: Any, modules: dict[str, ModuleType]) -> str | None:
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
    for origin in _ORIGINS:
        if getattr(modules[origin], name, None) is value:
            return f"from {origin} import {{}}"
    return "from matplotlib.pylab import {}"


def _write(target: Path) -> None:
    import importlib

    import matplotlib
    import numpy

    modules = {name: importlib.import_module(name) for name in _ORIGINS}
    lines = [
        f'"""Written by `python -m nb2pipe.notebook.pylab` (numpy {numpy.__version__}, '
        f'matplotlib {matplotlib.__version__}).',
        "",
        "For each namespace: the import statement binding a name (`{}` stands for the name), and",
        'the names it binds. Do not edit: run the module again."""',
        "",
        "NAMESPACES: dict[str, dict[str, str]] = {",
    ]
    for namespace, source in SOURCES.items():
        if namespace != _stored(namespace):
            continue
        scope: dict[str, Any] = {}
        exec(source, scope)  # the fixed imports above, to see what they bind
        grouped: dict[str, list[str]] = {}
        for name in sorted(n for n in scope if not n.startswith("_")):
            statement = _statement(name, scope[name], modules)
            if statement is not None:  # a template ("from numpy import {}") or one statement
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
    _write(Path(__file__).with_name("pylab_names.py"))
    sys.exit(0)
