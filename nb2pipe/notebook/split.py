"""Stage 2, split: Notebook -> Split (cells grouped into steps, special cells set aside).

Modes: `tags` (step:NAME starts a step), `headings` (each markdown H1/H2 starts one), `cells`
(each code cell is a step). Explicit `step:` tags win in every mode.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace

from nb2pipe.diagnostics import close_match, diagnostic
from nb2pipe.model import Cell, CellRole, Diagnostic, Notebook, Split, Step, StepOptions
from nb2pipe.notebook.tags import (
    parse_tag,
    size_in_bytes,
    step_name_problem,
    suggest_identifier,
    tag_usage,
)

SPLIT_MODES = ("tags", "headings", "cells")
_HEADING = re.compile(r"^\s{0,3}(#{1,2})\s+(.+?)\s*#*\s*$", re.MULTILINE)
# A step name made from a heading names a Prefect task, a function and a report anchor: short.
NAME_CHARS = 32
NAME_WORDS = 4
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url) -> text
_WORD = re.compile(r"[0-9A-Za-z]+")
# "4.4 ", "1) ", "II. ", "b: " before the words of a heading
_NUMBERING = re.compile(r"^(?:(?:[0-9]+(?:\.[0-9]+)*|[IVXLC]+|[ivxlc]+|[A-Za-z])[.):]\s*"
                        r"|[0-9]+(?:\.[0-9]+)*\s+)+")
# Words a name can do without ("Training of the model" -> training_model).
_FILLER = frozenset({
    "a", "an", "the", "and", "or", "of", "for", "to", "in", "on", "at", "by", "with", "using",
    "via", "from", "into", "onto", "as", "is", "are", "be", "this", "that", "these", "those",
    "our", "its", "their", "your", "my", "we", "let", "s",
})


@dataclass
class _Open:
    """A step being assembled."""

    name: str
    first_cell: int
    implicit: bool = False
    explicit: bool = False
    cells: list[Cell] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    options: StepOptions = field(default_factory=StepOptions)  # tags retries:, timeout:, cache:
    resources: dict[str, float] = field(default_factory=dict)  # tags cpu:, memory:, gpu:
    metrics: list[int] = field(default_factory=list)
    closed: bool = False
    title: str | None = None  # the heading that started it, in full


def split(notebook: Notebook, mode: str = "tags") -> Split:
    if mode not in SPLIT_MODES:
        raise ValueError(f"unknown split mode {mode!r}; choose one of {', '.join(SPLIT_MODES)}")
    return _Splitter(notebook, mode).run()


class _Splitter:
    def __init__(self, notebook: Notebook, mode: str) -> None:
        self.notebook = notebook
        self.mode = mode
        self.path = notebook.display_path
        self.diagnostics: list[Diagnostic] = []
        self.steps: list[_Open] = []
        self.roles: dict[CellRole, list[Cell]] = {role: [] for role in CellRole}
        self.metrics: list[Cell] = []

    def run(self) -> Split:
        for cell in self.notebook.cells:
            if cell.is_code:
                self._code_cell(cell)
            elif cell.cell_type == "markdown" and self.mode == "headings":
                heading = _HEADING.search(cell.source)
                if heading:
                    title = heading_text(heading.group(2))
                    self._start(heading_step_name(title), cell, automatic=True)
                    self.steps[-1].title = title
        steps = [s for s in self.steps if s.cells or self._empty(s)]
        self._check_after(steps)
        return Split(
            steps=tuple(_freeze(s) for s in steps),
            parameter_cells=tuple(self.roles[CellRole.PARAMETERS]),
            library_cells=tuple(self.roles[CellRole.LIBRARY]),
            skipped_cells=tuple(self.roles[CellRole.SKIP]),
            metrics_cells=tuple(self.metrics),
            diagnostics=tuple(self.diagnostics),
        )

    def _code_cell(self, cell: Cell) -> None:
        tags = [parse_tag(raw) for raw in cell.tags]
        kinds = {t.kind for t in tags if t.kind and not t.problem}
        for tag in tags:
            self._report_tag(tag, cell)
        step_tag = next((t for t in tags if t.kind == "step" and not t.problem), None)
        if "skip" in kinds:
            if step_tag and step_tag.value:  # skip is transparent: the step still starts here
                self._start(step_tag.value, cell, automatic=False)
            self.roles[CellRole.SKIP].append(cell)
            return
        if "parameters" in kinds:
            if self.roles[CellRole.PARAMETERS]:
                first = self.roles[CellRole.PARAMETERS][0]
                self._warn("NB106", f"cell {cell.index} is a second parameters cell (the first is "
                           f"cell {first.index}); papermill injects values after the first only",
                           cell, hint="merge the parameters into one cell")
            self.roles[CellRole.PARAMETERS].append(cell)
            return
        if "library" in kinds:
            self.roles[CellRole.LIBRARY].append(cell)
            return
        if step_tag and step_tag.value:
            self._start(step_tag.value, cell, automatic=False)
        elif self.mode == "cells" or not self.steps or self.steps[-1].closed:
            name = f"cell_{cell.index}" if self.mode == "cells" else self._implicit_name()
            self._start(name, cell, automatic=True, implicit=self.mode != "cells")
        current = self.steps[-1]
        current.cells.append(cell)
        for tag in tags:
            if tag.problem or not tag.value:
                if tag.kind == "metrics" and not tag.problem:
                    current.metrics.append(cell.index)
                    self.metrics.append(cell)
                continue
            if tag.kind == "after" and tag.value not in current.after:
                current.after.append(tag.value)
            elif tag.kind == "retries":
                current.options = replace(current.options, retries=int(tag.value))
            elif tag.kind == "timeout":
                current.options = replace(current.options, timeout=float(tag.value))
            elif tag.kind == "cache":
                current.options = replace(current.options, cache=tag.value != "off")
            elif tag.kind in ("cpu", "memory", "gpu"):  # Dask resources: CPU, MEMORY, GPU
                amount = size_in_bytes(tag.value) if tag.kind == "memory" else float(tag.value)
                current.resources[tag.kind.upper()] = amount or 0

    def _start(self, name: str, cell: Cell, *, automatic: bool, implicit: bool = False) -> None:
        if self.steps and self.steps[-1].name == name and not automatic:
            return  # consecutive cells tagged with the same step join it (Kale does the same)
        if automatic:
            name = self._unique(name)
        else:
            problem = step_name_problem(name)
            if problem:
                self._error("NB101", f"step name '{name}' {problem}", cell,
                            hint=f"rename the tag to step:{suggest_identifier(name)}")
            earlier = next((s for s in self.steps if s.name == name), None)
            if earlier is not None:
                self._error("NB102", f"step '{name}' is started again at cell {cell.index}; "
                            f"it already started at cell {earlier.first_cell}", cell,
                            hint=f"give this one a distinct name, e.g. step:{self._unique(name)}")
            for other in self.steps:  # an automatic name must yield to an explicit one
                if other.name == name and not other.explicit:
                    other.name = self._unique(name + "_")
        if self.mode == "cells" and self.steps and not self.steps[-1].cells:
            self.steps.pop()
        self.steps.append(_Open(name, cell.index, implicit=implicit, explicit=not automatic))

    def _empty(self, step: _Open) -> bool:
        if step.explicit:
            cell = self.notebook.cells[step.first_cell - 1]
            self._warn("NB110", f"step '{step.name}' has no code cells that run", cell,
                       hint="remove the step tag, or untag the `skip` cells below it")
        return False

    def _implicit_name(self) -> str:
        return suggest_identifier(self.notebook.path.stem)

    def _unique(self, name: str) -> str:
        taken = {s.name for s in self.steps}
        if name not in taken:
            return name
        number = 2
        while _numbered(name, number) in taken:
            number += 1
        return _numbered(name, number)

    def _report_tag(self, tag: object, cell: Cell) -> None:
        from nb2pipe.notebook.tags import Tag

        assert isinstance(tag, Tag)
        if tag.problem == "unknown":
            self._warn("NB103", f"unknown tag '{tag.raw}'", cell,
                       hint=f"did you mean '{tag.suggestion}'?")
        elif tag.problem:
            hint = f"did you mean '{tag.suggestion}'?" if tag.suggestion else tag_usage(tag.raw)
            self._error("NB107", f"invalid tag '{tag.raw}': {tag.problem}", cell, hint=hint)

    def _check_after(self, steps: list[_Open]) -> None:
        names = [s.name for s in steps]
        for step in steps:
            for target in step.after:
                if target in names:
                    continue
                guess = close_match(target, names)
                cell = self.notebook.cells[step.first_cell - 1]
                self._error(
                    "NB104",
                    f"step '{step.name}' is tagged after:{target}, but there is no step '{target}'",
                    cell,
                    hint=f"did you mean after:{guess}?" if guess else f"steps: {', '.join(names)}",
                )

    def _error(self, code: str, message: str, cell: Cell, hint: str | None = None) -> None:
        self.diagnostics.append(diagnostic(code, message, path=self.path, cell=cell, hint=hint))

    _warn = _error  # severity comes from the code table


def _numbered(name: str, number: int) -> str:
    """`name_N`, cut so that a short name stays short."""
    suffix = f"_{number}"
    if len(name) + len(suffix) > NAME_CHARS >= len(name):
        name = name[:NAME_CHARS - len(suffix)].rstrip("_")
    return name + suffix


def heading_text(heading: str) -> str:
    """A markdown heading as read: links as their text, no emphasis or code marks."""
    text = _LINK.sub(r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML (<a id=...></a>, <b>)
    text = re.sub(r"[*`~]|(?<!\w)_|_(?!\w)", "", text)
    return " ".join(text.split())


def heading_step_name(heading: str) -> str:
    """A short step name for a heading: its first few meaningful words, at most NAME_CHARS
    characters, a valid identifier. "4.4 GridSearchCV evaluating using multiple scorers, ..."
    -> gridsearchcv_evaluating_multiple."""
    plain = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    words = [w.lower() for w in _WORD.findall(_NUMBERING.sub("", plain))]
    meaningful = [w for w in words if w not in _FILLER] or words
    chosen: list[str] = []
    for word in meaningful[:NAME_WORDS]:
        if chosen and len("_".join([*chosen, word])) > NAME_CHARS:
            break
        chosen.append(word)
    name = suggest_identifier("_".join(chosen))
    return name if len(name) <= NAME_CHARS else suggest_identifier(name[:NAME_CHARS].rstrip("_"))


def _freeze(step: _Open) -> Step:
    options = replace(step.options, resources=tuple(sorted(step.resources.items())))
    return Step(
        name=step.name,
        cells=tuple(step.cells),
        after=tuple(step.after),
        options=options,
        metrics_cells=tuple(step.metrics),
        first_cell=step.first_cell,
        implicit=step.implicit,
        title=step.title,
    )
