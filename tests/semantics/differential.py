"""The differential tester: generated notebooks, each run as a kernel runs it and as its
generated steps (harness.py), under several step layouts; failures minimised and grouped into
classes by the idioms their smallest reproduction still needs.

A notebook that fails on its own (the generator wrote a read of a name deleted before, say) is
not a case; a diagnostic from `check` is an answer; a green check whose steps fail or compute
other values is a failure.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from semantics.generator import Cells, layouts, notebook_cells, source
from semantics.harness import Outcome, PipelineRunner, Spec, compare


@dataclass
class Case:
    seed: int
    layout: str
    cells: Cells
    tags: list[tuple[str, ...]]

    def specs(self) -> list[Spec]:
        return [(source(c), t) for c, t in zip(self.cells, self.tags, strict=True)]

    def files(self) -> tuple[tuple[str, str], ...]:
        return tuple(dict.fromkeys(f for c in self.cells for s in c for f in s.files))

    def compare(self, pipeline: PipelineRunner | None = None) -> Outcome:
        return compare(self.specs(), pipeline=pipeline, files=self.files())

    def idioms(self) -> tuple[str, ...]:
        return tuple(sorted({s.idiom for c in self.cells for s in c} - {"prelude"}))

    def text(self) -> str:
        parts = []
        for cell, tags in zip(self.cells, self.tags, strict=True):
            parts.append(f"# [{' '.join(tags) or 'untagged'}]\n{source(cell)}")
        return "\n".join(parts)


@dataclass
class Failure:
    case: Case  # minimised
    outcome: Outcome

    @property
    def signature(self) -> tuple[str, tuple[str, ...]]:
        return self.outcome.kind, self.case.idioms()


@dataclass
class Tally:
    notebooks: int = 0
    runs: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    diagnosed: dict[str, int] = field(default_factory=dict)  # by code
    examples: dict[str, str] = field(default_factory=dict)  # a case per code, to review
    failures: list[Failure] = field(default_factory=list)

    def classes(self) -> dict[tuple[str, tuple[str, ...]], list[Failure]]:
        found: dict[tuple[str, tuple[str, ...]], list[Failure]] = {}
        for failure in self.failures:
            found.setdefault(failure.signature, []).append(failure)
        return found


def cases(seed: int, count: int, first: int = 0) -> Iterator[Case]:
    for number in range(first, first + count):
        rng = random.Random(f"{seed}:{number}")
        cells = notebook_cells(rng)
        for layout, tags in layouts(cells, rng).items():
            yield Case(number, layout, cells, tags)


def run(seed: int, count: int, minimise: bool = True, first: int = 0) -> Tally:
    tally = Tally()
    failing: set[int] = set()  # notebooks that fail on their own (under every layout)
    for case in cases(seed, count, first):
        if case.layout == "each-cell":
            tally.notebooks += 1
        elif case.seed in failing:
            continue
        outcome = case.compare()
        tally.runs += 1
        tally.by_kind[outcome.kind] = tally.by_kind.get(outcome.kind, 0) + 1
        for diagnostic in outcome.diagnostics:
            code = diagnostic.split()[0]
            tally.diagnosed[code] = tally.diagnosed.get(code, 0) + 1
            tally.examples.setdefault(code, f"{diagnostic}\n{case.text()}")
        if outcome.kind == "notebook-failed":
            failing.add(case.seed)
        if outcome.failure:
            small = shrink(case, outcome) if minimise else case
            tally.failures.append(Failure(small, small.compare()))
    return tally


def shrink(case: Case, outcome: Outcome) -> Case:
    """The smallest case (statements removed one at a time) still failing the same way."""
    current = case
    changed = True
    while changed:
        changed = False
        for ci, cell in enumerate(current.cells):
            if ci == 0:
                continue  # the imports
            for si in range(len(cell)):
                cells = [list(c) for c in current.cells]
                del cells[ci][si]
                tags = list(current.tags)
                if not cells[ci]:
                    del cells[ci]
                    removed = tags.pop(ci)
                    if removed and ci < len(tags) and not tags[ci]:
                        tags[ci] = removed  # the next cell starts the step instead
                candidate = Case(current.seed, current.layout, cells, tags)
                if candidate.compare().kind == outcome.kind:
                    current, changed = candidate, True
                    break
            if changed:
                break
    return current
