"""The data model: frozen dataclasses passed from one stage to the next.

read -> Notebook -> split -> Steps -> analyze -> StepSymbols -> graph -> StepGraph
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One finding about the notebook, located as a person sees it in JupyterLab."""

    code: str
    severity: Severity
    message: str
    path: str
    cell: int | None = None  # 1-based position in the notebook, markdown cells counted
    cell_id: str | None = None
    line: int | None = None  # 1-based line within the cell
    hint: str | None = None

    def sort_key(self) -> tuple[int, int, str, str]:
        return (self.cell or 0, self.line or 0, self.code, self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "cell": self.cell,
            "cell_id": self.cell_id,
            "line": self.line,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Cell:
    """A notebook cell; `code` is `source` with IPython syntax made plain Python, line for line."""

    index: int  # 1-based position in the notebook, markdown cells counted
    id: str
    cell_type: str  # "code" | "markdown" | "raw"
    source: str
    tags: tuple[str, ...] = ()
    code: str = ""
    requirements: tuple[str, ...] = ()  # from `%pip install` / `!pip install`
    implicit_imports: tuple[str, ...] = ()  # modules the rewritten magics use (subprocess, ...)
    json_line: int | None = None  # line of the cell's first source line in the .ipynb file

    @property
    def is_code(self) -> bool:
        return self.cell_type == "code"


@dataclass(frozen=True)
class Notebook:
    path: Path
    cells: tuple[Cell, ...]
    kernel_name: str = "python3"
    language: str = "python"
    nbformat: tuple[int, int] = (4, 5)

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.is_code)

    @property
    def display_path(self) -> str:
        return str(self.path)


class CellRole(str, Enum):
    """What a cell contributes to the pipeline, decided by its tags."""

    STEP = "step"  # ordinary code, part of the enclosing step
    SKIP = "skip"  # not part of the pipeline; transparent for grouping
    PARAMETERS = "parameters"  # papermill parameters: literal assignments
    LIBRARY = "library"  # Kale `imports` / `functions`: code emitted where needed


@dataclass(frozen=True)
class StepOptions:
    retries: int = 0
    timeout: float | None = None
    cache: bool = True


@dataclass(frozen=True)
class Step:
    """Cells grouped into one unit of the pipeline (the output of `split`)."""

    name: str
    cells: tuple[Cell, ...]  # the code cells that run as this step, in order
    after: tuple[str, ...] = ()
    options: StepOptions = field(default_factory=StepOptions)
    metrics_cells: tuple[int, ...] = ()  # indexes of cells tagged `metrics`
    first_cell: int = 0  # index of the cell that starts the step
    implicit: bool = False


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # a Python annotation, e.g. "int", "list[str]", "str | None"
    default: Any  # a JSON-compatible literal
    help: str | None
    cell: int
    line: int
    source: str  # the default as written, e.g. "0.25"


@dataclass(frozen=True)
class Split:
    """The result of splitting: steps plus the cells with special roles."""

    steps: tuple[Step, ...]
    parameter_cells: tuple[Cell, ...]
    library_cells: tuple[Cell, ...]
    skipped_cells: tuple[Cell, ...]
    metrics_cells: tuple[Cell, ...]
    diagnostics: tuple[Diagnostic, ...]
