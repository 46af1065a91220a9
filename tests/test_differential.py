"""The differential tester (tests/semantics/): generated notebooks, each run as a kernel runs it
and as its generated steps, every value compared. A small seeded budget here; the long run is
benchmarks/differential.py. A diagnostic from `check` is an answer; a green check whose steps
fail or compute other values never is.
"""

from __future__ import annotations

import random

import pytest
from semantics.differential import Case, cases, run
from semantics.generator import IDIOMS, notebook_cells
from semantics.harness import compare, run_flow

SEED = 20240611


def test_generated_notebooks_compute_what_the_notebook_computes() -> None:
    tally = run(SEED, 6, minimise=False)
    failures = [f"{f.outcome.kind} ({f.case.layout}): {f.outcome.detail}\n{f.case.text()}"
                for f in tally.failures]
    assert not failures, "\n\n".join(failures)
    assert tally.by_kind.get("ok", 0) >= tally.runs // 2, tally.by_kind  # mostly real cases


def test_the_generator_uses_every_idiom_and_is_seeded() -> None:
    rng = random.Random(1)
    used = {s.idiom for _ in range(200) for cell in notebook_cells(rng) for s in cell}
    names = {f.__name__ for f, _ in IDIOMS}
    assert len(used) >= 40, sorted(used)
    assert len(names) == len(IDIOMS)
    again = [c.text() for c in cases(3, 4)]
    assert again == [c.text() for c in cases(3, 4)]


def test_a_difference_is_found_and_minimised() -> None:
    """The tester is not blind: a pipeline that loses a change in place is caught."""
    from semantics.differential import shrink

    from nb2pipe.graph.resolve import Resolver

    original = Resolver._mutate
    try:
        Resolver._mutate = lambda *args, **kwargs: None  # type: ignore[method-assign]
        found = [(case, outcome) for case in cases(SEED, 6)
                 if (outcome := compare(case.specs())).kind == "differs"]
        assert found, "no difference found with change tracking off"
        case, outcome = found[0]
        small = shrink(case, outcome)
        assert sum(len(c) for c in small.cells) < sum(len(c) for c in case.cells)
        assert compare(small.specs()).kind == "differs"
    finally:
        Resolver._mutate = original  # type: ignore[method-assign]


@pytest.mark.integration
def test_the_shortcut_runs_the_steps_as_flow_py_does(prefect_harness: None) -> None:
    """A slice through the real flow.py and Prefect (values through the store, as `verify`):
    the same outcome, value for value, as the in-process shortcut the fast tier uses."""
    chosen: list[Case] = [c for c in cases(SEED, 12) if c.layout != "untagged-start"]
    compared = 0
    for case in chosen:
        shortcut = compare(case.specs())
        if shortcut.kind in ("notebook-failed", "diagnosed"):
            continue
        real = compare(case.specs(), pipeline=run_flow)
        assert (real.kind, real.names, real.compared) == (
            shortcut.kind, shortcut.names, shortcut.compared), case.text()
        compared += real.compared
        if compared >= 30:
            break
    assert compared >= 30  # values compared both ways


@pytest.mark.parametrize("layout", ["each-statement", "one-step"])
def test_late_reads_of_function_bodies_are_no_error(layout: str) -> None:
    """The idioms whose function bodies read names bound later, or nowhere, are answered
    with the notebook's values, not with an error (the notebook runs: no call fails)."""
    from semantics.generator import (
        Env,
        func_reads_name_defined_nowhere,
        func_value_reads_later_global,
    )

    env = Env(random.Random(SEED))
    env.kinds["n0"] = "int"
    made = [*func_reads_name_defined_nowhere(env), *(func_value_reads_later_global(env) or [])]
    sources = ["n0 = 1", *(s.code for s in made)]
    if layout == "one-step":
        sources = ["\n".join(sources)]
    outcome = compare([(source, (f"step:s{i}",)) for i, source in enumerate(sources)])
    assert outcome.kind == "ok", outcome
