"""The package's shape: layers import downward only, and no module imports itself through
others. Imports inside functions (lazy ones) count like any other."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "nb2pipe"

# Bottom to top: a module imports from its own layer and the layers below it, never above.
# The runtime is copied into every project and imports nothing else of nb2pipe (tested below);
# model, errors, escaping, process groups and the diagnostic table are what every stage
# shares; then the stages in the order a notebook flows through them; running a written
# project (execute) comes before what writes or prepares one to run; the command line and the
# server sit on top.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("runtime",),
    ("", "model", "exceptions", "escape", "groups", "diagnostics"),  # "": nb2pipe/__init__.py
    ("notebook",),
    ("analysis",),
    ("graph",),
    ("pipeline", "graph_text"),
    ("generate",),
    ("folder", "writer"),
    ("execute",),
    ("convert", "prepare", "deploy"),
    ("server", "cli", "__main__"),
)


def imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the nb2pipe modules it imports, lazily inside functions included."""
    modules = {}
    for path in package.rglob("*.py"):
        if "labextension" in path.parts:
            continue
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        used = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                parts = package.split(".")
                base = parts[:len(parts) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                used.update(f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                            for a in node.names)
            elif isinstance(node, ast.Import):
                used.update(a.name for a in node.names)
        found[name] = {m for m in used if m in modules and m != name}
    return found


def layer(module: str) -> int:
    """The index in LAYERS of the package or module `module` belongs to."""
    top = module.removeprefix("nb2pipe").removeprefix(".").partition(".")[0]
    found = [i for i, names in enumerate(LAYERS) if top in names]
    assert found, f"{module} is in no layer: add {top!r} to LAYERS in tests/test_layout.py"
    return found[0]


def test_every_import_points_down_the_layers() -> None:
    upward = sorted(f"{module} imports {used}, a layer above it"
                    for module, imported in imports().items() for used in imported
                    if layer(used) > layer(module))
    assert not upward, "\n".join(upward)


def test_the_layer_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "nb2pipe" / "model.py"
    module.parent.mkdir()
    module.write_text("def late():\n    from nb2pipe.cli import main\n")
    (module.parent / "cli.py").write_text("")
    assert imports(tmp_path / "nb2pipe") == {"nb2pipe.model": {"nb2pipe.cli"}, "nb2pipe.cli": set()}
    assert layer("nb2pipe.cli") > layer("nb2pipe.model")


def test_no_module_imports_itself_through_others() -> None:
    graph = imports()
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from None


def test_the_runtime_imports_nothing_else_of_nb2pipe() -> None:
    """It is copied into projects that run without nb2pipe installed."""
    for module, used in imports().items():
        if module.startswith("nb2pipe.runtime"):
            assert all(m.startswith("nb2pipe.runtime") for m in used), (module, used)


# The one exception: the reader stage's package `notebook/` and the runtime's notebook mode
# (`nb2pipe_runtime.notebook`, which generated projects import); renaming either would rename a
# stage of the pipeline or break projects already generated.
SHARED_NAMES = {"notebook"}


def shared_names(package: Path = PACKAGE) -> set[str]:
    """Names of runtime modules that a module outside the runtime has too."""
    sides: dict[bool, set[str]] = {True: set(), False: set()}
    for module in imports(package):
        if module != "nb2pipe":
            sides[module.startswith("nb2pipe.runtime.")].add(module.rpartition(".")[2])
    return sides[True] & sides[False]


def test_a_name_says_which_side_of_the_process_boundary_a_module_is_on() -> None:
    """The runtime's module names appear in generated code (`nb2pipe_runtime.report`): no
    module of nb2pipe's own side takes one of them."""
    assert shared_names() - SHARED_NAMES == set()
